"""Training sets built from a real batch: stratified counts, a real-only validation split, the leak guard,
rolled-back batches, every format read back, and a manifest whose hashes match the files."""

from __future__ import annotations

import csv
import hashlib
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import pytest

from botdrill.agents._augment import GenerationSpec, IntentEntry, Seed
from botdrill.analysis._batches import rollback_batch, save_batch
from botdrill.analysis._dataset import DatasetError, build_dataset, read_manifest
from botdrill.analysis._export import FORMATS, read_csv, read_hf, read_openai, read_rasa
from botdrill.analysis._generate import Batch, GenerateConfig, generate

SPEC = GenerationSpec(
    name="tiny_bank",
    intents=[
        IntentEntry(
            name="report_fraud",
            description="Someone used the customer's card without permission.",
            templates=[
                "someone used my {card} without asking",
                "there is a charge on my {card} i did not make",
                "i think my {card} was used by a stranger",
            ],
        ),
        IntentEntry(
            name="lost_card",
            description="The customer cannot find their card.",
            templates=["i lost my {card}", "my {card} is missing", "cannot find my {card} anywhere"],
        ),
        IntentEntry(
            name="balance",
            description="The customer asks how much money is left.",
            templates=["what is the balance on my {card}", "how much money is left on my {card}"],
            target=False,
        ),
    ],
    slots={"card": ["visa card", "debit card", "credit card"]},
)

SEEDS = [
    Seed("someone charged my visa card for things i never bought", "report_fraud", "seeds.csv:2"),
    Seed("i see payments i did not make", "report_fraud", "seeds.csv:3"),
    Seed("there are strange transactions on my account", "report_fraud", "seeds.csv:4"),
    Seed("i lost my debit card yesterday", "lost_card", "seeds.csv:5"),
    Seed("my card is gone", "lost_card", "seeds.csv:6"),
    Seed("what is my balance", "balance", "seeds.csv:7"),
]

# Ten real examples for each target intent (the seeds among them), one for `balance` (none held out) and
# two for `greeting` (one held out, no synthetic data).
REAL = [
    *SEEDS[:3],
    *(
        Seed(t, "report_fraud", f"real.csv:{n}")
        for n, t in enumerate(
            [
                "a purchase i never made showed up",
                "my card was charged twice by a shop i never visited",
                "fraud on my account please help",
                "somebody is spending my money",
                "unknown withdrawals from my account",
                "there is a payment to a website i do not know",
                "i did not authorise this transaction",
            ],
            10,
        )
    ),
    *SEEDS[3:5],
    *(
        Seed(t, "lost_card", f"real.csv:{n}")
        for n, t in enumerate(
            [
                "i cannot find my card",
                "i left my card at the restaurant",
                "my wallet was stolen with my cards in it",
                "i dropped my card somewhere in town",
                "where is my card, i had it this morning",
                "my card fell out of my pocket",
                "i think i lost my credit card on the bus",
                "the card is not in my bag anymore",
            ],
            20,
        )
    ),
    SEEDS[5],
    Seed("hello there", "greeting", "real.csv:30"),
    Seed("good morning", "greeting", "real.csv:31"),
]


def _norm(text: str) -> str:
    return " ".join("".join(c if c.isalnum() else " " for c in text.casefold()).split())


def _batch(batch_id: str, seed: int = 0) -> Batch:
    config = GenerateConfig(
        per_intent=10, dialogues_per_intent=2, negatives_per_intent=2, gates=False, seed=seed
    )
    return generate(SPEC, SEEDS, config, batch_id=batch_id)


@pytest.fixture(scope="module")
def batches() -> tuple[Batch, Batch]:
    return _batch("tiny-a"), _batch("tiny-b", seed=1)


@pytest.fixture
def db(tmp_path: Path, batches: tuple[Batch, Batch]) -> Path:
    path = tmp_path / "b.duckdb"
    save_batch(path, batches[0])
    return path


@pytest.fixture
def real_csv(tmp_path: Path) -> Path:
    path = tmp_path / "real.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "intent"])
        writer.writerows([s.text, s.intent] for s in REAL)
    return path


def _rows(path: Path) -> list[tuple[str, str, str, str]]:
    """(run_id, dialogue_id, text, intent) of a CSV split."""
    return [(r.run_id, r.dialogue_id, r.text, r.intent or "") for r in read_csv(path)]


# -- counts ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ratio", [0.5, 1.0])
def test_counts_follow_the_ratio_per_intent(db: Path, real_csv: Path, tmp_path: Path, ratio: float) -> None:
    result = build_dataset(db, real_csv, tmp_path / "out", ratio=ratio, seeds=SEEDS)
    real = Counter(s.intent for s in REAL)
    assert set(result.counts) == {"report_fraud", "lost_card", "balance", "greeting"}
    for intent, c in result.counts.items():
        assert c.validation == {10: 2, 2: 1, 1: 0}[real[intent]]
        assert c.real_train == real[intent] - c.validation
        wanted = math.floor(ratio * c.real_train + 0.5)
        short = any(w.startswith(f"intent {intent!r}") and "available" in w for w in result.warnings)
        assert c.synthetic == wanted or (short and c.synthetic < wanted)
    assert result.counts["report_fraud"].synthetic == round(8 * ratio)  # enough to choose from
    assert result.counts["greeting"].synthetic == 0
    assert result.real_train == sum(c.real_train for c in result.counts.values()) == len(REAL) - 5
    assert result.synthetic == sum(c.synthetic for c in result.counts.values())

    rows = _rows(result.train_path)
    assert sum(1 for r in rows if r[0] == "real") == result.real_train
    synthetic = {(r[1], r[3]) for r in rows if r[0] != "real"}  # a dialogue has a row per user message
    assert Counter(intent for _, intent in synthetic) == {
        i: c.synthetic for i, c in result.counts.items() if c.synthetic
    }


def test_ratio_zero_is_real_only_and_the_cap_holds(db: Path, real_csv: Path, tmp_path: Path) -> None:
    only_real = build_dataset(db, real_csv, tmp_path / "real", ratio=0)
    assert only_real.synthetic == 0
    assert {r[0] for r in _rows(only_real.train_path)} == {"real"}
    capped = build_dataset(db, real_csv, tmp_path / "capped", ratio=3, max_synthetic_per_intent=2)
    assert {i: c.synthetic for i, c in capped.counts.items()} == {
        "report_fraud": 2,
        "lost_card": 2,
        "balance": 2,
        "greeting": 0,
    }


def test_an_intent_without_real_data_takes_all_its_synthetic_examples(db: Path, tmp_path: Path) -> None:
    real = [s for s in REAL if s.intent != "lost_card"]
    result = build_dataset(db, real, tmp_path / "out", ratio=0.1)
    lost = result.counts["lost_card"]
    assert (lost.real_train, lost.validation) == (0, 0)
    assert lost.synthetic >= 10  # every kept lost_card example of the batch: 10 utterances, 2 dialogues
    assert any("'lost_card' has no real data" in w for w in result.warnings)


def test_negatives_count_toward_their_label_and_can_be_left_out(db: Path, tmp_path: Path) -> None:
    with_them = build_dataset(db, REAL, tmp_path / "with", ratio=2)
    assert with_them.counts["balance"].negatives == with_them.counts["balance"].synthetic > 0
    without = build_dataset(db, REAL, tmp_path / "without", ratio=2, include_negatives=False)
    assert all(c.negatives == 0 for c in without.counts.values())
    assert without.counts["balance"].synthetic == 0


def test_intents_narrow_real_and_synthetic_alike(db: Path, tmp_path: Path) -> None:
    result = build_dataset(db, REAL, tmp_path / "out", intents=["report_fraud"])
    assert set(result.counts) == {"report_fraud"}
    assert {r[3] for r in _rows(result.train_path)} == {"report_fraud"}


# -- the validation split and the leak guard ------------------------------------------------------------


def test_validation_holds_real_examples_only(db: Path, real_csv: Path, tmp_path: Path) -> None:
    result = build_dataset(db, real_csv, tmp_path / "out", ratio=1, seeds=SEEDS)
    validation = _rows(result.validation_path)
    real_texts = {(s.text, s.intent) for s in REAL}
    assert validation and all(r[0] == "real" and (r[2], r[3]) in real_texts for r in validation)
    assert all(r.outcome == "real" and r.perturbation == "none" for r in read_csv(result.validation_path))
    held = {_norm(r[2]) for r in validation}
    train = _rows(result.train_path)
    assert not held & {_norm(r[2]) for r in train}
    assert {r[0] for r in train} == {"real", "tiny-a"}
    # real examples are numbered by their place in the real data
    texts = {f"real-{n}": s.text for n, s in enumerate(REAL)}
    assert all(texts[r[1]] == r[2] for r in train + validation if r[0] == "real")


def test_same_seed_same_files_other_seed_other_draw(db: Path, real_csv: Path, tmp_path: Path) -> None:
    first = build_dataset(db, real_csv, tmp_path / "one", seed=7)
    second = build_dataset(db, real_csv, tmp_path / "two", seed=7)
    for name in ("train.csv", "validation.csv", "manifest.json"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    assert (first.counts, first.warnings, first.dropped_for_leak) == (
        second.counts,
        second.warnings,
        second.dropped_for_leak,
    )
    other = build_dataset(db, real_csv, tmp_path / "three", seed=8)
    assert (tmp_path / "three" / "validation.csv").read_bytes() != (
        tmp_path / "one" / "validation.csv"
    ).read_bytes()
    assert other.counts == first.counts


def _validation_texts(db: Path, tmp_path: Path) -> list[tuple[str, str]]:
    result = build_dataset(db, REAL, tmp_path / "probe", ratio=0)
    return [(r[2], r[3]) for r in _rows(result.validation_path)]


def _insert(db: Path, example_id: str, text: str, intent: str, origin: str) -> None:
    con = duckdb.connect(str(db))
    try:
        con.execute(
            """insert into examples (batch_id, example_id, idx, kind, intent, text, gold_slots, gold_acts,
                                     method, origin, kept, pii_replaced)
               values ('tiny-a', ?, 1000, 'utterance', ?, ?, [], ['inform_intent'], 'pack', ?, true, 0)""",
            [example_id, intent, text, origin],
        )
    finally:
        con.close()


def test_leak_guard_drops_a_copy_of_a_validation_text(db: Path, tmp_path: Path) -> None:
    text, intent = _validation_texts(db, tmp_path)[0]
    before = build_dataset(db, REAL, tmp_path / "before", ratio=5)
    _insert(db, "tiny-a-copy", f"  {text.upper()}!! ", intent, "template:report_fraud#0")
    _insert(db, "tiny-a-fresh", "a brand new sentence nobody wrote before", intent, "template:report_fraud#0")
    after = build_dataset(db, REAL, tmp_path / "after", ratio=5)
    assert after.dropped_for_leak == before.dropped_for_leak + 1
    ids = {r[1] for r in _rows(after.train_path)}
    assert "tiny-a-copy" not in ids and "tiny-a-fresh" in ids
    manifest = json.loads(after.manifest_path.read_text(encoding="utf-8"))
    assert manifest["dropped_for_leak"] == after.dropped_for_leak


def test_leak_guard_traces_examples_to_held_out_seeds(db: Path, tmp_path: Path) -> None:
    text, intent = _validation_texts(db, tmp_path)[0]
    _insert(db, "tiny-a-para", "words that share nothing with the seed", intent, "paraphrase:extra.csv:9#0")
    seeds = [*SEEDS, Seed(text, intent, "extra.csv:9")]
    untraced = build_dataset(db, REAL, tmp_path / "untraced", ratio=5)
    traced = build_dataset(db, REAL, tmp_path / "traced", ratio=5, seeds=seeds)
    assert "tiny-a-para" in {r[1] for r in _rows(untraced.train_path)}
    assert "tiny-a-para" not in {r[1] for r in _rows(traced.train_path)}
    assert traced.dropped_for_leak >= untraced.dropped_for_leak + 1
    assert any("no seed file was given" in w for w in untraced.warnings)


# -- batches --------------------------------------------------------------------------------------------


def test_a_rolled_back_batch_contributes_nothing(
    db: Path, batches: tuple[Batch, Batch], tmp_path: Path
) -> None:
    save_batch(db, batches[1])
    both = build_dataset(db, REAL, tmp_path / "both", ratio=5)
    assert both.batches == ("tiny-a", "tiny-b")
    assert {r[0] for r in _rows(both.train_path)} == {"real", "tiny-a", "tiny-b"}
    rollback_batch(db, "tiny-b", reason="bad prompts")
    one = build_dataset(db, REAL, tmp_path / "one", ratio=5)
    assert one.batches == ("tiny-a",)
    assert {r[0] for r in _rows(one.train_path)} == {"real", "tiny-a"}
    assert json.loads(one.manifest_path.read_text(encoding="utf-8"))["batches"] == ["tiny-a"]
    with pytest.raises(DatasetError, match="rolled back"):
        build_dataset(db, REAL, tmp_path / "explicit", batches=["tiny-b"])
    with pytest.raises(DatasetError, match="no batch 'nope'"):
        build_dataset(db, REAL, tmp_path / "unknown", batches=["nope"])
    assert not (tmp_path / "explicit").exists()


# -- formats and the manifest ---------------------------------------------------------------------------


def test_every_format_writes_and_reads_back(db: Path, real_csv: Path, tmp_path: Path) -> None:
    for fmt in FORMATS:
        result = build_dataset(db, real_csv, tmp_path / fmt, format=fmt, ratio=1, seeds=SEEDS)
        ext = {"openai": "jsonl", "hf": "jsonl", "rasa": "yml", "csv": "csv"}[fmt]
        assert result.train_path == tmp_path / fmt / f"train.{ext}"
        assert result.validation_path == tmp_path / fmt / f"validation.{ext}"
        if fmt == "hf":
            train = read_hf(result.train_path)
            assert len(train) == result.train_records == result.real_train + result.synthetic
            assert len(read_hf(result.validation_path)) == result.validation
            dialogues = [r for r in train if any(m["role"] == "assistant" for m in r["messages"])]
            assert dialogues and all(len(r["messages"]) == 4 for r in dialogues)  # assistant turns kept
            spans = [(m["content"], s) for r in train for m in r["messages"] for s in m.get("slots", [])]
            assert spans and all(text[s["start"] : s["end"]] == s["value"] for text, s in spans)
            assert {r["outcome"] for r in train} == {"real", "synthetic"}
        elif fmt == "csv":
            assert len(read_csv(result.train_path)) == result.train_records
        elif fmt == "rasa":
            examples = read_rasa(result.train_path)
            assert len(examples) == result.train_records > 0
            assert any(e.entities for e in examples)
            assert {e.intent for e in read_rasa(result.validation_path)} == {
                "report_fraud",
                "lost_card",
                "greeting",
            }
        else:
            train = read_openai(result.train_path)
            assert len(train) == result.train_records > 0
            assert all(r["messages"][-1]["role"] == "assistant" for r in train)
            assert read_openai(result.validation_path) == []  # real examples are single utterances
            assert any("openai keeps only dialogues" in w for w in result.warnings)


def test_manifest_describes_the_build_and_hashes_the_files(db: Path, real_csv: Path, tmp_path: Path) -> None:
    result = build_dataset(db, real_csv, tmp_path / "out", format="hf", ratio=0.5, seed=3, val_fraction=0.3)
    manifest = read_manifest(tmp_path / "out")
    assert (manifest["format"], manifest["ratio"], manifest["seed"], manifest["val_fraction"]) == (
        "hf",
        0.5,
        3,
        0.3,
    )
    assert manifest["batches"] == ["tiny-a"]
    for split, path in (("train", result.train_path), ("validation", result.validation_path)):
        entry = manifest["files"][split]
        assert entry["path"] == path.name
        assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert manifest["counts"]["report_fraud"] == {
        "real_train": 7,
        "synthetic": 4,
        "negatives": 0,
        "validation": 3,
    }
    assert manifest["totals"]["synthetic"] == result.synthetic
    with open(result.train_path, "a", encoding="utf-8") as handle:
        handle.write("\n")
    with pytest.raises(DatasetError, match="changed since"):
        read_manifest(tmp_path / "out")


def test_val_fraction_zero_writes_an_empty_validation_file(db: Path, tmp_path: Path) -> None:
    for fmt, reader in (("csv", read_csv), ("rasa", read_rasa), ("hf", read_hf)):
        result = build_dataset(db, REAL, tmp_path / fmt, format=fmt, val_fraction=0)
        assert result.validation == 0 and reader(result.validation_path) == []
        assert result.real_train == len(REAL)


# -- errors ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"format": "parquet"}, "unknown dataset format 'parquet'"),
        ({"ratio": -1}, "--ratio"),
        ({"ratio": math.nan}, "--ratio"),
        ({"val_fraction": 0.95}, "--val-fraction"),
        ({"max_synthetic_per_intent": -2}, "--max-synthetic"),
        ({"intents": ["no_such_intent"]}, "no real data for no_such_intent"),
        ({"intents": ["report_fraud", "no_such_intent"]}, "'no_such_intent': no real or synthetic"),
    ],
)
def test_bad_settings_are_refused(db: Path, tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(DatasetError, match=message) as caught:
        build_dataset(db, REAL, tmp_path / "out", **kwargs)
    assert caught.value.code == "dataset"
    assert not (tmp_path / "out").exists()


def test_bad_inputs_and_paths_are_refused(db: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no real data"):
        build_dataset(db, [], tmp_path / "out")
    with pytest.raises(DatasetError, match=r"missing\.csv: no such file"):
        build_dataset(db, tmp_path / "missing.csv", tmp_path / "out")
    with pytest.raises(DatasetError, match="no such database"):
        build_dataset(tmp_path / "none.duckdb", REAL, tmp_path / "out")
    file = tmp_path / "taken"
    file.write_text("not a folder", encoding="utf-8")
    with pytest.raises(DatasetError, match="taken: exists and is not a directory"):
        build_dataset(db, REAL, file)
    with pytest.raises(DatasetError, match="nothing to train on as openai"):
        build_dataset(db, REAL, tmp_path / "out", format="openai", ratio=0)
    assert not (tmp_path / "out").exists()
