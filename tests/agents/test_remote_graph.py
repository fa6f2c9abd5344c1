"""The `langgraph:` adapter: a graph deployed on a LangGraph server, through the real `RemoteGraph`, against
a loopback server that speaks the LangGraph Platform API."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from _langgraph_server import INTERRUPT_TEXT, FakeLangGraph

from botdrill.agents import Message
from botdrill.agents._adapters import (
    Assistant,
    AssistantError,
    AssistantProtocolError,
    AssistantTimeout,
    GraphAssistant,
    TargetError,
    graph_reply,
    load_target,
)
from botdrill.agents._http_adapters import AdapterConfigError, AssistantHTTPError
from botdrill.agents._remote_graph import (
    THREAD_NAMESPACE,
    RemoteGraphAssistant,
    load_remote_graph_config,
    load_remote_graph_target,
)
from botdrill.scenarios._errors import LocatedError

TOKEN = "lg-5ecret-key-42"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback requests must not go through a proxy configured in the environment."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server() -> Iterator[FakeLangGraph]:
    with FakeLangGraph(lifetime=60) as fake:
        yield fake


def convo(*texts: str) -> list[Message]:
    """Alternating user and assistant messages, starting with the user."""
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(texts)]


def write_config(tmp_path: Path, url: str, *, timeout: float = 5, extra: str = "") -> Path:
    path = tmp_path / "graph.yaml"
    path.write_text(
        f"url: {url}\nassistant_id: agent\nheaders_from_env:\n  x-api-key: BOTDRILL_TEST_LG_KEY\n"
        f"timeout: {timeout}\n{extra}",
        encoding="utf-8",
    )
    return path


def _server_thread(thread_id: str, assistant_id: str = "agent") -> str:
    return str(uuid.uuid5(THREAD_NAMESPACE, f"{assistant_id}\n{thread_id}"))


# -- conversations --------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_only_the_new_message_is_sent_and_history_stays_on_the_server(server: FakeLangGraph) -> None:
    bot = load_target(f"langgraph:{server.url}#agent")
    assert isinstance(bot, RemoteGraphAssistant) and isinstance(bot, Assistant)
    assert bot.name == f"langgraph:{server.url}#agent"
    try:
        first = await bot.respond(convo("hello"), thread_id="dialogue-1")
        second = await bot.respond(convo("hello", first.text, "I lost my card"), thread_id="dialogue-1")
        other = await bot.respond(convo("good morning"), thread_id="dialogue-2")
    finally:
        await bot.aclose()
    assert first.text == "[1] you said: hello"
    assert second.text == "[2] you said: I lost my card"  # the server counted the history it kept
    assert other.text == "[1] you said: good morning"  # threads are kept apart
    assert (first.handoff, first.intent, first.slots) == (None, None, None)
    # Each run got only the newest user message, in a deterministic UUID thread the server created.
    thread = _server_thread("dialogue-1")
    assert bot.server_thread_id("dialogue-1") == thread
    assert server.inputs[thread] == [
        [{"role": "user", "content": "hello"}],
        [{"role": "user", "content": "I lost my card"}],
    ]
    assert [m["type"] for m in server.threads[thread]] == ["human", "ai", "human", "ai"]
    assert set(server.threads) == {thread, _server_thread("dialogue-2")}
    body = server.runs[0].body
    assert body["assistant_id"] == "agent"
    assert body["if_not_exists"] == "create"
    assert set(body["stream_mode"]) >= {"values", "updates"}


@pytest.mark.asyncio
async def test_every_user_message_since_the_last_reply_is_sent(server: FakeLangGraph) -> None:
    bot = load_remote_graph_target(f"langgraph:{server.url}#agent")
    try:
        messages: list[Message] = [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "my card"},
            {"role": "user", "content": "is gone"},
        ]
        reply = await bot.respond(messages, thread_id="t")
        nothing_new = await bot.respond([*messages, {"role": "assistant", "content": "ok"}], thread_id="t")
    finally:
        await bot.aclose()
    assert reply.text == "[2] you said: my card / is gone"
    assert server.inputs[_server_thread("t")] == [
        [{"role": "user", "content": "my card"}, {"role": "user", "content": "is gone"}]
    ]
    assert nothing_new.text == "" and len(server.runs) == 1  # no run without a new message


@pytest.mark.asyncio
async def test_state_labels_and_content_blocks(server: FakeLangGraph) -> None:
    bot = load_remote_graph_target(f"langgraph:{server.url}#agent")
    try:
        server.mode = "labels"
        labelled = await bot.respond(convo("urgent: my card is gone"), thread_id="l")
        server.mode = "blocks"
        blocks = await bot.respond(convo("hello"), thread_id="b")
    finally:
        await bot.aclose()
    assert labelled.text == "[1] you said: urgent: my card is gone"
    assert labelled.intent == "card_lost"
    assert labelled.slots == {"card_type": "debit", "amount": "45"}
    assert labelled.handoff is True
    assert blocks.text == "[1] you said: hello"


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", ["interrupt", "interrupt_legacy"])
async def test_an_interrupt_is_a_handoff(server: FakeLangGraph, mode: str) -> None:
    server.mode = mode
    bot = load_remote_graph_target(f"langgraph:{server.url}#agent")
    try:
        reply = await bot.respond(convo("I need help"), thread_id="i")
    finally:
        await bot.aclose()
    assert reply.handoff is True
    assert reply.text == INTERRUPT_TEXT  # the graph paused before saying anything: its words are the value


# -- failures are data -------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_server_error_names_the_status_and_hides_the_key(
    server: FakeLangGraph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOTDRILL_TEST_LG_KEY", TOKEN)
    bot = load_target(f"langgraph:{write_config(tmp_path, server.url)}")
    assert isinstance(bot, RemoteGraphAssistant)
    assert TOKEN not in repr(bot) and TOKEN not in repr(bot.config)
    try:
        ok = await bot.respond(convo("hello"), thread_id="k")
        server.mode = "fail"
        with pytest.raises(AssistantHTTPError) as caught:
            await bot.respond(convo("hello", ok.text, "again"), thread_id="k")
    finally:
        await bot.aclose()
    assert server.runs[0].headers["x-api-key"] == TOKEN  # the key was sent...
    message = str(caught.value)
    assert caught.value.status == 500 and "HTTP 500" in message and "server error" in message
    assert "your key was ***" in message and TOKEN not in message  # ...and never shown


@pytest.mark.asyncio
async def test_unknown_assistant_is_an_http_404(server: FakeLangGraph) -> None:
    bot = load_remote_graph_target(f"langgraph:{server.url}#nope")
    try:
        with pytest.raises(AssistantHTTPError, match=r"HTTP 404.*'nope'") as caught:
            await bot.respond(convo("hello"), thread_id="x")
    finally:
        await bot.aclose()
    assert caught.value.status == 404


@pytest.mark.asyncio
async def test_connection_refused_is_an_assistant_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bot = load_remote_graph_target(f"langgraph:http://127.0.0.1:{port}#agent")
    started = time.perf_counter()
    try:
        with pytest.raises(AssistantError, match="ConnectError") as caught:
            await bot.respond(convo("hello"), thread_id="x")
    finally:
        await bot.aclose()
    assert not isinstance(caught.value, AssistantTimeout)
    assert time.perf_counter() - started < 5


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", ["hang", "trickle"])
async def test_a_server_that_never_finishes_times_out(
    server: FakeLangGraph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setenv("BOTDRILL_TEST_LG_KEY", TOKEN)
    server.mode = mode  # trickle: keep-alive comments, so only the deadline for the whole turn ends it
    bot = RemoteGraphAssistant.from_file(write_config(tmp_path, server.url, timeout=0.5))
    started = time.perf_counter()
    try:
        with pytest.raises(AssistantTimeout, match=r"within 0\.5 s"):
            await bot.respond(convo("hello"), thread_id="slow")
    finally:
        await bot.aclose()
    assert time.perf_counter() - started < 3


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("mode", "error", "words"),
    [
        ("error_event", AssistantError, "the graph failed on the server: ValueError: the graph broke"),
        ("not_json", AssistantProtocolError, "not JSON"),
        ("not_sse", AssistantProtocolError, "other than server-sent events"),
        ("no_messages", AssistantProtocolError, "no 'messages'"),
    ],
)
async def test_malformed_answers_are_errors(
    server: FakeLangGraph, mode: str, error: type[AssistantError], words: str
) -> None:
    server.mode = mode
    bot = load_remote_graph_target(f"langgraph:{server.url}#agent")
    try:
        with pytest.raises(error, match=words):
            await bot.respond(convo("hello"), thread_id="m")
    finally:
        await bot.aclose()


def test_one_client_per_event_loop_closed_when_the_loop_ends(server: FakeLangGraph) -> None:
    bot = load_remote_graph_target(f"langgraph:{server.url}#agent")
    clients: list[httpx.AsyncClient] = []

    async def turn(thread: str) -> str:
        reply = await bot.respond(convo("hi"), thread_id=thread)
        clients.append(bot._by_loop[asyncio.get_running_loop()].client)
        return reply.text

    # Two runs, two event loops (as two run_drill calls): each has its own client, closed at its end.
    assert asyncio.run(turn("one")) == "[1] you said: hi"
    assert asyncio.run(turn("two")) == "[1] you said: hi"
    assert len(clients) == 2 and clients[0] is not clients[1]
    assert all(c.is_closed for c in clients)


@pytest.mark.asyncio
async def test_aclose_closes_the_client_and_a_later_turn_opens_one(server: FakeLangGraph) -> None:
    bot = load_remote_graph_target(f"langgraph:{server.url}#agent")
    await bot.respond(convo("hi"), thread_id="c")
    first = bot._by_loop[asyncio.get_running_loop()].client
    await bot.aclose()
    assert first.is_closed
    try:
        assert (await bot.respond(convo("hi", "x", "again"), thread_id="c")).text == "[2] you said: again"
    finally:
        await bot.aclose()
    await bot.aclose()  # twice is fine


# -- configuration ---------------------------------------------------------------------------------------


GOOD = "url: http://127.0.0.1:9\nassistant_id: agent\n"


@pytest.mark.parametrize(
    ("text", "line", "field", "reason"),
    [
        ("assistant_id: agent\n", 1, "url", "Field required"),
        ("url: http://127.0.0.1:9\n", 1, "assistant_id", "Field required"),
        ("url: http://127.0.0.1:9\nassistant_id: ''\n", 2, "assistant_id", "at least 1 character"),
        ("url: ftp://x\nassistant_id: agent\n", 1, "url", "http:// or https://"),
        ("url: http://x/?key=1\nassistant_id: agent\n", 1, "url", "no query"),
        (GOOD + "timeout: 0\n", 3, "timeout", "greater than 0"),
        (GOOD + "timeout: forever\n", 3, "timeout", "valid number"),
        (GOOD + "timeuot: 3\n", 3, "timeuot", "Extra inputs are not permitted"),
        (GOOD + "headers_from_env:\n  x-api-key: 1BAD\n", 4, "headers_from_env.x-api-key", "pattern"),
        (GOOD + "headers_from_env:\n  Bad Name: KEY\n", 4, "headers_from_env", "not a valid header name"),
        (GOOD + "headers_from_env: [KEY]\n", 3, "headers_from_env", "valid dictionary"),
        (GOOD + "url: http://y\n", 3, "url", "duplicate key"),
        (GOOD + "name: [\n", 4, None, "not valid YAML"),
    ],
)
def test_config_errors_name_file_line_and_field(
    tmp_path: Path, text: str, line: int | None, field: str | None, reason: str
) -> None:
    path = tmp_path / "graph.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(AdapterConfigError) as caught:
        load_remote_graph_config(path)
    exc = caught.value
    assert isinstance(exc, LocatedError) and isinstance(exc, TargetError)
    assert (exc.path, exc.line, exc.field) == (str(path), line, field)
    assert reason in exc.reason


def test_a_missing_environment_variable_is_named_where_it_is_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BOTDRILL_TEST_LG_KEY", raising=False)
    path = write_config(tmp_path, "http://127.0.0.1:9")
    with pytest.raises(AdapterConfigError, match="BOTDRILL_TEST_LG_KEY is not set") as caught:
        load_target(f"langgraph:{path}")
    assert (caught.value.path, caught.value.line, caught.value.field) == (
        str(path),
        4,
        "headers_from_env.x-api-key",
    )


@pytest.mark.asyncio
async def test_a_variable_unset_after_loading_is_an_assistant_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOTDRILL_TEST_LG_KEY", TOKEN)
    bot = RemoteGraphAssistant.from_file(write_config(tmp_path, "http://127.0.0.1:9"))
    monkeypatch.delenv("BOTDRILL_TEST_LG_KEY")
    with pytest.raises(AssistantError, match=r"BOTDRILL_TEST_LG_KEY .*no longer set"):
        await bot.respond(convo("hello"), thread_id="x")
    await bot.aclose()


def test_a_config_file_names_the_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOTDRILL_TEST_LG_KEY", TOKEN)
    path = write_config(tmp_path, "https://graphs.example.com/prefix/", extra="name: my-graph\n")
    bot = load_remote_graph_target(f"langgraph:{path}")
    assert bot.name == "my-graph"
    assert bot.config.url == "https://graphs.example.com/prefix"
    assert bot.config.timeout == 5


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("langgraph:", "neither"),
        ("langgraph:ftp://x#agent", "neither"),
        ("langgraph:http://127.0.0.1:2024", "after '#'"),
        ("langgraph:http://127.0.0.1:2024?timeout=3#agent", "no options"),
        ("langgraph:http://#agent", "with a host"),
    ],
)
def test_bad_specs_are_target_errors(spec: str, words: str) -> None:
    with pytest.raises(TargetError, match=words):
        load_target(spec)


def test_a_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(AdapterConfigError, match="no such file"):
        load_target(f"langgraph:{tmp_path / 'nope.yaml'}")


# -- output states as a deployed graph sends them -------------------------------------------------------


@pytest.mark.parametrize(
    ("last", "text"),
    [
        ({"type": "ai", "content": "plain"}, "plain"),
        ({"role": "assistant", "content": "openai style"}, "openai style"),
        ({"type": "ai", "content": [{"type": "text", "text": "a"}, {"type": "image_url"}, "b"]}, "ab"),
        (
            {"lc": 1, "type": "constructor", "id": ["langchain", "schema", "messages", "AIMessage"],
             "kwargs": {"content": "constructed"}},
            "constructed",
        ),
    ],
)  # fmt: skip
def test_graph_reply_reads_serialised_messages(last: dict[str, Any], text: str) -> None:
    state = {"messages": [{"type": "human", "content": "hi"}, last], "intent": "greet"}
    reply = graph_reply(state)
    assert (reply.text, reply.intent) == (text, "greet")


def test_graph_reply_reads_an_interrupt_sent_as_json() -> None:
    state = {
        "messages": [{"type": "human", "content": "hi"}],
        "__interrupt__": [{"value": "One moment, a colleague is coming.", "id": "x"}],
    }
    reply = graph_reply(state)
    assert (reply.text, reply.handoff) == ("One moment, a colleague is coming.", True)
    with pytest.raises(AssistantProtocolError, match="no assistant message"):
        graph_reply({"messages": [{"type": "human", "content": "hi"}]})


@pytest.mark.asyncio
async def test_graph_assistant_takes_langchain_dicts() -> None:
    class Fake:
        checkpointer = None

        async def ainvoke(self, state: Any, config: Any) -> Any:
            return {"messages": [*state["messages"], {"type": "ai", "content": "from a dict"}]}

        def get_graph(self) -> None:
            return None

    reply = await GraphAssistant(Fake()).respond(convo("hi"), thread_id="d")
    assert reply.text == "from a dict"


# -- a whole drill ------------------------------------------------------------------------------------------


def test_drill_against_a_langgraph_server(server: FakeLangGraph, tmp_path: Path) -> None:
    from botdrill.simulator import RunConfig, run_drill

    db = tmp_path / "drill.duckdb"
    target = f"langgraph:{server.url}#agent"
    result = run_drill(RunConfig(db=str(db), n=4, perturb="none", target=target, concurrency=4, timeout=5))
    assert result.simulated == 4
    with duckdb.connect(str(db), read_only=True) as con:
        dialogues = con.execute("SELECT dialogue_id, error_type, error_message FROM dialogues").fetchall()
        turns = con.execute(
            "SELECT dialogue_id, speaker, text FROM turns ORDER BY dialogue_id, turn_idx"
        ).fetchall()
    assert len(dialogues) == 4
    assert [d for d in dialogues if d[1] is not None] == []  # no dialogue ended on an adapter error
    answers = [t for t in turns if t[1] == "assistant"]
    assert answers and all("you said: " in t[2] or t[2] == INTERRUPT_TEXT for t in answers)
    for dialogue_id, *_ in dialogues:
        # The server numbers its replies from the history it keeps: 1, 2, 3... in every dialogue.
        numbered = [t[2] for t in answers if t[0] == dialogue_id and t[2] != INTERRUPT_TEXT]
        assert all(text.startswith(f"[{k}] you said: ") for k, text in enumerate(numbered, 1))
    # Each dialogue had its own server thread, which got exactly the user's words, one turn at a time.
    assert set(server.threads) == {_server_thread(d[0]) for d in dialogues}
    for dialogue_id, *_ in dialogues:
        said = [t[2] for t in turns if t[0] == dialogue_id and t[1] == "user" and t[2]]
        received = [m["content"] for run in server.inputs[_server_thread(dialogue_id)] for m in run]
        assert received == said[: len(received)] and received
