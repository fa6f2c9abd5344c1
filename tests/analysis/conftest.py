"""Shared runs for the stress-test metrics, built once per session and only read by the tests.

- `m`: the reference bot, 40 scenarios x (clean, typo, fragments) x 3 trials;
- `odd`: a bot that routes half its dialogues to an intent no user has and never routes the others, and
  exposes an empty slot dict (every slot missing, nothing captured);
- `words`: a bot that exposes nothing but words (no intent, no slots);
- `single`: the reference bot clean only, one trial per task.

Some dialogues are spoilt by the simulated user (`simulator_fault` set) and left out of every score, so a
recount reads `dialogues` without them, and an expected total is the planned count less the spoilt ones.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from botdrill.agents._adapters import as_assistant
from botdrill.simulator import RunConfig, run_drill


def _odd(messages: list[dict[str, str]]) -> dict[str, Any]:
    first = next(m["content"] for m in messages if m["role"] == "user")
    intent = "chit_chat" if zlib.crc32(first.encode()) % 2 else None
    return {"text": "Could you say that again?", "intent": intent, "slots": {}}


def _words(messages: list[dict[str, str]]) -> str:
    return "Could you say that again?"


@pytest.fixture(scope="session")
def stress_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("stress") / "stress.duckdb"
    run_drill(RunConfig(db=str(path), n=40, seed=3, run_id="m", perturb="typo,fragments", trials=3))
    run_drill(
        RunConfig(db=str(path), n=12, seed=4, run_id="odd", perturb="typo", max_turns=4),
        assistant=as_assistant(_odd),
    )
    run_drill(
        RunConfig(db=str(path), n=12, seed=5, run_id="words", perturb="typo", max_turns=4),
        assistant=as_assistant(_words),
    )
    run_drill(RunConfig(db=str(path), n=15, seed=6, run_id="single", perturb="none"))
    return path


Query = Callable[..., list[tuple[Any, ...]]]


@pytest.fixture(scope="session")
def sql(stress_db: Path) -> Query:
    """Rows of a query on the shared database (read-only), for recounts from the raw tables."""

    def run(text: str, *params: Any) -> list[tuple[Any, ...]]:
        con = duckdb.connect(str(stress_db), read_only=True)
        try:
            return con.execute(text, list(params)).fetchall()
        finally:
            con.close()

    return run


@pytest.fixture(scope="session")
def spoilt(sql: Query) -> dict[str, int]:
    """Run -> how many of its dialogues the simulated user spoilt (`simulator_fault` set), counted from the
    raw table: every score leaves them out."""
    counts = sql(
        "select run_id, count(*) filter (where simulator_fault is not null) from dialogues group by run_id"
    )
    return dict(counts)
