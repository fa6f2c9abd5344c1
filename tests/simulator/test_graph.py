"""The LangGraph dialogue graph: its shape, and that it serves every dialogue exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence

import pytest

from botdrill.agents import Message, Reply
from botdrill.scenarios import Pack, sample_scenario
from botdrill.simulator import Engine, build_graph
from botdrill.simulator._engine import Finished
from botdrill.simulator._graph import step_budget
from botdrill.simulator._variants import Job, parse_variants

from ._util import record_turns, transcript_problems


class CountingBatch:
    """A deterministic batch assistant that records the size of every batch it is sent."""

    name = "counting"

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.forgotten: list[str] = []

    def respond_batch(self, requests: Sequence[tuple[str, list[Message]]]) -> list[Reply]:
        self.sizes.append(len(requests))
        replies = []
        for _, messages in requests:
            bot_turns = sum(m["role"] == "assistant" for m in messages)
            if bot_turns < 2:
                replies.append(Reply(text="Could you give me the last four digits of the card?"))
            else:
                replies.append(Reply(text="Passing you to a colleague.", handoff=True))
        return replies

    def forget(self, thread_id: str) -> None:
        self.forgotten.append(thread_id)


def make_engine(
    pack: Pack, n: int, cohort: int, sink: list[Finished], bot: CountingBatch, max_turns: int = 12
) -> Engine:
    return Engine(
        pack=pack,
        run_id="g",
        assistant=bot,
        sink=sink.append,
        cohort=cohort,
        max_turns=max_turns,
        source=(sample_scenario(pack, 3, i) for i in range(n)),
    )


def test_graph_compiles_with_the_four_nodes(pack: Pack) -> None:
    graph = build_graph(make_engine(pack, 1, 1, [], CountingBatch()))
    drawn = graph.get_graph()
    assert set(drawn.nodes) - {"__start__", "__end__"} == {"admit", "user", "assistant", "observe"}
    edges = {(e.source, e.target) for e in drawn.edges}
    assert {
        ("__start__", "admit"),
        ("admit", "user"),
        ("admit", "__end__"),
        ("user", "assistant"),
        ("assistant", "observe"),
        ("observe", "admit"),
    } <= edges
    assert graph.name == "botdrill-dialogues"


@pytest.mark.parametrize(("n", "cohort"), [(25, 4), (10, 1), (7, 64)])
def test_a_small_cohort_serves_every_dialogue_once(pack: Pack, n: int, cohort: int) -> None:
    sink: list[Finished] = []
    bot = CountingBatch()
    engine = make_engine(pack, n, cohort, sink, bot)
    state = asyncio.run(
        build_graph(engine).ainvoke(
            {"live": []}, config={"recursion_limit": step_budget(n, cohort, engine.max_turns)}
        )
    )
    assert state["live"] == []
    ids = Counter(record.dialogue_id for record, _, _ in sink)
    assert sorted(ids) == [f"g-{i:06d}-none" for i in range(n)]
    assert set(ids.values()) == {1}
    assert max(bot.sizes) <= cohort
    assert sorted(bot.forgotten) == sorted(ids)
    for record, turns, checks in sink:
        assert (record.idx, record.pair_id) == (int(record.scenario_id[1:]), record.dialogue_id[:-5])
        assert record.perturbation == "none"
        assert len(turns) == record.user_turns + record.assistant_turns
        assert transcript_problems(record_turns(turns), record.end_reason) == []
        assert record.assistant_turns <= 3
        assert len(checks) == len(record.gold_slots)


def test_jobs_of_every_variant_are_served_once(pack: Pack) -> None:
    variants = parse_variants("fragments:3,typo:1+casing,barge_in:3")
    jobs = [
        Job(sample_scenario(pack, 3, i), variant, i * len(variants) + v)
        for i in range(6)
        for v, variant in enumerate(variants)
    ]
    sink: list[Finished] = []
    bot = CountingBatch()
    engine = Engine(pack=pack, run_id="g", assistant=bot, sink=sink.append, cohort=5, source=iter(jobs))
    state = asyncio.run(
        build_graph(engine).ainvoke({"live": []}, config={"recursion_limit": step_budget(len(jobs), 5, 12)})
    )
    assert state["live"] == []
    by_id = {record.dialogue_id: (record, turns) for record, turns, _ in sink}
    assert len(sink) == len(by_id) == len(jobs)
    assert sorted(bot.forgotten) == sorted(by_id)
    for job in jobs:
        record, turns = by_id[job.dialogue_id("g")]
        assert record.idx == job.idx
        assert record.pair_id == f"g-{job.scenario.index:06d}"
        assert (record.variant, record.perturbation) == (job.variant.name, job.variant.perturbation)
        assert record.scenario_id == job.scenario.id
        assert transcript_problems(record_turns(turns), record.end_reason) == []
    assert sorted(r.dialogue_id for r, _ in by_id.values() if r.perturbation == "none") == [
        f"g-{i:06d}-none" for i in range(6)
    ]
    # Split messages are stored as such: some turn of a fragments:3 dialogue went out in pieces.
    assert any(
        (t.parts or 0) > 1 for r, turns in by_id.values() if r.perturbation == "fragments" for t in turns
    )


def test_graph_and_plain_loop_produce_the_same_dialogues(pack: Pack) -> None:
    via_graph: list[Finished] = []
    engine = make_engine(pack, 30, 5, via_graph, CountingBatch())
    asyncio.run(build_graph(engine).ainvoke({"live": []}, config={"recursion_limit": step_budget(30, 5, 12)}))
    plain: list[Finished] = []
    asyncio.run(make_engine(pack, 30, 5, plain, CountingBatch()).run_plain())

    def key(items: list[Finished]) -> list[tuple[str, str, str]]:
        return sorted((r.dialogue_id, r.transcript_sha256, r.outcome.value) for r, _, _ in items)

    assert len(plain) == 30
    assert key(via_graph) == key(plain)


def test_max_turns_stops_a_dialogue(pack: Pack) -> None:
    class Stubborn(CountingBatch):
        def respond_batch(self, requests: Sequence[tuple[str, list[Message]]]) -> list[Reply]:
            return [Reply(text="Hmm.") for _ in requests]

    sink: list[Finished] = []
    engine = make_engine(pack, 10, 10, sink, Stubborn(), max_turns=1)
    asyncio.run(build_graph(engine).ainvoke({"live": []}, config={"recursion_limit": step_budget(10, 10, 1)}))
    assert len(sink) == 10
    for record, _, _ in sink:
        assert record.assistant_turns == 1
        assert record.end_reason == "max_turns"


def test_step_budget_covers_a_run() -> None:
    assert step_budget(100, 7, 12) > (100 // 7 + 1) * (12 + 2) * 4
    assert step_budget(1, 1, 1) > 4 * 3
