"""Running a drill: resolve names to objects, resume what was started, run the graph, record provenance.

Layers, from the inside out: `Engine` (the steps, no I/O of its own), `build_graph` (LangGraph wiring),
`run_drill` (this module: pack, target, store, resume, progress), the CLI.
"""

from __future__ import annotations

import asyncio
import json
import platform
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from botdrill.agents._adapters import Assistant, BatchAssistant, load_target
from botdrill.scenarios import BotdrillError, load_pack, pack_digest, sample_scenario

from ._engine import Engine, Finished
from ._graph import build_graph, step_budget
from ._store import Store


class RunConfig(BaseModel):
    """Everything that decides what a run produces (stored on the run as JSON)."""

    model_config = ConfigDict(extra="forbid")

    pack: str = "banking"
    """A built-in pack name or a path to a pack YAML file."""
    target: str = "reference"
    """`reference` for the built-in bot, or `module:attribute` naming the assistant under test."""
    db: str = "botdrill.duckdb"
    """The DuckDB file results go to."""
    n: int = Field(default=200, ge=1)
    """How many dialogues the run holds."""
    seed: int = 0
    """Same seed and config, same transcripts (with the built-in users and bot)."""
    concurrency: int = Field(default=256, ge=1)
    """Dialogues in flight at once: the cohort each graph step serves."""
    max_turns: int = Field(default=12, ge=1)
    """Assistant turns after which a dialogue stops with `max_turns`."""
    timeout: float = Field(default=30.0, gt=0)
    """Seconds an assistant may take for one reply before it counts as a timeout."""
    critical_share: float = Field(default=0.5, ge=0, le=1)
    """Share of dialogues drawn from the pack's critical intents."""
    run_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
    """Name of the run; re-using one resumes it. Generated when not given."""
    loop: Literal["graph", "plain"] = "graph"
    """`graph` runs the LangGraph dialogue graph; `plain` the same steps in a bare loop (benchmarks)."""


@dataclass
class RunResult:
    """What a call to `run_drill` did."""

    run_id: str
    db: str
    simulated: int
    """Dialogues simulated and stored by this call."""
    skipped: int
    """Dialogues already stored by an earlier call with the same run id."""
    seconds: float


class RunMismatchError(BotdrillError):
    """A run id was re-used with options that would not reproduce the stored run."""

    code = "run_mismatch"


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in (
        "botdrill",
        "langgraph",
        "langchain-openai",
        "duckdb",
        "pydantic",
        "scikit-learn",
        "numpy",
        "pyarrow",
    ):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def new_run_id() -> str:
    """A fresh run id: UTC time plus a random suffix, readable and sortable."""
    return datetime.now(UTC).strftime("run-%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def _check_resumable(existing: dict[str, Any], config: RunConfig, digest: str) -> None:
    """Refuse to resume a stored run with options that would not reproduce its dialogues."""
    stored_config = json.loads(existing["config"])
    pairs = {
        "seed": (existing["seed"], config.seed),
        "pack_sha256": (existing["pack_sha256"], digest),
        "target": (existing["target"], config.target),
        "max_turns": (existing["max_turns"], config.max_turns),
        "critical_share": (stored_config.get("critical_share"), config.critical_share),
    }
    differ = {name: pair for name, pair in pairs.items() if pair[0] != pair[1]}
    if differ:
        detail = "; ".join(f"{k}: stored {a!r}, given {b!r}" for k, (a, b) in differ.items())
        raise RunMismatchError(
            f"run {existing['run_id']!r} already exists in {config.db} and would not be reproduced "
            f"({detail}); resume it with the same options or pick another --run-id"
        )


def run_drill(
    config: RunConfig,
    *,
    on_progress: Callable[[int, int], None] | None = None,
    assistant: Assistant | BatchAssistant | None = None,
) -> RunResult:
    """Simulate `config.n` dialogues and store them; resume if the run id exists.

    Args:
        config: what to run.
        on_progress: called with `(done, total)` as dialogues finish (for a progress bar).
        assistant: an already-built assistant, instead of loading `config.target` (for library use).

    Raises:
        ScenarioError: the pack is invalid (nothing is written).
        TargetError: the target cannot be loaded (nothing is written).
        RunMismatchError: the run id exists with a different seed, pack, target, turn limit or
            critical share.
        StoreError: the database cannot be opened.
    """
    started = time.perf_counter()
    pack = load_pack(config.pack)
    digest = pack_digest(config.pack)
    bot = assistant if assistant is not None else load_target(config.target)
    run_id = config.run_id or new_run_id()
    store = Store(config.db)
    try:
        existing = store.get_run(run_id)
        if existing is not None:
            _check_resumable(existing, config, digest)
        done = store.finished_indexes(run_id)
        todo = [i for i in range(config.n) if i not in done]
        stored_config = config.model_dump(exclude={"db"}) | {"run_id": run_id}
        store.start_run(
            {
                "run_id": run_id,
                "pack": pack.name,
                "pack_version": pack.version,
                "pack_sha256": digest,
                "target": config.target,
                "seed": config.seed,
                "n_dialogues": max(config.n, len(done)),
                "max_turns": config.max_turns,
                "concurrency": config.concurrency,
                "config": stored_config,
                "versions": _versions() | {"assistant": getattr(bot, "name", type(bot).__name__)},
            }
        )
        skipped = config.n - len(todo)
        finished = 0

        def sink(item: Finished) -> None:
            nonlocal finished
            store.add(item)
            finished += 1
            if on_progress is not None:
                on_progress(skipped + finished, config.n)

        engine = Engine(
            pack=pack,
            run_id=run_id,
            assistant=bot,
            sink=sink,
            cohort=config.concurrency,
            max_turns=config.max_turns,
            timeout=config.timeout,
            modelled_latency=bool(getattr(bot, "modelled_latency", False)),
            # Sampled lazily, so a long run holds only its cohort in memory.
            source=(
                sample_scenario(pack, config.seed, i, critical_share=config.critical_share) for i in todo
            ),
        )
        if on_progress is not None:
            on_progress(skipped, config.n)
        try:
            if config.loop == "plain":
                asyncio.run(engine.run_plain())
            else:
                graph = build_graph(engine)
                limit = step_budget(len(todo), config.concurrency, config.max_turns)
                asyncio.run(graph.ainvoke({"live": []}, config={"recursion_limit": limit}))
        except BaseException:
            store.flush()  # keep every dialogue that finished before the interruption
            store.end_run(run_id, "interrupted")
            raise
        store.flush()
        store.end_run(run_id, "finished")
    finally:
        store.close()
    return RunResult(
        run_id=run_id,
        db=str(Path(config.db)),
        simulated=finished,
        skipped=skipped,
        seconds=time.perf_counter() - started,
    )
