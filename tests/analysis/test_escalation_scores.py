"""Escalation scores per intent and perturbation: the view agrees with the dialogues it summarises."""

from __future__ import annotations

import statistics
from pathlib import Path

import duckdb
import pytest

from botdrill.analysis import escalation_scores
from botdrill.simulator import RunConfig, run_drill


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("escalation") / "e.duckdb"
    run_drill(RunConfig(db=str(path), n=80, seed=9, run_id="e", perturb="fragments"))
    return path


def _dialogues(db: Path) -> list[tuple[str, str, str, bool, int | None, int | None, bool, float | None]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            """select d.gold_intent, d.perturbation, d.expected_escalation, d.escalated, d.escalation_turn,
                      d.escalation_deadline, d.user_requested_human,
                      (select min(sim_time) from turns t where t.dialogue_id = d.dialogue_id and t.handoff)
               from (select * from dialogues where simulator_fault is null) d"""
        ).fetchall()
    finally:
        con.close()


def test_scores_match_a_recount_of_the_dialogues(db: Path) -> None:
    scores = escalation_scores(db, "e")
    rows = _dialogues(db)
    assert {(s.intent, s.perturbation) for s in scores} == {(r[0], r[1]) for r in rows}
    for s in scores:
        mine = [r for r in rows if r[0] == s.intent and r[1] == s.perturbation]
        must = [r for r in mine if r[2] == "must"]
        assert s.dialogues == len(mine) and s.must_escalate == len(must)
        if must:
            assert s.escalation_recall == pytest.approx(sum(r[3] for r in must) / len(must))
            assert s.on_time_rate == pytest.approx(sum(bool(r[3] and r[4] <= r[5]) for r in must) / len(must))
        else:
            assert s.escalation_recall is None and s.on_time_rate is None
        handed = [r for r in mine if r[3]]
        if handed:
            right = sum(r[2] in ("must", "may") or r[6] for r in handed)
            assert s.escalation_precision == pytest.approx(right / len(handed))
            assert s.mean_turns_to_handoff == pytest.approx(statistics.mean(r[4] for r in handed))
            assert s.mean_seconds_to_handoff == pytest.approx(statistics.mean(r[7] for r in handed))
        else:
            assert s.escalation_precision is None and s.mean_seconds_to_handoff is None
        unasked_never = [r for r in mine if r[2] == "never" and not r[6]]
        if unasked_never:
            assert s.over_escalation_rate == pytest.approx(
                sum(r[3] for r in unasked_never) / len(unasked_never)
            )


def test_critical_intents_come_first_and_are_all_must(db: Path) -> None:
    scores = escalation_scores(db, "e")
    flags = [s.critical for s in scores]
    assert flags == sorted(flags, reverse=True) and any(flags)
    assert all(s.must_escalate == s.dialogues for s in scores if s.critical)


def test_an_unknown_run_has_no_scores(db: Path) -> None:
    assert escalation_scores(db, "nope") == []
