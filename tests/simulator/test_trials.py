"""`--trials`: each scenario and variant repeated with fresh random streams, trial 0 as drawn."""

from __future__ import annotations

from pathlib import Path

import pytest

from botdrill.simulator import RunConfig, RunMismatchError, run_drill

from ._util import query


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("trials") / "t.duckdb"
    run_drill(RunConfig(db=str(path), n=12, seed=5, run_id="t", perturb="typo", trials=3))
    return path


def test_every_scenario_and_variant_runs_in_every_trial(db: Path) -> None:
    assert query(db, "select count(*), count(distinct (scenario_id, variant, trial)) from dialogues") == [
        (12 * 2 * 3, 12 * 2 * 3)
    ]
    assert query(db, "select list(distinct trial order by trial) from dialogues") == [([0, 1, 2],)]
    # Pairs stay within a trial: a perturbed dialogue's clean twin is the same trial's.
    assert query(
        db,
        "select count(*) from pairs p join dialogues c on c.dialogue_id = p.clean_dialogue_id "
        "where c.trial <> p.trial",
    ) == [(0,)]
    assert query(db, "select count(*) from pairs") == [(12 * 3,)]


def test_trials_are_the_same_person_and_goal_with_their_own_randomness(db: Path) -> None:
    assert query(
        db,
        "select count(*) from (select scenario_id from dialogues group by scenario_id "
        "having count(distinct (persona, gold_intent, gold_slots::varchar, complexity)) > 1)",
    ) == [(0,)]
    seeds, transcripts = query(
        db,
        "select count(distinct seed), count(distinct transcript_sha256) from dialogues "
        "where perturbation = 'none'",
    )[0]
    assert seeds == 12 * 3
    assert transcripts > 12  # the users' own choices differ between trials


def test_trial_zero_is_the_run_without_trials(db: Path, tmp_path: Path) -> None:
    single = tmp_path / "one.duckdb"
    run_drill(RunConfig(db=str(single), n=12, seed=5, run_id="t", perturb="typo"))
    sql = "select dialogue_id, transcript_sha256 from dialogues where trial = 0 order by dialogue_id"
    assert query(db, sql) == query(single, sql)


def test_resuming_with_other_trials_is_refused(db: Path) -> None:
    with pytest.raises(RunMismatchError, match="trials"):
        run_drill(RunConfig(db=str(db), n=12, seed=5, run_id="t", perturb="typo", trials=2))


def test_coverage_counts_scenarios_once_and_dialogues_per_trial(db: Path) -> None:
    assert query(db, "select sum(dialogues), sum(planned) from coverage where level = 'intent'") == [(12, 12)]
    assert query(
        db, "select sum(dialogues), bool_and(filled) from coverage where level = 'intent_perturbation'"
    ) == [(12 * 2 * 3, True)]
