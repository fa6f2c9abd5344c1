"""The loopback OpenAI-compatible server the LLM client is tested against, tested on its own with httpx."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench._loopback import LoopbackServer, RecordedRequest, Scripted, ToolCallSpec  # noqa: E402

CHAT = {
    "model": "m",
    "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "a b c"}],
}


def post(server: LoopbackServer, body: dict[str, Any] | None = None, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{server.base_url}/chat/completions", json=body or CHAT, timeout=5, **kwargs)


def sse_events(response: httpx.Response) -> list[Any]:
    """The `data:` payloads of a server-sent event stream, `[DONE]` as the string."""
    events = []
    for line in response.text.split("\n"):
        if line.startswith("data: "):
            data = line[len("data: ") :]
            events.append(data if data == "[DONE]" else json.loads(data))
    return events


def test_binds_to_loopback_on_a_free_port_and_stops() -> None:
    with LoopbackServer() as server:
        assert server.host == "127.0.0.1" and server.port > 0
        assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
        assert post(server).status_code == 200
        assert server.running
    assert not server.running
    with pytest.raises(httpx.ConnectError):
        post(server)


def _non_loopback_address() -> str | None:
    """An address of this machine outside 127.0.0.0/8, if it has one (no packet is sent)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.255.255.255", 1))
        address = str(probe.getsockname()[0])
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_listens_on_loopback_only() -> None:
    with LoopbackServer() as server:
        assert server.address == ("127.0.0.1", server.port)
        other = _non_loopback_address()
        if other is not None:
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"http://{other}:{server.port}/v1/models", timeout=2)


def test_stops_on_its_own_after_its_lifetime() -> None:
    server = LoopbackServer(lifetime=0.2).start()
    started = time.monotonic()
    while server.running and time.monotonic() - started < 3:
        time.sleep(0.02)
    assert not server.running
    assert time.monotonic() - started < 2
    server.stop()  # harmless once stopped


def test_scripted_replies_in_order_then_the_default() -> None:
    with LoopbackServer(["first", Scripted(text="second")], default="fallback") as server:
        texts = [post(server).json()["choices"][0]["message"]["content"] for _ in range(3)]
        server.script("queued later")
        texts.append(post(server).json()["choices"][0]["message"]["content"])
    assert texts == ["first", "second", "fallback", "queued later"]


def test_reply_as_a_function_of_the_request() -> None:
    def echo(request: RecordedRequest) -> str:
        return "echo: " + request.messages[-1]["content"]

    with LoopbackServer(echo) as server:
        body = post(server).json()
    assert body["choices"][0]["message"]["content"] == "echo: a b c"


def test_records_every_request_with_headers_and_body() -> None:
    with LoopbackServer(latency=0.05) as server:
        post(server, headers={"Authorization": "Bearer sk-test", "X-Team": "drill"})
        httpx.get(f"{server.base_url}/models", timeout=5)
    chat, models = server.requests
    assert (chat.method, chat.path, models.method, models.path) == (
        "POST", "/v1/chat/completions", "GET", "/v1/models",
    )  # fmt: skip
    assert chat.headers["authorization"] == "Bearer sk-test" and chat.headers["x-team"] == "drill"
    assert chat.body == CHAT and chat.messages == CHAT["messages"]
    assert chat.status == 200 and chat.in_flight == 1
    assert chat.responded_at is not None and chat.responded_at - chat.received_at >= 0.05
    assert server.chat_requests() == [chat]


def test_completion_format_and_usage() -> None:
    with LoopbackServer(
        ["one two three", Scripted(text="x", prompt_tokens=40, completion_tokens=7)]
    ) as server:
        counted, scripted = post(server).json(), post(server).json()
    assert counted["object"] == "chat.completion" and counted["model"] == "m"
    choice = counted["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "one two three"}
    assert choice["finish_reason"] == "stop"
    # By default, usage counts words: 2 + 3 in the request, 3 in the reply.
    assert counted["usage"] == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    assert scripted["usage"] == {"prompt_tokens": 40, "completion_tokens": 7, "total_tokens": 47}


def test_tool_calls_in_openai_format() -> None:
    calls = (ToolCallSpec("transfer_to_human", {"reason": "fraud"}), ToolCallSpec("lookup", "{bad", id="c9"))
    with LoopbackServer([Scripted(tool_calls=calls)]) as server:
        body = post(server).json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    first, second = choice["message"]["tool_calls"]
    assert first["type"] == "function" and first["id"].startswith("call_")
    assert first["function"] == {"name": "transfer_to_human", "arguments": '{"reason": "fraud"}'}
    assert second == {"id": "c9", "type": "function", "function": {"name": "lookup", "arguments": "{bad"}}


def test_streaming_sends_sse_chunks_ending_with_done() -> None:
    script = [
        Scripted(text="hello there friend"),
        Scripted(tool_calls=(ToolCallSpec("transfer_to_human", {"reason": "stolen card"}),)),
    ]
    with LoopbackServer(script) as server:
        text = post(server, CHAT | {"stream": True, "stream_options": {"include_usage": True}})
        tools = post(server, CHAT | {"stream": True})
    assert text.headers["content-type"] == "text/event-stream"
    events = sse_events(text)
    assert events[-1] == "[DONE]"
    content = "".join(e["choices"][0]["delta"].get("content", "") for e in events[:-1] if e["choices"])
    assert content == "hello there friend"
    assert len([e for e in events if e != "[DONE]" and e["choices"]]) >= 4  # several chunks, not one
    finishes = [e["choices"][0]["finish_reason"] for e in events[:-1] if e["choices"]]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    assert events[-2]["usage"] == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}

    events = sse_events(tools)
    assert events[-1] == "[DONE]" and all("usage" not in e for e in events[:-1])  # not asked for
    pieces = [
        d["tool_calls"][0] for e in events[:-1] for d in [e["choices"][0]["delta"]] if "tool_calls" in d
    ]
    assert len(pieces) == 2 and pieces[0]["function"]["name"] == "transfer_to_human"
    assert json.loads("".join(p["function"]["arguments"] for p in pieces)) == {"reason": "stolen card"}
    assert events[-2]["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize("status", [429, 500, 503, 400])
def test_error_statuses_with_openai_error_bodies(status: int) -> None:
    with LoopbackServer([Scripted.error_status(status, retry_after=2, message="scripted failure")]) as server:
        response = post(server)
        after = post(server)
    assert response.status_code == status
    assert response.headers["retry-after"] == "2"
    assert response.json()["error"]["message"] == "scripted failure"
    assert after.status_code == 200  # the script moved on
    assert server.requests[0].status == status


def test_fractional_retry_after() -> None:
    with LoopbackServer([Scripted.error_status(429, retry_after=0.25)]) as server:
        assert post(server).headers["retry-after"] == "0.25"


def test_fixed_latency_and_slow_replies() -> None:
    with LoopbackServer(["quick", Scripted.slow(2.0)], latency=0.1) as server:
        started = time.monotonic()
        post(server)
        assert time.monotonic() - started >= 0.1
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{server.base_url}/chat/completions", json=CHAT, timeout=0.2)


def test_dropped_connection() -> None:
    with LoopbackServer([Scripted.dropped(), "after"]) as server:
        with pytest.raises(httpx.RemoteProtocolError):
            post(server)
        assert post(server).status_code == 200
    assert server.requests[0].status is None and server.requests[0].responded_at is not None


def test_counts_requests_in_flight() -> None:
    with LoopbackServer(latency=0.2) as server:
        threads = [threading.Thread(target=post, args=(server,)) for _ in range(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        post(server)
    assert server.max_in_flight == 5
    assert sorted(r.in_flight for r in server.requests[:5]) == [1, 2, 3, 4, 5]
    assert server.requests[5].in_flight == 1 and server.in_flight == 0


def test_models_and_unknown_routes() -> None:
    with LoopbackServer() as server:
        post(server, CHAT | {"model": "gpt-test"})
        models = httpx.get(f"{server.base_url}/models", timeout=5).json()
        missing = httpx.post(f"{server.base_url}/embeddings", json={}, timeout=5)
        malformed = httpx.post(f"{server.base_url}/chat/completions", json={"model": "m"}, timeout=5)
    assert [m["id"] for m in models["data"]] == ["gpt-test"]
    assert missing.status_code == 404 and malformed.status_code == 400
    assert [r.status for r in server.requests] == [200, 200, 404, 400]  # every request is recorded
    assert [r.body["model"] for r in server.chat_requests()] == ["gpt-test", "m"]
