"""Shared helpers for the simulator tests: running the CLI and reading a botdrill database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb

CLI = [sys.executable, "-m", "botdrill.simulator"]


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for a CLI subprocess: wide console (no wrapping), no inherited BOTDRILL_DB."""
    env = dict(os.environ)
    env.pop("BOTDRILL_DB", None)
    env["COLUMNS"] = "400"
    env["NO_COLOR"] = "1"
    env.update(extra)
    return env


def run_cli(
    *args: str, cwd: str | Path | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `botdrill ARGS` to completion and capture its output."""
    return subprocess.run(
        [*CLI, *args],
        cwd=cwd,
        env=env or cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def one_line(text: str) -> str:
    """Collapse whitespace, so assertions do not depend on how a console wrapped a message."""
    return " ".join(text.split())


def query(db: str | Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """Rows of `sql` on a read-only connection that is closed afterwards."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def transcripts(db: str | Path, run_id: str) -> list[tuple[int, int, str, str]]:
    """Every turn of a run as (dialogue idx, turn_idx, speaker, text), in order."""
    return query(
        db,
        """
        select d.idx, t.turn_idx, t.speaker, t.text
        from turns t join dialogues d using (dialogue_id)
        where d.run_id = ? order by d.idx, t.turn_idx""",
        [run_id],
    )


def digests(db: str | Path, run_id: str) -> dict[int, str]:
    """idx -> transcript_sha256 of a run."""
    return dict(
        query(db, "select idx, transcript_sha256 from dialogues where run_id = ? order by idx", [run_id])
    )


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    """Run the `botdrill` app in this process (much faster than a subprocess) and return the click result.

    The result has `exit_code`, `stdout` and `stderr`, kept apart.
    """
    from typer.testing import CliRunner

    from botdrill.simulator._cli import app

    return CliRunner().invoke(
        app, list(args), env={"COLUMNS": "400", "BOTDRILL_DB": None, **(env or {})}, catch_exceptions=False
    )
