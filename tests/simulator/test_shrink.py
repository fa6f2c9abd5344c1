"""Failure shrinking: ddmin on its own, and on stored dialogues re-run against the live assistant."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from botdrill.simulator import RunConfig, run_drill
from botdrill.simulator._shrink import ShrinkError, ddmin, failing_dialogues, shrink_dialogue
from botdrill.simulator._store import Store

from ._util import invoke, one_line, query

UNITS = [(n, j) for n in range(1, 5) for j in range(4)]


def test_ddmin_finds_the_edits_that_matter_together() -> None:
    culprits = {(2, 1), (4, 3)}
    kept, tests = ddmin(UNITS, lambda s: culprits <= set(s))
    assert set(kept) == culprits
    assert 0 < tests < 60


def test_ddmin_with_a_failure_that_needs_no_edit_keeps_none() -> None:
    kept, _ = ddmin(UNITS, lambda s: True)
    assert kept == []


def test_ddmin_stops_after_its_budget() -> None:
    calls: list[int] = []

    def fails(subset: list[tuple[int, int]]) -> bool:
        calls.append(len(subset))
        return {(1, 0), (2, 2), (3, 1), (4, 0)} <= set(subset)

    _, tests = ddmin(UNITS, fails, max_tests=5)
    assert tests <= 5 and len(calls) == tests


@settings(max_examples=60, deadline=None)
@given(culprits=st.sets(st.sampled_from(UNITS), min_size=1, max_size=4))
def test_ddmin_result_is_one_minimal(culprits: set[tuple[int, int]]) -> None:
    def fails(subset: list[tuple[int, int]]) -> bool:
        return culprits <= set(subset)

    kept, _ = ddmin(UNITS, fails)
    assert fails(kept)
    for unit in kept:  # no single edit can go
        assert not fails([u for u in kept if u != unit])


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("shrink") / "s.duckdb"
    run_drill(RunConfig(db=str(path), n=40, seed=4, run_id="s", perturb="typo:3,fragments,filler:3"))
    return path


def test_a_failing_dialogue_shrinks_to_fewer_edits_that_still_fail(db: Path) -> None:
    store = Store(db)
    try:
        ids = failing_dialogues(store, "s")
        assert ids
        results = [shrink_dialogue(store, "s", d) for d in ids[:6]]
    finally:
        store.close()
    assert all(r.reproduced for r in results)  # the built-in bot and users are deterministic
    shrunk = [r for r in results if r.shrunk_dialogue_id]
    assert shrunk and all(r.edits_after <= r.edits_before for r in shrunk)
    assert any(r.edits_after < r.edits_before for r in shrunk)
    # Stored: the minimal dialogue fails the same way, and counts in no score of the original run.
    rows = query(
        db,
        """select s.outcome, d.outcome, d.run_id, s.edits_after
           from shrinks s join dialogues d on d.dialogue_id = s.shrunk_dialogue_id
           where s.run_id = 's'""",
    )
    assert len(rows) == len(shrunk)
    assert all(a == b and run == "s:shrunk" for a, b, run, _ in rows)
    assert query(db, "select count(*) from dialogues where run_id = 's'") == [(40 * 4,)]
    assert query(db, "select status from runs where run_id = 's:shrunk'") == [("shrunk",)]


def test_clean_successful_and_unknown_dialogues_are_refused(db: Path) -> None:
    clean = query(
        db, "select dialogue_id from dialogues where run_id = 's' and perturbation = 'none' limit 1"
    )
    ok = query(
        db,
        "select dialogue_id from dialogues where run_id = 's' and perturbation <> 'none' and success limit 1",
    )
    store = Store(db)
    try:
        with pytest.raises(ShrinkError, match="clean dialogue"):
            shrink_dialogue(store, "s", clean[0][0])
        with pytest.raises(ShrinkError, match="succeeded"):
            shrink_dialogue(store, "s", ok[0][0])
        with pytest.raises(ShrinkError, match="no dialogue"):
            shrink_dialogue(store, "s", "s-999999-typo3")
    finally:
        store.close()


def test_the_cli_shrinks_and_prints(db: Path) -> None:
    result = invoke("shrink", "--db", str(db), "--run", "s", "--all-failures", "--limit", "2")
    assert result.exit_code == 0, result.stderr
    out = one_line(result.stdout)
    assert "s:shrunk-" in out and "re-runs" in out
    bad = invoke("shrink", "--db", str(db), "--run", "s")
    assert bad.exit_code == 2 and "--all-failures" in one_line(bad.stderr)
