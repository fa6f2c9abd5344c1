"""Stored transcripts as training data: OpenAI chat JSONL, Hugging Face conversational JSONL, Rasa NLU YAML
and CSV, each read back and checked before the file is put in place.

What goes in:

- the dialogues of one run (the latest by default) that pass the filters: gold intent of the dialogue,
  outcome, perturbation (`none` for the clean runs); names OR within a filter, filters AND;
- their non-empty messages, in order (an abandoning user's empty row and a failed reply's empty text are
  dropped); a turn the user sent as fragments stays as separate messages, as it was sent;
- gold labels from user messages only (`speaker = 'user'`): intent, acts and slot spans. A value the user
  said by mistake and then corrected (an edit of kind `retracted_value`) is no gold slot: a span that
  overlaps one is left out.

The formats:

- `openai`: `{"messages": [system, user, assistant, ...]}` per dialogue, for chat fine-tuning: a system
  message naming the pack, trailing user messages trimmed so the last message is the assistant's; a
  dialogue without any reply is skipped.
- `hf`: `{"messages": [...], "intent", "dialogue_id", "run_id", "perturbation", "outcome"}` per dialogue;
  user messages carry `intent`, `acts` and `slots` (`[{"slot", "value", "start", "end"}]`, offsets into
  `content`).
- `rasa`: NLU training data (`version: "3.1"`), one example per user message, deduplicated, grouped by the
  message's gold intent, slots annotated inline as `[surface](slot)`, or `[surface]{"entity": "slot",
  "value": "canonical"}` when the text says the value in another form. Rasa has no escape character, so
  the characters of its syntax in user text (`[ ] { }`) are written as their full-width look-alikes
  (U+FF3B, U+FF3D, U+FF5B, U+FF5D), and line breaks and control characters as spaces: user text can
  never open an annotation, and offsets do not move.
- `csv`: one row per user message: run_id, dialogue_id, turn_idx, text, intent, acts (`|`-joined),
  slots (JSON), perturbation, outcome.

Nothing in the text is evaluated; JSON is written with `json.dumps`. The file is written next to its
destination under a temporary name, read back with the format's reader, compared record by record with
what was meant to be written, and only then renamed into place: a failed export leaves nothing behind.

Example:
    >>> result = export("botdrill.duckdb", "train.jsonl", format="openai")  # doctest: +SKIP
    >>> result.records, result.skipped  # doctest: +SKIP
    (412, 3)
    >>> read_openai("train.jsonl")[0]["messages"][0]["role"]  # doctest: +SKIP
    'system'
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple, TextIO, get_args

import duckdb
import yaml

from botdrill.scenarios import BotdrillError

from ._metrics import Database, _open, latest_run

ExportFormat = Literal["openai", "hf", "rasa", "csv"]
FORMATS: tuple[ExportFormat, ...] = get_args(ExportFormat)
"""The formats `export` writes."""

CSV_COLUMNS = (
    "run_id",
    "dialogue_id",
    "turn_idx",
    "text",
    "intent",
    "acts",
    "slots",
    "perturbation",
    "outcome",
)
"""The header of a CSV export, in order."""

RASA_VERSION = "3.1"

_BATCH = 10_000


class ExportError(BotdrillError):
    """An export cannot be made (unknown run or format, no matching dialogue, unwritable path), or a file
    read back is not valid for its format."""

    code = "export_failed"


class Span(NamedTuple):
    """A gold slot value in a message: `text[start:end]` says it, `value` is its canonical form."""

    slot: str
    value: str
    start: int
    end: int


class RasaExample(NamedTuple):
    """One Rasa NLU example read back: its intent, its plain text and the entities annotated in it."""

    intent: str
    text: str
    """The text Rasa trains on: the annotated line with its annotations replaced by their surfaces."""
    entities: tuple[Span, ...]
    """Entity, value and offsets into `text`, as Rasa reads them from the annotations."""


class CsvRow(NamedTuple):
    """One row of a CSV export read back."""

    run_id: str
    dialogue_id: str
    turn_idx: int
    text: str
    intent: str | None
    acts: tuple[str, ...]
    slots: tuple[Span, ...]
    perturbation: str
    outcome: str


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote."""

    path: Path
    format: ExportFormat
    run_id: str
    dialogues: int
    """Dialogues with at least one record in the file."""
    records: int
    """Lines (openai, hf), examples after deduplication (rasa) or rows (csv)."""
    spans: int
    """Slot spans written (annotations, for rasa; none for openai, which carries no labels)."""
    skipped: int
    """Dialogues that matched the filters but gave nothing to write (openai: no reply from the
    assistant; others: no non-empty message)."""


# -- reading the store -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Message:
    turn_idx: int
    role: Literal["user", "assistant"]
    text: str
    intent: str | None
    acts: tuple[str, ...]
    slots: tuple[Span, ...]


@dataclass(frozen=True)
class _Dialogue:
    run_id: str
    dialogue_id: str
    intent: str
    perturbation: str
    outcome: str
    messages: tuple[_Message, ...]


@dataclass(frozen=True)
class _Filters:
    run_id: str
    intents: tuple[str, ...]
    outcomes: tuple[str, ...]
    perturbations: tuple[str, ...]

    def where(self) -> tuple[str, dict[str, Any]]:
        """The SQL condition on `dialogues d`, with its parameters."""
        sql = "d.run_id = $run"
        params: dict[str, Any] = {"run": self.run_id}
        for name, column, values in (
            ("intents", "gold_intent", self.intents),
            ("outcomes", "outcome", self.outcomes),
            ("perturbations", "perturbation", self.perturbations),
        ):
            if values:
                sql += f" AND list_contains(${name}, d.{column})"
                params[name] = list(values)
        return sql, params

    def describe(self) -> str:
        """The filters as options, for messages."""
        words = [
            f"--{option} {value}"
            for option, values in (
                ("intent", self.intents),
                ("outcome", self.outcomes),
                ("perturbation", self.perturbations),
            )
            for value in values
        ]
        return " ".join(words) if words else "(no filters)"


def _dialogues(
    con: duckdb.DuckDBPyConnection, filters: _Filters, retracted: dict[tuple[str, int], list[tuple[int, int]]]
) -> Iterator[_Dialogue]:
    """The matching dialogues with their messages, in run order, read in batches."""
    where, params = filters.where()
    cursor = con.execute(
        f"""
        SELECT d.run_id, d.dialogue_id, d.gold_intent, d.perturbation, d.outcome,
               t.turn_idx, t.speaker, t.text, t.gold_intent, t.gold_acts, t.gold_slots
        FROM dialogues d JOIN turns t ON t.dialogue_id = d.dialogue_id
        WHERE {where}
        ORDER BY d.idx, d.dialogue_id, t.turn_idx""",
        params,
    )
    head: tuple[Any, ...] | None = None
    messages: list[_Message] = []
    while rows := cursor.fetchmany(_BATCH):
        for row in rows:
            run_id, dialogue_id, intent, perturbation, outcome = row[:5]
            if head is not None and head[1] != dialogue_id:
                yield _dialogue(head, messages)
                messages = []
            head = (run_id, dialogue_id, intent, perturbation, outcome)
            message = _message(dialogue_id, row[5:], retracted)
            if message is not None:
                messages.append(message)
    if head is not None:
        yield _dialogue(head, messages)


def _dialogue(head: tuple[Any, ...], messages: list[_Message]) -> _Dialogue:
    run_id, dialogue_id, intent, perturbation, outcome = head
    return _Dialogue(run_id, dialogue_id, intent, perturbation, outcome, tuple(messages))


def _message(
    dialogue_id: str, row: tuple[Any, ...], retracted: dict[tuple[str, int], list[tuple[int, int]]]
) -> _Message | None:
    turn_idx, speaker, text, intent, acts, slots = row
    if not text:
        return None
    if speaker != "user":
        return _Message(turn_idx, "assistant", text, None, (), ())
    spans = gold_spans(
        slots,
        text,
        f"dialogue {dialogue_id!r}, turn {turn_idx}",
        ExportError,
        retracted=retracted.get((dialogue_id, turn_idx), ()),
    )
    return _Message(turn_idx, "user", text, intent or None, tuple(acts or ()), spans)


def gold_spans(
    raw: Iterable[Mapping[str, Any]] | None,
    text: str,
    where: str,
    error: Callable[[str], BotdrillError],
    *,
    retracted: Sequence[tuple[int, int]] = (),
) -> tuple[Span, ...]:
    """Stored gold slot dicts as spans in text order, checked against their text.

    A zero-width span marks nothing and a span over a value said by mistake (`retracted`) is no gold
    slot: both are left out. A span outside its text means the store is inconsistent: `error` says where.
    """
    spans: list[Span] = []
    for s in raw or ():
        span = Span(str(s["slot"]), str(s["value"]), int(s["start"]), int(s["end"]))
        if not 0 <= span.start <= span.end <= len(text):
            raise error(
                f"{where}: gold span {span.start}-{span.end} of slot {span.slot!r} lies outside its "
                f"{len(text)}-character text; the store is inconsistent"
            )
        if span.start == span.end or any(span.start < end and start < span.end for start, end in retracted):
            continue  # nothing to mark, or a value said by mistake
        spans.append(span)
    spans.sort(key=lambda s: (s.start, s.end))
    return tuple(spans)


def _retracted(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[tuple[str, int], list[tuple[int, int]]]:
    """(dialogue, turn) -> spans of the values said by mistake in that message."""
    marks: dict[tuple[str, int], list[tuple[int, int]]] = {}
    for dialogue_id, turn_idx, start, end in con.execute(
        'SELECT dialogue_id, turn_idx, "start", "end" FROM edits '
        "WHERE run_id = ? AND perturbation = 'correction' AND kind = 'retracted_value'",
        [run_id],
    ).fetchall():
        marks.setdefault((dialogue_id, turn_idx), []).append((start, end))
    return marks


# -- building records ------------------------------------------------------------------------------------


def _system_message(pack: str) -> str:
    return f"You are the customer service assistant for {pack} (botdrill scenario pack {pack!r})."


def _openai_record(dialogue: _Dialogue, system: str) -> dict[str, Any] | None:
    messages = [{"role": m.role, "content": m.text} for m in dialogue.messages]
    while messages and messages[-1]["role"] == "user":
        messages.pop()  # fine-tuning trains on the assistant's last word
    while messages and messages[0]["role"] == "assistant":
        messages.pop(0)  # never in a stored transcript: the user speaks first
    if not messages:
        return None
    return {"messages": [{"role": "system", "content": system}, *messages]}


def _span_dicts(spans: Iterable[Span]) -> list[dict[str, Any]]:
    return [{"slot": s.slot, "value": s.value, "start": s.start, "end": s.end} for s in spans]


def _hf_record(dialogue: _Dialogue) -> dict[str, Any] | None:
    messages: list[dict[str, Any]] = []
    for m in dialogue.messages:
        if m.role == "user":
            messages.append(
                {
                    "role": "user",
                    "content": m.text,
                    "intent": m.intent,
                    "acts": list(m.acts),
                    "slots": _span_dicts(m.slots),
                }
            )
        else:
            messages.append({"role": "assistant", "content": m.text})
    if not messages:
        return None
    return {
        "messages": messages,
        "intent": dialogue.intent,
        "dialogue_id": dialogue.dialogue_id,
        "run_id": dialogue.run_id,
        "perturbation": dialogue.perturbation,
        "outcome": dialogue.outcome,
    }


def _csv_rows(dialogue: _Dialogue) -> list[CsvRow]:
    return [
        CsvRow(
            run_id=dialogue.run_id,
            dialogue_id=dialogue.dialogue_id,
            turn_idx=m.turn_idx,
            text=m.text,
            intent=m.intent,
            acts=m.acts,
            slots=m.slots,
            perturbation=dialogue.perturbation,
            outcome=dialogue.outcome,
        )
        for m in dialogue.messages
        if m.role == "user"
    ]


# Characters that must not reach a Rasa example line: line breaks (YAML's and Python's `splitlines`, which
# Rasa splits examples with), tabs, controls and the byte-order mark.
_NOT_INLINE = re.compile(
    "[^\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)
# Rasa's annotation syntax has no escape: its characters become look-alikes that it does not read.
_RASA_SYNTAX = str.maketrans({"[": "\uff3b", "]": "\uff3d", "{": "\uff5b", "}": "\uff5d"})
_SHORT_ENTITY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
# Rasa's own pattern for `[text](entity)`, `[text](entity:value)` and `[text]{"entity": ...}`.
_RASA_ENTITY = re.compile(
    r"\[(?P<text>[^\]]+?)\](?:\((?P<entity>[^:)]+?)(?::(?P<value>[^)]+))?\)|\{(?P<dict>[^}]+?)\})"
)


def _rasa_text(text: str) -> str:
    """`text` made safe for an example line, character for character (offsets are unchanged)."""
    return _NOT_INLINE.sub(" ", text).translate(_RASA_SYNTAX)


def _inline_json(data: dict[str, str]) -> str:
    """JSON for an annotation: `}` and anything that could end the line are written as `\\uXXXX`."""
    dumped = json.dumps(data, ensure_ascii=False)
    inner = re.sub("}|" + _NOT_INLINE.pattern, lambda m: f"\\u{ord(m.group()):04x}", dumped[1:-1])
    return "{" + inner + "}"


def _rasa_example(message: _Message) -> tuple[str, RasaExample] | None:
    """A user message as an annotated example line, and the example Rasa reads from it."""
    clean = _rasa_text(message.text)
    parts: list[str] = []
    pos = 0
    placed: list[Span] = []
    for span in message.slots:
        if span.start < pos:
            continue  # overlaps the span before it: inline annotations cannot nest
        surface = clean[span.start : span.end]
        if surface == span.value and _SHORT_ENTITY.fullmatch(span.slot):
            mark = f"[{surface}]({span.slot})"
        else:
            mark = f"[{surface}]" + _inline_json({"entity": span.slot, "value": span.value})
        parts += [clean[pos : span.start], mark]
        pos = span.end
        placed.append(span)
    parts.append(clean[pos:])
    line = "".join(parts)
    lead = len(line) - len(line.lstrip(" "))
    trail = len(line) - len(line.rstrip(" "))
    line = line.strip(" ")
    if not line:
        return None
    text = clean[lead : len(clean) - trail]
    entities = tuple(Span(s.slot, s.value, s.start - lead, s.end - lead) for s in placed)
    return line, RasaExample(message.intent or "", text, entities)


# A SafeDumper of its own (PyYAML's representers are per class): `_Block` strings as literal blocks (`|`),
# `_Quoted` ones double-quoted.
_LiteralDumper: Any = type("_LiteralDumper", (yaml.SafeDumper,), {})


class _Block(str):
    pass


class _Quoted(str):
    pass


_LiteralDumper.add_representer(
    _Block, lambda dumper, data: dumper.represent_scalar("tag:yaml.org,2002:str", str(data), style="|")
)
_LiteralDumper.add_representer(
    _Quoted, lambda dumper, data: dumper.represent_scalar("tag:yaml.org,2002:str", str(data), style='"')
)


# -- writers ---------------------------------------------------------------------------------------------


class _Tally:
    """What a writer put in the file: counts, and a digest of the records that the reader must match."""

    def __init__(self) -> None:
        self.records = 0
        self.spans = 0
        self.dialogues = 0
        self.skipped = 0
        self._digest = hashlib.sha256()

    def add(self, record: Any) -> None:
        self.records += 1
        self.spans += _span_count(record)
        self._digest.update(_canonical(record))

    @property
    def digest(self) -> str:
        return self._digest.hexdigest()


def _span_count(record: Any) -> int:
    if isinstance(record, RasaExample):
        return len(record.entities)
    if isinstance(record, CsvRow):
        return len(record.slots)
    return sum(len(m.get("slots", ())) for m in record["messages"])


def _canonical(record: Any) -> bytes:
    return json.dumps(record, sort_keys=True, ensure_ascii=False).encode() + b"\n"


def _jsonl(record: dict[str, Any]) -> str:
    # U+2028/U+2029 are valid in JSON strings but end lines for some readers (JavaScript, `splitlines`).
    text = json.dumps(record, ensure_ascii=False)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029") + "\n"


def _write_jsonl(
    handle: Any,
    dialogues: Iterable[_Dialogue],
    tally: _Tally,
    record_of: Callable[[_Dialogue], dict[str, Any] | None],
) -> None:
    """One JSON line per dialogue that `record_of` makes a record of; the others are counted as skipped."""
    for dialogue in dialogues:
        record = record_of(dialogue)
        if record is None:
            tally.skipped += 1
            continue
        handle.write(_jsonl(record))
        tally.dialogues += 1
        tally.add(record)


def _write_openai(handle: Any, dialogues: Iterable[_Dialogue], pack: str, tally: _Tally) -> None:
    system = _system_message(pack)
    _write_jsonl(handle, dialogues, tally, lambda d: _openai_record(d, system))


def _write_hf(handle: Any, dialogues: Iterable[_Dialogue], pack: str, tally: _Tally) -> None:
    _write_jsonl(handle, dialogues, tally, _hf_record)


def _write_csv(handle: Any, dialogues: Iterable[_Dialogue], pack: str, tally: _Tally) -> None:
    writer = csv.writer(handle, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(CSV_COLUMNS)
    for dialogue in dialogues:
        rows = _csv_rows(dialogue)
        if not rows:
            tally.skipped += 1
            continue
        tally.dialogues += 1
        for row in rows:
            writer.writerow(
                [
                    row.run_id,
                    row.dialogue_id,
                    row.turn_idx,
                    row.text,
                    row.intent or "",
                    "|".join(row.acts),
                    json.dumps(_span_dicts(row.slots), ensure_ascii=False),
                    row.perturbation,
                    row.outcome,
                ]
            )
            tally.add(row)


def _write_rasa(handle: Any, dialogues: Iterable[_Dialogue], pack: str, tally: _Tally) -> None:
    by_intent: dict[str, dict[str, RasaExample]] = {}
    for dialogue in dialogues:
        found = False
        for m in dialogue.messages:
            if m.role != "user" or not m.intent:
                continue
            made = _rasa_example(m)
            if made is None:
                continue
            found = True
            line, example = made
            by_intent.setdefault(m.intent, {}).setdefault(line, example)
        tally.dialogues += found
        tally.skipped += not found
    nlu = []
    for intent in sorted(by_intent):
        examples = by_intent[intent]
        nlu.append({"intent": intent, "examples": _Block("".join(f"- {line}\n" for line in examples))})
        for example in examples.values():
            tally.add(example)
    handle.write(
        yaml.dump(
            {"version": _Quoted(RASA_VERSION), "nlu": nlu},
            Dumper=_LiteralDumper,
            allow_unicode=True,
            sort_keys=False,
            default_flow_style=False,
            width=1 << 30,
        )
    )


_Writer = Callable[[Any, Iterable[_Dialogue], str, _Tally], None]
_WRITERS: dict[ExportFormat, _Writer] = {
    "openai": _write_openai,
    "hf": _write_hf,
    "rasa": _write_rasa,
    "csv": _write_csv,
}


# -- readers ---------------------------------------------------------------------------------------------


def _bad(path: str | Path, where: str, reason: str) -> ExportError:
    return ExportError(f"{path}:{where}: {reason}")


def _json_lines(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            for number, line in enumerate(handle, 1):
                if not line.endswith("\n"):
                    raise _bad(path, str(number), "the last line is not terminated (a cut-off file?)")
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise _bad(path, str(number), f"not JSON: {exc.msg}") from None
                if not isinstance(record, dict):
                    raise _bad(path, str(number), "a line is not a JSON object")
                yield number, record
    except (OSError, UnicodeDecodeError) as exc:
        raise ExportError(f"{path}: cannot read: {exc}") from None


def _spans(value: Any, text: str, path: str | Path, where: str) -> tuple[Span, ...]:
    """Slot dicts checked against the text they point into."""
    if not isinstance(value, list):
        raise _bad(path, where, "slots is not a list")
    spans = []
    for item in value:
        if not isinstance(item, dict) or set(item) != {"slot", "value", "start", "end"}:
            raise _bad(path, where, "a slot is not {slot, value, start, end}")
        slot, val, start, end = item["slot"], item["value"], item["start"], item["end"]
        if not (isinstance(slot, str) and slot and isinstance(val, str)):
            raise _bad(path, where, "a slot's name or value is not a string")
        if not (type(start) is int and type(end) is int and 0 <= start < end <= len(text)):
            raise _bad(path, where, f"slot {slot!r}: span {start!r}-{end!r} is not inside its text")
        spans.append(Span(slot, val, start, end))
    return tuple(spans)


def _iter_openai(path: str | Path) -> Iterator[dict[str, Any]]:
    for number, record in _json_lines(path):
        where = str(number)
        messages = record.get("messages")
        if set(record) != {"messages"} or not isinstance(messages, list):
            raise _bad(path, where, "expected exactly one key, 'messages', holding a list")
        roles = []
        for m in messages:
            if not isinstance(m, dict) or set(m) != {"role", "content"}:
                raise _bad(path, where, "a message is not {role, content}")
            if m["role"] not in ("system", "user", "assistant"):
                raise _bad(path, where, f"unknown role {m['role']!r}")
            if not isinstance(m["content"], str) or not m["content"]:
                raise _bad(path, where, "a message's content is not a non-empty string")
            roles.append(m["role"])
        if len(roles) < 3 or roles[0] != "system" or "system" in roles[1:]:
            raise _bad(path, where, "expected one system message first, then the conversation")
        if roles[1] != "user" or roles[-1] != "assistant":
            raise _bad(path, where, "the conversation must open with the user and end with the assistant")
        yield record


def _iter_hf(path: str | Path) -> Iterator[dict[str, Any]]:
    keys = {"messages", "intent", "dialogue_id", "run_id", "perturbation", "outcome"}
    for number, record in _json_lines(path):
        where = str(number)
        if set(record) != keys:
            raise _bad(path, where, f"expected the keys {', '.join(sorted(keys))}")
        if not all(isinstance(record[k], str) for k in keys - {"messages"}):
            raise _bad(path, where, "intent, dialogue_id, run_id, perturbation and outcome must be strings")
        messages = record["messages"]
        if not isinstance(messages, list) or not messages:
            raise _bad(path, where, "messages is not a non-empty list")
        for m in messages:
            if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
                raise _bad(path, where, "a message has no role user or assistant")
            content = m.get("content")
            if not isinstance(content, str) or not content:
                raise _bad(path, where, "a message's content is not a non-empty string")
            if m["role"] == "assistant":
                if set(m) != {"role", "content"}:
                    raise _bad(path, where, "an assistant message carries labels")
                continue
            if set(m) != {"role", "content", "intent", "acts", "slots"}:
                raise _bad(path, where, "a user message is not {role, content, intent, acts, slots}")
            if m["intent"] is not None and not isinstance(m["intent"], str):
                raise _bad(path, where, "a user message's intent is not a string")
            if not isinstance(m["acts"], list) or not all(isinstance(a, str) for a in m["acts"]):
                raise _bad(path, where, "a user message's acts are not a list of strings")
            _spans(m["slots"], content, path, where)
        yield record


def _iter_csv(path: str | Path) -> Iterator[CsvRow]:
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None or tuple(header) != CSV_COLUMNS:
                raise _bad(path, "1", f"expected the header {','.join(CSV_COLUMNS)}")
            for fields in reader:
                where = str(reader.line_num)
                if len(fields) != len(CSV_COLUMNS):
                    raise _bad(path, where, f"{len(fields)} fields, not {len(CSV_COLUMNS)}")
                row = dict(zip(CSV_COLUMNS, fields, strict=True))
                try:
                    turn_idx = int(row["turn_idx"])
                    slots = json.loads(row["slots"])
                except ValueError:
                    raise _bad(path, where, "turn_idx is not a number or slots is not JSON") from None
                if not row["text"]:
                    raise _bad(path, where, "an empty text")
                yield CsvRow(
                    run_id=row["run_id"],
                    dialogue_id=row["dialogue_id"],
                    turn_idx=turn_idx,
                    text=row["text"],
                    intent=row["intent"] or None,
                    acts=tuple(row["acts"].split("|")) if row["acts"] else (),
                    slots=_spans(slots, row["text"], path, where),
                    perturbation=row["perturbation"],
                    outcome=row["outcome"],
                )
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ExportError(f"{path}: cannot read: {exc}") from None


def _parse_rasa_line(line: str, intent: str, path: str | Path, where: str) -> RasaExample:
    """An example as Rasa reads it: entities from the annotations, and the text without them."""
    entities: list[Span] = []
    plain: list[str] = []
    pos = 0
    for match in _RASA_ENTITY.finditer(line):
        plain.append(line[pos : match.start()])
        start = sum(map(len, plain))
        surface = match.group("text")
        if match.group("dict") is not None:
            try:
                attributes = json.loads("{" + match.group("dict") + "}")
            except json.JSONDecodeError:
                raise _bad(path, where, f"an annotation's entity dict is not JSON: {match.group()}") from None
            if not isinstance(attributes, dict) or not isinstance(attributes.get("entity"), str):
                raise _bad(path, where, f"an annotation names no entity: {match.group()}")
            entity, value = attributes["entity"], attributes.get("value", surface)
            if not isinstance(value, str):
                raise _bad(path, where, f"an annotation's value is not a string: {match.group()}")
        else:
            entity, value = match.group("entity"), match.group("value") or surface
        entities.append(Span(entity, value, start, start + len(surface)))
        plain.append(surface)
        pos = match.end()
    plain.append(line[pos:])
    text = "".join(plain)
    leftover = set("[]{}") & set(text)
    if leftover:
        raise _bad(path, where, f"{''.join(sorted(leftover))} outside an annotation in {line!r}")
    return RasaExample(intent, text, tuple(entities))


def _iter_rasa(path: str | Path) -> Iterator[RasaExample]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except (OSError, UnicodeDecodeError) as exc:
        raise ExportError(f"{path}: cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        raise ExportError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict) or data.get("version") != RASA_VERSION or set(data) != {"version", "nlu"}:
        raise _bad(path, "1", f'expected version: "{RASA_VERSION}" and nlu:')
    if not isinstance(data["nlu"], list):
        raise _bad(path, "nlu", "not a list")
    seen: set[str] = set()
    for k, item in enumerate(data["nlu"]):
        where = f"nlu[{k}]"
        if not isinstance(item, dict) or set(item) != {"intent", "examples"}:
            raise _bad(path, where, "expected intent: and examples:")
        intent, examples = item["intent"], item["examples"]
        if not isinstance(intent, str) or not intent or intent in seen:
            raise _bad(path, where, "the intent is not a name, or appears twice")
        seen.add(intent)
        if not isinstance(examples, str) or not examples.strip():
            raise _bad(path, where, "examples is not a block of '- text' lines")
        lines = examples.splitlines()  # as Rasa splits them
        if len(set(lines)) != len(lines):
            raise _bad(path, where, "an example appears twice")
        for line in lines:
            if not line.startswith("- "):
                raise _bad(path, where, f"an example line does not start with '- ': {line!r}")
            yield _parse_rasa_line(line[2:].strip(" \r\n"), intent, path, where)


def read_openai(path: str | Path) -> list[dict[str, Any]]:
    """The conversations of an `openai` export, each checked: one system message first, then user and
    assistant messages with non-empty string contents, the user first and the assistant last.

    Raises:
        ExportError: the file cannot be read or a line breaks the format (named as `path:line`).
    """
    return list(_iter_openai(path))


def read_hf(path: str | Path) -> list[dict[str, Any]]:
    """The conversations of an `hf` export, each checked: its keys, user and assistant messages with
    non-empty contents, user messages with intent, acts and slots whose spans lie inside their content.

    Raises:
        ExportError: the file cannot be read or a line breaks the format (named as `path:line`).
    """
    return list(_iter_hf(path))


def read_rasa(path: str | Path) -> list[RasaExample]:
    """The examples of a `rasa` export as Rasa reads them: the YAML parsed, each annotation turned back
    into an entity with its value and offsets, and the plain text checked for stray annotation syntax.

    Raises:
        ExportError: not valid YAML, not Rasa NLU data, a duplicate or an annotation that does not parse.
    """
    return list(_iter_rasa(path))


def read_csv(path: str | Path) -> list[CsvRow]:
    """The rows of a `csv` export, each checked: the header, the number of fields, and slot spans that
    lie inside their text.

    Raises:
        ExportError: the file cannot be read or a row breaks the format (named as `path:line`).
    """
    return list(_iter_csv(path))


_READERS: dict[ExportFormat, Callable[[str | Path], Iterator[Any]]] = {
    "openai": _iter_openai,
    "hf": _iter_hf,
    "rasa": _iter_rasa,
    "csv": _iter_csv,
}


def _read_back(path: Path, fmt: ExportFormat, tally: _Tally) -> None:
    """Read the file back and check it holds exactly the records written."""
    back = _Tally()
    for record in _READERS[fmt](path):
        back.add(record)
    if (back.records, back.spans, back.digest) != (tally.records, tally.spans, tally.digest):
        raise ExportError(
            f"{path}: read back, the file holds {back.records} records and {back.spans} spans, not the "
            f"{tally.records} and {tally.spans} written, or differs from them; nothing was exported"
        )


# -- export ----------------------------------------------------------------------------------------------


def export(
    db: Database,
    out: str | Path,
    *,
    format: str,
    run_id: str | None = None,
    intents: Sequence[str] | None = None,
    outcomes: Sequence[str] | None = None,
    perturbations: Sequence[str] | None = None,
) -> ExportResult:
    """Write the transcripts of a run to `out` as training data in `format` (see the module docstring).

    `out` is replaced only once the new file has been read back and found to hold exactly what was meant;
    an existing file at `out` is overwritten.

    Raises:
        ExportError: an unknown format, run or outcome, no dialogue matching the filters, nothing to write,
            an output path that cannot be written (or is the database itself).
        StoreError: the database is in use by a writer.
    """
    from botdrill.simulator import Outcome

    fmt = _format(format)
    known = {str(o) for o in Outcome}
    for name in outcomes or ():
        if name not in known:
            raise ExportError(f"--outcome {name!r} is not an outcome; one of: {', '.join(sorted(known))}")
    target = Path(out)
    if isinstance(db, str | Path) and str(db) != ":memory:" and not Path(db).exists():
        raise ExportError(f"{db}: no such database; `botdrill run` creates it")
    _check_target(target, db)
    with _open(db) as con:
        run = run_id or latest_run(con)
        if run is None:
            raise ExportError(f"{db}: no runs yet; `botdrill run` makes one")
        found = con.execute("SELECT pack FROM runs WHERE run_id = ?", [run]).fetchone()
        if found is None:
            raise ExportError(f"no run {run!r} in {db}; `botdrill runs` lists them")
        filters = _Filters(run, tuple(intents or ()), tuple(outcomes or ()), tuple(perturbations or ()))
        where, params = filters.where()
        matched = con.execute(f"SELECT count(*) FROM dialogues d WHERE {where}", params).fetchone()
        if not matched or not matched[0]:
            raise ExportError(f"no dialogues in run {run!r} match {filters.describe()}")
        tally = _write(target, fmt, _dialogues(con, filters, _retracted(con, run)), str(found[0]))
    return ExportResult(
        path=target,
        format=fmt,
        run_id=run,
        dialogues=tally.dialogues,
        records=tally.records,
        spans=tally.spans,
        skipped=tally.skipped,
    )


def _check_target(target: Path, db: Database) -> None:
    """Refuse an output path that cannot be a file written beside itself, before any work is done."""
    try:
        if isinstance(db, str | Path) and target.exists() and os.path.samefile(target, db):
            raise ExportError(f"{target}: is the database itself; choose another --out")
        if target.is_dir():
            raise ExportError(f"{target}: is a directory; give a file path")
        if not target.parent.is_dir():
            raise ExportError(f"{target}: cannot write: no such directory {str(target.parent)!r}")
    except OSError as exc:  # a name too long, a loop of links, ...
        raise ExportError(f"{target}: cannot write: {exc.strerror or exc}") from None


def _format(name: str) -> ExportFormat:
    for known in FORMATS:
        if name == known:
            return known
    raise ExportError(f"unknown export format {name!r}; one of: {', '.join(FORMATS)}")


def replace_file(
    target: Path,
    write: Callable[[TextIO], object],
    *,
    error: Callable[[str], BotdrillError],
    check: Callable[[Path], None] | None = None,
) -> None:
    """Write `target` under a temporary name beside it, `check` the written file, then rename it into place.

    A reader never sees half a file, and a failure (in `write`, in `check`, or of the disk) leaves the old
    file as it was and nothing else behind. The file is created with mode 0o666 so that the umask
    decides, as for any file the user creates, and text is UTF-8 with line ends as written.
    """
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            with open(fd, "w", encoding="utf-8", newline="") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise error(f"{target}: cannot write: {exc.strerror or exc}") from None
        if check is not None:
            check(tmp)
        try:
            os.replace(tmp, target)
        except OSError as exc:
            raise error(f"{target}: cannot write: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)


def _write(target: Path, fmt: ExportFormat, dialogues: Iterable[_Dialogue], pack: str) -> _Tally:
    """Write to a temporary file beside `target`, read it back, then move it into place."""
    tally = _Tally()

    def check(tmp: Path) -> None:
        if not tally.records:
            what = "an assistant reply" if fmt == "openai" else "a non-empty user message"
            raise ExportError(
                f"{tally.skipped} dialogue{'s' if tally.skipped != 1 else ''} matched, but none has {what} "
                f"to export as {fmt}; {target} was not written"
            )
        _read_back(tmp, fmt, tally)

    replace_file(
        target, lambda handle: _WRITERS[fmt](handle, dialogues, pack, tally), error=ExportError, check=check
    )
    return tally
