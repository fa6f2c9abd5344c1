"""Bad input through the CLI: exit status 2, one clear message, nothing written."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from botdrill.scenarios import builtin_packs

from ._util import invoke, one_line, run_cli


def _banking_text() -> str:
    assert "banking" in builtin_packs()
    return resources.files("botdrill.scenarios").joinpath("packs", "banking.yaml").read_text(encoding="utf-8")


@pytest.mark.slow
def test_a_pack_with_an_error_names_file_and_line_and_writes_nothing(tmp_path: Path) -> None:
    lines = _banking_text().splitlines(keepends=True)
    bad = next(i for i, line in enumerate(lines) if line.strip() == "within_turns: 3")
    lines[bad] = lines[bad].replace("within_turns: 3", "within_turns: 0")
    pack_file = tmp_path / "broken.yaml"
    pack_file.write_text("".join(lines))
    db = tmp_path / "out.duckdb"
    proc = run_cli("run", str(pack_file), "--db", str(db), "-n", "5", cwd=tmp_path)
    assert proc.returncode == 2
    message = one_line(proc.stderr)
    assert f"{pack_file}:{bad + 1}" in message
    assert "within_turns" in message
    assert "Traceback" not in proc.stderr
    assert not db.exists()
    assert list(tmp_path.iterdir()) == [pack_file]


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    text = _banking_text()
    pack_file = tmp_path / "broken.yaml"
    pack_file.write_text(text.replace('version: "1.0"', 'version: ["1.0"', 1))
    db = tmp_path / "out.duckdb"
    result = invoke("run", str(pack_file), "--db", str(db), "-n", "5")
    assert result.exit_code == 2
    message = one_line(result.stderr)
    assert f"{pack_file}:" in message
    assert "YAML" in message
    assert not db.exists()


def test_an_unknown_pack_is_named(tmp_path: Path) -> None:
    db = tmp_path / "out.duckdb"
    result = invoke("run", "no_such_pack", "--db", str(db), "-n", "5")
    assert result.exit_code == 2
    message = one_line(result.stderr)
    assert "no_such_pack" in message
    assert "banking" in message  # lists the built-in packs
    assert not db.exists()


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("nosuchmodule_xyz:fn", ["nosuchmodule_xyz", "could not import"]),
        ("not a target", ["not of the form 'module:attribute'"]),
        ("justamodule", ["not of the form"]),
        ("os:path.no_such_function", ["has no attribute", "'path.no_such_function'"]),
        ("math:pi", ["is a float"]),
    ],
)
def test_a_bad_target_exits_2_and_writes_nothing(tmp_path: Path, target: str, words: list[str]) -> None:
    db = tmp_path / "out.duckdb"
    result = invoke("run", "--target", target, "--db", str(db), "-n", "5")
    assert result.exit_code == 2, result.stderr
    message = one_line(result.stderr)
    assert message.startswith("error:")
    for word in words:
        assert word in message
    assert not db.exists()


def test_a_target_module_that_raises_on_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "explodingbot_mod.py").write_text("raise ImportError('missing dependency: frobnicate')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    result = invoke("run", "--target", "explodingbot_mod:respond", "--db", "out.duckdb", "-n", "5")
    assert result.exit_code == 2
    message = one_line(result.stderr)
    assert "explodingbot_mod" in message
    assert "frobnicate" in message
    assert not (tmp_path / "out.duckdb").exists()


@pytest.mark.parametrize(
    ("args", "word"),
    [
        (["--run-id", "bad id!"], "--run-id"),
        (["--timeout", "0"], "--timeout"),
        (["-n", "0"], "-n"),
        (["--concurrency", "0"], "concurrency"),
        (["--max-turns", "0"], "max-turns"),
    ],
)
def test_bad_options_exit_2(tmp_path: Path, args: list[str], word: str) -> None:
    db = tmp_path / "out.duckdb"
    result = invoke("run", "--db", str(db), *args)
    assert result.exit_code == 2
    assert word in result.stderr
    assert not db.exists()


def test_run_into_an_in_memory_database_does_not_crash() -> None:
    result = invoke("run", "--db", ":memory:", "-n", "3")
    assert result.exit_code in (0, 2)
    assert "Traceback" not in result.stderr


def test_an_error_is_one_line_whatever_the_console_width(tmp_path: Path) -> None:
    missing = tmp_path / ("a-rather-long-folder-name-" * 3) / "results.duckdb"
    result = invoke("sql", "--db", str(missing), "select 1", env={"COLUMNS": "80"})
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0
    assert str(missing) in result.stderr
