"""`botdrill report`: a run's HTML report written to a file, with thresholds; errors exit 2 with one line."""

from __future__ import annotations

from pathlib import Path

import pytest

import botdrill.simulator._cli_report  # noqa: F401  (registers the command on the app)
from botdrill.simulator import RunConfig, run_drill

from ._util import invoke, one_line


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli-report") / "r.duckdb"
    run_drill(RunConfig(db=str(path), n=10, seed=5, run_id="first", perturb="typo"))
    run_drill(RunConfig(db=str(path), n=10, seed=6, run_id="second", perturb="typo", trials=2))
    result = invoke("capacity", "--db", str(path), "--run", "second", "--agents", "2")
    assert result.exit_code == 0, result.stderr
    return path


def test_report_writes_one_html_file(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = invoke("report", "--db", str(db), "--out", str(out))
    assert result.exit_code == 0, result.stderr
    text = one_line(result.stdout)
    assert f"Wrote the report of run second to {out}" in text
    assert "thresholds" in text and "dialogues in full" in text
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page.lower()
    assert 'data-key="capacity:all:contacts"' in page  # the latest run, with its capacity simulation
    assert 'id="passk"' in page and "pass_k:*:2" in page


def test_report_of_a_named_run_with_thresholds(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "first.html"
    result = invoke(
        "report",
        "--db",
        str(db),
        "--run",
        "first",
        "-o",
        str(out),
        "--threshold",
        "success_rate<0",
        "--threshold",
        "brittleness.typo>2",
    )
    assert result.exit_code == 0, result.stderr
    page = out.read_text(encoding="utf-8")
    assert "success_rate&lt;0<" in page and "brittleness.typo&gt;2" in page
    assert "success_rate&lt;0.8" not in page and "escalation_recall&lt;0.95" in page
    assert "botdrill capacity --run first" in page and "run with" in page


def test_the_database_can_come_from_the_environment(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "env.html"
    result = invoke("report", "--out", str(out), "--run", "first", env={"BOTDRILL_DB": str(db)})
    assert result.exit_code == 0, result.stderr
    assert out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--run", "nope"], "no run 'nope' in the database"),
        (["--threshold", "speed>3"], "--threshold 'speed>3': unknown metric 'speed'"),
        (["--threshold", "success_rate.no_such_intent<0.5"], "has no intent 'no_such_intent'"),
    ],
)
def test_errors_exit_2_with_one_line(db: Path, tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "never.html"
    result = invoke("report", "--db", str(db), "--out", str(out), *args)
    assert result.exit_code == 2
    assert message in one_line(result.stderr)
    assert not out.exists() and result.stdout == ""


def test_a_missing_database_or_folder_exits_2(db: Path, tmp_path: Path) -> None:
    result = invoke("report", "--db", str(tmp_path / "none.duckdb"), "--out", str(tmp_path / "r.html"))
    assert result.exit_code == 2 and "no such database" in result.stderr
    result = invoke("report", "--db", str(db), "--out", str(tmp_path / "missing" / "r.html"))
    assert result.exit_code == 2 and "cannot write the report" in one_line(result.stderr)
