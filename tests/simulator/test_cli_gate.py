"""`--fail-if` on `botdrill run` and `botdrill gate`: a CI gate with clear messages and exit codes."""

from __future__ import annotations

from pathlib import Path

from ._util import invoke, one_line


def test_a_breached_threshold_exits_one_and_names_it(tmp_path: Path) -> None:
    db = tmp_path / "g.duckdb"
    result = invoke(
        "run", "--db", str(db), "-n", "20", "--perturb", "typo", "--run-id", "g", "-q",
        "--fail-if", "success_rate<1.01", "--fail-if", "success_rate<0",
    )  # fmt: skip
    assert result.exit_code == 1
    err = one_line(result.stderr)
    assert "gate failed: success_rate<1.01: success_rate = " in err
    assert "success_rate<0:" not in err
    # The run is stored all the same, and the gate can be checked again later.
    again = invoke("gate", "--db", str(db), "--run", "g", "--fail-if", "brittleness.typo>1")
    assert again.exit_code == 0, again.stderr
    assert "gate passed" in one_line(again.stderr)
    fails = invoke("gate", "--db", str(db), "--fail-if", "escalation_recall<=1")
    assert fails.exit_code == 1 and "escalation_recall<=1" in one_line(fails.stderr)


def test_a_bad_threshold_is_refused_before_anything_runs(tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"
    result = invoke("run", "--db", str(db), "-n", "5", "-q", "--fail-if", "recall<0.9")
    assert result.exit_code == 2
    assert "unknown metric 'recall'" in one_line(result.stderr)
    assert not db.exists()


def test_gate_on_a_missing_database_or_perturbation(tmp_path: Path) -> None:
    missing = invoke("gate", "--db", str(tmp_path / "none.duckdb"), "--fail-if", "success_rate<0.5")
    assert missing.exit_code == 2 and "no such database" in one_line(missing.stderr)
    db = tmp_path / "g.duckdb"
    assert invoke("run", "--db", str(db), "-n", "5", "--perturb", "none", "-q").exit_code == 0
    result = invoke("gate", "--db", str(db), "--fail-if", "brittleness.typo>0.1")
    assert result.exit_code == 2 and "no perturbation 'typo'" in one_line(result.stderr)
