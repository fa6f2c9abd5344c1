"""Loopback HTTP servers for the HTTP adapters' tests: a JSON bot and a fake Rasa server.

Each server listens on 127.0.0.1 on a free port, in a daemon thread, and stops when its `with` block ends
or when its lifetime is over, whichever comes first; a handler that waits (a slow bot) wakes up on stop.
"""

from __future__ import annotations

import json
import re
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Seen:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    """The decoded JSON body, or the raw text when it is not JSON."""
    raw: bytes = field(repr=False, default=b"")


App = Callable[["Seen", "LoopbackServer"], tuple[int, Any]]
"""Answers a request with a status and a payload: bytes or str are sent as they are, anything else as JSON."""


class LoopbackServer:
    """An HTTP/1.1 server on 127.0.0.1 running `app`, for at most `lifetime` seconds."""

    def __init__(self, app: App, *, lifetime: float = 60.0) -> None:
        self.app = app
        self.lifetime = lifetime
        self.seen: list[Seen] = []
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

    def requests_to(self, path: str) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.path == path]

    def __enter__(self) -> LoopbackServer:
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

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 10  # an idle keep-alive connection is dropped after this

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body: Any = json.loads(raw.decode("utf-8")) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                seen = Seen(
                    method=self.command,
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                    raw=raw,
                )
                with server._lock:
                    server.seen.append(seen)
                status, payload = server.app(seen, server)
                if isinstance(payload, (bytes, str)):
                    data = payload.encode("utf-8") if isinstance(payload, str) else payload
                    kind = "text/plain; charset=utf-8"
                else:
                    data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
                    kind = "application/json"
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (ConnectionError, OSError):  # the client gave up (a timeout test)
                    self.close_connection = True

            do_POST = do_PUT = do_PATCH = do_GET = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


# -- a JSON bot ---------------------------------------------------------------------------------------


def json_bot(seen: Seen, server: LoopbackServer) -> tuple[int, Any]:
    """A bot whose answer has the words, an NLU block, slots and hand-off fields, and echoes the body.

    `/chat` and `/threads/...` answer; `/fail` is a 500 that echoes the Authorization header, `/busy` a 429,
    `/notjson` a 200 with HTML, `/empty` a 200 without the reply text, `/slow` waits until the server stops.
    """
    path = seen.path
    if path == "/fail":
        return 500, f"internal error; your auth was {seen.headers.get('authorization')}"
    if path == "/busy":
        return 429, "slow down"
    if path == "/notjson":
        return 200, "<html>oops</html>"
    if path == "/empty":
        return 200, {"reply": {"texts": ["hello"]}}
    if path == "/slow":
        server.stopping.wait(10)
        return 200, {"reply": {"text": "too late"}}
    body = seen.body if isinstance(seen.body, dict) else {}
    text = str((body.get("input") or {}).get("text", ""))
    return 200, {
        "reply": {"text": f"you said: {text}"},
        "nlu": {
            "intent": {"name": "card_lost" if "card" in text else "greet", "confidence": 0.87},
        },
        "slots": {"card_type": "debit", "amount": 45, "unknown": None},
        "handover": "human" in text,
        "status": "transferred" if "agent" in text else "open",
        "echo": body,
    }


# -- a Rasa server ----------------------------------------------------------------------------------------

_AMOUNT = re.compile(r"\d+(?:\.\d+)?")
_HANDOFF = re.compile(r"\b(human|person|agent|someone)\b", re.IGNORECASE)


class FakeRasa:
    """Rasa's REST channel and `/model/parse`, keeping a tracker (the messages received) per sender.

    Each message gets two bot messages, `[N] Noted: TEXT` (N counts the sender's messages) and `Anything
    else?` with buttons; a message asking for a person gets one message with a `custom` hand-off payload.
    """

    def __init__(self, *, handoff_key: str = "handoff") -> None:
        self.handoff_key = handoff_key
        self.trackers: dict[str, list[str]] = defaultdict(list)
        self.parsed: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, seen: Seen, server: LoopbackServer) -> tuple[int, Any]:
        if seen.method != "POST" or not isinstance(seen.body, dict):
            return 400, "bad request"
        if seen.path == "/webhooks/rest/webhook":
            sender, text = seen.body.get("sender"), seen.body.get("message")
            if not isinstance(sender, str) or not isinstance(text, str):
                return 400, "sender and message must be strings"
            with self._lock:
                self.trackers[sender].append(text)
                n = len(self.trackers[sender])
            if _HANDOFF.search(text):
                return 200, [
                    {
                        "recipient_id": sender,
                        "text": "Let me connect you with a colleague.",
                        "custom": {self.handoff_key: True},
                    }
                ]
            return 200, [
                {"recipient_id": sender, "text": f"[{n}] Noted: {text}"},
                {
                    "recipient_id": sender,
                    "text": "Anything else?",
                    "buttons": [{"title": "No", "payload": "/deny"}],
                },
            ]
        if seen.path == "/model/parse":
            text = seen.body.get("text")
            if not isinstance(text, str):
                return 400, "text must be a string"
            with self._lock:
                self.parsed.append(text)
            entities = [
                {"entity": "amount", "value": m.group(0), "start": m.start()} for m in _AMOUNT.finditer(text)
            ]
            if "debit" in text:
                entities.append({"entity": "card_type", "value": "debit"})
            name = "report_fraud" if "stolen" in text or "fraud" in text else "greet"
            return 200, {
                "text": text,
                "intent": {"name": name, "confidence": 0.91 if name != "greet" else 0.42},
                "entities": entities,
                "intent_ranking": [],
            }
        return 404, "not found"
