"""Exports as training data: every format read back and recounted against the raw tables, filters, user
text that tries to pass for annotation syntax, and failures that leave nothing behind."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from botdrill.analysis._export import (
    CSV_COLUMNS,
    ExportError,
    Span,
    export,
    read_csv,
    read_hf,
    read_openai,
    read_rasa,
)
from botdrill.simulator import RunConfig, run_drill

# Rasa's own pattern (rasa/shared/nlu/training_data/entities_parser.py), kept here as an independent oracle.
RASA_ENTITY = re.compile(
    r"\[(?P<entity_text>[^\]]+?)\](\((?P<entity>[^:)]+?)(?:\:(?P<value>[^)]+))?\)|\{(?P<entity_dict>[^}]+?)\})"
)

ADVERSARIAL = (
    '  Hi [x](y) and [£5]{"entity": "amount", "value": "1"} {"entity": "merchant"} "quoted" \'single\'\n'
    "new line <script>alert('x')</script> ](z) [[ ]] \\ \u2028sep card 4321, post BS8 1TH\t"
)


def _span(slot: str, value: str, surface: str) -> dict[str, Any]:
    start = ADVERSARIAL.index(surface)
    return {"slot": slot, "value": value, "start": start, "end": start + len(surface)}


# Gold slots of the hostile message, in text order: one said as its value, two said otherwise (one with the
# annotation syntax itself as its surface, one with a canonical value that holds `}` and `]`).
GOLD = [
    _span("merchant", "Quoted } ] Ltd", '"quoted"'),
    _span("biller", "[[ ]]", "[[ ]]"),
    _span("card_last4", "4321", "4321"),
]
MISTAKE = _span("postcode", "BS8 1TH", "BS8 1TH")
"""Listed among the gold slots, but marked as a value said by mistake: never exported."""


def rows(db: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def user_messages(db: Path, run_id: str = "x") -> list[tuple[Any, ...]]:
    """(dialogue_id, turn_idx, text, gold_intent, gold_acts, gold_slots, perturbation, outcome) of every
    non-empty user message, in export order."""
    return rows(
        db,
        "select t.dialogue_id, t.turn_idx, t.text, t.gold_intent, t.gold_acts, t.gold_slots, "
        "d.perturbation, d.outcome "
        "from turns t join dialogues d using (dialogue_id) "
        "where d.run_id = ? and t.speaker = 'user' and t.text <> '' "
        "order by d.idx, t.dialogue_id, t.turn_idx",
        [run_id],
    )


def conversations(db: Path, run_id: str = "x") -> dict[str, list[tuple[str, str]]]:
    """dialogue_id -> its non-empty messages as (role, text), in run order."""
    out: dict[str, list[tuple[str, str]]] = {
        d: []
        for (d,) in rows(db, "select dialogue_id from dialogues where run_id = ? order by idx", [run_id])
    }
    for dialogue_id, speaker, text in rows(
        db,
        "select t.dialogue_id, t.speaker, t.text from turns t join dialogues d using (dialogue_id) "
        "where d.run_id = ? order by d.idx, t.dialogue_id, t.turn_idx",
        [run_id],
    ):
        if text:
            out[dialogue_id].append((speaker, text))
    return out


def rasa_examples(path: Path) -> list[tuple[str, str, tuple[tuple[str, str, int, int], ...]]]:
    """(intent, plain text, entities) of every example, parsed with PyYAML and Rasa's pattern."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert data["version"] == "3.1"
    out = []
    for block in data["nlu"]:
        for line in block["examples"].splitlines():
            assert line.startswith("- ")
            example = line[2:].strip(" \r\n")
            entities, plain, pos, offset = [], [], 0, 0
            for m in RASA_ENTITY.finditer(example):
                surface = m.group("entity_text")
                if m.group("entity_dict"):
                    attrs = json.loads("{" + m.group("entity_dict") + "}")
                    entity, value = attrs["entity"], attrs.get("value", surface)
                else:
                    entity, value = m.group("entity"), m.group("value") or surface
                start = m.start() - offset
                entities.append((entity, value, start, start + len(surface)))
                offset += len(m.group(0)) - len(surface)
                plain += [example[pos : m.start()], surface]
                pos = m.end()
            plain.append(example[pos:])
            out.append((block["intent"], "".join(plain), tuple(entities)))
    return out


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("export") / "runs.duckdb"
    run_drill(RunConfig(db=str(path), n=30, seed=2, run_id="x", perturb="typo,fragments"))
    return path


@pytest.fixture(scope="module")
def adversarial_db(db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the run with one more exchange in its first clean dialogue: a user message full of
    annotation syntax, markup, quotes and line breaks (a card number as its one gold slot, a postcode listed
    as gold but marked as said by mistake), and a reply."""
    path = tmp_path_factory.mktemp("adversarial") / "runs.duckdb"
    shutil.copy(db, path)
    con = duckdb.connect(str(path))
    try:
        dialogue_id, last = con.execute(
            "select dialogue_id, max(turn_idx) from turns where dialogue_id = "
            "(select dialogue_id from dialogues where run_id = 'x' and perturbation = 'none' order by idx "
            "limit 1) group by 1"
        ).fetchone()
        intent = con.execute(
            "select gold_intent from dialogues where dialogue_id = ?", [dialogue_id]
        ).fetchone()[0]
        slots = [MISTAKE, *reversed(GOLD)]
        con.execute(
            "insert into turns (run_id, dialogue_id, turn_idx, speaker, text, sim_time, gold_intent, "
            "gold_acts, gold_slots, part, parts) "
            "values ('x', ?, ?, 'user', ?, 999.0, ?, ['inform'], ?, 0, 1)",
            [dialogue_id, last + 1, ADVERSARIAL, intent, slots],
        )
        con.execute(
            "insert into turns (run_id, dialogue_id, turn_idx, speaker, text, sim_time) "
            "values ('x', ?, ?, 'assistant', 'Thanks </script>', 1000.0)",
            [dialogue_id, last + 2],
        )
        con.execute(
            "insert into edits values ('x', ?, ?, 0, 'correction', 'retracted_value', ?, ?, 'LS6 3QW', "
            "'BS8 1TH', 0)",
            [dialogue_id, last + 1, MISTAKE["start"], MISTAKE["end"]],
        )
    finally:
        con.close()
    return path


# -- round trips -----------------------------------------------------------------------------------------


def test_openai_round_trip(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "train.jsonl"
    result = export(db, out, format="openai")
    records = read_openai(out)
    expected = []
    for messages in conversations(db).values():
        while messages and messages[-1][0] == "user":
            messages.pop()
        if messages:
            expected.append(messages)
    assert len(records) == len(expected) == result.records == result.dialogues
    assert result.skipped == len(conversations(db)) - len(expected)
    assert [[(m["role"], m["content"]) for m in r["messages"][1:]] for r in records] == expected
    for record in records:
        system, *_ = record["messages"]
        assert system["role"] == "system" and "banking" in system["content"]
        assert record["messages"][-1]["role"] == "assistant"
    # Fragments stay as the separate messages they were sent as.
    assert any(
        a["role"] == b["role"] == "user"
        for r in records
        for a, b in zip(r["messages"], r["messages"][1:], strict=False)
    )
    # Each line is one JSON document, UTF-8, not ASCII-escaped.
    lines = out.read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) - 1 == len(records)
    assert "£".encode() in out.read_bytes() or not any("£" in t for _, _, t, *_ in user_messages(db))


def test_hf_round_trip(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "train.jsonl"
    result = export(db, out, format="hf")
    records = read_hf(out)
    stored = conversations(db)
    assert len(records) == len(stored) == result.records
    assert [r["dialogue_id"] for r in records] == list(stored)
    dialogues = {
        d: (intent, p, o)
        for d, intent, p, o in rows(
            db, "select dialogue_id, gold_intent, perturbation, outcome from dialogues where run_id = 'x'"
        )
    }
    users = iter(user_messages(db))
    spans = 0
    for record in records:
        assert (record["intent"], record["perturbation"], record["outcome"]) == dialogues[
            record["dialogue_id"]
        ]
        assert [(m["role"], m["content"]) for m in record["messages"]] == stored[record["dialogue_id"]]
        for message in record["messages"]:
            if message["role"] == "assistant":
                assert set(message) == {"role", "content"}
                continue
            dialogue_id, _, text, intent, acts, slots, *_ = next(users)
            assert (dialogue_id, message["content"]) == (record["dialogue_id"], text)
            assert message["intent"] == intent
            assert message["acts"] == acts
            assert message["slots"] == sorted(slots, key=lambda s: (s["start"], s["end"]))
            for slot in message["slots"]:
                assert text[slot["start"] : slot["end"]]
            spans += len(message["slots"])
    (stored_spans,) = rows(
        db, "select count(*) from turns t, unnest(t.gold_slots) where run_id = 'x' and speaker = 'user'"
    )[0]
    assert spans == result.spans == stored_spans > 0


def test_csv_round_trip(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "train.csv"
    result = export(db, out, format="csv")
    with open(out, encoding="utf-8", newline="") as handle:
        got = list(csv.DictReader(handle))
    expected = user_messages(db)
    assert len(got) == len(expected) == result.records == len(read_csv(out))
    assert list(got[0]) == list(CSV_COLUMNS)
    spans = 0
    for row, (dialogue_id, turn_idx, text, intent, acts, slots, perturbation, outcome) in zip(
        got, expected, strict=True
    ):
        assert (row["run_id"], row["dialogue_id"], int(row["turn_idx"])) == ("x", dialogue_id, turn_idx)
        assert (row["text"], row["intent"], row["perturbation"], row["outcome"]) == (
            text,
            intent,
            perturbation,
            outcome,
        )
        assert row["acts"].split("|") == acts
        written = json.loads(row["slots"])
        assert sorted(written, key=lambda s: s["slot"]) == sorted(slots, key=lambda s: s["slot"])
        for slot in written:  # the surface the stored span names is the one the row's text has there
            stored = next(s for s in slots if s["slot"] == slot["slot"])
            assert row["text"][slot["start"] : slot["end"]] == text[stored["start"] : stored["end"]] != ""
        spans += len(written)
    assert spans == result.spans > 0


def test_rasa_round_trip(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "nlu.yml"
    result = export(db, out, format="rasa")
    assert out.read_text(encoding="utf-8").startswith('version: "3.1"\n')
    examples = rasa_examples(out)
    expected = {
        (intent, text, tuple(sorted((s["slot"], s["value"], s["start"], s["end"]) for s in slots)))
        for _, _, text, intent, _, slots, *_ in user_messages(db)
    }
    got = [(i, t, tuple(sorted(e, key=lambda x: x[0]))) for i, t, e in examples]
    assert len(got) == len(set(got)) == result.records  # deduplicated
    assert set(got) == expected
    # Short syntax where the text says the canonical value, the dict form where it does not: both occur.
    assert any(t[s:e] == v for _, t, ents in examples for _, v, s, e in ents)
    assert any(t[s:e] != v for _, t, ents in examples for _, v, s, e in ents)
    assert result.spans == sum(len(e) for *_, e in examples) > 0
    # Grouped by intent: each intent once.
    intents = [block["intent"] for block in yaml.safe_load(out.read_text(encoding="utf-8"))["nlu"]]
    assert len(intents) == len(set(intents)) and intents == sorted(intents)
    # The package's own reader agrees with Rasa's pattern.
    assert [(e.intent, e.text, tuple(tuple(s) for s in e.entities)) for e in read_rasa(out)] == examples


# -- filters ---------------------------------------------------------------------------------------------


def test_filters_or_within_and_across(db: Path, tmp_path: Path) -> None:
    counts = Counter(i for (i,) in rows(db, "select gold_intent from dialogues where run_id = 'x'"))
    (a, _), (b, _) = counts.most_common(2)
    out = tmp_path / "f.jsonl"
    result = export(db, out, format="hf", intents=[a, b])
    assert {r["intent"] for r in read_hf(out)} == {a, b}
    assert result.records == counts[a] + counts[b]

    result = export(
        db, out, format="hf", intents=[a, b], perturbations=["none", "typo"], outcomes=["success"]
    )
    (n,) = rows(
        db,
        "select count(*) from dialogues where run_id = 'x' and gold_intent in (?, ?) "
        "and perturbation in ('none', 'typo') and outcome = 'success'",
        [a, b],
    )[0]
    got = read_hf(out)
    assert result.records == len(got) == n > 0
    assert all(r["outcome"] == "success" and r["perturbation"] in ("none", "typo") for r in got)

    result = export(db, out, format="csv", perturbations=["none"])
    assert {r.perturbation for r in read_csv(out)} == {"none"}
    (n,) = rows(
        db,
        "select count(*) from turns t join dialogues d using (dialogue_id) "
        "where d.run_id = 'x' and d.perturbation = 'none' and t.speaker = 'user' and t.text <> ''",
    )[0]
    assert result.records == n


def test_default_run_is_the_latest(db: Path, tmp_path: Path) -> None:
    two = tmp_path / "two.duckdb"
    shutil.copy(db, two)
    run_drill(RunConfig(db=str(two), n=4, seed=9, run_id="later", perturb="none"))
    out = tmp_path / "o.jsonl"
    result = export(two, out, format="hf")
    assert result.run_id == "later"
    assert {r["run_id"] for r in read_hf(out)} == {"later"}
    assert export(two, out, format="hf", run_id="x").records == len(conversations(db))


# -- hostile text ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["openai", "hf", "csv"])
def test_hostile_text_is_kept_verbatim(adversarial_db: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"out.{fmt}"
    export(adversarial_db, out, format=fmt, perturbations=["none"])
    if fmt == "csv":
        with open(out, encoding="utf-8", newline="") as handle:
            (row,) = [r for r in csv.DictReader(handle) if r["text"] == ADVERSARIAL]
        assert json.loads(row["slots"]) == GOLD
        return
    records = read_openai(out) if fmt == "openai" else read_hf(out)
    (message,) = [m for r in records for m in r["messages"] if m["content"] == ADVERSARIAL]
    assert any(r["messages"][-1]["content"] == "Thanks </script>" for r in records)
    if fmt == "hf":
        assert message["slots"] == GOLD
    # One line per conversation: the line separator in the text is escaped.
    text = out.read_text(encoding="utf-8")
    assert "\u2028" not in text and len(text.split("\n")) == len(records) + 1


def test_hostile_text_cannot_inject_rasa_annotations(adversarial_db: Path, db: Path, tmp_path: Path) -> None:
    out = tmp_path / "nlu.yml"
    clean = export(db, tmp_path / "clean.yml", format="rasa", perturbations=["none"])
    result = export(adversarial_db, out, format="rasa", perturbations=["none"])
    assert result.records == clean.records + 1
    assert result.spans == clean.spans + len(GOLD)  # not the postcode said by mistake
    examples = rasa_examples(out)
    slot_names = {s for (s,) in rows(db, "select distinct s.slot from turns, unnest(gold_slots) u(s)")}
    assert {e[0] for *_, ents in examples for e in ents} <= slot_names
    (hostile,) = [e for e in examples if "<script>" in e[1]]
    _, text, entities = hostile
    full_width = str.maketrans({"[": "\uff3b", "]": "\uff3d", "{": "\uff5b", "}": "\uff5d"})
    assert text == re.sub("[\n\t\u2028]", " ", ADVERSARIAL).translate(full_width).strip(" ")
    assert not set("[]{}") & set(text)
    lead = len(ADVERSARIAL) - len(ADVERSARIAL.lstrip(" "))
    expected = tuple((g["slot"], g["value"], g["start"] - lead, g["end"] - lead) for g in GOLD)
    assert entities == expected
    assert [text[s:e] for _, _, s, e in entities] == ['"quoted"', "\uff3b\uff3b \uff3d\uff3d", "4321"]
    assert not any(e[1].startswith("new line") for e in examples)  # the newline did not split it
    assert read_rasa(out)[[e[1] for e in examples].index(text)].entities == tuple(Span(*e) for e in expected)
    # The canonical value's `}` is written escaped inside the annotation's JSON.
    assert '"value": "Quoted \\u007d ] Ltd"' in out.read_text(encoding="utf-8")


def test_the_read_back_catches_unescaped_annotations(
    adversarial_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without its escaping the Rasa writer would let the text inject entities: the export's own check
    refuses to put such a file in place."""
    from botdrill.analysis import _export

    monkeypatch.setattr(_export, "_rasa_text", lambda text: text.replace("\n", " ").replace("\u2028", " "))
    out = tmp_path / "nlu.yml"
    with pytest.raises(ExportError, match=r"read back|outside an annotation"):
        export(adversarial_db, out, format="rasa", perturbations=["none"])
    assert list(tmp_path.iterdir()) == []


def test_empty_texts_and_dialogues_without_replies(db: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.duckdb"
    shutil.copy(db, copy)
    first, second = (
        d for (d,) in rows(db, "select dialogue_id from dialogues where run_id = 'x' order by idx limit 2")
    )
    con = duckdb.connect(str(copy))
    try:  # the first dialogue's replies all failed; the second's user left a message empty (abandoned)
        con.execute("update turns set text = '' where dialogue_id = ? and speaker = 'assistant'", [first])
        con.execute(
            "update turns set text = '' where dialogue_id = ? and turn_idx = "
            "(select max(turn_idx) from turns where dialogue_id = ? and speaker = 'user')",
            [second, second],
        )
    finally:
        con.close()
    out = tmp_path / "o.jsonl"
    base = export(db, tmp_path / "base.jsonl", format="openai")
    result = export(copy, out, format="openai")
    assert (result.records, result.skipped) == (base.records - 1, base.skipped + 1)
    assert all(m["content"] for r in read_openai(out) for m in r["messages"])
    base_csv = export(db, tmp_path / "base.csv", format="csv")
    result = export(copy, tmp_path / "o.csv", format="csv")
    assert result.records == base_csv.records - 1
    assert all(r.text for r in read_csv(tmp_path / "o.csv"))


# -- failures --------------------------------------------------------------------------------------------


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_unknown_run_and_no_match_write_nothing(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    with pytest.raises(ExportError, match="no run 'nope'"):
        export(db, out, format="hf", run_id="nope")
    with pytest.raises(
        ExportError, match="no dialogues in run 'x' match --intent no_such --perturbation typo"
    ):
        export(db, out, format="hf", intents=["no_such"], perturbations=["typo"])
    with pytest.raises(ExportError, match=r"--outcome 'winning' is not an outcome; one of: .*success"):
        export(db, out, format="hf", outcomes=["winning"])
    with pytest.raises(ExportError, match="unknown export format 'xml'"):
        export(db, out, format="xml")
    with pytest.raises(ExportError, match="no such database"):
        export(tmp_path / "missing.duckdb", out, format="hf")
    assert _leftovers(tmp_path) == []


def test_a_failed_export_keeps_the_old_file(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    out.write_text("previous\n")
    with pytest.raises(ExportError):
        export(db, out, format="openai", outcomes=["success"], intents=["no_such"])
    assert out.read_text() == "previous\n"
    assert _leftovers(tmp_path) == ["o.jsonl"]


def test_unwritable_outputs(db: Path, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="no such directory"):
        export(db, tmp_path / "missing" / "o.jsonl", format="hf")
    with pytest.raises(ExportError, match="is a directory"):
        export(db, tmp_path, format="hf")
    with pytest.raises(ExportError, match="is the database itself"):
        export(db, db, format="csv")
    assert rows(db, "select count(*) from dialogues")[0][0] > 0
    with pytest.raises(ExportError, match="cannot write: File name too long"):
        export(db, tmp_path / ("n" * 300), format="hf")
    assert _leftovers(tmp_path) == []


def test_a_directory_without_write_permission(db: Path, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running with privileges that ignore directory permissions")
        with pytest.raises(ExportError, match=r"locked/o.jsonl: cannot write: Permission denied"):
            export(db, locked / "o.jsonl", format="hf")
        assert _leftovers(locked) == []
    finally:
        locked.chmod(0o700)


# -- the readers reject broken files ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reader", "text", "reason"),
    [
        (read_openai, '{"messages": [{"role": "user", "content": "hi"}]}\n', "one system message first"),
        (
            read_openai,
            '{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}, '
            '{"role": "assistant", "content": "yo"}, {"role": "user", "content": "bye"}]}\n',
            "end with the assistant",
        ),
        (read_openai, '{"messages": []}', "not terminated"),
        (read_openai, "{not json}\n", "not JSON"),
        (
            read_hf,
            '{"messages": [{"role": "user", "content": "hi", "intent": "a", "acts": [], '
            '"slots": [{"slot": "s", "value": "v", "start": 1, "end": 9}]}], "intent": "a", '
            '"dialogue_id": "d", "run_id": "r", "perturbation": "none", "outcome": "success"}\n',
            "not inside its text",
        ),
        (
            read_rasa,
            'version: "3.1"\nnlu:\n- intent: a\n  examples: |\n    - hello [there] you\n',
            "outside an annotation",
        ),
        (read_rasa, 'version: "3.1"\nnlu:\n- intent: a\n  examples: |\n    - a\n    - a\n', "appears twice"),
        (read_rasa, "version: 3.1\nnlu: []\n", "expected version"),
        (read_csv, "run_id,text\nx,y\n", "expected the header"),
        (
            read_csv,
            ",".join(CSV_COLUMNS) + '\nx,d,0,hi,a,inform,"[{""slot"": ""s"", ""value"": ""v"", '
            '""start"": 0, ""end"": 5}]",none,success\n',
            "not inside its text",
        ),
    ],
)
def test_readers_reject_broken_files(tmp_path: Path, reader: Any, text: str, reason: str) -> None:
    path = tmp_path / "f"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ExportError, match=reason):
        reader(path)
