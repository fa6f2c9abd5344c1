"""Brittleness per intent and perturbation agrees with a recount of the paired dialogues, and its
uncertainty is honest: a seeded bootstrap interval around the estimate, McNemar's test, small samples
flagged."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from botdrill.analysis import Brittleness, bootstrap_ci, brittleness, mcnemar_exact

Query = Callable[..., list[tuple[Any, ...]]]


def _pairs(sql: Query, run: str) -> list[tuple[str, str, bool, bool]]:
    """(gold intent, perturbation, clean success, perturbed success) of every perturbed dialogue, matched
    to its clean twin by hand from the dialogues table, in the order of the perturbed dialogues. A pair
    counts only when the simulated user spoilt neither side (`simulator_fault` set on neither)."""
    rows = sql(
        "select pair_id, perturbation, gold_intent, success, dialogue_id, simulator_fault from dialogues "
        "where run_id = ?",
        run,
    )
    clean = {
        pair: (success, fault) for pair, perturbation, _, success, _, fault in rows if perturbation == "none"
    }
    return [
        (intent, perturbation, clean[pair][0], success)
        for pair, perturbation, intent, success, _, fault in sorted(rows, key=lambda r: r[4])
        if perturbation != "none" and fault is None and clean[pair][1] is None
    ]


@pytest.fixture(scope="module")
def rows(stress_db: Path) -> list[Brittleness]:
    return brittleness(stress_db, "m", n_boot=500)


def test_the_view_matches_a_recount_of_the_pairs(rows: list[Brittleness], sql: Query) -> None:
    groups: dict[tuple[str, str], list[tuple[bool, bool]]] = {}
    for intent, perturbation, clean, perturbed in _pairs(sql, "m"):
        groups.setdefault((intent, perturbation), []).append((clean, perturbed))
        groups.setdefault(("*", perturbation), []).append((clean, perturbed))
    assert sorted((r.intent, r.perturbation) for r in rows) == sorted(groups)
    # 40 scenarios x 3 trials were paired under each perturbation; a pair is lost when the simulated user
    # spoilt its clean or its perturbed dialogue.
    spoilt = sql(
        "select pair_id, perturbation from dialogues where run_id = 'm' and simulator_fault is not null"
    )
    for perturbation in ("typo", "fragments"):
        lost = {pair for pair, p in spoilt if p in ("none", perturbation)}
        assert len(groups[("*", perturbation)]) == 40 * 3 - len(lost)
    assert any(p == "none" for _, p in spoilt)  # some pairs lose their clean twin, and are left out
    for r in rows:
        pairs = groups[r.intent, r.perturbation]
        n = len(pairs)
        clean = sum(c for c, _ in pairs)
        perturbed = sum(p for _, p in pairs)
        assert r.pairs == n
        assert r.clean_success_rate == pytest.approx(clean / n)
        assert r.perturbed_success_rate == pytest.approx(perturbed / n)
        assert r.brittleness == pytest.approx((clean - perturbed) / n)
        assert r.broke == sum(c and not p for c, p in pairs)
        assert r.fixed == sum(p and not c for c, p in pairs)
        assert r.p_value == mcnemar_exact(r.broke, r.fixed)


def test_rows_come_per_perturbation_across_intents_first(rows: list[Brittleness]) -> None:
    keys = [(r.perturbation, r.intent != "*", r.intent) for r in rows]
    assert keys == sorted(keys)
    assert [r.intent for r in rows if r.intent == "*"] == ["*", "*"]


def test_fragments_break_the_reference_bot(rows: list[Brittleness]) -> None:
    """A real effect is found: many more pairs break than get fixed, well outside the noise."""
    (total,) = [r for r in rows if r.intent == "*" and r.perturbation == "fragments"]
    assert total.broke > 3 * total.fixed and total.p_value < 0.001
    assert 0 < total.ci_low < total.brittleness < total.ci_high


def test_the_interval_contains_the_estimate_and_is_reproducible(
    rows: list[Brittleness], stress_db: Path, sql: Query
) -> None:
    assert all(r.ci_low <= r.brittleness <= r.ci_high for r in rows)
    assert all(r.confidence == 0.95 for r in rows)
    assert brittleness(stress_db, "m", n_boot=500) == rows
    other = brittleness(stress_db, "m", n_boot=500, seed=1)
    assert [(r.ci_low, r.ci_high) for r in other] != [(r.ci_low, r.ci_high) for r in rows]
    assert [r.brittleness for r in other] == [r.brittleness for r in rows]
    # The interval is the bootstrap of the pairs' differences, in the order of the perturbed dialogues.
    (total,) = [r for r in rows if r.intent == "*" and r.perturbation == "typo"]
    diffs = [int(c) - int(p) for _, perturbation, c, p in _pairs(sql, "m") if perturbation == "typo"]
    assert (total.ci_low, total.ci_high) == bootstrap_ci(diffs, n_boot=500, seed=0)


def test_a_higher_confidence_widens_every_interval(rows: list[Brittleness], stress_db: Path) -> None:
    wide = brittleness(stress_db, "m", n_boot=500, confidence=0.99)
    assert all(w.ci_low <= r.ci_low and r.ci_high <= w.ci_high for w, r in zip(wide, rows, strict=True))
    assert any(w.ci_high - w.ci_low > r.ci_high - r.ci_low for w, r in zip(wide, rows, strict=True))


_DISPLAY = re.compile(r"^-?\d\.\d\d \[-?\d\.\d\d, -?\d\.\d\d\], n=\d+( \(small sample\))?$")


def test_small_samples_are_flagged_and_never_shown_bare(rows: list[Brittleness], stress_db: Path) -> None:
    for r in rows:
        assert r.small == (r.pairs < 30)
        assert _DISPLAY.match(r.display), r.display
        assert r.display.endswith("(small sample)") == r.small
        assert f"n={r.pairs}" in r.display
    # Per intent there are 3 trials of a few scenarios: small; across intents, 120 pairs: not.
    assert all(r.small for r in rows if r.intent != "*")
    assert not any(r.small for r in rows if r.intent == "*")
    assert not any(r.small for r in brittleness(stress_db, "m", n_boot=50, min_pairs=1))
    assert all(r.small for r in brittleness(stress_db, "m", n_boot=50, min_pairs=1000))


def test_display_of_a_known_row() -> None:
    row = Brittleness(
        intent="*",
        perturbation="typo",
        pairs=12,
        clean_success_rate=0.5,
        perturbed_success_rate=0.3,
        brittleness=0.2,
        broke=3,
        fixed=1,
        ci_low=-0.0501,
        ci_high=0.449,
        confidence=0.95,
        p_value=0.625,
        small=True,
    )
    assert row.display == "0.20 [-0.05, 0.45], n=12 (small sample)"
    tiny = Brittleness(**{**row.__dict__, "ci_low": -0.001, "small": False})
    assert tiny.display == "0.20 [0.00, 0.45], n=12"  # no "-0.00"


def test_runs_without_pairs_have_none(stress_db: Path) -> None:
    assert brittleness(stress_db, "nope") == []
    assert brittleness(stress_db, "single") == []  # clean only
