"""HTTP adapters: a JSON endpoint described by a file, and Rasa's REST channel, against loopback servers."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from _http_servers import FakeRasa, LoopbackServer, Seen, json_bot

from botdrill.agents import Message
from botdrill.agents._adapters import (
    Assistant,
    AssistantError,
    AssistantProtocolError,
    AssistantTimeout,
    TargetError,
)
from botdrill.agents._http_adapters import (
    AdapterConfigError,
    AssistantHTTPError,
    HttpAssistant,
    HttpTargetConfig,
    JsonPath,
    RasaRestAssistant,
    load_http_config,
    load_http_target,
    parse_http_config,
    render_template,
)
from botdrill.scenarios._errors import LocatedError

TOKEN = "tok-5ecret-value-42"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback requests must not go through a proxy configured in the environment."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def bot_server() -> Iterator[LoopbackServer]:
    with LoopbackServer(json_bot, lifetime=60) as server:
        yield server


@pytest.fixture
def rasa() -> FakeRasa:
    return FakeRasa()


@pytest.fixture
def rasa_server(rasa: FakeRasa) -> Iterator[LoopbackServer]:
    with LoopbackServer(rasa, lifetime=60) as server:
        yield server


CONFIG = """\
name: jsonbot
url: {url}
headers:
  Authorization: {{env: MYBOT_TOKEN, prefix: "Bearer "}}
  X-Client: botdrill-tests
timeout: {timeout}
concurrency: 4
body:
  session: "{{{{thread_id}}}}"
  input: {{text: "{{{{last_user_message}}}}"}}
  note: "user wrote: {{{{last_user_message}}}}"
  history: "{{{{messages}}}}"
  fixed: [1, true, null]
response:
  text: $.reply.text
  intent: $.nlu.intent.name
  confidence: $.nlu.intent.confidence
  slots: $.slots
  handoff: $.handover
handoff_when:
  path: $.status
  equals: transferred
"""


def write_config(tmp_path: Path, url: str, *, timeout: float = 5, name: str = "bot.yaml") -> Path:
    path = tmp_path / name
    path.write_text(CONFIG.format(url=url, timeout=timeout), encoding="utf-8")
    return path


def convo(*texts: str) -> list[Message]:
    """Alternating user and assistant messages, starting with the user."""
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(texts)]


# -- the generic JSON endpoint -----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_json_bot_round_trip(
    bot_server: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MYBOT_TOKEN", TOKEN)
    bot = HttpAssistant.from_file(write_config(tmp_path, bot_server.url + "/chat"))
    assert isinstance(bot, Assistant)
    assert bot.name == "jsonbot"
    try:
        messages = convo("hello", "hi, how can I help?", "I lost my card")
        reply = await bot.respond(messages, thread_id="thread-1")
    finally:
        await bot.aclose()
    assert reply.text == "you said: I lost my card"
    assert reply.intent == "card_lost"
    assert reply.confidence == pytest.approx(0.87)
    assert reply.slots == {"card_type": "debit", "amount": "45"}  # a null slot is not captured
    assert reply.handoff is False
    assert reply.raw is None
    [seen] = bot_server.seen
    assert seen.method == "POST" and seen.path == "/chat"
    assert seen.headers["authorization"] == f"Bearer {TOKEN}"
    assert seen.headers["x-client"] == "botdrill-tests"
    assert seen.headers["content-type"] == "application/json"
    assert seen.body == {
        "session": "thread-1",
        "input": {"text": "I lost my card"},
        "note": "user wrote: I lost my card",
        "history": [dict(m) for m in messages],
        "fixed": [1, True, None],
    }


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("text", "handoff"),
    [("hello there", False), ("a human please", True), ("get me an agent", True)],
)
async def test_handoff_from_field_or_condition(
    bot_server: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, handoff: bool
) -> None:
    monkeypatch.setenv("MYBOT_TOKEN", TOKEN)
    bot = HttpAssistant.from_file(write_config(tmp_path, bot_server.url + "/chat"))
    try:
        reply = await bot.respond(convo(text), thread_id="t")
    finally:
        await bot.aclose()
    assert reply.handoff is handoff


@pytest.mark.asyncio
async def test_default_body_and_unmapped_fields(bot_server: LoopbackServer) -> None:
    config = HttpTargetConfig.model_validate(
        {"url": bot_server.url + "/chat", "response": {"text": "$.reply.text"}, "keep_raw": True}
    )
    bot = HttpAssistant(config)
    assert bot.name == "http:127.0.0.1"
    try:
        reply = await bot.respond(convo("yo"), thread_id="t9")
    finally:
        await bot.aclose()
    assert bot_server.seen[0].body == {"thread_id": "t9", "messages": [{"role": "user", "content": "yo"}]}
    assert (reply.intent, reply.slots, reply.handoff, reply.confidence) == (None, None, None, None)
    assert reply.raw["reply"] == {"text": "you said: "}  # the whole answer, kept on request


HOSTILE = 'he said "hi" \\ {"x": 1} {{thread_id}} {{messages}} }}{{ é 😀 \u2028 </script>'


@pytest.mark.asyncio
async def test_user_text_arrives_intact_as_data(
    bot_server: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MYBOT_TOKEN", TOKEN)
    bot = HttpAssistant.from_file(write_config(tmp_path, bot_server.url + "/chat"))
    try:
        reply = await bot.respond(convo(HOSTILE), thread_id='th "1" {{x}}')
    finally:
        await bot.aclose()
    body = bot_server.seen[0].body
    assert body["input"]["text"] == HOSTILE
    assert body["note"] == "user wrote: " + HOSTILE  # not re-expanded after insertion
    assert body["session"] == 'th "1" {{x}}'
    assert body["history"] == [{"role": "user", "content": HOSTILE}]
    assert reply.text == "you said: " + HOSTILE
    assert json.loads(bot_server.seen[0].raw) == body  # the bytes on the wire are one JSON document


def test_render_template_is_single_pass() -> None:
    values = {"thread_id": "{{last_user_message}}", "last_user_message": "{{thread_id}}", "messages": []}
    out = render_template({"a": "{{thread_id}}/{{last_user_message}}", "{{thread_id}}": 3}, values)
    assert out == {"a": "{{last_user_message}}/{{thread_id}}", "{{thread_id}}": 3}


@pytest.mark.asyncio
async def test_thread_id_in_url_is_percent_encoded(bot_server: LoopbackServer) -> None:
    config = HttpTargetConfig.model_validate(
        {
            "url": bot_server.url + "/threads/{{thread_id}}/messages",
            "method": "PUT",
            "body": {"input": {"text": "{{last_user_message}}"}},
            "response": {"text": "$.reply.text"},
        }
    )
    bot = HttpAssistant(config)
    try:
        await bot.respond(convo("x"), thread_id="a/b c?d")
    finally:
        await bot.aclose()
    assert bot_server.seen[0].method == "PUT"
    assert bot_server.seen[0].path == "/threads/a%2Fb%20c%3Fd/messages"


@pytest.mark.asyncio
async def test_server_error_keeps_the_token_out(
    bot_server: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MYBOT_TOKEN", TOKEN)
    bot = HttpAssistant.from_file(write_config(tmp_path, bot_server.url + "/fail"))
    try:
        with pytest.raises(AssistantHTTPError) as caught:
            await bot.respond(convo("hi"), thread_id="t")
    finally:
        await bot.aclose()
    assert bot_server.seen[0].headers["authorization"] == f"Bearer {TOKEN}"  # it was sent, and echoed back
    exc = caught.value
    assert isinstance(exc, AssistantError)
    assert exc.status == 500
    message = str(exc)
    assert "HTTP 500" in message and "server error" in message and "/fail" in message
    assert "Bearer ***" in message  # the echoed header, blanked out
    assert TOKEN not in message
    for text in (repr(bot), repr(bot.config), repr(vars(bot)), repr(vars(bot._session))):
        assert TOKEN not in text


@pytest.mark.asyncio
async def test_rate_limit_is_noted(bot_server: LoopbackServer) -> None:
    bot = HttpAssistant(
        HttpTargetConfig.model_validate({"url": bot_server.url + "/busy", "response": {"text": "$.t"}})
    )
    try:
        with pytest.raises(AssistantHTTPError, match=r"HTTP 429 .*rate limited") as caught:
            await bot.respond(convo("hi"), thread_id="t")
    finally:
        await bot.aclose()
    assert caught.value.status == 429


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("path", "response", "expected"),
    [
        ("/notjson", {"text": "$.reply.text"}, r"not JSON, so \$\.reply\.text cannot be read: '<html>oops"),
        (
            "/empty",
            {"text": "$.reply.text"},
            r"no text at \$\.reply\.text: \$\.reply has no key 'text' \(it has: texts\)",
        ),
        ("/empty", {"text": "$.reply.texts[3]"}, r"\$\.reply\.texts has 1 item"),
        ("/empty", {"text": "$.reply.texts"}, r"text at \$\.reply\.texts must be a string; got a list"),
        (
            "/chat",
            {"text": "$.reply.text", "intent": "$.slots"},
            r"intent at \$\.slots must be a string or null",
        ),
        (
            "/chat",
            {"text": "$.reply.text", "handoff": "$.status"},
            r"handoff at \$\.status must be a boolean",
        ),
        (
            "/chat",
            {"text": "$.reply.text", "confidence": "$.slots.amount"},
            r"confidence at \$\.slots\.amount must be from 0 to 1",
        ),
        (
            "/chat",
            {"text": "$.reply.text", "confidence": "$.handover"},
            r"confidence at \$\.handover must be a number",
        ),
    ],
)
async def test_protocol_errors_name_the_path(
    bot_server: LoopbackServer, path: str, response: dict[str, str], expected: str
) -> None:
    bot = HttpAssistant(HttpTargetConfig.model_validate({"url": bot_server.url + path, "response": response}))
    try:
        with pytest.raises(AssistantProtocolError, match=expected):
            await bot.respond(convo("hi"), thread_id="t")
    finally:
        await bot.aclose()


@pytest.mark.asyncio
async def test_slow_bot_times_out_within_the_deadline(bot_server: LoopbackServer) -> None:
    bot = HttpAssistant(
        HttpTargetConfig.model_validate(
            {"url": bot_server.url + "/slow", "timeout": 0.3, "response": {"text": "$.reply.text"}}
        )
    )
    started = time.perf_counter()
    try:
        with pytest.raises(AssistantTimeout, match=r"no answer within 0\.3 s"):
            await bot.respond(convo("hi"), thread_id="t")
    finally:
        await bot.aclose()
    assert 0.25 <= time.perf_counter() - started < 2.0


@pytest.mark.asyncio
async def test_refused_connection_is_an_assistant_error() -> None:
    with socket.socket() as s:  # a port nobody listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bot = HttpAssistant(
        HttpTargetConfig.model_validate({"url": f"http://127.0.0.1:{port}/x", "response": {"text": "$.t"}})
    )
    try:
        with pytest.raises(
            AssistantError, match=r"POST http://127\.0\.0\.1:\d+/x failed: ConnectError"
        ) as caught:
            await bot.respond(convo("hi"), thread_id="t")
    finally:
        await bot.aclose()
    assert not isinstance(caught.value, (AssistantTimeout, AssistantProtocolError, AssistantHTTPError))


@pytest.mark.asyncio
async def test_concurrency_limit_per_endpoint() -> None:
    lock = threading.Lock()
    state = {"now": 0, "most": 0}

    def hold(seen: Seen, server: LoopbackServer) -> tuple[int, Any]:
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        server.stopping.wait(0.1)
        with lock:
            state["now"] -= 1
        return 200, {"t": "ok"}

    with LoopbackServer(hold, lifetime=30) as server:
        bot = HttpAssistant(
            HttpTargetConfig.model_validate(
                {"url": server.url + "/", "concurrency": 2, "response": {"text": "$.t"}}
            )
        )
        try:
            replies = await asyncio.gather(*(bot.respond(convo("x"), thread_id=f"t{i}") for i in range(6)))
        finally:
            await bot.aclose()
    assert [r.text for r in replies] == ["ok"] * 6
    assert state["most"] == 2


def test_one_client_per_event_loop_closed_when_the_loop_ends(bot_server: LoopbackServer) -> None:
    bot = HttpAssistant(
        HttpTargetConfig.model_validate(
            {
                "url": bot_server.url + "/chat",
                "body": {"input": {"text": "{{last_user_message}}"}},
                "response": {"text": "$.reply.text"},
            }
        )
    )
    clients: list[httpx.AsyncClient] = []

    async def turn(text: str) -> str:
        reply = await bot.respond(convo(text), thread_id="t")
        reply2 = await bot.respond(convo(text), thread_id="t")
        clients.append(bot._session._connections().client)
        return reply.text + "|" + reply2.text

    # Two runs, two event loops (as two run_drill calls): each has its own client, closed at its end.
    assert asyncio.run(turn("one")) == "you said: one|you said: one"
    assert asyncio.run(turn("two")) == "you said: two|you said: two"
    assert len(clients) == 2 and clients[0] is not clients[1]
    assert all(c.is_closed for c in clients)


# -- configuration errors ------------------------------------------------------------------------------


GOOD = """\
url: http://127.0.0.1:9/chat
body:
  input:
    text: "{{last_user_message}}"
response:
  text: $.reply.text
"""


@pytest.mark.parametrize(
    ("text", "line", "field", "reason"),
    [
        ("url: http://127.0.0.1:9/\nbody: {a: 1}\n", 1, "response", "Field required"),
        ("url: http://127.0.0.1:9/\nresponse:\n  intent: $.i\n", 3, "response.text", "Field required"),
        ("url: http://127.0.0.1:9/\nresponse:\n  text: reply.text\n", 3, "response.text", "starts with '$'"),
        (
            "url: http://127.0.0.1:9/\nresponse:\n  text: $.a\n  slots: $..s\n",
            4,
            "response.slots",
            "character 2",
        ),
        ("url: http://127.0.0.1:9/\nresponse:\n  text: $.a[*]\n", 3, "response.text", "no wildcards"),
        (GOOD.replace("last_user_message", "user"), 4, "body.input.text", "unknown placeholder '{{user}}'"),
        (GOOD.replace('"{{last_user_message}}"', '"all: {{messages}}"'), 4, "body.input.text", "whole value"),
        (GOOD.replace("http://127.0.0.1:9/chat", "ftp://x/chat"), 1, "url", "http:// or https://"),
        (GOOD.replace("/chat", "/{{messages}}"), 1, "url", "only {{thread_id}}"),
        (GOOD + "timeuot: 3\n", 7, "timeuot", "Extra inputs are not permitted"),
        (GOOD + "timeout: -1\n", 7, "timeout", "greater than 0"),
        (GOOD + "concurrency: many\n", 7, "concurrency", "valid integer"),
        (GOOD + "method: GET\n", 7, "method", "'POST', 'PUT' or 'PATCH'"),
        (GOOD + "headers:\n  X-A: {env: A, value: b}\n", 8, "headers.X-A", "not both"),
        (GOOD + "headers:\n  X-A: {env: 1BAD}\n", 8, "headers.X-A.env", "should match pattern"),
        (GOOD + "headers:\n  X-A: [1]\n", 8, "headers.X-A", "valid dictionary"),
        (GOOD + "headers:\n  Bad Name: x\n", 8, "headers", "not a valid header name"),
        (GOOD + "handoff_when:\n  path: $.s\n", 8, "handoff_when.equals", "Field required"),
        (
            GOOD + "handoff_when:\n  - path: $.s\n    equals: 1\n  - path: s\n    equals: 2\n",
            10,
            "handoff_when.1.path",
            "starts with '$'",
        ),
        (GOOD + "keep_raw: [\n", 8, None, "not valid YAML"),
        (GOOD + "url: http://x/\n", 7, "url", "duplicate key"),
    ],
)
def test_config_errors_name_file_line_and_field(
    tmp_path: Path, text: str, line: int | None, field: str | None, reason: str
) -> None:
    path = tmp_path / "bot.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(AdapterConfigError) as caught:
        load_http_config(path)
    exc = caught.value
    assert isinstance(exc, LocatedError) and isinstance(exc, TargetError)
    assert (exc.path, exc.line, exc.field) == (str(path), line, field)
    assert reason in exc.reason
    where = f"{path}:{line}" if line is not None else str(path)
    assert str(exc).startswith(f"{where}: " + (f"{field}: " if field else ""))


def test_good_config_and_json_config(tmp_path: Path) -> None:
    assert load_http_config(_write(tmp_path / "a.yaml", GOOD)).response.text == "$.reply.text"
    as_json = json.dumps(
        {
            "url": "https://bots.example.com/x",
            "response": {"text": "$.out"},
            "handoff_when": {"path": "$.h", "equals": True},
        }
    )
    config = load_http_config(_write(tmp_path / "b.json", as_json))
    assert config.handoff_when[0].equals is True
    assert parse_http_config(GOOD).body == {"input": {"text": "{{last_user_message}}"}}


def test_missing_file_and_unset_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(AdapterConfigError, match="no such file") as caught:
        load_http_config(tmp_path / "nope.yaml")
    assert caught.value.path == str(tmp_path / "nope.yaml")
    monkeypatch.delenv("MYBOT_TOKEN", raising=False)
    path = write_config(tmp_path, "http://127.0.0.1:9/chat")
    with pytest.raises(AdapterConfigError) as unset:
        HttpAssistant.from_file(path)
    assert (unset.value.line, unset.value.field) == (4, "headers.Authorization.env")
    assert "MYBOT_TOKEN is not set" in str(unset.value)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# -- paths ---------------------------------------------------------------------------------------------


def test_json_paths() -> None:
    doc = {"a": {"b c": [{"x": 1}, {"x": None}], "d-e": True}, "list": [[1, 2], [3]]}
    assert JsonPath.parse("$").find(doc) is doc
    assert JsonPath.parse('$.a["b c"][0].x').find(doc) == 1
    assert JsonPath.parse("$.a['b c'][-1].x").find(doc) is None
    assert JsonPath.parse("$.a.d-e").find(doc) is True
    assert JsonPath.parse("$.list[1][0]").find(doc) == 3
    assert JsonPath.parse("$.list[2]").find(doc) is JsonPath.MISSING
    assert JsonPath.parse("$.a.d-e.f").explain_missing(doc) == "$.a.d-e is a boolean, not an object"
    assert JsonPath.parse("$.a[0]").explain_missing(doc) == "$.a is an object, not a list"
    for bad in ("a.b", "$.", "$[x]", "$..a", "$[*]", "$.a[?(@.x)]", "$.a()", "$[1.5]"):
        with pytest.raises(ValueError):
            JsonPath.parse(bad)


# -- target specs ----------------------------------------------------------------------------------------


def test_load_http_target_specs(tmp_path: Path) -> None:
    path = _write(tmp_path / "bot.yaml", GOOD)
    http_bot = load_http_target(f"http:{path}")
    assert isinstance(http_bot, HttpAssistant) and http_bot.name == "http:bot.yaml"
    rasa_bot = load_http_target(
        "rasa:http://127.0.0.1:5005/?parse=1&handoff_key=human&timeout=5&concurrency=3"
    )
    assert isinstance(rasa_bot, RasaRestAssistant)
    assert rasa_bot.webhook_url == "http://127.0.0.1:5005/webhooks/rest/webhook"
    assert rasa_bot.parse_url == "http://127.0.0.1:5005/model/parse"
    assert rasa_bot.handoff_key == "human"
    assert rasa_bot._session.timeout == 5
    assert rasa_bot.name == "rasa:http://127.0.0.1:5005"
    plain = load_http_target("rasa:https://bots.example.com/rasa")
    assert isinstance(plain, RasaRestAssistant) and plain.parse_url is None
    assert plain.webhook_url == "https://bots.example.com/rasa/webhooks/rest/webhook"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("mybot:respond", "neither"),
        ("http:", "neither"),
        ("http://127.0.0.1:5005", "neither"),
        ("rasa:", "neither"),
        ("rasa:127.0.0.1:5005", "http:// or https://"),
        ("rasa:ftp://host", "http:// or https://"),
        ("rasa:http://host?parse=maybe", "parse='maybe' is not valid"),
        ("rasa:http://host?bogus=1", "unknown option 'bogus'"),
        ("rasa:http://host?concurrency=0", "at least 1"),
        ("rasa:http://host?timeout=nan", "positive number"),
        ("rasa:http://host?handoff_key=", "handoff_key='' is not valid"),
    ],
)
def test_bad_specs(spec: str, message: str) -> None:
    with pytest.raises(TargetError, match=message.replace("?", r"\?").replace("(", r"\(")):
        load_http_target(spec)


def test_http_spec_with_a_bad_file_names_it(tmp_path: Path) -> None:
    path = _write(tmp_path / "bot.yaml", "url: http://127.0.0.1:9/\n")
    with pytest.raises(AdapterConfigError, match=r"bot\.yaml:1: response: Field required"):
        load_http_target(f"http:{path}")


# -- Rasa's REST channel -----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_rasa_sends_only_new_fragments_one_by_one(rasa: FakeRasa, rasa_server: LoopbackServer) -> None:
    bot = RasaRestAssistant(rasa_server.url)
    try:
        first = await bot.respond(convo("hello"), thread_id="alice")
        history = [*convo("hello", first.text), *convo("my card"), *convo("was stolen")]
        second = await bot.respond(history, thread_id="alice")
        other = await bot.respond(convo("hi"), thread_id="bob")
    finally:
        await bot.aclose()
    assert rasa.trackers == {"alice": ["hello", "my card", "was stolen"], "bob": ["hi"]}
    assert first.text == "[1] Noted: hello\nAnything else?"
    assert second.text == "[2] Noted: my card\nAnything else?\n[3] Noted: was stolen\nAnything else?"
    assert other.text == "[1] Noted: hi\nAnything else?"
    assert second.handoff is None and second.intent is None and second.slots is None  # left to the judge
    assert second.raw == {
        "messages": [
            {
                "recipient_id": "alice",
                "text": "Anything else?",
                "buttons": [{"title": "No", "payload": "/deny"}],
            }
        ]
        * 2
    }
    bodies = [s.body for s in rasa_server.requests_to("/webhooks/rest/webhook")]
    assert bodies[1:3] == [
        {"sender": "alice", "message": "my card"},
        {"sender": "alice", "message": "was stolen"},
    ]
    assert rasa_server.requests_to("/model/parse") == []


@pytest.mark.asyncio
async def test_rasa_parse_gives_intent_confidence_and_slots(
    rasa: FakeRasa, rasa_server: LoopbackServer
) -> None:
    bot = load_http_target(f"rasa:{rasa_server.url}?parse=1")
    assert isinstance(bot, RasaRestAssistant)
    try:
        first = await bot.respond(convo("my debit card"), thread_id="carol")
        second = await bot.respond(
            [*convo("my debit card", first.text), *convo("it was stolen, 45 quid")], thread_id="carol"
        )
    finally:
        await bot.aclose()
    assert (first.intent, first.confidence, first.slots) == ("greet", 0.42, {"card_type": "debit"})
    assert second.intent == "report_fraud"
    assert second.confidence == pytest.approx(0.91)
    assert second.slots == {"card_type": "debit", "amount": "45"}  # entities so far in the conversation
    assert rasa.parsed == ["my debit card", "it was stolen, 45 quid"]
    bot.forget("carol")
    assert "carol" not in bot._entities


@pytest.mark.asyncio
async def test_rasa_custom_handoff(rasa_server: LoopbackServer) -> None:
    bot = RasaRestAssistant(rasa_server.url)
    try:
        reply = await bot.respond(convo("can I talk to a human?"), thread_id="dave")
    finally:
        await bot.aclose()
    assert reply.handoff is True
    assert reply.text == "Let me connect you with a colleague."
    assert reply.raw == {
        "messages": [{"recipient_id": "dave", "text": reply.text, "custom": {"handoff": True}}]
    }


@pytest.mark.asyncio
async def test_rasa_handoff_key_is_configurable() -> None:
    with LoopbackServer(FakeRasa(handoff_key="human_handover"), lifetime=30) as server:
        default = RasaRestAssistant(server.url)
        custom = load_http_target(f"rasa:{server.url}?handoff_key=human_handover")
        try:
            assert (await default.respond(convo("a person please"), thread_id="e")).handoff is None
            assert (await custom.respond(convo("a person please"), thread_id="f")).handoff is True
        finally:
            await default.aclose()
            await custom.aclose()


def _mock_rasa(webhook: Any, parse: Any = None) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        answer = webhook if request.url.path.endswith("/webhook") else parse
        return httpx.Response(200, json=answer)

    return httpx.MockTransport(handle)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("webhook", "parse", "expected"),
    [
        ({"text": "hi"}, None, "must be a list of messages; got an object"),
        ([{"recipient_id": "x", "text": 5}], None, r"message \[0\] has a 'text' that is a number"),
        (
            [{"recipient_id": "someone-else", "text": "hi"}],
            None,
            "for recipient 'someone-else', not sender 'me'",
        ),
        ([], [1], "must be an object; got a list"),
        ([], {"intent": {"name": 3}}, r"\$\.intent\.name must be a string"),
        (
            [],
            {"intent": {"name": "a", "confidence": 7}},
            r"\$\.intent\.confidence must be a number from 0 to 1",
        ),
        ([], {"intent": None, "entities": [{"value": 1}]}, r"\$\.entities\[0\] has no string 'entity'"),
    ],
)
async def test_rasa_protocol_errors(webhook: Any, parse: Any, expected: str) -> None:
    bot = RasaRestAssistant(
        "http://rasa.test", parse_url="http://rasa.test/model/parse", transport=_mock_rasa(webhook, parse)
    )
    try:
        with pytest.raises(AssistantProtocolError, match=expected):
            await bot.respond(convo("hi"), thread_id="me")
    finally:
        await bot.aclose()


@pytest.mark.asyncio
async def test_rasa_empty_answer_and_nothing_new() -> None:
    bot = RasaRestAssistant("http://rasa.test", transport=_mock_rasa([]))
    try:
        assert (await bot.respond(convo("hi"), thread_id="me")).text == ""  # the bot said nothing
        assert (await bot.respond(convo("hi", "hello"), thread_id="me")).text == ""  # nothing to send
    finally:
        await bot.aclose()


def test_rasa_env_header_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    from botdrill.agents._http_adapters import Header

    monkeypatch.delenv("RASA_JWT", raising=False)
    with pytest.raises(AdapterConfigError, match="RASA_JWT is not set"):
        RasaRestAssistant(
            "http://rasa.test", headers={"Authorization": Header(env="RASA_JWT", prefix="Bearer ")}
        )


# -- a whole drill against the fake Rasa server ---------------------------------------------------------


def test_drill_against_fake_rasa(rasa: FakeRasa, rasa_server: LoopbackServer, tmp_path: Path) -> None:
    from botdrill.simulator import RunConfig, run_drill

    db = tmp_path / "drill.duckdb"
    target = f"rasa:{rasa_server.url}?parse=1"
    bot = load_http_target(target)
    result = run_drill(RunConfig(db=str(db), n=6, perturb="none", target=target, max_turns=4), assistant=bot)
    assert result.simulated == 6
    with duckdb.connect(str(db), read_only=True) as con:
        dialogues = con.execute("SELECT dialogue_id, end_reason, error_type FROM dialogues").fetchall()
        turns = con.execute(
            "SELECT dialogue_id, speaker, text, intent FROM turns ORDER BY dialogue_id, turn_idx"
        ).fetchall()
        target_stored, versions = con.execute("SELECT target, versions FROM runs").fetchone() or ("", "{}")
    assert len(dialogues) == 6
    assert [d for d in dialogues if d[2] is not None] == []  # no dialogue ended on an adapter error
    assert target_stored == target
    assert json.loads(versions)["assistant"] == f"rasa:{rasa_server.url}"
    # Every dialogue is a sender Rasa saw, and Rasa got exactly the user's words, in order.
    assert set(rasa.trackers) == {d[0] for d in dialogues}
    for dialogue_id, *_ in dialogues:
        said = [t[2] for t in turns if t[0] == dialogue_id and t[1] == "user" and t[2]]
        received = rasa.trackers[dialogue_id]
        assert received and said[: len(received)] == received
    answers = [t for t in turns if t[1] == "assistant" and t[2]]
    assert answers and all("Noted: " in t[2] or "colleague" in t[2] for t in answers)
    assert any(t[3] in ("greet", "report_fraud") for t in answers)  # intents from /model/parse are stored


def test_load_target_reaches_the_http_and_rasa_adapters(tmp_path: Path) -> None:
    from botdrill.agents._adapters import load_target
    from botdrill.agents._http_adapters import HttpAssistant, RasaRestAssistant

    config = tmp_path / "bot.yaml"
    config.write_text("url: http://127.0.0.1:9/chat\nresponse:\n  text: $.reply\n")
    assert isinstance(load_target(f"http:{config}"), HttpAssistant)
    assert isinstance(load_target("rasa:http://127.0.0.1:5005?parse=1"), RasaRestAssistant)
