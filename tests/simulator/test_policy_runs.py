"""`botdrill run --policy`: the same bot and scenarios under two escalation policies, compared in SQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from botdrill.policies import PolicyError
from botdrill.scenarios import QuotaError
from botdrill.simulator import RunConfig, RunMismatchError, run_drill

from ._util import invoke, one_line, query

N = 60


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    db = tmp_path_factory.mktemp("policies") / "p.duckdb"
    result = invoke(
        "run",
        "--db",
        str(db),
        "-n",
        str(N),
        "--seed",
        "3",
        "--target",
        "reference-bare",
        "--perturb",
        "typo",
        "--policy",
        "none",
        "--policy",
        "standard",
        "--run-id",
        "cmp",
        "-q",
    )
    assert result.exit_code == 0, result.stderr
    return db, one_line(result.stdout)


def test_each_policy_is_its_own_run_on_the_same_scenarios(compared: tuple[Path, str]) -> None:
    db, out = compared
    assert query(db, "select run_id, policy, count(*) from dialogues group by all order by 1") == [
        ("cmp-none", "none", 2 * N),
        ("cmp-standard", "standard", 2 * N),
    ]
    # Same seed, same scenarios: the users start the same way under either policy.
    assert query(
        db,
        """select count(*) from dialogues a join dialogues b on a.idx = b.idx
           where a.run_id = 'cmp-none' and b.run_id = 'cmp-standard'
             and (a.persona, a.gold_intent, a.gold_slots::varchar, a.complexity, a.seed)
                 is distinct from (b.persona, b.gold_intent, b.gold_slots::varchar, b.complexity, b.seed)""",
    ) == [(0,)]
    assert "escalation policies on the same scenarios" in out
    assert "cmp-none" in out and "cmp-standard" in out


def test_the_bare_bot_never_hands_off_and_the_policy_does(compared: tuple[Path, str]) -> None:
    db, _ = compared
    rows = dict(
        (r[0], r[1:])
        for r in query(
            db,
            "select policy, escalation_recall, over_escalation_rate, policy_handoffs, dialogues "
            "from run_scores where run_id like 'cmp-%'",
        )
    )
    recall_none, _, by_policy_none, _ = rows["none"]
    recall_std, over_std, by_policy_std, _ = rows["standard"]
    assert recall_none == 0.0 and by_policy_none == 0
    assert recall_std is not None and recall_std > 0.8
    assert by_policy_std > 0 and over_std is not None and over_std < 0.2
    # Every hand-off under `standard` was the policy's, stored with the rule that fired.
    assert query(
        db,
        "select count(*) from dialogues where run_id = 'cmp-standard' and escalated "
        "and (escalation_source <> 'policy' or escalated_by is null)",
    ) == [(0,)]
    rules = {
        r[0] for r in query(db, "select distinct escalated_by from turns where escalated_by is not null")
    }
    assert "critical" in rules and rules <= {"critical", "crisis", "request", "failures", "confidence"}


def test_the_comparison_is_plain_sql(compared: tuple[Path, str]) -> None:
    db, _ = compared
    by_trigger = query(
        db,
        "select policy, trigger, sum(dialogues), sum(on_time) from escalation_triggers "
        "where run_id like 'cmp-%' group by all order by all",
    )
    assert {(p, t) for p, t, _, _ in by_trigger} >= {("none", "intent"), ("standard", "intent")}
    on_time = {(p, t): o for p, t, _, o in by_trigger}
    assert on_time[("none", "intent")] == 0 and on_time[("standard", "intent")] > 0


def test_a_run_resumed_with_another_policy_is_refused(compared: tuple[Path, str]) -> None:
    db, _ = compared
    with pytest.raises(RunMismatchError, match="policy"):
        run_drill(
            RunConfig(
                db=str(db),
                n=N,
                seed=3,
                run_id="cmp-none",
                target="reference-bare",
                perturb="typo",
                policy="critical",
            )
        )


def test_bad_policy_or_quota_fails_before_anything_is_written(tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"
    with pytest.raises(PolicyError, match="wobbly"):
        run_drill(RunConfig(db=str(db), n=5, policy="critical+wobbly"))
    with pytest.raises(QuotaError, match="complexity"):
        run_drill(RunConfig(db=str(db), n=5, complexity="simple:1,twisty:1"))
    assert not db.exists()
    result = invoke("run", "--db", str(db), "-n", "5", "--policy", "critical+wobbly", "-q")
    assert result.exit_code == 2
    assert "wobbly" in result.stderr and not db.exists()


def test_every_policy_is_checked_before_the_first_run(tmp_path: Path) -> None:
    db = tmp_path / "y.duckdb"
    result = invoke("run", "--db", str(db), "-n", "5", "--policy", "none", "--policy", "nope.yaml", "-q")
    assert result.exit_code == 2
    assert "nope.yaml" in result.stderr
    assert not db.exists()


def test_the_bot_says_the_same_things_under_either_run_name(compared: tuple[Path, str]) -> None:
    db, _ = compared
    # Before any hand-off the two runs of a scenario meet the same bot, word for word.
    differ = query(
        db,
        """select count(*) from turns a join dialogues da using (dialogue_id)
           join dialogues db on db.idx = da.idx and db.run_id = 'cmp-standard'
           join turns b on b.dialogue_id = db.dialogue_id and b.turn_idx = a.turn_idx
           where da.run_id = 'cmp-none' and a.speaker = 'assistant' and b.speaker = 'assistant'
             and not coalesce(b.handoff, false) and a.turn_idx <= all (
                 select t.turn_idx from turns t where t.dialogue_id = db.dialogue_id and t.handoff)
             and a.text <> b.text""",
    )
    first = query(
        db,
        """select count(*) from turns a join dialogues da using (dialogue_id)
           join dialogues db on db.idx = da.idx and db.run_id = 'cmp-standard'
           join turns b on b.dialogue_id = db.dialogue_id and b.turn_idx = a.turn_idx
           where da.run_id = 'cmp-none' and a.speaker = 'assistant' and b.speaker = 'assistant'
             and not coalesce(b.handoff, false)""",
    )
    assert first[0][0] > 50 and differ == [(0,)]


def test_long_policy_chains_get_distinct_run_ids() -> None:
    from botdrill.simulator._cli import _slug

    a = _slug("critical+failures:2+crisis+request+confidence:0.5x2")
    b = _slug("critical+failures:2+crisis+request+confidence:0.6x2")
    assert a != b and len(a) <= 30 and len(b) <= 30
