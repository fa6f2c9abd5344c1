"""Slot precision, recall and completeness agree with a recount of the slot checks."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from botdrill.analysis import SlotScore, slot_scores

Query = Callable[..., list[tuple[Any, ...]]]

_DIMS = ("intent", "slot", "perturbation")
_SPLITS = [combo for r in range(4) for combo in itertools.combinations(_DIMS, r)]


def _checks(sql: Query, run: str) -> list[tuple[str, str, str, str]]:
    """(gold intent, slot, perturbation, status) of every slot check of `run`'s scored dialogues."""
    return sql(
        "select d.gold_intent, s.slot, d.perturbation, s.status from slot_checks s "
        "join (select * from dialogues where simulator_fault is null) d on d.dialogue_id = s.dialogue_id "
        "where s.run_id = ?",
        run,
    )


def _ratio(num: int, den: int) -> float | None:
    return None if den == 0 else num / den


@pytest.mark.parametrize("by", _SPLITS)
@pytest.mark.parametrize("run", ["m", "odd", "words"])
def test_slot_scores_match_a_recount(stress_db: Path, sql: Query, run: str, by: tuple[str, ...]) -> None:
    groups: dict[tuple[str, ...], list[str]] = {}
    for check in _checks(sql, run):
        key = tuple(v if d in by else "*" for d, v in zip(_DIMS, check[:3], strict=True))
        groups.setdefault(key, []).append(check[3])
    rows = slot_scores(stress_db, run, by=by)
    assert rows and all(isinstance(r, SlotScore) for r in rows)
    assert sorted((r.intent, r.slot, r.perturbation) for r in rows) == sorted(groups)
    for r in rows:
        statuses = groups[r.intent, r.slot, r.perturbation]
        n = {s: statuses.count(s) for s in ("correct", "wrong", "missing", "not_exposed")}
        exposed = len(statuses) - n["not_exposed"]
        assert (r.gold, r.exposed, r.correct, r.wrong, r.missing) == (
            len(statuses),
            exposed,
            n["correct"],
            n["wrong"],
            n["missing"],
        )
        assert r.correct + r.wrong + r.missing == r.exposed
        assert r.precision == pytest.approx(_ratio(n["correct"], n["correct"] + n["wrong"]))
        assert r.recall == pytest.approx(_ratio(n["correct"], exposed))
        assert r.completeness == pytest.approx(_ratio(n["correct"] + n["wrong"], exposed))


def test_every_gold_slot_is_checked_once(stress_db: Path, sql: Query) -> None:
    """`gold` counts the gold slots the dialogues carried, whatever the assistant did."""
    ((expected,),) = sql(
        "select sum(cardinality(gold_slots)) "
        "from (select * from dialogues where simulator_fault is null) where run_id = 'm'"
    )
    (total,) = slot_scores(stress_db, "m", by=())
    assert total.gold == expected > 0
    assert 0 < total.precision < 1 and 0 < total.recall < total.completeness <= 1  # type: ignore[operator]


def test_the_flag_splits_by_perturbation(stress_db: Path) -> None:
    assert slot_scores(stress_db, "m", by_perturbation=True) == slot_scores(
        stress_db, "m", by=("intent", "slot", "perturbation")
    )
    plain = slot_scores(stress_db, "m")
    assert {r.perturbation for r in plain} == {"*"}
    assert {r.perturbation for r in slot_scores(stress_db, "m", by_perturbation=True)} == {
        "none",
        "typo",
        "fragments",
    }
    assert [(r.intent, r.slot) for r in plain] == sorted((r.intent, r.slot) for r in plain)


def test_undefined_ratios_are_none(stress_db: Path) -> None:
    """A bot that exposes no slots cannot be judged; one that captures nothing has no precision."""
    (words,) = slot_scores(stress_db, "words", by=())
    assert words.gold > 0 and words.exposed == 0
    assert words.precision is None and words.recall is None and words.completeness is None
    (odd,) = slot_scores(stress_db, "odd", by=())
    assert odd.exposed == odd.missing == odd.gold > 0
    assert odd.precision is None and odd.recall == 0.0 and odd.completeness == 0.0


def test_an_unknown_run_has_no_scores(stress_db: Path) -> None:
    assert slot_scores(stress_db, "nope") == []
    assert slot_scores(stress_db, "nope", by=()) == []
    with pytest.raises(ValueError, match="persona"):
        slot_scores(stress_db, "m", by=("persona",))
