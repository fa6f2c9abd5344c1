"""The dialogue graph in LangGraph: admit -> user -> assistant -> observe -> admit ... -> end.

Every node serves the whole cohort of live dialogues in one super-step, so LangGraph's per-step cost
(a few hundred microseconds) is paid once per turn of the cohort rather than once per turn of each dialogue.
Finished dialogues leave at `admit`, which scores them, hands them to the store and lets new ones join;
the graph ends when no dialogue is left.
"""

from __future__ import annotations

from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph

from ._engine import Engine, LiveDialogue


class CohortState(TypedDict):
    """The graph's state: the dialogues in flight (mutated in place by the nodes)."""

    live: list[LiveDialogue]


def build_graph(engine: Engine) -> Any:
    """Compile the cohort dialogue graph for `engine` (no checkpointer: the store is the record)."""

    # Every node is a coroutine: under `ainvoke`, LangGraph would run a sync node in a worker thread.
    async def admit(state: CohortState) -> CohortState:
        return {"live": engine.admit(state["live"])}

    async def user(state: CohortState) -> None:
        await engine.user_step(state["live"])

    async def assistant(state: CohortState) -> None:
        await engine.assistant_step(state["live"])

    async def observe(state: CohortState) -> None:
        engine.observe(state["live"])

    def more(state: CohortState) -> str:
        return "user" if state["live"] else END

    graph = StateGraph(CohortState)
    graph.add_node("admit", admit)
    graph.add_node("user", user)
    graph.add_node("assistant", assistant)
    graph.add_node("observe", observe)
    graph.add_edge(START, "admit")
    graph.add_conditional_edges("admit", more, ["user", END])
    graph.add_edge("user", "assistant")
    graph.add_edge("assistant", "observe")
    graph.add_edge("observe", "admit")
    return graph.compile(name="botdrill-dialogues")


def step_budget(dialogues: int, cohort: int, max_turns: int) -> int:
    """An upper bound on super-steps for a run, for LangGraph's recursion limit."""
    rounds = (dialogues // max(cohort, 1) + 1) * (max_turns + 2) + max_turns + 2
    return 4 * rounds * 2 + 16
