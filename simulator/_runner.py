"""Running a drill: resolve names to objects, resume what was started, run the graph, record provenance.

Layers, from the inside out: `Engine` (the steps, no I/O of its own), `build_graph` (LangGraph wiring),
`run_drill` (this module: pack, target, store, resume, progress), the CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import platform
import random
import secrets
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from botdrill.agents._adapters import Assistant, BatchAssistant, load_target
from botdrill.agents._llm import CacheMode
from botdrill.agents._llm_judge import load_judge
from botdrill.agents._llm_store import LLMStore
from botdrill.policies import parse_policy, wrap_with_policy
from botdrill.scenarios import BotdrillError, Pack, Quotas, Sampler, Scenario, load_pack, pack_digest

from ._coverage import coverage_rows
from ._engine import Engine, Finished
from ._graph import build_graph, step_budget
from ._store import Store
from ._variants import Job, Variant, parse_variants

if TYPE_CHECKING:
    from botdrill.agents._llm_user import LLMUser


class RunConfig(BaseModel):
    """Everything that decides what a run produces (stored on the run as JSON)."""

    model_config = ConfigDict(extra="forbid")

    pack: str = "banking"
    """A built-in pack name or a path to a pack YAML file."""
    target: str = "reference"
    """The assistant under test: `reference` or `reference-bare` (built in), `module:attribute`,
    `http:CONFIG.yaml` (a JSON endpoint) or `rasa:URL` (Rasa's REST channel)."""
    db: str = "botdrill.duckdb"
    """The DuckDB file results go to."""
    n: int = Field(default=200, ge=1)
    """How many scenarios the run samples; each runs clean and once per perturbation."""
    trials: int = Field(default=1, ge=1, le=100)
    """How many times each scenario runs under each variant, with fresh random streams for the user, the
    noise and the clock: the repeated trials pass^k is computed over."""
    perturb: str = "default"
    """Comma-separated perturbations, each run on every scenario next to its clean twin: `NAME[:0-3]`,
    chains as `a+b`, `none` for clean runs only, `all` for every one, `default` for the default set."""
    seed: int = 0
    """Same seed and config, same transcripts (with the built-in users and bot)."""
    concurrency: int = Field(default=256, ge=1)
    """Dialogues in flight at once: the cohort each graph step serves."""
    max_turns: int = Field(default=12, ge=1)
    """Assistant turns after which a dialogue stops with `max_turns`."""
    timeout: float = Field(default=30.0, gt=0)
    """Seconds an assistant may take for one reply before it counts as a timeout."""
    critical_share: float = Field(default=0.5, ge=0, le=1)
    """Share of scenarios for the pack's critical intents, split equally among them."""
    intent_quota: str = ""
    """Explicit shares for named intents, `NAME:SHARE,...` (the rest is shared as usual)."""
    complexity: str = "default"
    """Shares of dialogue shapes: `default`, `simple`, or `simple:0.6,turn_into:0.2,two_intents:0.1,
    correction:0.1`."""
    policy: str = "none"
    """Escalation policy wrapped around the assistant: a built-in name (`none`, `critical`, `standard`,
    `cautious`), a chain of rules (`critical+failures:2+crisis`), or a policy YAML file."""
    user: str = "agenda"
    """The simulated user: `agenda` (built in, no model) or `llm:USER.yaml` (an LLM wording the agenda's
    turns, see `botdrill.agents._llm_user`)."""
    judge: str = "rules"
    """Who infers the intent and hand-off a bot does not expose: `rules` or `llm:JUDGE.yaml`."""
    llm_cache: Literal["record", "replay"] = "record"
    """`record`: every LLM call is made and stored in the run's database (`llm_calls`); `replay`: every
    call is answered from that table, with no network at all (a call never recorded is an error)."""
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
    """Dialogues simulated and stored by this call (scenarios x variants)."""
    skipped: int
    """Dialogues already stored by an earlier call with the same run id."""
    seconds: float


SAMPLER = 2
"""Version of the way scenarios are drawn, stored on each run: 2 is the stratified plan with quotas. A run
drawn another way cannot grow, since its next scenarios would come from a different sequence."""


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


def _check_resumable(existing: dict[str, Any], config: RunConfig, digest: str, *, grows: bool) -> None:
    """Refuse to resume a stored run with options that would not reproduce its dialogues."""
    stored_config = json.loads(existing["config"])
    pairs = {
        "seed": (existing["seed"], config.seed),
        "pack_sha256": (existing["pack_sha256"], digest),
        "target": (existing["target"], config.target),
        "max_turns": (existing["max_turns"], config.max_turns),
        "critical_share": (stored_config.get("critical_share"), config.critical_share),
        "perturb": (stored_config.get("perturb", "none"), config.perturb),
        "intent_quota": (stored_config.get("intent_quota", ""), config.intent_quota),
        "complexity": (stored_config.get("complexity", "simple"), config.complexity),
        "policy": (stored_config.get("policy", "none"), config.policy),
        "trials": (stored_config.get("trials", 1), config.trials),
        "user": (stored_config.get("user", "agenda"), config.user),
        "judge": (stored_config.get("judge", "rules"), config.judge),
    }
    differ = {name: pair for name, pair in pairs.items() if pair[0] != pair[1]}
    if not differ and grows and stored_config.get("sampler", 1) != SAMPLER:
        raise RunMismatchError(
            f"run {existing['run_id']!r} in {config.db} was drawn by an earlier sampler (before quotas); "
            "it cannot take more dialogues: start a new run with another --run-id"
        )
    if differ:
        detail = "; ".join(f"{k}: stored {a!r}, given {b!r}" for k, (a, b) in differ.items())
        raise RunMismatchError(
            f"run {existing['run_id']!r} already exists in {config.db} and would not be reproduced "
            f"({detail}); resume it with the same options or pick another --run-id"
        )


def quotas_of(config: RunConfig) -> Quotas:
    """The sampling quotas a run config asks for.

    Raises:
        QuotaError: an unknown complexity or a malformed intent quota.
    """
    return Quotas(
        critical_share=config.critical_share,
        intents=Quotas.parse_intents(config.intent_quota),
        complexity=Quotas.parse_complexity(config.complexity),
    )


async def closing(work: Awaitable[Any], assistant: object, *others: object) -> None:
    """Run `work`, then close the assistant's connections on the same event loop (an HTTP or LLM target
    holds a client per loop; left open, its sockets would outlive the loop). Wrappers are closed through
    their `inner` assistant; `others` (an LLM user, an LLM judge) are closed too."""
    try:
        await work
    finally:
        seen: set[int] = set()
        for item in (assistant, *others):
            while item is not None and id(item) not in seen:
                seen.add(id(item))
                close = getattr(item, "aclose", None)
                if callable(close):
                    await close()
                item = getattr(item, "inner", None)


@contextlib.contextmanager
def _ctrl_c_held() -> Iterator[None]:
    """Hold a Ctrl-C back until the block is done, then raise it as `KeyboardInterrupt`.

    For the store's writes outside the event loop: DuckDB turns a `KeyboardInterrupt` raised inside a
    query into `RuntimeError('Query interrupted')`, and the run would end with a traceback, still marked
    `running`. Inside the loop, asyncio's own handler cancels the run instead. Only the main thread's
    default handler is replaced, as asyncio does: a Ctrl-C the process was started to ignore (a
    background job of a script) stays ignored.
    """
    if threading.current_thread() is not threading.main_thread() or (
        signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    pressed: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: pressed.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if pressed:
        raise KeyboardInterrupt


def load_user(spec: str, pack: Pack) -> LLMUser | None:
    """The simulated user a run asks for: `None` for the agenda user, an `LLMUser` for `llm:USER.yaml`.

    Raises:
        LLMUserConfigError: the spec is neither, or the file is malformed (file, line, field).
    """
    if spec == "agenda":
        return None
    from botdrill.agents._llm_user import load_llm_user

    return load_llm_user(spec, pack)


def attach_llm_store(store: Store, run_id: str, mode: CacheMode, *components: object) -> LLMStore | None:
    """Send every LLM call of `components` (those that make any) through one `LLMStore` on the run's own
    database, recorded or replayed; `None` when none of them calls an LLM."""
    models = [c for c in components if callable(getattr(c, "use_store", None))]
    if not models:
        return None
    llm_store = LLMStore(store.con, run_id=run_id)
    for component in models:
        component.use_store(llm_store, mode)  # type: ignore[attr-defined]
    return llm_store


def trial_scenario(scenario: Scenario, trial: int) -> Scenario:
    """The scenario as run in `trial`: the same person and goal, with its own seed after trial 0."""
    if not trial:
        return scenario
    seed = random.Random(f"botdrill:trial:{scenario.seed}:{trial}").getrandbits(63)
    return scenario.model_copy(update={"seed": seed})


def _jobs(sampler: Sampler, variants: list[Variant], trials: int, todo: list[int]) -> Iterator[Job]:
    """The dialogues still to run, in index order: scenario by scenario, clean first, then each variant,
    each in every trial."""
    per = len(variants) * trials
    scenario = None
    for idx in todo:
        i, rest = divmod(idx, per)
        v, t = divmod(rest, trials)
        if scenario is None or scenario.index != i:
            scenario = sampler.scenario(i)
        yield Job(trial_scenario(scenario, t), variants[v], idx, t)


def run_drill(
    config: RunConfig,
    *,
    on_progress: Callable[[int, int], None] | None = None,
    assistant: Assistant | BatchAssistant | None = None,
) -> RunResult:
    """Simulate `config.n` scenarios, each clean and once per perturbation, and store them.

    A run id that exists is resumed: dialogues already stored are skipped.

    Args:
        config: what to run.
        on_progress: called with `(done, total)` as dialogues finish (for a progress bar).
        assistant: an already-built assistant, instead of loading `config.target` (for library use).

    Raises:
        ScenarioError: the pack is invalid (nothing is written).
        TargetError: the target cannot be loaded (nothing is written).
        PerturbationSpecError: `config.perturb` names an unknown perturbation (nothing is written).
        QuotaError: `config.complexity` or `config.intent_quota` cannot be read (nothing is written).
        PolicyError: `config.policy` cannot be read (nothing is written).
        RunMismatchError: the run id exists with a different seed, pack, target, turn limit, quotas,
            perturbations or policy.
        StoreError: the database cannot be opened.
    """
    started = time.perf_counter()
    pack = load_pack(config.pack)
    digest = pack_digest(config.pack)
    variants = parse_variants(config.perturb)
    sampler = Sampler(pack, config.seed, quotas_of(config))
    policy = parse_policy(config.policy)
    total = config.n * len(variants) * config.trials
    inner = assistant if assistant is not None else load_target(config.target)
    llm_user = load_user(config.user, pack)
    judge = load_judge(config.judge, pack)
    bot = wrap_with_policy(inner, policy, pack)
    run_id = config.run_id or new_run_id()
    bind = getattr(inner, "bind_run", None)
    if callable(bind):
        bind(run_id)
    store = Store(config.db)
    llm_store: LLMStore | None = None
    try:
        llm_store = attach_llm_store(store, run_id, config.llm_cache, inner, llm_user, judge)
        existing = store.get_run(run_id)
        done = store.finished_indexes(run_id)
        todo = [i for i in range(total) if i not in done]
        if existing is not None:
            _check_resumable(existing, config, digest, grows=bool(todo))
        stored_config = config.model_dump(exclude={"db"}) | {"run_id": run_id, "sampler": SAMPLER}
        versions = _versions() | {
            "assistant": getattr(inner, "name", type(inner).__name__),
            "policy": policy.name,
            "user": llm_user.name if llm_user is not None else "agenda",
            "judge": judge.name,
        }
        skipped = total - len(todo)
        finished = 0

        def sink(item: Finished) -> None:
            nonlocal finished
            store.add(item)
            finished += 1
            if on_progress is not None:
                on_progress(skipped + finished, total)

        engine = Engine(
            pack=pack,
            run_id=run_id,
            assistant=bot,
            sink=sink,
            cohort=config.concurrency,
            max_turns=config.max_turns,
            timeout=config.timeout,
            modelled_latency=bool(getattr(bot, "modelled_latency", False)),
            policy=policy.name,
            llm_user=llm_user,
            judge=judge,
            # Sampled lazily, so a long run holds only its cohort in memory.
            source=_jobs(sampler, variants, config.trials, todo),
        )
        try:  # from the moment the run is marked running, a Ctrl-C ends it as interrupted
            with _ctrl_c_held():
                store.start_run(
                    {
                        "run_id": run_id,
                        "pack": pack.name,
                        "pack_version": pack.version,
                        "pack_sha256": digest,
                        "target": config.target,
                        "seed": config.seed,
                        "n_dialogues": max(total, len(done)),
                        "max_turns": config.max_turns,
                        "concurrency": config.concurrency,
                        "config": stored_config,
                        "versions": versions,
                    }
                )
            if on_progress is not None:
                on_progress(skipped, total)
            if config.loop == "plain":
                asyncio.run(closing(engine.run_plain(), bot, llm_user, judge))
            else:
                graph = build_graph(engine)
                limit = step_budget(len(todo), config.concurrency, config.max_turns)
                work = graph.ainvoke({"live": []}, config={"recursion_limit": limit})
                asyncio.run(closing(work, bot, llm_user, judge))
        except BaseException:
            with _ctrl_c_held():  # a second Ctrl-C must not cut this short
                if llm_store is not None:
                    llm_store.flush()
                store.flush()  # keep every dialogue that finished before the interruption
                store.end_run(run_id, "interrupted")
            raise
        # Every dialogue is simulated: a Ctrl-C now lets the run be recorded as finished, then ends the call.
        with _ctrl_c_held():
            if llm_store is not None:
                llm_store.flush()
            store.flush()
            if existing is None or json.loads(existing["config"]).get("sampler", 1) == SAMPLER:
                store.replace_coverage(
                    run_id,
                    coverage_rows(
                        store.con, run_id, pack, sampler, config.n, [v.name for v in variants], config.trials
                    ),
                )
            store.end_run(run_id, "finished")
    finally:
        if llm_store is not None:
            llm_store.close()
        store.close()
    return RunResult(
        run_id=run_id,
        db=str(Path(config.db)),
        simulated=finished,
        skipped=skipped,
        seconds=time.perf_counter() - started,
    )
