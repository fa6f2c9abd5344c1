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
    assert sorted(ids) == [f"g-{i:06d}" for i in range(n)]
    assert set(ids.values()) == {1}
    assert max(bot.sizes) <= cohort
    assert sorted(bot.forgotten) == sorted(ids)
    for record, turns, checks in sink:
        assert len(turns) == record.user_turns + record.assistant_turns
        assert [t.turn_idx for t in turns] == list(range(len(turns)))
        assert record.assistant_turns <= 3
        assert len(checks) == len(record.gold_slots)


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
