"""Adapters for assistants under test: replies, callables, targets, LangGraph graphs, the handoff judge."""

from __future__ import annotations

import itertools
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import interrupt

from botdrill.agents import Message, ReferenceAssistant, Reply
from botdrill.agents._adapters import (
    Assistant,
    AssistantError,
    AssistantProtocolError,
    BatchAssistant,
    CallableAssistant,
    GraphAssistant,
    TargetError,
    as_assistant,
    coerce_reply,
    describe_raw,
    load_target,
)
from botdrill.agents._judge import judge_handoff
from botdrill.scenarios import BotdrillError

HELLO: list[Message] = [{"role": "user", "content": "hello there"}]


# -- coerce_reply -----------------------------------------------------------------------------------


def test_coerce_str() -> None:
    assert coerce_reply("hi") == Reply(text="hi")


def test_coerce_reply_is_identity() -> None:
    reply = Reply(text="hi", intent="x", handoff=False)
    assert coerce_reply(reply) is reply


def test_coerce_dict_with_labels() -> None:
    reply = coerce_reply(
        {
            "text": "passing you on",
            "intent": "report_fraud",
            "slots": {"amount": 45, "merchant": "Tesco", "date": None},
            "handoff": True,
        }
    )
    assert reply.text == "passing you on"
    assert reply.intent == "report_fraud"
    assert reply.slots == {"amount": "45", "merchant": "Tesco"}  # values as text, unknowns dropped
    assert reply.handoff is True
    assert reply.raw is None


def test_coerce_dict_extra_keys_go_to_raw() -> None:
    reply = coerce_reply({"text": "hi", "score": 0.4, "trace": ["a", "b"]})
    assert reply.raw == {"score": 0.4, "trace": ["a", "b"]}
    assert reply.intent is None and reply.slots is None and reply.handoff is None


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ({"intent": "x"}, "needs a string 'text'"),
        ({"text": 3}, "needs a string 'text'"),
        ({"text": None}, "needs a string 'text'"),
        ({"text": "hi", "handoff": "maybe"}, "'handoff'"),
        ({"text": "hi", "slots": ["amount"]}, "'slots'"),
        ({"text": "hi", "intent": 7}, "'intent'"),
        (42, "got int"),
        (None, "got NoneType"),
        (["hi"], "got list"),
        (b"hi", "got bytes"),
    ],
)
def test_coerce_rejects_non_replies(value: object, needle: str) -> None:
    with pytest.raises(AssistantProtocolError) as info:
        coerce_reply(value)
    assert needle in str(info.value)
    assert isinstance(info.value, AssistantError) and isinstance(info.value, BotdrillError)
    assert info.value.code == "assistant_protocol"


def test_describe_raw() -> None:
    assert describe_raw(None) is None
    assert describe_raw({"a": [1, "é"]}) == '{"a": [1, "é"]}'
    assert describe_raw({"s": {1}}) == '{"s": "{1}"}'
    loop: list[Any] = []
    loop.append(loop)
    assert describe_raw(loop) == '"[[...]]"'


# -- CallableAssistant ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_sync_function_without_thread_id() -> None:
    seen: list[tuple[Any, ...]] = []

    def respond(messages: list[Message]) -> str:
        seen.append((messages,))
        return f"you said {messages[-1]['content']}"

    assistant = CallableAssistant(respond)
    reply = await assistant.respond(HELLO, thread_id="t1")
    assert reply == Reply(text="you said hello there")
    assert seen == [(HELLO,)]
    assert assistant.name.endswith("respond")


@pytest.mark.asyncio
async def test_sync_function_with_thread_id() -> None:
    seen: list[str] = []

    def respond(messages: list[Message], thread_id: str) -> dict[str, Any]:
        seen.append(thread_id)
        return {"text": "ok", "handoff": False}

    reply = await CallableAssistant(respond).respond(HELLO, thread_id="t42")
    assert seen == ["t42"]
    assert reply.handoff is False


@pytest.mark.asyncio
async def test_async_function_with_thread_id() -> None:
    seen: list[str] = []

    async def respond(messages: list[Message], thread_id: str) -> dict[str, Any]:
        seen.append(thread_id)
        return {"text": "async ok", "intent": "check_balance"}

    reply = await CallableAssistant(respond, name="mine").respond(HELLO, thread_id="t7")
    assert seen == ["t7"]
    assert reply.intent == "check_balance"


@pytest.mark.asyncio
async def test_async_function_without_thread_id() -> None:
    async def respond(messages: list[Message]) -> str:
        return "plain"

    assistant = CallableAssistant(respond, name="mine")
    assert assistant.name == "mine"
    assert (await assistant.respond(HELLO, thread_id="t")).text == "plain"


@pytest.mark.asyncio
async def test_kwargs_function_gets_thread_id() -> None:
    seen: dict[str, Any] = {}

    def respond(messages: list[Message], **kwargs: Any) -> str:
        seen.update(kwargs)
        return "ok"

    await CallableAssistant(respond).respond(HELLO, thread_id="t3")
    assert seen == {"thread_id": "t3"}


@pytest.mark.asyncio
async def test_callable_object_with_async_call() -> None:
    class Bot:
        async def __call__(self, messages: list[Message], thread_id: str) -> str:
            return f"{thread_id}:{len(messages)}"

    assert (await CallableAssistant(Bot()).respond(HELLO, thread_id="t9")).text == "t9:1"


@pytest.mark.asyncio
async def test_sync_function_returning_an_awaitable() -> None:
    async def later() -> str:
        return "eventually"

    def respond(messages: list[Message]) -> Any:
        return later()

    assert (await CallableAssistant(respond).respond(HELLO, thread_id="t")).text == "eventually"


@pytest.mark.asyncio
async def test_target_may_mutate_its_copy() -> None:
    def respond(messages: list[dict[str, str]]) -> str:
        messages[-1]["content"] = "changed"
        messages.append({"role": "assistant", "content": "x"})
        return "ok"

    history: list[Message] = [{"role": "user", "content": "original"}]
    await CallableAssistant(respond).respond(history, thread_id="t")
    assert history == [{"role": "user", "content": "original"}]


@pytest.mark.asyncio
async def test_bad_return_value_is_a_protocol_error() -> None:
    with pytest.raises(AssistantProtocolError, match="got int"):
        await CallableAssistant(lambda messages: 42).respond(HELLO, thread_id="t")


# -- load_target ------------------------------------------------------------------------------------

_modules = itertools.count()


@pytest.fixture
def target_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], str]]:
    """Write a module into tmp_path (the current directory, on sys.path) and return its unique name."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    written: list[str] = []

    def write(source: str) -> str:
        name = f"botdrill_test_target_{next(_modules)}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        written.append(name)
        return name

    yield write
    for name in written:
        sys.modules.pop(name, None)


def test_load_target_reference() -> None:
    target = load_target("reference")
    assert isinstance(target, ReferenceAssistant)
    assert isinstance(target, BatchAssistant)
    assert target.name == "reference"


@pytest.mark.asyncio
async def test_load_target_function(target_module: Callable[[str], str]) -> None:
    name = target_module("""
        def respond(messages, thread_id):
            return {"text": "echo: " + messages[-1]["content"], "intent": "check_balance"}
    """)
    target = load_target(f"{name}:respond")
    assert isinstance(target, CallableAssistant)
    assert target.name == f"{name}:respond"
    reply = await target.respond(HELLO, thread_id="t")
    assert reply == Reply(text="echo: hello there", intent="check_balance")


@pytest.mark.asyncio
async def test_load_target_dotted_attribute(target_module: Callable[[str], str]) -> None:
    name = target_module("""
        class Bot:
            @staticmethod
            async def answer(messages):
                return "static"
    """)
    target = load_target(f"{name}:Bot.answer")
    assert (await target.respond(HELLO, thread_id="t")).text == "static"


def test_load_target_assistant_object_is_used_as_is(target_module: Callable[[str], str]) -> None:
    name = target_module("""
        class Bot:
            name = "mine"
            async def respond(self, messages, *, thread_id):
                return "x"
        bot = Bot()
    """)
    target = load_target(f"{name}:bot")
    assert isinstance(target, Assistant)
    assert type(target).__name__ == "Bot"
    assert sys.modules[name].bot is target


def test_load_target_from_the_current_directory_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Only the working directory, not sys.path, knows the module: load_target adds it, as `python -m` would.
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", str(tmp_path))])
    monkeypatch.chdir(tmp_path)
    name = f"botdrill_test_target_{next(_modules)}"
    (tmp_path / f"{name}.py").write_text("def respond(messages):\n    return 'cwd'\n", encoding="utf-8")
    try:
        assert isinstance(load_target(f"{name}:respond"), CallableAssistant)
    finally:
        sys.modules.pop(name, None)


@pytest.mark.parametrize(
    "spec",
    [
        "mybot",
        "mybot:",
        ":respond",
        "my bot:respond",
        "mybot:respond()",
        "1bot:respond",
        "mybot:respond:x",
        "",
        "mybot:resp-ond",
        "../evil:respond",
    ],
)
def test_load_target_malformed_spec(spec: str) -> None:
    with pytest.raises(TargetError, match="module:attribute") as info:
        load_target(spec)
    assert isinstance(info.value, BotdrillError)
    assert info.value.code == "target_invalid"


def test_load_target_missing_module(target_module: Callable[[str], str]) -> None:
    with pytest.raises(TargetError) as info:
        load_target("botdrill_no_such_module_xyz:respond")
    assert "'botdrill_no_such_module_xyz'" in str(info.value)
    assert "could not import" in str(info.value)


def test_load_target_missing_attribute(target_module: Callable[[str], str]) -> None:
    name = target_module("""
        def respond(messages):
            return "x"
        def helper():
            pass
    """)
    with pytest.raises(TargetError) as info:
        load_target(f"{name}:reply")
    message = str(info.value)
    assert "no attribute 'reply'" in message
    assert f"'{name}'" in message
    assert "respond" in message and "helper" in message  # what the module does have


def test_load_target_missing_nested_attribute(target_module: Callable[[str], str]) -> None:
    name = target_module("class Bot:\n    pass\n")
    with pytest.raises(TargetError, match=r"no attribute 'Bot\.respond'"):
        load_target(f"{name}:Bot.respond")


def test_load_target_module_raising_on_import(target_module: Callable[[str], str]) -> None:
    name = target_module("raise RuntimeError('boom at import')\n")
    with pytest.raises(TargetError) as info:
        load_target(f"{name}:respond")
    message = str(info.value)
    assert f"'{name}'" in message
    assert "RuntimeError" in message and "boom at import" in message
    assert isinstance(info.value.__cause__, RuntimeError)


def test_load_target_not_callable(target_module: Callable[[str], str]) -> None:
    name = target_module("answer = 42\n")
    with pytest.raises(TargetError, match="is a int"):
        load_target(f"{name}:answer")


def test_as_assistant() -> None:
    bot = ReferenceAssistant.__new__(ReferenceAssistant)  # no training needed to check the wrapping
    assert as_assistant(bot) is bot
    wrapped = as_assistant(lambda messages: "x", name="fn")
    assert isinstance(wrapped, CallableAssistant) and wrapped.name == "fn"
    with pytest.raises(TargetError, match="expected a callable"):
        as_assistant(42)


# -- GraphAssistant ---------------------------------------------------------------------------------


def _graph(
    *nodes: tuple[str, Callable[..., Any]], state: type = MessagesState, checkpointer: Any = None
) -> Any:
    builder = StateGraph(state)
    previous = START
    for name, fn in nodes:
        builder.add_node(name, fn)
        builder.add_edge(previous, name)
        previous = name
    builder.add_edge(previous, END)
    return builder.compile(checkpointer=checkpointer)


def _hi(state: MessagesState) -> dict[str, Any]:
    return {"messages": [{"role": "assistant", "content": "hi"}]}


def _count(state: MessagesState) -> dict[str, Any]:
    return {"messages": [{"role": "assistant", "content": str(len(state["messages"]))}]}


def _needs_a_person(state: MessagesState) -> dict[str, Any]:
    interrupt({"reason": "needs a person"})
    return {"messages": [{"role": "assistant", "content": "resumed"}]}


@pytest.mark.asyncio
async def test_graph_reply() -> None:
    graph = _graph(("bot", _hi))
    assistant = as_assistant(graph)
    assert isinstance(assistant, GraphAssistant)
    reply = await assistant.respond(HELLO, thread_id="g1")
    assert reply == Reply(text="hi")
    assert GraphAssistant(graph, name="app:graph").name == "app:graph"


@pytest.mark.asyncio
async def test_graph_without_checkpointer_gets_the_whole_conversation() -> None:
    assistant = GraphAssistant(_graph(("count", _count)))
    history: list[Message] = [{"role": "user", "content": "a"}]
    first = await assistant.respond(history, thread_id="g2")
    history += [{"role": "assistant", "content": first.text}, {"role": "user", "content": "b"}]
    second = await assistant.respond(history, thread_id="g2")
    assert (first.text, second.text) == ("1", "3")


@pytest.mark.asyncio
async def test_graph_with_checkpointer_gets_only_the_new_message() -> None:
    assistant = GraphAssistant(_graph(("count", _count), checkpointer=InMemorySaver()))
    history: list[Message] = [{"role": "user", "content": "a"}]
    first = await assistant.respond(history, thread_id="g3")
    history += [{"role": "assistant", "content": "something else"}, {"role": "user", "content": "b"}]
    second = await assistant.respond(history, thread_id="g3")
    # Its own history (u, a) plus the new message: 3. Were the whole conversation resent, it would be 5.
    assert (first.text, second.text) == ("1", "3")
    other = await assistant.respond([{"role": "user", "content": "c"}], thread_id="g3-other")
    assert other.text == "1"  # threads are kept apart by thread_id


@pytest.mark.asyncio
async def test_graph_interrupt_counts_as_handoff() -> None:
    graph = _graph(("bot", _hi), ("human", _needs_a_person), checkpointer=InMemorySaver())
    reply = await GraphAssistant(graph).respond(HELLO, thread_id="g4")
    assert reply.handoff is True
    assert reply.text == "hi"


@pytest.mark.asyncio
async def test_graph_interrupt_first_counts_as_handoff() -> None:
    graph = _graph(("human", _needs_a_person), checkpointer=InMemorySaver())
    reply = await GraphAssistant(graph).respond(HELLO, thread_id="g5")
    assert reply.handoff is True


@pytest.mark.asyncio
async def test_graph_interrupt_first_does_not_echo_the_user() -> None:
    graph = _graph(("human", _needs_a_person), checkpointer=InMemorySaver())
    reply = await GraphAssistant(graph).respond(HELLO, thread_id="g6")
    assert reply.text != HELLO[-1]["content"]


class LabelledState(MessagesState):
    intent: str
    slots: dict[str, Any]
    handoff: bool


def _labelled(state: LabelledState) -> dict[str, Any]:
    blocks = [{"type": "text", "text": "I'm passing you "}, {"type": "text", "text": "to our fraud team."}]
    return {
        "messages": [AIMessage(content=blocks)],
        "intent": "report_fraud",
        "slots": {"amount": 45.5, "merchant": "Tesco"},
        "handoff": True,
    }


@pytest.mark.asyncio
async def test_graph_state_labels_and_content_blocks() -> None:
    graph = _graph(("bot", _labelled), state=LabelledState)
    reply = await GraphAssistant(graph).respond(HELLO, thread_id="g7")
    assert reply.text == "I'm passing you to our fraud team."
    assert reply.intent == "report_fraud"
    assert reply.slots == {"amount": "45.5", "merchant": "Tesco"}
    assert reply.handoff is True


@pytest.mark.asyncio
async def test_graph_output_without_messages_is_a_protocol_error() -> None:
    class Fake:
        checkpointer = None

        async def ainvoke(self, state: Any, config: Any) -> Any:
            return {"answer": "no messages here"}

        def get_graph(self) -> None:
            return None

    with pytest.raises(AssistantProtocolError, match="no 'messages'"):
        await GraphAssistant(Fake()).respond(HELLO, thread_id="g8")


# -- the handoff judge ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "I'm transferring you to our fraud team now.",
        "Let me connect you with a colleague who can help.",
        "I'm connecting you with a member of our team.",
        "I'll put you through to an advisor.",
        "Passing you over to a specialist now.",
        "Handing you over to our team.",
        "connecting you with one of our advisers",
        "Transferring you to a human.",
    ],
)
def test_judge_handoff_positive(text: str) -> None:
    assert judge_handoff(text) is True


@pytest.mark.parametrize(
    "text",
    [
        "I can transfer money to your savings account.",
        "I'm transferring £50 to your savings.",
        "Who would you like to send the money to?",
        "I can connect you to the wifi in branch.",
        "Our team is open 9 to 5.",
        "Is there anything else I can help with?",
        "",
    ],
)
def test_judge_handoff_negative(text: str) -> None:
    assert judge_handoff(text) is False


def test_judge_handoff_member_of_our_support_team() -> None:
    text = (
        "Thank you for telling me. I'm connecting you with a member of our support team right now; you "
        "don't have to deal with this alone."
    )
    assert judge_handoff(text) is True
