"""Release-gate thresholds: parsing, and values that agree with a recount of the stored dialogues."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from botdrill.analysis import GateError, check, metric_names, metric_value, parse_threshold
from botdrill.simulator import RunConfig, run_drill


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gate") / "g.duckdb"
    run_drill(RunConfig(db=str(path), n=40, seed=8, run_id="g", perturb="typo", trials=2))
    return path


def _one(db: Path, sql: str) -> object:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchone()[0]  # type: ignore[index]
    finally:
        con.close()


@pytest.mark.parametrize(
    ("text", "metric", "op", "value"),
    [
        ("escalation_recall<0.95", "escalation_recall", "<", 0.95),
        (" brittleness.typo > .1 ", "brittleness.typo", ">", 0.1),
        ("pass^2<=0.5", "pass^2", "<=", 0.5),
        ("success_rate.report_fraud!=1", "success_rate.report_fraud", "!=", 1.0),
        ("brittleness.filler+casing>=0.2", "brittleness.filler+casing", ">=", 0.2),
    ],
)
def test_thresholds_are_read(text: str, metric: str, op: str, value: float) -> None:
    t = parse_threshold(text)
    assert (t.metric, t.op, t.value) == (metric, op, value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("escalation_recall", "METRIC OP NUMBER"),
        ("escalation_recall<<0.9", "METRIC OP NUMBER"),
        ("recall<0.9", "unknown metric 'recall'"),
        ("brittleness<0.1", "unknown metric 'brittleness'"),
        ("pass^5<0.1", "METRIC OP NUMBER"),
        ("success_rate<abc", "METRIC OP NUMBER"),
    ],
)
def test_bad_thresholds_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(GateError, match=message.replace("^", r"\^")):
        parse_threshold(text)
    assert "escalation_recall" in metric_names()


def test_values_agree_with_a_recount(db: Path) -> None:
    scored = "from dialogues where run_id = 'g' and simulator_fault is null"
    assert metric_value(db, "g", "success_rate") == pytest.approx(
        _one(db, f"select avg(success::int) {scored}")
    )
    must = _one(
        db,
        f"select count(*) filter (where escalated)::double / count(*) {scored} "
        "and expected_escalation = 'must' and gold_intent = 'report_fraud'",
    )
    assert metric_value(db, "g", "escalation_recall.report_fraud") == pytest.approx(must)
    brittle = _one(
        db,
        "select avg(clean_success::int) - avg(perturbed_success::int) from pairs where run_id = 'g'",
    )
    assert metric_value(db, "g", "brittleness.typo") == pytest.approx(brittle, abs=0.02)
    assert metric_value(db, "g", "simulator_faults") == _one(
        db, "select count(*) from dialogues where run_id = 'g' and simulator_fault is not null"
    )
    pass1 = metric_value(db, "g", "pass^1")
    pass2 = metric_value(db, "g", "pass^2")
    assert pass1 is not None and pass2 is not None and pass2 <= pass1


def test_a_breach_is_a_comparison_that_holds(db: Path) -> None:
    success = metric_value(db, "g", "success_rate")
    assert success is not None
    above, below = (
        parse_threshold(f"success_rate<{success + 0.01}"),
        parse_threshold(f"success_rate<{success - 0.01}"),
    )
    breaches = check(db, "g", [above, below])
    assert [b.threshold for b in breaches] == [above]
    assert "success_rate = " in str(breaches[0]) and "'g'" in str(breaches[0])


def test_a_metric_that_cannot_be_computed_breaches(db: Path, tmp_path: Path) -> None:
    single = tmp_path / "one.duckdb"
    run_drill(RunConfig(db=str(single), n=10, seed=1, run_id="one", perturb="none"))
    (breach,) = check(single, "one", [parse_threshold("pass^2<0.5")])
    assert breach.actual is None and "cannot be computed" in str(breach)


def test_unknown_runs_intents_and_perturbations_are_errors(db: Path) -> None:
    with pytest.raises(GateError, match="no run 'nope'"):
        metric_value(db, "nope", "success_rate")
    with pytest.raises(GateError, match="no perturbation 'filler'"):
        metric_value(db, "g", "brittleness.filler")
    with pytest.raises(GateError, match="no intent 'not_an_intent'"):
        metric_value(db, "g", "success_rate.not_an_intent")
