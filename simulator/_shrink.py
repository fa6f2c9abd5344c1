"""Failure shrinking: the smallest set of a failing dialogue's edits that still fails, found by re-running.

A perturbed dialogue failed; which of its typos, fillers and breaks made it fail? `shrink_dialogue`
re-simulates it against the live assistant (the same scenario, variant, trial, seeds and policy as the
stored run) with only some of its text edits allowed, and narrows them down with delta debugging (Zeller's
ddmin): split the edits into chunks, keep a chunk or drop one while the dialogue still fails with the same
outcome, refine until no single edit can go. The result is 1-minimal: removing any one remaining edit
makes the failure go away.

Edits are identified by position: (user turn number from 1, attempt within the turn from 0), the order the
seeded perturbations attempt them in. A left-out edit never happens, so the text is what it would have been
without it. Once a change alters an assistant reply, later turns may differ from the original; ddmin only
needs the test to be repeatable, which it is (every run is seeded). Dialogue-level noise (a barge-in, a
topic switch) is not an edit and stays as it was; such a dialogue shrinks to its dialogue noise alone.

The minimal dialogue is stored under the run `<run_id>:shrunk` (so it counts in no score of the run), and
the `shrinks` table links it to the original with the counts before and after and the re-runs it took.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from botdrill.agents._adapters import Assistant, BatchAssistant, load_target
from botdrill.agents._llm_judge import load_judge
from botdrill.policies import parse_policy, wrap_with_policy
from botdrill.scenarios import BotdrillError, Sampler, load_pack

from ._engine import Engine, Finished
from ._runner import RunConfig, attach_llm_store, closing, load_user, quotas_of, trial_scenario
from ._store import Store
from ._variants import Job, parse_variants

Unit = tuple[int, int]


class ShrinkError(BotdrillError):
    """A dialogue cannot be shrunk: unknown, not a failure, clean, or its run cannot be re-created."""

    code = "shrink_invalid"


@dataclass(frozen=True)
class ShrinkResult:
    """What shrinking one dialogue found."""

    dialogue_id: str
    outcome: str
    """The failure kept while shrinking (the original dialogue's outcome)."""
    reproduced: bool
    """Whether re-running the dialogue with every edit gave the stored transcript again."""
    edits_before: int
    edits_after: int
    tests: int
    """Re-runs of the dialogue it took."""
    shrunk_dialogue_id: str | None
    """The stored minimal dialogue, or None when the failure did not reproduce."""
    kept: tuple[Unit, ...]
    """The edits of the minimal dialogue."""


def ddmin(
    units: list[Unit], fails: Callable[[list[Unit]], bool], *, max_tests: int = 200
) -> tuple[list[Unit], int]:
    """Zeller's ddmin: a 1-minimal subset of `units` on which `fails` holds (it holds on all of them).

    Returns the subset and the number of tests run; stops early, with the smallest failing subset so far,
    after `max_tests`.
    """
    tests = 0
    cache: dict[tuple[Unit, ...], bool] = {}

    def test(subset: list[Unit]) -> bool:
        nonlocal tests
        key = tuple(subset)
        if key not in cache:
            if tests >= max_tests:  # out of budget: no more reductions
                return False
            tests += 1
            cache[key] = fails(subset)
        return cache[key]

    current, n = list(units), 2
    while len(current) >= 2 and tests < max_tests:
        size = -(-len(current) // n)
        chunks = [current[i : i + size] for i in range(0, len(current), size)]
        for chunk in chunks:  # reduce to a chunk
            if test(chunk):
                current, n = chunk, 2
                break
        else:
            for chunk in chunks:  # reduce to a complement
                rest = [u for u in current if u not in chunk]
                if len(chunks) > 2 and test(rest):
                    current, n = rest, max(n - 1, 2)
                    break
            else:
                if n >= len(current):
                    break
                n = min(len(current), 2 * n)
    if len(current) == 1 and tests < max_tests and test([]):
        current = []
    return current, tests


class _Replayer:
    """Re-simulates one stored dialogue of a run with a chosen subset of its edits."""

    def __init__(
        self,
        config: RunConfig,
        run_id: str,
        idx: int,
        assistant: Assistant | BatchAssistant | None,
        store: Store | None = None,
    ) -> None:
        self.config = config
        self.pack = load_pack(config.pack)
        variants = parse_variants(config.perturb)
        per = len(variants) * config.trials
        i, rest = divmod(idx, per)
        v, t = divmod(rest, config.trials)
        sampler = Sampler(self.pack, config.seed, quotas_of(config))
        self.job = Job(trial_scenario(sampler.scenario(i), t), variants[v], idx, t)
        inner = assistant if assistant is not None else load_target(config.target)
        self.shrunk_run = f"{run_id}:shrunk"
        bind = getattr(inner, "bind_run", None)
        if callable(bind):
            bind(self.shrunk_run)
        policy = parse_policy(config.policy)
        self.policy = policy.name
        self.bot = wrap_with_policy(inner, policy, self.pack)
        self.user = load_user(config.user, self.pack)
        self.judge = load_judge(config.judge, self.pack)
        # LLM calls are answered from the run's record, never made again: the full re-run reproduces the
        # stored dialogue, and a subset of edits that changes what a model is asked ends that re-run with
        # `LLMReplayMiss` (so it does not count as reproducing the failure).
        if store is not None:
            attach_llm_store(store, self.shrunk_run, "replay", inner, self.user, self.judge)

    def run(self, keep: frozenset[Unit] | None) -> tuple[Finished, dict[int, int]]:
        out: list[Finished] = []
        job = Job(self.job.scenario, self.job.variant, self.job.idx, self.job.trial, keep)
        engine = Engine(
            pack=self.pack,
            run_id=self.shrunk_run,
            assistant=self.bot,
            sink=out.append,
            cohort=1,
            max_turns=self.config.max_turns,
            timeout=self.config.timeout,
            modelled_latency=bool(getattr(self.bot, "modelled_latency", False)),
            policy=self.policy,
            count_edits=True,
            llm_user=self.user,
            judge=self.judge,
            source=iter([job]),
        )
        asyncio.run(closing(engine.run_plain(), self.bot, self.user, self.judge))
        (finished,) = out
        return finished, engine.attempts.get(finished[0].dialogue_id, {})


def shrink_dialogue(
    store: Store,
    run_id: str,
    dialogue_id: str,
    *,
    assistant: Assistant | BatchAssistant | None = None,
    max_tests: int = 200,
) -> ShrinkResult:
    """Shrink one failing perturbed dialogue of a stored run and store the minimal one (see module doc).

    Raises:
        ShrinkError: no such dialogue in the run, a clean or successful one, or one a simulator fault spoilt.
    """
    run = store.get_run(run_id)
    if run is None:
        raise ShrinkError(f"no run {run_id!r} in {store.path}")
    row = store.con.execute(
        "select idx, perturbation, outcome, success, simulator_fault, transcript_sha256 from dialogues "
        "where run_id = ? and dialogue_id = ?",
        [run_id, dialogue_id],
    ).fetchone()
    if row is None:
        raise ShrinkError(f"run {run_id!r} has no dialogue {dialogue_id!r}")
    idx, perturbation, outcome, success, fault, digest = row
    if perturbation == "none":
        raise ShrinkError(f"{dialogue_id} is a clean dialogue: it has no edits to shrink")
    if success:
        raise ShrinkError(f"{dialogue_id} succeeded: there is no failure to shrink")
    if fault is not None:
        raise ShrinkError(f"{dialogue_id} was spoilt by the simulated user ({fault}), not the assistant")
    stored = {k: v for k, v in json.loads(run["config"]).items() if k in RunConfig.model_fields}
    config = RunConfig.model_validate(stored | {"db": str(store.path)})
    replay = _Replayer(config, run_id, idx, assistant, store)

    full, attempts = replay.run(None)
    units = [(n, j) for n, count in sorted(attempts.items()) for j in range(count)]
    reproduced = full[0].transcript_sha256 == digest

    def fails(subset: list[Unit]) -> bool:
        finished, _ = replay.run(frozenset(subset))
        return bool(str(finished[0].outcome) == outcome)

    if str(full[0].outcome) != outcome:
        result = ShrinkResult(dialogue_id, outcome, reproduced, len(units), len(units), 1, None, tuple(units))
        store.add_shrink(run_id, result, None)
        return result
    kept, tests = ddmin(units, fails, max_tests=max_tests)
    minimal, _ = replay.run(frozenset(kept))
    result = ShrinkResult(
        dialogue_id,
        outcome,
        reproduced,
        len(units),
        len(kept),
        tests + 2,
        minimal[0].dialogue_id,
        tuple(kept),
    )
    store.add_shrink(run_id, result, minimal)
    return result


def failing_dialogues(store: Store, run_id: str, limit: int | None = None) -> list[str]:
    """The run's dialogues that a perturbation broke: they failed while their clean twin succeeded (and
    no simulated-user fault spoilt either side), in index order."""
    sql = (
        "select p.perturbed_dialogue_id from pairs p "
        "join dialogues d on d.dialogue_id = p.perturbed_dialogue_id "
        "where p.run_id = ? and p.clean_success and not p.perturbed_success order by d.idx"
    )
    rows: list[Any] = store.con.execute(sql + (f" limit {int(limit)}" if limit else ""), [run_id]).fetchall()
    return [r[0] for r in rows]


def shrink_dialogues(
    store: Store,
    run_id: str,
    dialogue_ids: list[str],
    *,
    assistant: Assistant | BatchAssistant | None = None,
    max_tests: int = 200,
) -> Iterator[ShrinkResult]:
    """Shrink several dialogues of one run, loading the run's assistant once (see `shrink_dialogue`)."""
    if assistant is None and dialogue_ids:
        run = store.get_run(run_id)
        if run is None:
            raise ShrinkError(f"no run {run_id!r} in {store.path}")
        assistant = load_target(run["target"])
    for dialogue_id in dialogue_ids:
        yield shrink_dialogue(store, run_id, dialogue_id, assistant=assistant, max_tests=max_tests)
