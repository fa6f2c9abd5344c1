"""The LLM client against the loopback server, through the real langchain-openai `ChatOpenAI`."""

from __future__ import annotations

import asyncio
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from botdrill.agents._adapters import AssistantError, AssistantProtocolError, AssistantTimeout, TargetError
from botdrill.agents._llm import (
    LLMCircuitOpen,
    LLMClient,
    LLMConfig,
    LLMConfigError,
    LLMConnectionError,
    LLMResponseError,
    LLMStatusError,
    LLMTimeout,
    ModelPrice,
    is_loopback,
)

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench._loopback import LoopbackServer, Scripted, ToolCallSpec  # noqa: E402

KEY = "sk-botdrill-test-9f3c2a71e5d84b06"
HI = [{"role": "system", "content": "You are a bank."}, {"role": "user", "content": "my card was stolen"}]
TRANSFER = {
    "type": "function",
    "function": {
        "name": "transfer_to_human",
        "description": "Hand the conversation to a person.",
        "parameters": {
            "type": "object",
            "properties": {"reason": {"type": "string"}},
            "required": ["reason"],
        },
    },
}


class Route(BaseModel):
    """Where the conversation goes."""

    intent: str
    urgent: bool


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer(latency=0.005, lifetime=30) as running:
        yield running
    assert not running.running


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("BOTDRILL_TEST_KEY", KEY)
    return KEY


def config(server: LoopbackServer, **kwargs: Any) -> LLMConfig:
    fields: dict[str, Any] = {
        "base_url": server.base_url, "model": "drill-model", "api_key_env": "BOTDRILL_TEST_KEY",
        "timeout": 2.0, "deadline": 5.0, "backoff": 0.02, "backoff_max": 0.1,
    }  # fmt: skip
    return LLMConfig(**(fields | kwargs))


def no_secret(error: BaseException) -> None:
    text = str(error) + repr(error) + "".join(traceback.format_exception(error))
    assert KEY not in text


# -- configuration -----------------------------------------------------------------------------------------


def test_missing_key_variable_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BOTDRILL_UNSET_KEY", raising=False)
    remote = LLMConfig(base_url="https://llm.example.com/v1", model="m", api_key_env="BOTDRILL_UNSET_KEY")
    with pytest.raises(LLMConfigError, match="BOTDRILL_UNSET_KEY") as caught:
        LLMClient(remote)
    assert isinstance(caught.value, TargetError)
    assert "llm.example.com" in str(caught.value)


@pytest.mark.asyncio
async def test_loopback_gets_a_placeholder_key(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BOTDRILL_UNSET_KEY", raising=False)
    async with LLMClient(config(server, api_key_env="BOTDRILL_UNSET_KEY")) as client:
        await client.complete(HI)
    assert server.requests[0].headers["authorization"] == "Bearer botdrill-loopback"
    assert is_loopback("http://localhost:1/v1") and is_loopback("http://[::1]:8/v1")
    assert not is_loopback("https://api.openai.com/v1")


def test_config_refuses_secrets_without_echoing_them() -> None:
    with pytest.raises(ValidationError) as inline:
        LLMConfig(base_url="http://127.0.0.1:1/v1", model="m", api_key=KEY)  # type: ignore[call-arg]
    with pytest.raises(ValidationError) as pasted:
        LLMConfig(base_url="http://127.0.0.1:1/v1", model="m", api_key_env=KEY)
    with pytest.raises(ValidationError) as in_url:
        LLMConfig(base_url=f"http://user:{KEY}@127.0.0.1:1/v1", model="m")
    for caught in (inline, pasted):
        assert KEY not in str(caught.value)
    assert "environment variable" in str(inline.value) and "not a key" in str(pasted.value)
    assert "credentials" in str(in_url.value)
    with pytest.raises(ValidationError, match="deadline"):
        LLMConfig(base_url="http://127.0.0.1:1/v1", model="m", timeout=10, deadline=5)


def test_missing_header_variable_names_it(server: LoopbackServer) -> None:
    with pytest.raises(LLMConfigError, match="BOTDRILL_UNSET_HEADER"):
        LLMClient(config(server, headers_from_env={"X-Tenant": "BOTDRILL_UNSET_HEADER"}))


# -- replies -----------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_plain_reply_with_usage_and_parameters(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOTDRILL_TEST_TENANT", "bank-42")
    server.script(Scripted(text="I am sorry to hear that.", prompt_tokens=31, completion_tokens=6))
    prices = {"drill-model": ModelPrice(prompt=2.0, completion=8.0)}
    cfg = config(
        server, temperature=0.3, max_tokens=64, seed=7, prices=prices,
        headers_from_env={"X-Tenant": "BOTDRILL_TEST_TENANT"},
    )  # fmt: skip
    async with LLMClient(cfg) as client:
        result = await client.complete(HI)
    assert result.text == "I am sorry to hear that."
    assert (result.prompt_tokens, result.completion_tokens) == (31, 6)
    assert result.cost_usd == pytest.approx((31 * 2.0 + 6 * 8.0) / 1e6)
    assert result.model == "drill-model" and result.finish_reason == "stop"
    assert not result.cached and result.attempts == 1 and result.tool_calls == ()
    assert 5 <= result.latency_ms <= result.wall_ms < 2000
    (request,) = server.requests
    assert request.body["messages"] == HI
    assert request.body["model"] == "drill-model" and request.body["temperature"] == 0.3
    assert request.body["seed"] == 7 and request.body["max_completion_tokens"] == 64
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["x-tenant"] == "bank-42"


@pytest.mark.asyncio
async def test_max_tokens_under_its_older_name(server: LoopbackServer) -> None:
    async with LLMClient(config(server, max_tokens=12, max_tokens_param="max_tokens")) as client:
        await client.complete(HI)
    body = server.requests[0].body
    assert body["max_tokens"] == 12 and "max_completion_tokens" not in body


@pytest.mark.asyncio
async def test_tool_call_parsed(server: LoopbackServer) -> None:
    server.script(
        Scripted(tool_calls=(ToolCallSpec("transfer_to_human", {"reason": "stolen card"}, id="c1"),))
    )
    async with LLMClient(config(server)) as client:
        result = await client.complete(HI, tools=[TRANSFER], tool_choice="auto")
    (call,) = result.tool_calls
    assert (call.name, call.arguments, call.id) == ("transfer_to_human", {"reason": "stolen card"}, "c1")
    assert result.finish_reason == "tool_calls" and result.text == ""
    body = server.requests[0].body
    assert body["tools"] == [TRANSFER] and body["tool_choice"] == "auto"


@pytest.mark.asyncio
async def test_tool_given_as_a_pydantic_model(server: LoopbackServer) -> None:
    server.script(Scripted(tool_calls=(ToolCallSpec("Route", {"intent": "fraud", "urgent": True}),)))
    async with LLMClient(config(server)) as client:
        result = await client.complete(HI, tools=[Route])
    assert result.tool_calls[0].arguments == {"intent": "fraud", "urgent": True}
    assert server.requests[0].body["tools"][0]["function"]["name"] == "Route"


@pytest.mark.asyncio
async def test_tool_results_go_back_in_openai_format(server: LoopbackServer) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "transfer_to_human", "arguments": "{}"}}
    conversation = [
        *HI,
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "queued for an agent"},
    ]
    async with LLMClient(config(server)) as client:
        await client.complete(conversation, tools=[TRANSFER])
    sent = server.requests[0].body["messages"]
    (echoed,) = sent[2]["tool_calls"]
    assert echoed["id"] == "c1" and echoed["function"] == call["function"]
    assert sent[3] == {"role": "tool", "tool_call_id": "c1", "content": "queued for an agent"}


@pytest.mark.asyncio
async def test_malformed_tool_arguments_are_a_protocol_error(server: LoopbackServer) -> None:
    server.script(Scripted(tool_calls=(ToolCallSpec("transfer_to_human", '{"reason": "stol'),)))
    async with LLMClient(config(server)) as client:
        with pytest.raises(LLMResponseError, match="transfer_to_human") as caught:
            await client.complete(HI, tools=[TRANSFER])
    assert isinstance(caught.value, AssistantProtocolError)
    assert len(server.requests) == 1  # not retried


@pytest.mark.asyncio
@pytest.mark.parametrize("method", ["function_calling", "json_schema", "json_mode"])
async def test_structured_output(server: LoopbackServer, method: Any) -> None:
    if method == "function_calling":
        server.script(Scripted(tool_calls=(ToolCallSpec("Route", {"intent": "fraud", "urgent": True}),)))
    else:
        server.script('{"intent": "fraud", "urgent": true}')
    async with LLMClient(config(server)) as client:
        result = await client.complete(HI, schema=Route, schema_method=method)
    assert result.parsed == Route(intent="fraud", urgent=True)
    body = server.requests[0].body
    if method == "function_calling":
        assert body["tool_choice"]["function"]["name"] == "Route"
    else:
        assert body["response_format"]["type"] == method.replace("_mode", "_object")


@pytest.mark.asyncio
async def test_structured_output_that_does_not_fit(server: LoopbackServer) -> None:
    server.script(Scripted(tool_calls=(ToolCallSpec("Route", {"intent": "fraud"}),)))
    async with LLMClient(config(server)) as client:
        with pytest.raises(LLMResponseError, match="did not fill Route"):
            await client.complete(HI, schema=Route)


@pytest.mark.asyncio
async def test_streaming(server: LoopbackServer) -> None:
    server.script(
        Scripted(text="please hold while I block the card", latency=0.05, chunk_delay=0.01),
        Scripted(tool_calls=(ToolCallSpec("transfer_to_human", {"reason": "fraud"}),)),
    )
    async with LLMClient(config(server)) as client:
        text = await client.complete(HI, stream=True)
        tool = await client.complete(HI, tools=[TRANSFER], stream=True)
    assert text.text == "please hold while I block the card"
    assert (text.prompt_tokens, text.completion_tokens) == (8, 7)
    assert text.first_token_ms is not None and 50 <= text.first_token_ms < text.latency_ms
    assert text.latency_ms >= 50 + 7 * 10  # the chunks came one by one
    assert tool.tool_calls[0].arguments == {"reason": "fraud"}
    assert server.requests[0].body["stream"] is True
    assert server.requests[0].body["stream_options"] == {"include_usage": True}


# -- retries -----------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_429_retried_after_retry_after(server: LoopbackServer) -> None:
    server.script(Scripted.error_status(429, retry_after=0.3), "finally")
    async with LLMClient(config(server, backoff=0.01)) as client:
        result = await client.complete(HI)
    assert result.text == "finally" and result.attempts == 2
    first, second = server.requests
    assert first.responded_at is not None
    waited = second.received_at - first.responded_at
    assert 0.3 - 0.01 <= waited < 0.3 + 0.25, waited  # the server's 0.3 s, not the 0.01 s back-off


@pytest.mark.asyncio
async def test_retry_after_beyond_the_deadline_fails_at_once(server: LoopbackServer) -> None:
    server.script(Scripted.error_status(429, retry_after=30))
    started = time.monotonic()
    async with LLMClient(config(server)) as client:
        with pytest.raises(LLMStatusError, match="deadline") as caught:
            await client.complete(HI)
    assert time.monotonic() - started < 1
    assert caught.value.status == 429 and len(server.requests) == 1


@pytest.mark.asyncio
async def test_5xx_retried_then_success(server: LoopbackServer) -> None:
    server.script(Scripted.error_status(500), Scripted.error_status(503), "recovered")
    async with LLMClient(config(server, max_retries=3)) as client:
        result = await client.complete(HI)
    assert result.text == "recovered" and result.attempts == 3
    assert [r.status for r in server.requests] == [500, 503, 200]


@pytest.mark.asyncio
async def test_5xx_until_retries_are_spent(server: LoopbackServer) -> None:
    server.default = Scripted.error_status(503, message="overloaded")
    async with LLMClient(config(server, max_retries=2)) as client:
        with pytest.raises(LLMStatusError) as caught:
            await client.complete(HI)
    error = caught.value
    assert len(server.requests) == 3 and error.attempts == 3 and error.status == 503
    message = str(error)
    assert "HTTP 503" in message and "overloaded" in message and "3 attempt(s)" in message
    assert f"127.0.0.1:{server.port}" in message and "drill-model" in message
    assert isinstance(error, AssistantError)
    no_secret(error)


@pytest.mark.asyncio
async def test_400_not_retried(server: LoopbackServer) -> None:
    server.script(Scripted.error_status(400, message="unknown parameter"))
    async with LLMClient(config(server, max_retries=3)) as client:
        with pytest.raises(LLMStatusError, match="not retried") as caught:
            await client.complete(HI)
    assert len(server.requests) == 1 and caught.value.status == 400 and caught.value.attempts == 1
    assert "unknown parameter" in str(caught.value)


@pytest.mark.asyncio
async def test_dropped_connection_retried(server: LoopbackServer) -> None:
    server.script(Scripted.dropped(), "after the drop")
    async with LLMClient(config(server)) as client:
        result = await client.complete(HI)
        server.default = Scripted.dropped()
        with pytest.raises(LLMConnectionError, match="connection failed") as caught:
            await client.complete(HI)
    assert result.text == "after the drop" and result.attempts == 2
    assert caught.value.attempts == 4 and len(server.requests) == 6


@pytest.mark.asyncio
async def test_timeout_within_the_deadline(server: LoopbackServer) -> None:
    server.default = Scripted.slow(5)
    started = time.monotonic()
    async with LLMClient(config(server, timeout=0.2, deadline=2.0, max_retries=1)) as client:
        with pytest.raises(LLMTimeout, match=r"no reply within 0\.2 s") as caught:
            await client.complete(HI)
    elapsed = time.monotonic() - started
    assert isinstance(caught.value, AssistantTimeout)
    assert caught.value.attempts == 2 and len(server.requests) == 2
    assert 0.4 <= elapsed < 1.0


@pytest.mark.asyncio
async def test_deadline_bounds_the_whole_call(server: LoopbackServer) -> None:
    server.default = Scripted.slow(5)
    started = time.monotonic()
    async with LLMClient(config(server, timeout=0.25, deadline=0.6, max_retries=50)) as client:
        with pytest.raises(LLMTimeout, match="deadline") as caught:
            await client.complete(HI)
    assert time.monotonic() - started < 0.6 + 0.2
    assert 2 <= caught.value.attempts <= 3


@pytest.mark.asyncio
async def test_every_failure_is_an_assistant_error_without_the_key(server: LoopbackServer) -> None:
    server.script(
        Scripted.error_status(401, message=f"invalid key {KEY}"),  # an endpoint that echoes the key
        Scripted.error_status(500, message=f"upstream said {KEY}"),
        Scripted.slow(5),
        Scripted.dropped(),
    )
    async with LLMClient(config(server, max_retries=0, timeout=0.2)) as client:
        errors = []
        for _ in range(4):
            with pytest.raises(AssistantError) as caught:
                await client.complete(HI)
            errors.append(caught.value)
    assert [type(e) for e in errors] == [LLMStatusError, LLMStatusError, LLMTimeout, LLMConnectionError]
    assert "invalid key ***" in str(errors[0])
    for error in errors:
        no_secret(error)


# -- circuit breaker and concurrency -----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_circuit_breaker_opens_fails_fast_and_closes(server: LoopbackServer) -> None:
    server.default = Scripted.error_status(500)
    cfg = config(server, max_retries=0, breaker_threshold=3, breaker_cooldown=0.4)
    async with LLMClient(cfg) as client, LLMClient(cfg) as sibling:
        for _ in range(3):
            with pytest.raises(LLMStatusError):
                await client.complete(HI)
        started = time.monotonic()
        with pytest.raises(LLMCircuitOpen, match="3 consecutive failures") as caught:
            await client.complete(HI)
        with pytest.raises(LLMCircuitOpen):  # the breaker is the endpoint's, not the client's
            await sibling.complete(HI)
        assert time.monotonic() - started < 0.1
        assert len(server.requests) == 3 and caught.value.attempts == 0
        assert "HTTP 500" in str(caught.value) and isinstance(caught.value, AssistantError)

        await asyncio.sleep(0.45)
        with pytest.raises(LLMStatusError):  # the trial call fails: open again at once
            await client.complete(HI)
        with pytest.raises(LLMCircuitOpen):
            await client.complete(HI)
        assert len(server.requests) == 4

        await asyncio.sleep(0.45)
        server.default = "healthy again"
        assert (await client.complete(HI)).text == "healthy again"  # the trial call closes it
        assert (await sibling.complete(HI)).text == "healthy again"
    assert len(server.requests) == 6


@pytest.mark.asyncio
async def test_4xx_does_not_open_the_breaker(server: LoopbackServer) -> None:
    server.default = Scripted.error_status(400)
    async with LLMClient(config(server, max_retries=0, breaker_threshold=2)) as client:
        for _ in range(4):
            with pytest.raises(LLMStatusError):
                await client.complete(HI)
    assert len(server.requests) == 4


@pytest.mark.asyncio
async def test_concurrency_limit_per_endpoint(server: LoopbackServer) -> None:
    server.latency = 0.05
    async with (
        LLMClient(config(server, concurrency=3)) as one,
        LLMClient(config(server, concurrency=3)) as two,
    ):
        started = time.monotonic()
        results = await asyncio.gather(*[c.complete(HI) for c in (one, two) * 6])
        elapsed = time.monotonic() - started
    assert len(results) == 12 and server.max_in_flight == 3  # reached, never passed
    assert max(r.in_flight for r in server.requests) == 3
    assert elapsed >= 4 * 0.05


@pytest.mark.asyncio
async def test_the_lowest_concurrency_asked_for_wins(server: LoopbackServer) -> None:
    server.latency = 0.03
    async with (
        LLMClient(config(server, concurrency=8)) as wide,
        LLMClient(config(server, concurrency=2)) as narrow,
    ):
        await narrow.complete(HI)
        await asyncio.gather(*[wide.complete(HI) for _ in range(8)])
    assert server.max_in_flight == 2
