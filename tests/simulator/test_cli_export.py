"""`botdrill export`: a run's transcripts written as training data, and one-line errors that write nothing."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import duckdb
import pytest
import yaml

import botdrill.simulator._cli_export  # noqa: F401  (registers the command)
from botdrill.simulator import RunConfig, run_drill

from ._util import invoke, one_line, query


@pytest.fixture(scope="module")
def drilled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("export") / "e.duckdb"
    run_drill(RunConfig(db=str(db), n=30, seed=2, run_id="x", perturb="typo,fragments"))
    return db


def test_export_writes_every_dialogue_of_the_latest_run(drilled: Path, tmp_path: Path) -> None:
    out = tmp_path / "train.jsonl"
    result = invoke("export", "--format", "hf", "--db", str(drilled), "--out", str(out))
    assert result.exit_code == 0, result.stderr
    lines = out.read_text(encoding="utf-8").splitlines()
    (n,) = query(drilled, "select count(*) from dialogues where run_id = 'x'")[0]
    assert len(lines) == n
    assert {json.loads(line)["run_id"] for line in lines} == {"x"}
    (spans,) = query(drilled, "select count(*) from turns t, unnest(t.gold_slots) where speaker = 'user'")[0]
    assert one_line(result.stdout) == (
        f"Wrote {n} conversations from {n} dialogues of run x to {out} (hf, {spans} slot spans)."
    )
    assert result.stderr == ""


def test_filters_and_short_options(drilled: Path, tmp_path: Path) -> None:
    (intent,) = query(
        drilled,
        "select gold_intent from dialogues where run_id = 'x' group by 1 order by count(*) desc, 1 limit 1",
    )[0]
    out = tmp_path / "f.csv"
    result = invoke(
        "export", "-f", "csv", "--db", str(drilled), "-o", str(out), "--run", "x",
        "--intent", intent, "--intent", "no_such_intent",
        "--perturbation", "none", "--perturbation", "fragments",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    with open(out, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    (n,) = query(
        drilled,
        "select count(*) from turns t join dialogues d using (dialogue_id) where d.run_id = 'x' "
        "and d.gold_intent = ? and d.perturbation in ('none', 'fragments') and t.speaker = 'user' "
        "and t.text <> ''",
        [intent],
    )[0]
    assert len(rows) == n > 0
    assert {r["perturbation"] for r in rows} <= {"none", "fragments"}
    assert f"Wrote {n} rows" in one_line(result.stdout)


def test_rasa_and_openai_files_are_valid(drilled: Path, tmp_path: Path) -> None:
    nlu = tmp_path / "nlu.yml"
    result = invoke("export", "--format", "rasa", "--db", str(drilled), "--out", str(nlu))
    assert result.exit_code == 0, result.stderr
    data = yaml.safe_load(nlu.read_text(encoding="utf-8"))
    assert data["version"] == "3.1" and all(block["examples"].startswith("- ") for block in data["nlu"])
    chat = tmp_path / "chat.jsonl"
    result = invoke("export", "--format", "openai", "--db", str(drilled), "--out", str(chat))
    assert result.exit_code == 0, result.stderr
    for line in chat.read_text(encoding="utf-8").splitlines():
        messages = json.loads(line)["messages"]
        assert messages[0]["role"] == "system" and messages[-1]["role"] == "assistant"


def test_dialogues_without_replies_are_reported(drilled: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.duckdb"
    shutil.copy(drilled, copy)
    con = duckdb.connect(str(copy))
    try:
        con.execute(
            "update turns set text = '' where speaker = 'assistant' and dialogue_id = "
            "(select dialogue_id from dialogues order by idx limit 1)"
        )
    finally:
        con.close()
    out = tmp_path / "chat.jsonl"
    result = invoke("export", "--format", "openai", "--db", str(copy), "--out", str(out))
    assert result.exit_code == 0, result.stderr
    assert one_line(result.stderr) == "1 matching dialogue left out: no assistant reply"
    (n,) = query(copy, "select count(*) from dialogues")[0]
    assert len(out.read_text(encoding="utf-8").splitlines()) == n - 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--run", "nope"], "no run 'nope'"),
        (
            ["--intent", "no_such", "--outcome", "success"],
            "no dialogues in run 'x' match --intent no_such --outcome success",
        ),
        (["--outcome", "winning"], "--outcome 'winning' is not an outcome"),
        (["--format", "xml"], "unknown export format 'xml'; one of: openai, hf, rasa, csv"),
    ],
)
def test_bad_options_exit_2_and_write_nothing(
    drilled: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "o.jsonl"
    result = invoke("export", "--format", "hf", "--db", str(drilled), "--out", str(out), *args)
    assert result.exit_code == 2
    assert one_line(result.stderr).startswith(f"error: {message}")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_and_missing_database(drilled: Path, tmp_path: Path) -> None:
    result = invoke("export", "-f", "hf", "--db", str(drilled), "--out", str(tmp_path / "no" / "o.jsonl"))
    assert result.exit_code == 2
    assert one_line(result.stderr).startswith(f"error: {tmp_path / 'no' / 'o.jsonl'}: cannot write")
    result = invoke("export", "-f", "hf", "--db", str(drilled), "--out", str(drilled))
    assert result.exit_code == 2
    assert "is the database itself" in one_line(result.stderr)
    assert query(drilled, "select count(*) from dialogues")[0][0] > 0
    result = invoke("export", "-f", "hf", "--db", str(tmp_path / "none.duckdb"), "--out", str(tmp_path / "o"))
    assert result.exit_code == 2
    assert (
        one_line(result.stderr)
        == f"error: {tmp_path / 'none.duckdb'}: no such database; `botdrill run` creates it"
    )
    assert list(tmp_path.iterdir()) == []


def test_format_and_out_are_required(drilled: Path, tmp_path: Path) -> None:
    result = invoke("export", "--db", str(drilled), "--out", str(tmp_path / "o"))
    assert result.exit_code == 2
    assert "--format" in result.stderr
    result = invoke("export", "--db", str(drilled), "--format", "csv")
    assert result.exit_code == 2
    assert "--out" in result.stderr
    assert list(tmp_path.iterdir()) == []
