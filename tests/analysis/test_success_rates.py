"""Task success per intent, persona and perturbation agrees with a recount of the dialogues."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from botdrill.analysis import SuccessRate, intent_summary, success_rates

Query = Callable[..., list[tuple[Any, ...]]]

_DIMS = ("intent", "persona", "perturbation")
_SPLITS = [combo for r in range(4) for combo in itertools.combinations(_DIMS, r)]


@pytest.mark.parametrize("by", _SPLITS)
def test_success_rates_match_a_recount(
    stress_db: Path, sql: Query, spoilt: dict[str, int], by: tuple[str, ...]
) -> None:
    groups: dict[tuple[str, ...], list[bool]] = {}
    for *values, success in sql(
        "select gold_intent, persona, perturbation, success "
        "from (select * from dialogues where simulator_fault is null) where run_id = 'm'"
    ):
        key = tuple(v if d in by else "*" for d, v in zip(_DIMS, values, strict=True))
        groups.setdefault(key, []).append(success)
    rows = success_rates(stress_db, "m", by=by)
    assert all(isinstance(r, SuccessRate) for r in rows)
    assert sorted((r.intent, r.persona, r.perturbation) for r in rows) == sorted(groups)
    for r in rows:
        outcomes = groups[r.intent, r.persona, r.perturbation]
        assert (r.dialogues, r.successes) == (len(outcomes), sum(outcomes))
        assert r.rate == pytest.approx(sum(outcomes) / len(outcomes))
    # Every planned dialogue was stored, and each one the simulated user did not spoil is counted once.
    assert sql("select count(*) from dialogues where run_id = 'm'") == [(40 * 3 * 3,)]
    assert spoilt["m"] > 0  # the run has spoilt dialogues, so leaving them out is really tested
    assert sum(r.dialogues for r in rows) == 40 * 3 * 3 - spoilt["m"]


def test_per_intent_rates_agree_with_intent_summary(stress_db: Path) -> None:
    assert {r.intent: r.rate for r in success_rates(stress_db, "m")} == {
        s.intent: pytest.approx(s.success_rate) for s in intent_summary(stress_db, "m")
    }


def test_a_single_name_splits_by_it_and_a_clean_row_comes_first(stress_db: Path) -> None:
    rows = success_rates(stress_db, "m", by="perturbation")
    assert [r.perturbation for r in rows] == ["none", "fragments", "typo"]
    assert all(r.intent == r.persona == "*" for r in rows)


def test_an_unknown_run_or_split(stress_db: Path) -> None:
    assert success_rates(stress_db, "nope") == []
    assert success_rates(stress_db, "nope", by=()) == []
    with pytest.raises(ValueError, match="slot"):
        success_rates(stress_db, "m", by=("slot",))
