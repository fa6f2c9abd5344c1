"""pass^k over repeated trials agrees with tau-bench's formula applied to a recount of the dialogues."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from botdrill.analysis import PassK, pass_k

Query = Callable[..., list[tuple[Any, ...]]]

_KEY = {"intent": 4, "persona": 5, "perturbation": 3}  # positions in a task tuple


def _tasks(sql: Query, run: str) -> dict[tuple[str, str], list[Any]]:
    """(scenario, variant) -> [trials, successes, variant, perturbation, intent, persona, critical],
    counted from the dialogues the simulated user did not spoil."""
    tasks: dict[tuple[str, str], list[Any]] = {}
    for scenario, variant, perturbation, intent, persona, critical, success in sql(
        "select scenario_id, variant, perturbation, gold_intent, persona, critical, success "
        "from (select * from dialogues where simulator_fault is null) where run_id = ?",
        run,
    ):
        task = tasks.setdefault((scenario, variant), [0, 0, variant, perturbation, intent, persona, critical])
        task[0] += 1
        task[1] += bool(success)
    return tasks


def _pass_k(n: int, c: int, k: int) -> float | None:
    return math.comb(c, k) / math.comb(n, k) if n >= k else None


def test_task_trials_match_the_dialogues(sql: Query) -> None:
    tasks = _tasks(sql, "m")
    rows = sql(
        "select scenario_id, variant, trials, successes, perturbation, gold_intent, persona, critical "
        "from task_trials where run_id = 'm'"
    )
    assert len(rows) == len(tasks) == 40 * 3
    for scenario, variant, trials, successes, perturbation, intent, persona, critical in rows:
        assert [trials, successes, variant, perturbation, intent, persona, critical] == tasks[
            scenario, variant
        ]
    # Every task ran 3 trials; those the simulated user spoilt are not counted.
    planned = Counter(sql("select scenario_id, variant from dialogues where run_id = 'm'"))
    spoilt = Counter(
        sql("select scenario_id, variant from dialogues where run_id = 'm' and simulator_fault is not null")
    )
    assert set(planned.values()) == {3}
    assert {(r[0], r[1]): r[2] for r in rows} == {t: 3 - spoilt[t] for t in planned if spoilt[t] < 3}
    assert {r[2] for r in rows} > {3}  # some tasks lost a trial
    assert sql("select count(*) from task_trials where run_id = 'nope'") == [(0,)]


@pytest.mark.parametrize("dimension", ["intent", "persona", "perturbation", "all"])
def test_pass_k_matches_the_formula_on_a_recount(stress_db: Path, sql: Query, dimension: str) -> None:
    groups: dict[str, list[list[Any]]] = {}
    for task in _tasks(sql, "m").values():
        groups.setdefault(task[_KEY[dimension]] if dimension != "all" else "*", []).append(task)
    rows = pass_k(stress_db, "m", dimension=dimension)  # type: ignore[arg-type]
    assert all(isinstance(r, PassK) and r.dimension == dimension for r in rows)
    assert [r.value for r in rows] == sorted(groups)
    for r in rows:
        tasks = groups[r.value]
        assert (r.tasks, r.trials) == (len(tasks), min(t[0] for t in tasks))
        assert set(r.by_k) == {1, 2, 3, 4}
        for k, value in r.by_k.items():
            each = [_pass_k(t[0], t[1], k) for t in tasks]
            defined = [p for p in each if p is not None]
            if defined:
                assert value == pytest.approx(statistics.fmean(defined), abs=1e-12)
            else:
                assert value is None


def test_the_view_is_exact_per_k(sql: Query) -> None:
    """The SQL products agree with math.comb to the last bit or so, for every group and k."""
    tasks = list(_tasks(sql, "m").values())
    for k, tasks_k, value in sql(
        "select k, tasks, pass_k from pass_k where run_id = 'm' and dimension = 'all' order by k"
    ):
        each = [p for t in tasks if (p := _pass_k(t[0], t[1], k)) is not None]
        assert tasks_k == len(each)
        assert value == (pytest.approx(math.fsum(each) / len(each), rel=1e-14) if each else None)


def test_pass_one_is_the_mean_success_over_tasks_and_pass_k_never_rises(stress_db: Path, sql: Query) -> None:
    tasks = _tasks(sql, "m").values()
    (everything,) = pass_k(stress_db, "m", dimension="all")
    assert everything.by_k[1] == pytest.approx(statistics.fmean(c / n for n, c, *_ in tasks))
    for dimension in ("intent", "persona", "perturbation", "all"):
        for r in pass_k(stress_db, "m", dimension=dimension):  # type: ignore[arg-type]
            defined = [r.by_k[k] for k in (1, 2, 3)]
            assert all(p is not None for p in defined)
            assert defined == sorted(defined, reverse=True)  # type: ignore[type-var]
            assert r.by_k[4] is None  # three trials: pass^4 is undefined
    # The reference bot is not perfectly consistent, so pass^k really falls somewhere.
    assert everything.by_k[3] < everything.by_k[1]  # type: ignore[operator]


def test_one_trial_gives_pass_one_only(stress_db: Path, sql: Query, spoilt: dict[str, int]) -> None:
    ((rate,),) = sql(
        "select avg(success::INTEGER) "
        "from (select * from dialogues where simulator_fault is null) where run_id = 'single'"
    )
    (everything,) = pass_k(stress_db, "single", dimension="all")
    assert everything.trials == 1 and everything.tasks == 15 - spoilt["single"]
    assert everything.by_k == {1: pytest.approx(rate), 2: None, 3: None, 4: None}


def test_an_unknown_run_or_dimension(stress_db: Path) -> None:
    assert pass_k(stress_db, "nope") == []
    with pytest.raises(ValueError, match="dimension"):
        pass_k(stress_db, "m", dimension="scenario")  # type: ignore[arg-type]
