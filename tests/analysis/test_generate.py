"""Batches of training examples: the gates score and refuse what they should, batches are stored whole,
listed, diffed, rolled back, reviewed and calibrated."""

from __future__ import annotations

import csv
import json
import math
from itertools import pairwise
from pathlib import Path

import duckdb
import pytest

from botdrill.agents._augment import GenerationSpec, IntentEntry, Seed
from botdrill.analysis._batches import (
    BatchError,
    active_batches,
    batch_details,
    diff_batches,
    list_batches,
    rollback_batch,
    save_batch,
)
from botdrill.analysis._generate import GATES, GenerateConfig, GenerateError, Thresholds, generate
from botdrill.analysis._review import ReviewError
from botdrill.analysis._review_store import calibrate_batch, export_sheet, import_ratings

SPEC = GenerationSpec(
    name="cards",
    slots={
        "card": ["visa", "mastercard", "debit card", "credit card"],
        "when": ["today", "yesterday", "on monday"],
    },
    synonyms=[["lost", "misplaced"], ["stolen", "taken"], ["freeze", "lock"]],
    intents=[
        IntentEntry(
            name="lost_card",
            description="The card is lost or stolen.",
            templates=[
                "i lost my {card}",
                "my {card} was stolen {when}",
                "i can't find my {card} anywhere",
                "someone took my {card}",
                "report my {card} as lost",
                "my wallet with my {card} is gone",
            ],
        ),
        IntentEntry(
            name="freeze_card",
            description="The customer wants the card frozen.",
            templates=[
                "freeze my {card}",
                "please lock my {card} for now",
                "can you put a freeze on my {card}",
                "stop my {card} from working {when}",
                "i want to freeze my {card} temporarily",
            ],
        ),
        IntentEntry(
            name="balance", description="Asks for the balance.", templates=["what's my balance"], target=False
        ),
    ],
)
SEEDS = [
    Seed("i lost my card on the bus", "lost_card", "seeds.csv:2"),
    Seed("can you report my visa as stolen", "lost_card", "seeds.csv:3"),
    Seed("my card is missing", "lost_card", "seeds.csv:4"),
    Seed("please freeze my card", "freeze_card", "seeds.csv:5"),
    Seed("i need to lock my debit card right now", "freeze_card", "seeds.csv:6"),
    Seed("can you freeze my mastercard", "freeze_card", "seeds.csv:7"),
]
REAL = [
    Seed(t, "balance", f"real.csv:{n}")
    for n, t in enumerate(
        [
            "what's my balance",
            "how much money do i have",
            "show me my balance please",
            "how much is in my account",
            "balance of my savings",
            "tell me my current balance",
            "what is left in my account",
            "how much have i got",
        ]
    )
] + [
    Seed(t, "transfer", f"real.csv:{n + 20}")
    for n, t in enumerate(
        [
            "send money to my mum",
            "transfer 50 to savings",
            "move money between accounts",
            "pay my friend back",
            "i want to transfer money",
            "make a transfer to john",
        ]
    )
]
CONFIG = GenerateConfig(per_intent=12, dialogues_per_intent=2, negatives_per_intent=2, seed=3)


@pytest.fixture(scope="module")
def batch():  # type: ignore[no-untyped-def]
    return generate(SPEC, SEEDS, CONFIG, real=REAL, batch_id="b1")


def test_every_candidate_is_scored_and_the_gate_counts_add_up(batch) -> None:  # type: ignore[no-untyped-def]
    assert batch.examples
    for e in batch.examples:
        assert 0 <= e.slot_coverage <= 1 and 0 <= e.coherence <= 1
        assert not math.isnan(e.naturalness)
        assert e.rejected_by is None or e.rejected_by in GATES
    counts = batch.gate_counts
    assert counts[0]["in"] == len(batch.examples)
    for before, after in pairwise(counts):
        assert after["in"] == before["out"] and after["out"] <= after["in"]
    assert counts[-1]["out"] == len(batch.kept())
    refused = sum(1 for e in batch.examples if not e.kept)
    assert refused == len(batch.examples) - counts[-1]["out"]


def test_quota_per_intent_and_kind(batch) -> None:  # type: ignore[no-untyped-def]
    for intent in ("lost_card", "freeze_card"):
        utterances = [e for e in batch.kept("utterance") if e.candidate.intent == intent]
        dialogues = [e for e in batch.kept("dialogue") if e.candidate.intent == intent]
        assert 0 < len(utterances) <= 12
        assert len(dialogues) <= 2
    assert not [e for e in batch.kept() if e.candidate.intent == "balance" and e.candidate.kind != "negative"]


def test_same_seed_and_inputs_give_the_same_batch(batch) -> None:  # type: ignore[no-untyped-def]
    again = generate(SPEC, SEEDS, CONFIG, real=REAL, batch_id="b1")
    assert again.config_hash == batch.config_hash
    assert [(e.candidate.text, e.rejected_by) for e in again.examples] == [
        (e.candidate.text, e.rejected_by) for e in batch.examples
    ]
    other = generate(SPEC, SEEDS, CONFIG.model_copy(update={"seed": 4}), real=REAL, batch_id="b2")
    assert other.config_hash != batch.config_hash


def test_no_kept_example_copies_a_seed_or_a_forbidden_text() -> None:
    forbidden = ["i lost my visa", "freeze my debit card"]
    b = generate(SPEC, SEEDS, CONFIG, real=REAL, forbidden=forbidden, batch_id="b3")
    kept = {e.candidate.text.casefold() for e in b.kept()}
    assert not kept & {f.casefold() for f in forbidden}
    assert not kept & {s.text.casefold() for s in SEEDS}
    assert any(e.rejected_by == "forbidden" for e in b.examples) or not any(
        e.candidate.text.casefold() in forbidden for e in b.examples
    )


def test_forbidden_texts_are_refused_even_with_the_gates_off() -> None:
    b = generate(SPEC, SEEDS, CONFIG.model_copy(update={"gates": False}), real=REAL, batch_id="b4")
    texts = [e.candidate.text for e in b.examples if e.candidate.kind == "utterance"]
    forbid = texts[:3]
    b2 = generate(
        SPEC, SEEDS, CONFIG.model_copy(update={"gates": False}), real=REAL, forbidden=forbid, batch_id="b5"
    )
    assert {e.rejected_by for e in b2.examples if e.candidate.text in forbid} == {"forbidden"}
    assert {e.rejected_by for e in b2.examples} <= {None, "forbidden", "quota"}


def test_a_strict_alignment_threshold_refuses_more() -> None:
    loose = generate(SPEC, SEEDS, CONFIG, real=REAL, batch_id="l")
    strict = generate(
        SPEC,
        SEEDS,
        CONFIG.model_copy(update={"thresholds": Thresholds(alignment=1.0)}),
        real=REAL,
        batch_id="s",
    )
    out = {g["gate"]: g["out"] for g in strict.gate_counts}
    assert out["alignment"] <= {g["gate"]: g["out"] for g in loose.gate_counts}["alignment"]
    assert all(e.alignment == 1.0 for e in strict.kept())


def test_a_diversity_floor_above_any_batch_refuses_the_intent() -> None:
    b = generate(
        SPEC,
        SEEDS,
        CONFIG.model_copy(update={"thresholds": Thresholds(diversity_floor=1.0)}),
        real=REAL,
        batch_id="d",
    )
    assert {e.rejected_by for e in b.examples if e.candidate.kind == "utterance"} >= {"diversity_floor"}
    assert not b.kept("utterance")


def test_pii_in_a_seed_is_replaced_and_counted() -> None:
    seeds = [
        *SEEDS,
        Seed("my card 4111 1111 1111 1111 was stolen, email me at jo@mail.com", "lost_card", "s:9"),
    ]
    b = generate(
        SPEC,
        seeds,
        CONFIG.model_copy(update={"methods": ("seed_templates",), "gates": False, "per_intent": 40}),
        real=REAL,
        batch_id="p",
    )
    texts = " ".join(e.candidate.text for e in b.examples)
    assert "4111 1111 1111 1111" not in texts and "jo@mail.com" not in texts
    assert b.pii_replaced.get("card_number", 0) > 0 and b.pii_replaced.get("email", 0) > 0
    for e in b.examples:
        for s in e.candidate.slots:
            assert e.candidate.text[s.start : s.end].casefold() == s.value.casefold()


def test_unknown_target_and_no_targets_are_errors() -> None:
    with pytest.raises(GenerateError, match="not in the spec"):
        generate(SPEC, SEEDS, GenerateConfig(intents=("nope",)), real=REAL)


def test_realism_is_measured_against_a_real_sample(batch) -> None:  # type: ignore[no-untyped-def]
    assert batch.realism is not None
    assert 0 <= batch.realism.auc <= 1 and batch.realism.n_real == 6


# -- the store -------------------------------------------------------------------------------------------


def test_save_list_show_diff_rollback(tmp_path: Path, batch) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "g.duckdb"
    save_batch(db, batch)
    second = generate(SPEC, SEEDS, CONFIG.model_copy(update={"seed": 9}), real=REAL, batch_id="b2")
    second.parent = "b1"
    save_batch(db, second)
    with pytest.raises(BatchError, match="already exists"):
        save_batch(db, batch)
    listed = list_batches(db)
    assert [b.batch_id for b in listed] == ["b2", "b1"] or {b.batch_id for b in listed} == {"b1", "b2"}
    info = batch_details(db, "b1")
    assert info["n_kept"] == len(batch.kept()) and info["config_hash"] == batch.config_hash
    assert info["gate_counts"] == batch.gate_counts
    con = duckdb.connect(str(db), read_only=True)
    try:
        stored = con.execute(
            "select count(*), count(*) filter (where kept) from examples where batch_id='b1'"
        ).fetchone()
        active = con.execute("select count(*) from active_examples").fetchone()
    finally:
        con.close()
    assert stored == (len(batch.examples), len(batch.kept()))
    assert active == (len(batch.kept()) + len(second.kept()),)
    d = diff_batches(db, "b1", "b2")
    assert d.settings["seed"] == (3, 9)
    assert d.shared + d.only_a == len({e.candidate.text for e in batch.kept()})
    assert rollback_batch(db, "b1", reason="bad templates") == len(batch.kept())
    with pytest.raises(BatchError, match="already rolled back"):
        rollback_batch(db, "b1")
    assert active_batches(db) == ["b2"]
    with pytest.raises(BatchError, match="rolled back"):
        active_batches(db, ["b1"])
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("select count(*) from active_examples where batch_id = 'b1'").fetchone() == (0,)
        assert con.execute("select count(*) from examples where batch_id = 'b1'").fetchone() == (
            len(batch.examples),
        )
    finally:
        con.close()


def test_a_parent_must_exist(tmp_path: Path, batch) -> None:  # type: ignore[no-untyped-def]
    orphan = generate(SPEC, SEEDS, CONFIG, real=REAL, batch_id="o", parent="missing")
    with pytest.raises(BatchError, match="parent batch"):
        save_batch(tmp_path / "g.duckdb", orphan)


def test_review_sheet_ratings_agreement_and_calibration(tmp_path: Path, batch) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "g.duckdb"
    save_batch(db, batch)
    sheet = tmp_path / "sheet.csv"
    n = export_sheet(db, "b1", sheet, n=30, refused_share=0.3)
    assert n > 10
    with sheet.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    by_id = {e.example_id: e for e in batch.examples}
    for rater, flip in (("ana", False), ("ben", False), ("cy", True)):
        out = tmp_path / f"{rater}.csv"
        with out.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            for i, row in enumerate(rows):
                good = by_id[row["example_id"]].alignment >= 0.5
                if flip and i % 5 == 0:
                    good = not good
                writer.writerow(row | {"usable": "yes" if good else "no", "intent_fit": "5" if good else "2"})
    stored, agreements = import_ratings(db, "b1", [tmp_path / f"{r}.csv" for r in ("ana", "ben", "cy")])
    assert stored == 2 * 3 * len(rows)
    usable = next(a for a in agreements if a.dimension == "usable")
    assert 0.0 < usable.alpha < 1.0 and usable.raters == 3
    results = calibrate_batch(db, "b1", gates=["alignment"])
    assert results[0].threshold == pytest.approx(0.5) or results[0].threshold >= 0.5
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("select count(*) from ratings").fetchone() == (stored,)
        assert con.execute("select count(*) from agreement where batch_id = 'b1'").fetchone()[0] >= 2
        assert con.execute("select gate from calibrations").fetchall() == [("alignment",)]
    finally:
        con.close()
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "example_id,batch_id,intent,text,intent_fit,naturalness,usable,comment\nnope,b1,x,t,5,5,yes,\n"
    )
    with pytest.raises(ReviewError, match="not in batch"):
        import_ratings(db, "b1", [bad])


def test_batches_json_is_well_formed(tmp_path: Path, batch) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "g.duckdb"
    save_batch(db, batch)
    info = batch_details(db, "b1")
    json.dumps(info, default=str)
    assert {r["kind"] for r in info["per_intent"]} >= {"utterance"}


def test_pii_surrogates_do_not_depend_on_the_batch_id() -> None:
    seeds = [*SEEDS, Seed("call me on 07700 900123 about my stolen visa", "lost_card", "s:9")]
    config = CONFIG.model_copy(update={"methods": ("seed_templates",), "gates": False, "per_intent": 30})
    a = generate(SPEC, seeds, config, real=REAL, batch_id="first")
    b = generate(SPEC, seeds, config, real=REAL, batch_id="second")
    assert a.pii_replaced.get("phone", 0) > 0
    assert [e.candidate.text for e in a.examples] == [e.candidate.text for e in b.examples]
    assert "07700 900123" not in " ".join(e.candidate.text for e in a.examples)


def test_coherence_is_the_share_of_checks_passed_for_dialogues_too(batch) -> None:  # type: ignore[no-untyped-def]
    for e in batch.examples:
        checks = 7 if e.candidate.turns else 5
        assert e.coherence == pytest.approx(1 - len(e.coherence_issues) / checks)
        assert 0 <= e.coherence <= 1
