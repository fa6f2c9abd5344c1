"""A loopback LangGraph server for the `langgraph:` adapter's tests: just enough of the LangGraph Platform
API for `RemoteGraph.astream`/`ainvoke`, running a tiny scripted graph.

`POST /threads/{thread_id}/runs/stream` is the one endpoint `RemoteGraph` uses for a run: the thread id must
be a UUID, an unknown thread is created only when the body says `if_not_exists: create` (as `RemoteGraph`
does), and the answer is server-sent events: `metadata`, then `values` (the state with the input applied),
`updates` and `values` (the final state), with messages serialised as LangChain does (`{"type": "ai",
"content": ...}`). The server keeps every thread's messages, so a test can see what each run received and
that the history stayed on the server.

The graph, by `FakeLangGraph.mode`:

- `echo` (default): replies `[N] you said: TEXT` (N counts the thread's user messages); a message asking for
  a person pauses the graph with an interrupt instead (the final state carries `__interrupt__`);
- `blocks`: the same words as content blocks; `labels`: also `intent`, `slots` and `handoff` in the state;
- `interrupt`: always pauses; `interrupt_legacy`: pauses as servers with an older LangGraph report it, in an
  `updates` event only;
- `fail`: HTTP 500 whose body echoes the `x-api-key` header; `hang`: answers nothing until the server stops;
  `trickle`: starts a stream and sends only keep-alive comments until the server stops;
- `error_event`: the graph raises (an `error` event); `not_json`: an event whose data is not JSON;
  `not_sse`: a 200 with a JSON body; `no_messages`: a final state without messages.

The server listens on 127.0.0.1 on a free port, in a daemon thread, and stops when its `with` block ends;
a handler that waits (`hang`, `trickle`) wakes up on stop.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections import defaultdict
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

INTERRUPT_TEXT = "A colleague will take over from here."
_RUN_PATH = re.compile(r"^/threads/([^/]+)/runs/stream$")
_PERSON = re.compile(r"\b(human|person|agent|someone|colleague)\b", re.IGNORECASE)


@dataclass
class Run:
    """One run the server received."""

    thread_id: str
    headers: dict[str, str]
    body: dict[str, Any]


def _sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def _human(text: str) -> dict[str, Any]:
    return {
        "type": "human",
        "content": text,
        "id": str(uuid.uuid4()),
        "name": None,
        "additional_kwargs": {},
        "response_metadata": {},
    }


def _ai(content: Any) -> dict[str, Any]:
    return {
        "type": "ai",
        "content": content,
        "id": f"run-{uuid.uuid4()}",
        "name": None,
        "additional_kwargs": {},
        "response_metadata": {},
        "tool_calls": [],
        "invalid_tool_calls": [],
        "usage_metadata": None,
    }


class FakeLangGraph:
    """A LangGraph server with one assistant, `assistant_id`, for at most `lifetime` seconds."""

    def __init__(self, *, assistant_id: str = "agent", lifetime: float = 60.0) -> None:
        self.assistant_id = assistant_id
        self.mode = "echo"
        self.threads: dict[str, list[dict[str, Any]]] = {}
        """Each thread's messages, kept on the server as a checkpointer would."""
        self.inputs: dict[str, list[list[dict[str, Any]]]] = defaultdict(list)
        """The input messages of each run, by thread."""
        self.runs: list[Run] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._stopped = False
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._timer = threading.Timer(lifetime, self.stop)
        self._timer.daemon = True

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeLangGraph:
        self._thread.start()
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._thread.join(timeout=5)

    def stop(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self.stopping.set()
        self._timer.cancel()
        self._server.shutdown()
        self._server.server_close()

    # -- the scripted graph -------------------------------------------------------------------------------

    def run(self, thread_id: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        """Answer one run: a status, headers and the body (server-sent events when it succeeds)."""
        if body.get("assistant_id") != self.assistant_id:
            missing = {"detail": f"Assistant '{body.get('assistant_id')}' not found"}
            return 404, {}, json.dumps(missing).encode()
        given = (body.get("input") or {}).get("messages")
        if not isinstance(given, list) or not all(isinstance(m, dict) for m in given):
            return 422, {}, json.dumps({"detail": "input.messages must be a list of messages"}).encode()
        with self._lock:
            if thread_id not in self.threads:
                if body.get("if_not_exists") != "create":
                    return 404, {}, json.dumps({"detail": f"Thread {thread_id} not found"}).encode()
                self.threads[thread_id] = []
            self.inputs[thread_id].append(given)
            history = self.threads[thread_id]
            history.extend(_human(str(m.get("content", ""))) for m in given)
            before = {"messages": list(history)}
            said = " / ".join(str(m.get("content", "")) for m in given)
            n = sum(1 for m in history if m["type"] == "human")
            mode = self.mode
            pause = mode in ("interrupt", "interrupt_legacy") or (mode == "echo" and _PERSON.search(said))
            echo = f"you said: {said}"
            words = f"[{n}] {echo}"
            if not pause and mode != "no_messages":
                content: Any = words
                if mode == "blocks":
                    content = [{"type": "text", "text": f"[{n}] "}, {"type": "text", "text": echo}]
                history.append(_ai(content))
            after = {"messages": list(history)}
        events = [_sse("metadata", {"run_id": str(uuid.uuid4()), "attempt": 1}), _sse("values", before)]
        if mode == "error_event":
            events.append(_sse("error", {"error": "ValueError", "message": "the graph broke"}))
        elif mode == "not_json":
            events.append(b"event: values\ndata: {not json\n\n")
        elif mode == "no_messages":
            events.append(_sse("values", {"answer": words}))
        elif pause:
            paused = [{"value": INTERRUPT_TEXT, "id": uuid.uuid4().hex}]
            events.append(_sse("updates", {"__interrupt__": paused}))
            state = after if mode == "interrupt_legacy" else {**after, "__interrupt__": paused}
            events.append(_sse("values", state))
        else:
            update: dict[str, Any] = {"messages": [after["messages"][-1]]}
            if mode == "labels":
                update |= {
                    "intent": "card_lost" if "card" in said else "greet",
                    "slots": {"card_type": "debit", "amount": 45, "unknown": None},
                    "handoff": "urgent" in said,
                }
            events.append(_sse("updates", {"bot": update}))
            events.append(_sse("values", after | {k: v for k, v in update.items() if k != "messages"}))
        return 200, {"Content-Type": "text/event-stream; charset=utf-8"}, b"".join(events)

    # -- HTTP ---------------------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 10  # an idle keep-alive connection is dropped after this

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                match = _RUN_PATH.match(self.path)
                if match is None:
                    self._send(404, {}, b'{"detail": "Not Found"}')
                    return
                thread_id = match.group(1)
                try:
                    uuid.UUID(thread_id)
                    body = json.loads(raw.decode("utf-8"))
                except ValueError:
                    self._send(422, {}, b'{"detail": "invalid thread id or body"}')
                    return
                with server._lock:
                    server.runs.append(Run(thread_id, headers, body))
                mode = server.mode
                if mode == "fail":
                    detail = {"detail": f"internal error; your key was {headers.get('x-api-key')}"}
                    self._send(500, {}, json.dumps(detail).encode())
                elif mode == "hang":
                    server.stopping.wait(30)
                    self._send(200, {"Content-Type": "text/event-stream"}, _sse("values", {"messages": []}))
                elif mode == "trickle":
                    self._trickle()
                elif mode == "not_sse":
                    self._send(200, {}, json.dumps({"messages": [_ai("hello")]}).encode())
                else:
                    self._send(*server.run(thread_id, body))

            def _send(self, status: int, headers: dict[str, str], data: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", headers.get("Content-Type", "application/json"))
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client gave up (a timeout test)
                    self.close_connection = True

            def _trickle(self) -> None:
                self.close_connection = True
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(_sse("metadata", {"run_id": str(uuid.uuid4()), "attempt": 1}))
                    self.wfile.flush()
                    while not server.stopping.wait(0.05):
                        self.wfile.write(b": keep-alive\n\n")
                        self.wfile.flush()
                except OSError:
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
