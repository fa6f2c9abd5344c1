"""`botdrill capacity`: a run's hand-offs fed to a simulated human team, results in DuckDB."""

from __future__ import annotations

from pathlib import Path

import pytest

from botdrill.simulator import RunConfig, run_drill

from ._util import invoke, one_line, query


@pytest.fixture(scope="module")
def drilled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("capacity") / "c.duckdb"
    run_drill(RunConfig(db=str(db), n=60, seed=2, run_id="c", perturb="typo"))
    return db


def test_capacity_prints_and_stores_every_scope(drilled: Path) -> None:
    result = invoke(
        "capacity", "--db", str(drilled), "--agents", "3", "--surge", "report_fraud:10x@13:00-14:00"
    )
    assert result.exit_code == 0, result.stderr
    out = one_line(result.stdout)
    assert "Human team for run c: 3 agents" in out
    assert "critical:" in out and "agent utilisation" in out
    rows = query(
        drilled, "select scope, handed_off, served + abandoned + unanswered, utilisation from capacity"
    )
    scopes = {r[0] for r in rows}
    assert {"all", "critical", "normal"} <= scopes
    assert any(s.startswith("intent:report_fraud") for s in scopes)
    for scope, handed, accounted, utilisation in rows:
        assert handed == accounted  # everyone handed off is served, gives up or is left waiting
        assert (utilisation is not None) == (scope == "all")
    # The stored config says what produced the figures.
    (config,) = {r[0] for r in query(drilled, "select config::varchar from capacity")}
    assert '"report_fraud"' in config and '"seed": 0' in config


def test_more_agents_shorter_waits(drilled: Path) -> None:
    waits = []
    for agents in ("1", "6"):
        result = invoke("capacity", "--db", str(drilled), "--agents", agents, "--arrivals-per-hour", "200")
        assert result.exit_code == 0, result.stderr
        (wait,) = query(
            drilled,
            "select wait_mean_s from capacity where scope = 'all' "
            "order by created_at desc, capacity_id desc limit 1",
        )[0]
        waits.append(wait)
    assert waits[1] < waits[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--surge", "fraud:10x@18:00-19:00"], "after the 8 h shift"),
        (["--surge", "report_fraud@13:00"], "surge"),
        (["--shift", "9-5"], "--shift: '9-5' is not HH:MM-HH:MM"),
        (["--run", "nope"], "no run 'nope'"),
    ],
)
def test_bad_options_exit_2_with_a_reason(drilled: Path, args: list[str], message: str) -> None:
    before = query(drilled, "select count(*) from capacity") if _has_capacity(drilled) else [(0,)]
    result = invoke("capacity", "--db", str(drilled), *args)
    assert result.exit_code == 2
    assert message in one_line(result.stderr)
    assert (query(drilled, "select count(*) from capacity") if _has_capacity(drilled) else [(0,)]) == before


def test_a_missing_database_exits_2(tmp_path: Path) -> None:
    result = invoke("capacity", "--db", str(tmp_path / "none.duckdb"))
    assert result.exit_code == 2
    assert "no such database" in one_line(result.stderr)


def _has_capacity(db: Path) -> bool:
    return bool(
        query(db, "select count(*) from information_schema.tables where table_name = 'capacity'")[0][0]
    )
