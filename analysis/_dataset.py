"""Training sets for rare intents: real examples mixed with the kept synthetic ones, stratified by intent,
validated on real data only.

Synthetic data helps a rare intent only if the figure that says so is honest, so the validation split is
drawn from the real examples alone and nothing derived from it may reach the training file:

- **Validation**: per intent, `val_fraction` of the real examples (rounded half up), at least one when
  the intent has two or more and none when it has one, and never all of them (one always stays for
  training). The draw is seeded per intent, after sorting, so the same inputs give the same split and
  narrowing `intents` does not move the other intents' examples.
- **Training**: the other real examples and, per intent, up to `ratio` x its real training examples
  (rounded half up) of synthetic ones from the active batches (`active_examples`), capped by
  `max_synthetic_per_intent`; `ratio=0` makes a real-only set. When an intent has more than that, a
  seeded sample is taken from them in a stable order (batch id, then the example's place in its batch).
  An intent with synthetic examples and no real data at all takes every one of them (up to the cap):
  there is nothing to set a ratio against, and the result warns. Near-miss negatives count toward the
  intent they are labelled with. The training file is in a seeded shuffled order, so a trainer that
  does not shuffle still sees the intents mixed.
- **Repeats**: a real example that repeats an earlier one of the same intent (normalised as below) is
  left out, since its copies could land on both sides of the split; a synthetic example that repeats an
  earlier one of the same intent (batches made from the same inputs share examples) is left out too.
- **Leak guard**: a synthetic example is dropped when any of its user texts equals a validation text
  once normalised (case folded, punctuation removed, whitespace collapsed), or when it was made from a
  seed whose text is in validation (`seed:<file:line>` and `paraphrase:<file:line>#n` origins, matched
  through the `seeds` given). Every example dropped this way is counted, whether or not the sample would
  have drawn it.

The files are `train.<ext>` and `validation.<ext>` in one of the export formats (`openai`, `hf`: `.jsonl`;
`rasa`: `.yml`; `csv`: `.csv`), written and read back by the same writers as `botdrill export`, and a
`manifest.json` written last: the settings, the batches used, the counts per intent, what the leak guard
dropped and the SHA-256 of each data file. The output holds no timestamp: the same inputs and seed give
byte-identical files.

A real example becomes a one-message dialogue (`run_id` `real`, `dialogue_id` `real-<n>` with `n` its
place in the real data counted from 0, outcome `real`, perturbation `none`); a synthetic utterance or
negative also becomes one (`run_id` its batch, `dialogue_id` its example id, outcome `synthetic`,
perturbation its method); a synthetic dialogue keeps all its turns, the assistant's included. Gold slot
spans are carried over. `openai` trains on the assistant's replies, so it keeps only the dialogues that
have one: single utterances, real or synthetic, appear only in `hf`, `rasa` and `csv` (the result's
warnings say how many were left out, and an `openai` validation file of real utterances is empty).

Example:
    >>> result = build_dataset("botdrill.duckdb", "real.csv", "data", format="hf", ratio=2)  # doctest: +SKIP
    >>> result.counts["report_fraud"]  # doctest: +SKIP
    IntentCounts(real_train=8, synthetic=16, negatives=2, validation=2)
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import yaml

from botdrill.agents._augment import AugmentError, Seed, load_seeds
from botdrill.scenarios import BotdrillError

from ._batches import BatchError, active_batches
from ._export import (
    _READERS,
    CSV_COLUMNS,
    FORMATS,
    RASA_VERSION,
    ExportError,
    ExportFormat,
    _csv_rows,
    _Dialogue,
    _hf_record,
    _LiteralDumper,
    _Message,
    _openai_record,
    _Quoted,
    _rasa_example,
    _system_message,
    _write,
    gold_spans,
    replace_file,
)
from ._metrics import Database, _open

EXTENSIONS: Mapping[ExportFormat, str] = {"openai": "jsonl", "hf": "jsonl", "rasa": "yml", "csv": "csv"}
"""The file extension of each format's train and validation files."""

MAX_VAL_FRACTION = 0.9
"""The largest validation share accepted: beyond it there is hardly anything left to train on."""


class DatasetError(BotdrillError):
    """A training set cannot be built from these inputs; the message says which input and why."""

    code = "dataset"


@dataclass(frozen=True)
class IntentCounts:
    """What one intent contributes to each split."""

    real_train: int
    """Real examples in the training file."""
    synthetic: int
    """Synthetic examples in the training file (utterances, dialogues and negatives labelled with it)."""
    negatives: int
    """Of `synthetic`, the near-miss negatives."""
    validation: int
    """Real examples in the validation file."""


@dataclass(frozen=True)
class DatasetResult:
    """What `build_dataset` wrote, and what it chose and left out on the way."""

    out_dir: Path
    train_path: Path
    validation_path: Path
    manifest_path: Path
    format: ExportFormat
    batches: tuple[str, ...]
    """The active batches the synthetic examples were drawn from."""
    counts: Mapping[str, IntentCounts]
    """Per intent, sorted by name; only intents with at least one example in either file."""
    real_train: int
    synthetic: int
    validation: int
    train_records: int
    """Records in the training file as its format counts them: fewer than the examples for `openai`
    (single utterances have no reply) and `rasa` (duplicate lines are merged)."""
    validation_records: int
    dropped_for_leak: int
    """Synthetic examples left out because they repeat a validation text or were made from one."""
    duplicates_dropped: int
    """Synthetic examples left out as repeats (same intent, same normalised user text) of an earlier one,
    and real examples left out as repeats of an earlier real example of the same intent."""
    warnings: tuple[str, ...]

    def __str__(self) -> str:
        leak = f", {self.dropped_for_leak} dropped by the leak guard" if self.dropped_for_leak else ""
        return (
            f"{self.format}: {self.real_train} real + {self.synthetic} synthetic for training, "
            f"{self.validation} real for validation, {len(self.counts)} intents{leak}"
        )


# -- inputs ----------------------------------------------------------------------------------------------


def _normalised(text: str) -> str:
    """The form two texts are compared in: case folded, punctuation made space, whitespace collapsed."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join("".join(" " if unicodedata.category(c).startswith("P") else c for c in folded).split())


def _round(x: float) -> int:
    """Half up, as people count (Python's `round` sends 2.5 to 2)."""
    return math.floor(x + 0.5)


def _seeds(value: Sequence[Seed] | str | Path, what: str) -> list[Seed]:
    if isinstance(value, str | Path):
        path = Path(value)
        if not path.is_file():
            raise DatasetError(f"{what} {path}: no such file (a text,intent CSV or JSONL file)")
        try:
            return load_seeds(path)
        except AugmentError as exc:
            raise DatasetError(f"{what} {path}: {exc}") from None
    return list(value)


@dataclass(frozen=True)
class _Real:
    n: int
    """Place in the real data as given, counted from 0: the `n` of `real-<n>`."""
    seed: Seed

    def dialogue(self) -> _Dialogue:
        message = _Message(0, "user", self.seed.text, self.seed.intent, (), ())
        return _Dialogue("real", f"real-{self.n}", self.seed.intent, "none", "real", (message,))


@dataclass(frozen=True)
class _Synthetic:
    batch_id: str
    idx: int
    example_id: str
    kind: str
    intent: str
    method: str
    origin: str
    messages: tuple[_Message, ...]

    @property
    def user_texts(self) -> list[str]:
        return [m.text for m in self.messages if m.role == "user"]

    def dialogue(self) -> _Dialogue:
        return _Dialogue(self.batch_id, self.example_id, self.intent, self.method, "synthetic", self.messages)


def _synthetic(row: tuple[Any, ...]) -> _Synthetic:
    batch_id, idx, example_id, kind, intent, text, slots, acts, turns, method, origin = row
    messages: list[_Message] = []
    if kind == "dialogue" and turns:
        for i, turn in enumerate(json.loads(turns)):
            if not turn.get("text"):
                continue
            if turn.get("speaker") == "user":
                messages.append(
                    _Message(
                        i,
                        "user",
                        turn["text"],
                        turn.get("intent") or intent,
                        tuple(turn.get("acts") or ()),
                        gold_spans(
                            turn.get("slots"), turn["text"], f"example {example_id!r}, turn {i}", DatasetError
                        ),
                    )
                )
            else:
                messages.append(_Message(i, "assistant", turn["text"], None, (), ()))
    elif text:
        messages.append(
            _Message(
                0,
                "user",
                text,
                intent,
                tuple(acts or ()),
                gold_spans(slots, text, f"example {example_id!r}, turn 0", DatasetError),
            )
        )
    return _Synthetic(batch_id, int(idx), example_id, kind, intent, method, origin, tuple(messages))


def _origin_source(origin: str) -> str | None:
    """The seed (`file:line`) an example was made from, or `None` when it came from a template."""
    if origin.startswith("seed:"):
        return origin.removeprefix("seed:")
    if origin.startswith("paraphrase:"):
        return origin.removeprefix("paraphrase:").rsplit("#", 1)[0]
    return None


def _describe(db: Database) -> str:
    return str(db) if isinstance(db, str | Path) else "the database"


def _read_pool(
    db: Database, batches: Sequence[str], include_negatives: bool, intents: Sequence[str]
) -> tuple[list[str], list[_Synthetic], list[str]]:
    """The ids of the batches used, their kept examples in (batch, idx) order, and their specs' names."""
    try:
        with _open(db) as con:
            try:
                ids = active_batches(con, tuple(dict.fromkeys(batches)))
            except BatchError as exc:
                raise DatasetError(f"--batch: {exc}") from None
            if not ids:
                return [], [], []
            sql = """select batch_id, idx, example_id, kind, intent, text, gold_slots, gold_acts, turns,
                            method, origin
                     from active_examples where list_contains($ids, batch_id)"""
            params: dict[str, Any] = {"ids": ids}
            if not include_negatives:
                sql += " and kind <> 'negative'"
            if intents:
                sql += " and list_contains($intents, intent)"
                params["intents"] = list(intents)
            rows = con.execute(sql + " order by batch_id, idx", params).fetchall()
            specs = con.execute(
                "select distinct spec from batches where list_contains($ids, batch_id) order by spec",
                {"ids": ids},
            ).fetchall()
    except duckdb.Error as exc:
        raise DatasetError(f"{_describe(db)}: cannot read the generated batches: {exc}") from None
    pool = [e for e in map(_synthetic, rows) if e.messages]  # an empty text gives nothing to train on
    return ids, pool, [s for (s,) in specs]


# -- choosing --------------------------------------------------------------------------------------------


def _validation_size(n: int, val_fraction: float) -> int:
    if n < 2 or val_fraction == 0:
        return 0
    return min(n - 1, max(1, _round(val_fraction * n)))


def _split(real: list[_Real], val_fraction: float, seed: int) -> tuple[list[_Real], list[_Real]]:
    """Training and validation examples of the real data, stratified by intent."""
    by_intent: dict[str, list[_Real]] = {}
    for r in real:
        by_intent.setdefault(r.seed.intent, []).append(r)
    train: list[_Real] = []
    validation: list[_Real] = []
    for intent in sorted(by_intent):
        group = sorted(by_intent[intent], key=lambda r: (r.seed.text, r.seed.source, r.n))
        k = _validation_size(len(group), val_fraction)
        chosen = set(random.Random(f"{seed}:validation:{intent}").sample(range(len(group)), k))
        validation += [r for i, r in enumerate(group) if i in chosen]
        train += [r for i, r in enumerate(group) if i not in chosen]
    return train, validation


def _dedupe_real(real: list[_Real]) -> tuple[list[_Real], int]:
    """The real data without repeats of a (normalised text, intent) pair: a repeat could land in both
    splits, and validation would then score a training example."""
    seen: set[tuple[str, str]] = set()
    out: list[_Real] = []
    for r in real:
        key = (_normalised(r.seed.text), r.seed.intent)
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out, len(real) - len(out)


def _sample(pool: list[_Synthetic], n: int, seed: int, intent: str) -> list[_Synthetic]:
    if len(pool) <= n:
        return list(pool)
    chosen = sorted(random.Random(f"{seed}:synthetic:{intent}").sample(range(len(pool)), n))
    return [pool[i] for i in chosen]


# -- writing ---------------------------------------------------------------------------------------------


def _has_record(fmt: ExportFormat, dialogue: _Dialogue, system: str) -> bool:
    """Whether the format's writer makes a record of this dialogue (its own record builders decide)."""
    if fmt == "openai":
        return _openai_record(dialogue, system) is not None
    if fmt == "hf":
        return _hf_record(dialogue) is not None
    if fmt == "csv":
        return bool(_csv_rows(dialogue))
    return any(m.role == "user" and m.intent and _rasa_example(m) is not None for m in dialogue.messages)


def _writes_anything(fmt: ExportFormat, dialogues: Sequence[_Dialogue], pack: str) -> bool:
    system = _system_message(pack)
    return any(_has_record(fmt, d, system) for d in dialogues)


def _write_empty(target: Path, fmt: ExportFormat) -> None:
    """A valid file of the format holding no record (the export writers refuse to write nothing)."""
    if fmt == "csv":
        content = ",".join(CSV_COLUMNS) + "\n"
    elif fmt == "rasa":
        content = yaml.dump(
            {"version": _Quoted(RASA_VERSION), "nlu": []}, Dumper=_LiteralDumper, sort_keys=False
        )
    else:
        content = ""
    replace_file(target, lambda handle: handle.write(content), error=DatasetError)
    try:
        leftover = sum(1 for _ in _READERS[fmt](target))
    except ExportError as exc:
        raise DatasetError(f"{target}: read back, not a valid empty {fmt} file: {exc}") from None
    if leftover:
        raise DatasetError(f"{target}: read back, holds {leftover} records where none were written")


def _write_split(
    target: Path, fmt: ExportFormat, dialogues: Sequence[_Dialogue], pack: str
) -> tuple[int, int]:
    """Records written and dialogues the format had no record for; `(0, len(dialogues))` for an empty file."""
    if not _writes_anything(fmt, dialogues, pack):
        _write_empty(target, fmt)
        return 0, len(dialogues)
    try:
        tally = _write(target, fmt, dialogues, pack)
    except ExportError as exc:
        raise DatasetError(str(exc)) from None
    return tally.records, tally.skipped


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _check_out_dir(out: Path) -> None:
    try:
        if out.exists() and not out.is_dir():
            raise DatasetError(f"{out}: exists and is not a directory; give a folder for the dataset files")
    except OSError as exc:
        raise DatasetError(f"{out}: cannot use as the output folder: {exc.strerror or exc}") from None


def _make_out_dir(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"{out}: cannot create the output folder: {exc.strerror or exc}") from None


# -- the build -------------------------------------------------------------------------------------------


def build_dataset(
    db: Database,
    real: Sequence[Seed] | str | Path,
    out_dir: str | Path,
    *,
    format: str = "csv",
    ratio: float = 1.0,
    batches: Sequence[str] = (),
    intents: Sequence[str] = (),
    val_fraction: float = 0.2,
    include_negatives: bool = True,
    seed: int = 0,
    max_synthetic_per_intent: int | None = None,
    seeds: Sequence[Seed] | str | Path | None = None,
    pack: str | None = None,
) -> DatasetResult:
    """Write `train`, `validation` and `manifest.json` to `out_dir` (see the module docstring).

    Args:
        db: the database the batches were saved in.
        real: the real examples, or the path of a `text,intent` CSV or JSONL file.
        out_dir: the folder for the files, created if missing; files of the same name are replaced.
        format: `openai`, `hf`, `rasa` or `csv`.
        ratio: synthetic examples per real training example, per intent; 0 builds a real-only set (no
            synthetic example at all, even for intents without real data).
        batches: the batches to draw from; empty: every active batch. A rolled-back or unknown id is an
            error.
        intents: the intents to build for (real and synthetic alike); empty: every intent found.
        val_fraction: the share of each intent's real examples held out for validation, 0 to 0.9.
        include_negatives: whether near-miss negatives go into training.
        seed: seeds the validation draw, the synthetic sample and the order of the training file.
        max_synthetic_per_intent: a cap on synthetic examples per intent, whatever the ratio.
        seeds: the seed examples the batches were made from (as `load_seeds` reads them, or its path), so
            examples made from a seed that is in validation can be traced and dropped; without it, the leak
            guard compares texts only.
        pack: the name the `openai` system message gives the assistant; default: the spec of the batches
            used, when they share one.

    Raises:
        DatasetError: an unknown format; a ratio below 0; a val_fraction outside 0 to 0.9; a negative cap;
            no real data (after the `intents` filter); an intent asked for that has no example at all; a
            missing database or one without batches; a rolled-back or unknown batch; an output folder that
            is a file or cannot be written; a format with nothing to train on (`openai` without dialogues).
    """
    fmt = next((f for f in FORMATS if f == format), None)
    if fmt is None:
        raise DatasetError(f"unknown dataset format {format!r}; one of: {', '.join(FORMATS)}")
    if not (isinstance(ratio, int | float) and math.isfinite(ratio) and ratio >= 0):
        raise DatasetError(
            f"--ratio {ratio!r}: must be a number of synthetic examples per real one, 0 or more"
        )
    if not (math.isfinite(val_fraction) and 0 <= val_fraction <= MAX_VAL_FRACTION):
        raise DatasetError(f"--val-fraction {val_fraction!r}: must lie between 0 and {MAX_VAL_FRACTION}")
    if max_synthetic_per_intent is not None and max_synthetic_per_intent < 0:
        raise DatasetError(f"--max-synthetic {max_synthetic_per_intent}: must be 0 or more")
    out = Path(out_dir)
    _check_out_dir(out)
    if isinstance(db, str | Path) and str(db) != ":memory:" and not Path(db).is_file():
        raise DatasetError(f"{db}: no such database; `botdrill generate` creates it and saves batches in it")

    warnings: list[str] = []
    wanted = tuple(dict.fromkeys(intents))
    given = _seeds(real, "real data")
    real_all = [_Real(n, s) for n, s in enumerate(given) if not wanted or s.intent in wanted]
    if not real_all:
        where = f" for {', '.join(wanted)}" if wanted and given else ""
        raise DatasetError(f"no real data{where}: the validation split and the ratio are drawn from it")
    real_all, real_repeats = _dedupe_real(real_all)
    if real_repeats:
        warnings.append(
            f"{real_repeats} real examples repeat an earlier one of the same intent and were left out"
        )
    labels: dict[str, set[str]] = {}
    for r in real_all:
        labels.setdefault(_normalised(r.seed.text), set()).add(r.seed.intent)
    conflicting = sum(1 for v in labels.values() if len(v) > 1)
    if conflicting:
        warnings.append(f"{conflicting} real texts carry more than one intent; check their labels")

    source_texts = {s.source: s.text for s in _seeds(seeds, "seeds")} if seeds is not None else None
    ids, pool, specs = _read_pool(db, batches, include_negatives, wanted)
    if not ids:
        warnings.append("no active batch in the database: the training set is real data only")
    for intent in wanted:
        if not any(r.seed.intent == intent for r in real_all) and not any(e.intent == intent for e in pool):
            raise DatasetError(f"--intent {intent!r}: no real or synthetic example has this intent")

    train_real, validation = _split(real_all, val_fraction, seed)
    kept, dropped_for_leak = _guard_leaks(pool, validation, source_texts, warnings)
    by_intent, duplicates = _dedupe_synthetic(kept)
    chosen = _choose(by_intent, train_real, real_all, ratio, max_synthetic_per_intent, seed, warnings)
    counts = _counts(train_real, validation, chosen)

    train = [r.dialogue() for r in train_real] + [e.dialogue() for i in sorted(chosen) for e in chosen[i]]
    random.Random(f"{seed}:order").shuffle(train)
    held = [r.dialogue() for r in validation]
    pack_name = pack or (specs[0] if len(specs) == 1 else "botdrill")
    if not _writes_anything(fmt, train, pack_name):
        reason = "an assistant reply (hf, rasa and csv take single utterances)" if fmt == "openai" else "text"
        raise DatasetError(
            f"nothing to train on as {fmt}: none of the {len(train)} training examples has {reason}"
        )

    ext = EXTENSIONS[fmt]
    train_path, validation_path, manifest_path = (
        out / f"train.{ext}",
        out / f"validation.{ext}",
        out / "manifest.json",
    )
    _make_out_dir(out)
    try:
        manifest_path.unlink(missing_ok=True)  # a failed build must leave no manifest vouching for its files
    except OSError as exc:
        raise DatasetError(f"{manifest_path}: cannot replace: {exc.strerror or exc}") from None
    train_records, train_skipped = _write_split(train_path, fmt, train, pack_name)
    validation_records, validation_skipped = _write_split(validation_path, fmt, held, pack_name)
    if fmt == "openai" and (train_skipped or validation_skipped):
        warnings.append(
            f"openai keeps only dialogues with an assistant reply: {train_skipped} training and "
            f"{validation_skipped} validation examples (single utterances) are not in the files; "
            "hf, rasa and csv keep them"
        )
    if held and not validation_records:
        warnings.append(f"{validation_path.name} is empty: no validation example can be written as {fmt}")

    result = DatasetResult(
        out_dir=out,
        train_path=train_path,
        validation_path=validation_path,
        manifest_path=manifest_path,
        format=fmt,
        batches=tuple(ids),
        counts=counts,
        real_train=len(train_real),
        synthetic=sum(len(v) for v in chosen.values()),
        validation=len(validation),
        train_records=train_records,
        validation_records=validation_records,
        dropped_for_leak=dropped_for_leak,
        duplicates_dropped=duplicates + real_repeats,
        warnings=tuple(warnings),
    )
    settings = {
        "format": fmt,
        "ratio": ratio,
        "seed": seed,
        "val_fraction": val_fraction,
        "include_negatives": include_negatives,
        "max_synthetic_per_intent": max_synthetic_per_intent,
        "intents_asked": list(wanted),
        "real": {
            "examples": len(given),
            "sha256": hashlib.sha256(
                json.dumps([(s.text, s.intent) for s in given], ensure_ascii=False).encode()
            ).hexdigest(),
        },
        "seeds_given": source_texts is not None,
    }
    manifest = _manifest(result, settings)
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    replace_file(manifest_path, lambda handle: handle.write(text), error=DatasetError)
    return result


def _guard_leaks(
    pool: list[_Synthetic],
    validation: list[_Real],
    source_texts: Mapping[str, str] | None,
    warnings: list[str],
) -> tuple[list[_Synthetic], int]:
    """The pool without the examples that repeat a validation text or were made from one, and how many
    those were. Run on the whole pool, before any sampling, so the count does not depend on the draw."""
    held_out = {_normalised(r.seed.text) for r in validation}
    leaked = {src for src, text in (source_texts or {}).items() if _normalised(text) in held_out}
    unknown = traceable = 0
    kept: list[_Synthetic] = []
    for e in pool:
        source = _origin_source(e.origin)
        traceable += source is not None
        if source is not None and source_texts is not None and source not in source_texts:
            unknown += 1
        if source in leaked or any(_normalised(t) in held_out for t in e.user_texts):
            continue
        kept.append(e)
    if source_texts is None and traceable and held_out:
        warnings.append(
            f"{traceable} synthetic examples were made from seeds and no seed file was given: the leak "
            "guard compared texts only (give the seeds the batches were made from to trace them)"
        )
    if unknown:
        warnings.append(
            f"{unknown} synthetic examples name a seed that is not among the seeds given; "
            "the leak guard compared their texts only"
        )
    return kept, len(pool) - len(kept)


def _dedupe_synthetic(kept: list[_Synthetic]) -> tuple[dict[str, list[_Synthetic]], int]:
    """Per intent, the examples in pool order without repeats of the same user text (batches made from
    the same inputs, a parent and its revision, share examples), and how many repeats there were."""
    seen: set[tuple[str, str]] = set()
    by_intent: dict[str, list[_Synthetic]] = {}
    for e in kept:
        key = (e.intent, _normalised(" ".join(e.user_texts)))
        if key in seen:
            continue
        seen.add(key)
        by_intent.setdefault(e.intent, []).append(e)
    return by_intent, len(kept) - sum(len(v) for v in by_intent.values())


def _choose(
    by_intent: Mapping[str, list[_Synthetic]],
    train_real: list[_Real],
    real_all: list[_Real],
    ratio: float,
    cap: int | None,
    seed: int,
    warnings: list[str],
) -> dict[str, list[_Synthetic]]:
    """Per intent, the synthetic examples that go into training."""
    real_train_n = Counter(r.seed.intent for r in train_real)
    with_real = {r.seed.intent for r in real_all}
    chosen: dict[str, list[_Synthetic]] = {}
    for intent in sorted(set(by_intent) | with_real):
        available = by_intent.get(intent, [])
        limit = len(available) if cap is None else min(cap, len(available))
        if ratio == 0:
            want = 0
        elif intent not in with_real:
            want = limit
            warnings.append(
                f"intent {intent!r} has no real data: {want} of its {len(available)} synthetic examples are "
                "in training (all, up to the cap: no ratio to keep) and it has no validation examples"
            )
        else:
            want = _round(ratio * real_train_n[intent])
            if cap is not None:
                want = min(want, cap)
            if len(available) < want:
                warnings.append(
                    f"intent {intent!r}: {want} synthetic examples wanted, only {len(available)} available"
                )
        if want:
            chosen[intent] = _sample(available, want, seed, intent)
    return chosen


def _counts(
    train_real: list[_Real], validation: list[_Real], chosen: Mapping[str, list[_Synthetic]]
) -> dict[str, IntentCounts]:
    real_train_n = Counter(r.seed.intent for r in train_real)
    validation_n = Counter(r.seed.intent for r in validation)
    counts: dict[str, IntentCounts] = {}
    for intent in sorted(set(real_train_n) | set(validation_n) | set(chosen)):
        syn = chosen.get(intent, [])
        c = IntentCounts(
            real_train=real_train_n[intent],
            synthetic=len(syn),
            negatives=sum(1 for e in syn if e.kind == "negative"),
            validation=validation_n[intent],
        )
        if c.real_train or c.synthetic or c.validation:
            counts[intent] = c
    return counts


def _manifest(result: DatasetResult, settings: Mapping[str, Any]) -> dict[str, Any]:
    """What a build used and made, to check a training set against later: no timestamp, so that the same
    inputs give the same manifest."""
    from botdrill.simulator import __version__

    return {
        "botdrill": __version__,
        **settings,
        "batches": list(result.batches),
        "counts": {
            intent: {
                "real_train": c.real_train,
                "synthetic": c.synthetic,
                "negatives": c.negatives,
                "validation": c.validation,
            }
            for intent, c in result.counts.items()
        },
        "totals": {
            "real_train": result.real_train,
            "synthetic": result.synthetic,
            "validation": result.validation,
        },
        "dropped_for_leak": result.dropped_for_leak,
        "duplicates_dropped": result.duplicates_dropped,
        "files": {
            split: {"path": path.name, "records": records, "sha256": _sha256(path)}
            for split, path, records in (
                ("train", result.train_path, result.train_records),
                ("validation", result.validation_path, result.validation_records),
            )
        },
        "warnings": list(result.warnings),
    }


def read_manifest(out_dir: str | Path) -> dict[str, Any]:
    """The manifest of a built dataset, with each data file's SHA-256 checked against the file.

    Raises:
        DatasetError: no manifest, or a data file that is missing or changed since the build.
    """
    folder = Path(out_dir)
    path = folder / "manifest.json"
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read the manifest: {exc}") from None
    for split, entry in manifest.get("files", {}).items():
        file = folder / entry["path"]
        if not file.is_file():
            raise DatasetError(f"{file}: the {split} file named in the manifest is missing")
        if _sha256(file) != entry["sha256"]:
            raise DatasetError(
                f"{file}: changed since the dataset was built (SHA-256 differs from the manifest)"
            )
    return manifest
