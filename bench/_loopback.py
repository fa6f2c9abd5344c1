"""An OpenAI-compatible chat server on 127.0.0.1, for tests and benchmarks of the LLM client (stdlib only).

It answers `POST /v1/chat/completions` from a script (a queue of replies, or a function of the request),
with tool calls in OpenAI's format, streaming (`data:` chunks ending with `[DONE]`), usage tokens and a
fixed latency, and it plays failures on cue: an HTTP error with `Retry-After`, a reply slower than the
client's timeout, a connection dropped without a word. `GET /v1/models` lists the models it was asked for.
Every request is recorded, with when it arrived and when its answer left, so tests can assert what the
client sent, how long it waited between retries and how many calls it had in flight at once.

    with LoopbackServer([Scripted.error(429, retry_after=0.2), "hello"], latency=0.01) as server:
        ...  # point a client at server.base_url
        assert len(server.requests) == 2

The server runs its own event loop in a daemon thread and stops when the `with` block ends, or after
`lifetime` seconds at the latest, so a hung test cannot leave it behind. For throughput measurements, where
the server's CPU must not count against the client's, run it in another process:

    python -m bench._loopback --latency 0.05      # prints the base URL, serves until killed
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

__all__ = ["LoopbackServer", "RecordedRequest", "Scripted", "ToolCallSpec"]


@dataclass(frozen=True)
class ToolCallSpec:
    """One tool call the scripted model makes."""

    name: str
    arguments: Mapping[str, Any] | str = field(default_factory=dict)
    """A mapping (sent as JSON text) or the raw text, to script malformed arguments."""
    id: str | None = None
    """The call's id; `call_<n>` when not given."""


@dataclass(frozen=True)
class Scripted:
    """What the server does with one chat request.

    The default is a 200 with `text`. Failures: `status` other than 200 (with an OpenAI-style error body
    and `headers`, e.g. `Retry-After`), `drop` (close the connection without answering), and `latency`
    longer than the client's timeout for a slow reply.
    """

    text: str = ""
    tool_calls: tuple[ToolCallSpec, ...] = ()
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    error: str | None = None
    """The error message of a non-200 answer (a default one says the status)."""
    drop: bool = False
    latency: float | None = None
    """Seconds before answering (before the first chunk when streaming); the server's default if `None`."""
    chunk_delay: float = 0.0
    """Seconds between streamed chunks."""
    prompt_tokens: int | None = None
    """Usage reported; by default the words of the request's messages."""
    completion_tokens: int | None = None
    """Usage reported; by default the words of the reply (text and tool-call arguments)."""
    finish_reason: str | None = None
    """By default `tool_calls` when there are tool calls, else `stop`."""

    @classmethod
    def error_status(cls, status: int, *, retry_after: float | None = None, message: str | None = None,
                     latency: float | None = None) -> Scripted:  # fmt: skip
        """An HTTP error (429, 500, 503, 400...), with `Retry-After: <seconds>` when given."""
        headers = {} if retry_after is None else {"Retry-After": _seconds(retry_after)}
        return cls(status=status, headers=headers, error=message, latency=latency)

    @classmethod
    def slow(cls, seconds: float, text: str = "too late") -> Scripted:
        """A reply that takes `seconds` to come (longer than the client's timeout, typically)."""
        return cls(text=text, latency=seconds)

    @classmethod
    def dropped(cls) -> Scripted:
        """The connection closed after the request was read, without a response."""
        return cls(drop=True)


Script = Scripted | str
"""A reply, or its text."""


@dataclass
class RecordedRequest:
    """One request the server received."""

    index: int
    method: str
    path: str
    headers: dict[str, str]
    """Header names in lower case."""
    body: Any
    """The JSON body, parsed (`None` for none)."""
    received_at: float
    """`time.monotonic()` when the whole request had been read."""
    in_flight: int
    """Chat requests being served when this one arrived, this one included (0 for other requests)."""
    responded_at: float | None = None
    """`time.monotonic()` when the answer had been written (or the connection dropped)."""
    status: int | None = None
    """The status answered; `None` for a dropped connection or one still being served."""

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The chat messages of the request (empty for other requests)."""
        if isinstance(self.body, dict) and isinstance(self.body.get("messages"), list):
            return list(self.body["messages"])
        return []


class LoopbackServer:
    """An OpenAI-compatible chat server on 127.0.0.1 and a free port, for the span of a `with` block.

    Args:
        script: replies served in order, then `default` once they run out; or a function of the recorded
            request returning the reply. Strings are reply texts. `script()` queues more later.
        latency: seconds every reply waits unless its `Scripted.latency` says otherwise.
        default: the reply once the queue is empty.
        lifetime: seconds after which the server stops on its own.
        record: keep every request in `requests` (turn off for long benchmarks).
    """

    def __init__(
        self,
        script: Iterable[Script] | Callable[[RecordedRequest], Script] = (),
        *,
        latency: float = 0.0,
        default: Script = "ok",
        lifetime: float = 60.0,
        record: bool = True,
    ) -> None:
        self._respond: Callable[[RecordedRequest], Script] | None = script if callable(script) else None
        self._queue: collections.deque[Script] = collections.deque(() if callable(script) else script)
        self.latency = latency
        self.default = default
        self.lifetime = lifetime
        self.record = record
        self.requests: list[RecordedRequest] = []
        self.served = 0
        """Chat requests received (counted even when not recorded)."""
        self.in_flight = 0
        self.max_in_flight = 0
        self.host = "127.0.0.1"
        self.port = 0
        self.address: tuple[str, int] = ("", 0)
        """The address the listening socket is bound to, as the operating system reports it."""
        self._counter = itertools.count()
        self._calls = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._models: dict[str, None] = {}

    # -- lifecycle -------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The URL to give an OpenAI client (`http://127.0.0.1:<port>/v1`)."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> LoopbackServer:
        """Start serving; returns once the port is bound."""
        if self._thread is not None:
            raise RuntimeError("the loopback server was already started")
        self._thread = threading.Thread(target=self._run, name="botdrill-loopback", daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self._failure is not None:
            raise RuntimeError(f"the loopback server did not start: {self._failure!r}")
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, drop open connections, and wait for the thread to end."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop ended meanwhile (lifetime ran out)
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def script(self, *replies: Script) -> None:
        """Queue more replies (served after those already queued)."""
        self._queue.extend(replies)

    def chat_requests(self) -> list[RecordedRequest]:
        """The recorded chat-completion requests, in order of arrival."""
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start() if it happens before the port is bound
            self._failure = exc
        finally:
            self._ready.set()
            loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._connection, self.host, 0, limit=2**20, backlog=1024)
        self.address = server.sockets[0].getsockname()[:2]
        self.port = self.address[1]
        self._ready.set()
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.lifetime)
        finally:
            server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await server.wait_closed()

    # -- HTTP ------------------------------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = [*lines[0].split(" ", 2), "", ""][:3]
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0") or 0)
                raw = await reader.readexactly(length) if length else b""
                keep_alive = headers.get("connection", "").lower() != "close"
                if not await self._handle(method, target.split("?", 1)[0], headers, raw, writer):
                    return
                if not keep_alive:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        except asyncio.CancelledError:
            # Only the shutdown cancels a connection; ending quietly spares asyncio's streams (3.11) an
            # error log about the cancelled handler.
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _handle(
        self, method: str, path: str, headers: dict[str, str], raw: bytes, writer: asyncio.StreamWriter
    ) -> bool:
        """Answer one request; `False` when the connection must close."""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        chat = method == "POST" and path.endswith("/chat/completions")
        if chat:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.served += 1
        request = RecordedRequest(
            index=next(self._counter), method=method, path=path, headers=headers, body=body,
            received_at=time.monotonic(), in_flight=self.in_flight if chat else 0,
        )  # fmt: skip
        if self.record:
            self.requests.append(request)
        try:
            request.status = await self._answer(request, writer)
            return request.status is not None
        finally:
            request.responded_at = time.monotonic()
            if chat:
                self.in_flight -= 1

    async def _answer(self, request: RecordedRequest, writer: asyncio.StreamWriter) -> int | None:
        """Write the answer; its status, or `None` for a dropped connection."""
        method, path, body = request.method, request.path, request.body
        if isinstance(body, str):
            return await self._send_json(writer, 400, _error_body(400, "the body is not JSON"))
        if method == "GET" and path.rstrip("/").endswith("/models"):
            models = [
                {"id": m, "object": "model", "created": 0, "owned_by": "loopback"} for m in self._models
            ]
            return await self._send_json(writer, 200, {"object": "list", "data": models})
        if method != "POST" or not path.endswith("/chat/completions"):
            return await self._send_json(writer, 404, _error_body(404, f"no route {method} {path}"))
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return await self._send_json(writer, 400, _error_body(400, "a chat request needs 'messages'"))
        self._models.setdefault(str(body.get("model", "")), None)
        reply = self._next(request)
        delay = self.latency if reply.latency is None else reply.latency
        if delay > 0:
            await asyncio.sleep(delay)
        if reply.drop:
            writer.transport.abort()
            return None
        if reply.status != 200:
            message = reply.error or f"scripted {reply.status} {_phrase(reply.status)}"
            return await self._send_json(
                writer, reply.status, _error_body(reply.status, message), reply.headers
            )
        if body.get("stream"):
            await self._stream(writer, body, reply)
            return 200
        return await self._send_json(writer, 200, self._completion(body, reply), reply.headers)

    def _next(self, request: RecordedRequest) -> Scripted:
        if self._respond is not None:
            script = self._respond(request)
        else:
            try:
                script = self._queue.popleft()
            except IndexError:
                script = self.default
        return Scripted(text=script) if isinstance(script, str) else script

    async def _send_json(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        payload: object,
        headers: Mapping[str, str] | None = None,
    ) -> int:
        data = json.dumps(payload).encode()
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        writer.write(
            f"HTTP/1.1 {status} {_phrase(status)}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(data)}\r\n{extra}\r\n".encode()
            + data
        )
        await writer.drain()
        return status

    # -- OpenAI payloads -------------------------------------------------------------------------------

    def _tool_calls(self, reply: Scripted) -> list[dict[str, Any]]:
        calls = []
        for spec in reply.tool_calls:
            arguments = (
                spec.arguments if isinstance(spec.arguments, str) else json.dumps(dict(spec.arguments))
            )
            call_id = spec.id or f"call_{next(self._calls)}"
            calls.append(
                {"id": call_id, "type": "function", "function": {"name": spec.name, "arguments": arguments}}
            )
        return calls

    def _usage(
        self, body: dict[str, Any], reply: Scripted, tool_calls: list[dict[str, Any]]
    ) -> dict[str, int]:
        prompt = reply.prompt_tokens
        if prompt is None:
            prompt = sum(
                len(str(m.get("content") or "").split()) for m in body["messages"] if isinstance(m, dict)
            )
        completion = reply.completion_tokens
        if completion is None:
            completion = len(reply.text.split()) + sum(
                len(c["function"]["arguments"].split()) for c in tool_calls
            )
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def _completion(self, body: dict[str, Any], reply: Scripted) -> dict[str, Any]:
        tool_calls = self._tool_calls(reply)
        message: dict[str, Any] = {
            "role": "assistant",
            "content": reply.text if reply.text or not tool_calls else None,
        }
        if tool_calls:
            message["tool_calls"] = tool_calls
        return {
            "id": f"chatcmpl-loopback-{self.served}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", ""),
            "choices": [
                {"index": 0, "message": message, "logprobs": None,
                 "finish_reason": reply.finish_reason or ("tool_calls" if tool_calls else "stop")}
            ],
            "usage": self._usage(body, reply, tool_calls),
            "system_fingerprint": None,
        }  # fmt: skip

    async def _stream(self, writer: asyncio.StreamWriter, body: dict[str, Any], reply: Scripted) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
            b"transfer-encoding: chunked\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in reply.headers.items()).encode()
            + b"\r\n"
        )
        base = {
            "id": f"chatcmpl-loopback-{self.served}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body.get("model", ""),
            "system_fingerprint": None,
        }
        tool_calls = self._tool_calls(reply)
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        words = reply.text.split(" ")
        deltas += [{"content": w if i == 0 else " " + w} for i, w in enumerate(words) if reply.text]
        for i, call in enumerate(tool_calls):
            arguments = call["function"]["arguments"]
            half = len(arguments) // 2
            deltas.append({"tool_calls": [{"index": i, "id": call["id"], "type": "function",
                                           "function": {"name": call["function"]["name"],
                                                        "arguments": arguments[:half]}}]})  # fmt: skip
            deltas.append({"tool_calls": [{"index": i, "function": {"arguments": arguments[half:]}}]})
        finish = reply.finish_reason or ("tool_calls" if tool_calls else "stop")
        events = [base | {"choices": [{"index": 0, "delta": d, "logprobs": None, "finish_reason": None}]}
                  for d in deltas]  # fmt: skip
        events.append(
            base | {"choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}]}
        )
        options = body.get("stream_options") or {}
        if options.get("include_usage"):
            events.append(base | {"choices": [], "usage": self._usage(body, reply, tool_calls)})
        for event in events:
            await self._chunk(writer, f"data: {json.dumps(event)}\n\n".encode())
            if reply.chunk_delay > 0:
                await asyncio.sleep(reply.chunk_delay)
        await self._chunk(writer, b"data: [DONE]\n\n")
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    @staticmethod
    async def _chunk(writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        await writer.drain()


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Status"


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _error_body(status: int, message: str) -> dict[str, Any]:
    kind = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
            429: "rate_limit_error"}.get(status, "server_error")  # fmt: skip
    return {"error": {"message": message, "type": kind, "param": None, "code": str(status)}}


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve a fixed reply on an OpenAI-compatible loopback port.")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per reply")
    parser.add_argument("--text", default="ok", help="the reply")
    parser.add_argument("--lifetime", type=float, default=3600.0, help="seconds before stopping on its own")
    args = parser.parse_args()
    server = LoopbackServer(latency=args.latency, default=args.text, lifetime=args.lifetime, record=False)
    with server:
        print(server.base_url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while server.running:
                time.sleep(0.2)


if __name__ == "__main__":
    main()
