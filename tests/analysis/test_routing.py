"""Routing accuracy and the confusion matrix agree with a recount of the dialogues."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from botdrill.analysis import (
    ConfusionMatrix,
    Routing,
    confusion,
    confusion_matrix,
    intent_summary,
    routing,
    run_summary,
)

Query = Callable[..., list[tuple[Any, ...]]]

# by -> the dialogue fields a group is keyed on (gold intent, perturbation), '*' when rolled up
_SPLITS = {
    (): lambda g, p: ("*", "*"),
    ("intent",): lambda g, p: (g, "*"),
    ("perturbation",): lambda g, p: ("*", p),
    ("intent", "perturbation"): lambda g, p: (g, p),
}


@pytest.mark.parametrize("by", list(_SPLITS))
@pytest.mark.parametrize("run", ["m", "odd", "words"])
def test_routing_matches_a_recount(stress_db: Path, sql: Query, run: str, by: tuple[str, ...]) -> None:
    dialogues = sql(
        "select gold_intent, perturbation, routed_intent, routing_source "
        "from (select * from dialogues where simulator_fault is null) where run_id = ?",
        run,
    )
    exposes = any(source == "exposed" for *_, source in dialogues)
    key = _SPLITS[by]
    groups: dict[tuple[str, str], list[tuple[str, str, str | None, str]]] = {}
    for d in dialogues:
        groups.setdefault(key(d[0], d[1]), []).append(d)
    rows = routing(stress_db, run, by=by)
    assert all(isinstance(r, Routing) for r in rows)
    assert [(r.intent, r.perturbation) for r in rows] == sorted(
        groups, key=lambda k: (k[0], k[1] != "none", k[1])
    )
    for r in rows:
        mine = groups[r.intent, r.perturbation]
        right = sum(g == routed for g, _, routed, _ in mine)
        assert (r.dialogues, r.routed_right) == (len(mine), right)
        assert r.unrouted == sum(routed is None for _, _, routed, _ in mine)
        assert r.accuracy == (pytest.approx(right / len(mine)) if exposes else None)


def test_routing_agrees_with_intent_summary_and_run_summary(stress_db: Path, spoilt: dict[str, int]) -> None:
    per_intent = {r.intent: r.accuracy for r in routing(stress_db, "m")}
    assert per_intent == {s.intent: pytest.approx(s.routing_accuracy) for s in intent_summary(stress_db, "m")}
    (total,) = routing(stress_db, "m", by=())
    summary = run_summary(stress_db, "m")
    assert summary is not None and total.accuracy == pytest.approx(summary.routing_accuracy)
    assert total.dialogues == summary.dialogues == 40 * 3 * 3 - spoilt["m"]


def test_a_bot_without_intents_has_no_accuracy_and_routes_nothing(stress_db: Path) -> None:
    rows = routing(stress_db, "words", by=("intent", "perturbation"))
    assert rows and all(r.accuracy is None and r.unrouted == r.dialogues for r in rows)


def test_routing_refuses_an_unknown_split(stress_db: Path) -> None:
    with pytest.raises(ValueError, match="persona"):
        routing(stress_db, "m", by=("persona",))


# -- confusion matrix ---------------------------------------------------------------------------------


def _recount(sql: Query, run: str, perturbation: str | None) -> Counter[tuple[str, str]]:
    rows = sql(
        "select gold_intent, perturbation, routed_intent "
        "from (select * from dialogues where simulator_fault is null) where run_id = ?",
        run,
    )
    return Counter(
        (g, r if r is not None else "(none)") for g, p, r in rows if perturbation is None or p == perturbation
    )


@pytest.mark.parametrize(
    ("run", "perturbation"), [("m", None), ("m", "none"), ("m", "typo"), ("m", "fragments"), ("odd", None)]
)
def test_confusion_matrix_matches_a_recount(
    stress_db: Path, sql: Query, run: str, perturbation: str | None
) -> None:
    matrix = confusion_matrix(stress_db, run, perturbation=perturbation)
    assert isinstance(matrix, ConfusionMatrix) and matrix.perturbation == perturbation
    cells = _recount(sql, run, perturbation)
    n = len(matrix.labels)
    assert len(matrix.counts) == n and all(len(row) == n for row in matrix.counts)
    for i, gold in enumerate(matrix.labels):
        for j, routed in enumerate(matrix.labels):
            assert matrix.counts[i][j] == cells[gold, routed] == matrix.count(gold, routed)
    assert sum(map(sum, matrix.counts)) == sum(cells.values()) > 0
    for counts, rates in zip(matrix.counts, matrix.rates, strict=True):
        if sum(counts):
            assert rates == pytest.approx([c / sum(counts) for c in counts])
            assert sum(rates) == pytest.approx(1.0)  # type: ignore[arg-type]
        else:
            assert rates == [None] * n


def test_labels_are_gold_intents_then_other_routes_then_none(stress_db: Path, sql: Query) -> None:
    gold = sorted(
        g
        for (g,) in sql(
            "select distinct gold_intent "
            "from (select * from dialogues where simulator_fault is null) where run_id = 'odd'"
        )
    )
    matrix = confusion_matrix(stress_db, "odd")
    assert "chit_chat" not in gold
    assert matrix.labels == [*gold, "chit_chat", "(none)"]
    # Rows of labels that are no gold intent are empty.
    assert matrix.counts[-2] == matrix.counts[-1] == [0] * len(matrix.labels)
    assert matrix.rates[-1] == [None] * len(matrix.labels)
    reference = confusion_matrix(stress_db, "m")
    assert reference.labels[-1] == "(none)" and "(none)" not in reference.labels[:-1]


def test_perturbations_line_up_and_add_up_to_the_run(stress_db: Path) -> None:
    whole = confusion_matrix(stress_db, "m")
    parts = [confusion_matrix(stress_db, "m", perturbation=p) for p in ("none", "typo", "fragments")]
    assert all(p.labels == whole.labels for p in parts)
    summed = [
        [sum(p.counts[i][j] for p in parts) for j in range(len(whole.labels))]
        for i in range(len(whole.labels))
    ]
    assert summed == whole.counts
    # The existing `confusion` view and function are unchanged by the per-perturbation view.
    flat = confusion(stress_db, "m")
    assert dict(flat) == {
        (g, r): whole.count(g, r) for g in whole.labels for r in whole.labels if whole.count(g, r)
    }


def test_an_unknown_run_or_perturbation_is_empty(stress_db: Path) -> None:
    assert routing(stress_db, "nope") == []
    empty = confusion_matrix(stress_db, "nope")
    assert empty.labels == [] and empty.counts == [] and empty.rates == []
    absent = confusion_matrix(stress_db, "m", perturbation="casing")
    assert absent.labels == confusion_matrix(stress_db, "m").labels
    assert sum(map(sum, absent.counts)) == 0 and all(r is None for row in absent.rates for r in row)
