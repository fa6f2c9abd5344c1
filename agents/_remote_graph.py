"""A graph deployed on a LangGraph server (the LangGraph Platform API), drilled through `RemoteGraph`.

`RemoteGraphAssistant` talks to the deployment with LangGraph's own client, `langgraph.pregel.remote.
RemoteGraph`, rather than a request mapping of botdrill's: what the drill exercises is then exactly what
an application calling the deployment would do. Each turn is one run, `POST /threads/{id}/runs/stream`
(server-sent events, stream modes `values` and `updates`), which `RemoteGraph` sends with
`if_not_exists: create`, so the server creates a thread the first time botdrill uses it.

The server keeps each thread's state (its checkpointer), so a turn sends only the user messages written
since the assistant's last reply (normally one). A LangGraph server wants thread ids that are UUIDs:
botdrill's thread id is mapped to `uuid5` of itself and the assistant id, the same on every call, so a
dialogue keeps its server thread and two assistants on one server never share one.

Two ways to name the target:

- `langgraph:URL#ASSISTANT_ID`, e.g. `langgraph:http://127.0.0.1:2024#agent` (no headers, 30 s timeout);
- `langgraph:CONFIG.yaml`:

      url: https://my-deployment.example.com
      assistant_id: agent                  # an assistant's id, or a graph's name in langgraph.json
      headers_from_env:                    # header name -> the NAME of the environment variable
        x-api-key: LANGSMITH_API_KEY
      timeout: 20                          # seconds for one whole turn
      name: my-agent                       # in run records (default: langgraph:URL#ASSISTANT_ID)

A header's value is read from the environment when a client is opened, never kept on the adapter, sent as
it is, and blanked out of every error message. The SDK's habit of sending `LANGSMITH_API_KEY` (or alike)
found in the environment is off: only the headers the file names are sent.

The reply is read from the run's final state as for a local graph (`graph_reply`): the last AI message
(`{"type": "ai", ...}` once serialised), `intent`, `slots` and `handoff` keys when present, and an
interrupt (in the final state's `__interrupt__`, or, from servers running an older LangGraph, only in an
`updates` event) counts as a hand-off.

Failures are data: an HTTP error status, a refused connection, an `error` event (the graph raised on the
server), a stream that is not server-sent events or not JSON, or a state without an AI message raise
`AssistantError`s; no whole turn within `timeout` raises `AssistantTimeout`.

One `httpx.AsyncClient` (and the `RemoteGraph` on it) per event loop: `run_drill` runs each drill in an
event loop of its own, and connections cannot outlive their loop. A loop's client is closed when that loop
ends its tasks (as `asyncio.run` does) or by `aclose()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import uuid
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx
from langchain_core.runnables import RunnableConfig
from langgraph.pregel.remote import RemoteException, RemoteGraph
from langgraph_sdk.client import LangGraphClient
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from botdrill.scenarios._loader import _line_for

from ._adapters import (
    AssistantError,
    AssistantProtocolError,
    AssistantTimeout,
    TargetError,
    graph_reply,
)
from ._http_adapters import AdapterConfigError, AssistantHTTPError, LoopClient, _snippet, read_config
from ._types import Message, Reply

__all__ = [
    "THREAD_NAMESPACE",
    "RemoteGraphAssistant",
    "RemoteGraphConfig",
    "load_remote_graph_config",
    "load_remote_graph_target",
]

THREAD_NAMESPACE = uuid.UUID("ccf5f465-5c15-4871-82e5-79b2c54efebe")
"""The namespace of the `uuid5` server thread ids botdrill's thread ids are mapped to (never change it: a
resumed run must find its threads)."""

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
_Lines = dict[tuple[str | int, ...], int]


class RemoteGraphConfig(BaseModel):
    """Where the deployed graph is and how to reach it (see the module doc for the file's form)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    """The LangGraph server: `http://` or `https://` with a host, and a path prefix if it is behind one."""
    assistant_id: str = Field(min_length=1)
    """The assistant to run: its id, or the name of a graph in the deployment's `langgraph.json`."""
    headers_from_env: dict[str, _EnvName] = Field(default_factory=dict)
    """Request headers whose values are environment variables: header name -> variable name."""
    timeout: float = Field(default=30.0, gt=0, allow_inf_nan=False)
    """Seconds one turn (one whole run, from sending to the last event) may take."""
    name: str | None = Field(default=None, min_length=1)
    """The assistant's name in run records (default: `langgraph:URL#ASSISTANT_ID`)."""

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the url must be http:// or https:// with a host; got {url!r}")
        if parts.query or parts.fragment:
            raise ValueError("the url is the server's address: no query ('?') or fragment ('#')")
        return url.rstrip("/")

    @field_validator("headers_from_env")
    @classmethod
    def _header_names(cls, headers: dict[str, str]) -> dict[str, str]:
        seen: set[str] = set()
        for name in headers:
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a valid header name")
            if name.lower() in seen:
                raise ValueError(f"header {name!r} is named twice (header names ignore case)")
            seen.add(name.lower())
        return headers


def load_remote_graph_config(path: str | Path) -> RemoteGraphConfig:
    """Load a deployed graph's configuration from a YAML (or JSON) file.

    Raises:
        AdapterConfigError: the file is missing, not UTF-8, malformed or invalid; the message names the
            file, the line and the field.
    """
    return _load_with_lines(path)[0]


def _load_with_lines(path: str | Path) -> tuple[RemoteGraphConfig, _Lines]:
    return read_config(path, RemoteGraphConfig, what="a langgraph target")


def _check_environment(
    headers: Mapping[str, str], *, source: str | None = None, lines: _Lines | None = None
) -> None:
    """Raise `AdapterConfigError` (field `headers_from_env.NAME`) for a variable that is not set."""
    for header, variable in headers.items():
        if not os.environ.get(variable):
            loc = ("headers_from_env", header)
            raise AdapterConfigError(
                f"environment variable {variable} is not set (or is empty)",
                path=source,
                line=_line_for(loc, lines) if lines is not None else None,
                field=f"headers_from_env.{header}",
            )


def _where(url: str) -> str:
    """The url to name in messages and records: without credentials, query or fragment."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def _new_user_messages(messages: list[Message]) -> list[dict[str, str]]:
    """The user messages after the assistant's last reply, oldest first: all the server has not seen."""
    out: list[dict[str, str]] = []
    for message in reversed(messages):
        if message["role"] == "assistant":
            break
        if message["role"] == "user":
            out.append({"role": "user", "content": message["content"]})
    return out[::-1]


class _LoopGraph(LoopClient):
    """The `RemoteGraph` and its HTTP client for one event loop, closed when the loop ends its tasks."""

    def __init__(self, http: httpx.AsyncClient, graph: RemoteGraph) -> None:
        super().__init__(http)
        self.graph = graph


class RemoteGraphAssistant:
    """A graph on a LangGraph server behind botdrill's `Assistant` interface (see the module doc).

    Raises (from `respond`): `AssistantTimeout` (no whole run within the timeout), `AssistantHTTPError` (an
    HTTP error status: 404 for an unknown assistant, 5xx...), `AssistantProtocolError` (the answer is not
    server-sent events of JSON, or the final state has no AI message), `AssistantError` (the connection
    failed, or the graph raised on the server).
    """

    def __init__(
        self,
        config: RemoteGraphConfig,
        *,
        name: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """Args:
            config: the server, the assistant and the headers.
            name: the name in run records (default: `config.name`, or `langgraph:URL#ASSISTANT_ID`).
            transport: an httpx transport to use instead of the network (tests).

        Raises:
            AdapterConfigError: a header's environment variable is not set (field `headers_from_env.NAME`).
        """
        _check_environment(config.headers_from_env)
        self.config = config
        self.name: str = name or config.name or f"langgraph:{_where(config.url)}#{config.assistant_id}"
        self._where = _where(config.url)
        self._transport = transport
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopGraph] = (
            weakref.WeakKeyDictionary()
        )

    @classmethod
    def from_file(
        cls, path: str | Path, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> RemoteGraphAssistant:
        """The assistant described by a YAML or JSON file.

        Raises:
            AdapterConfigError: the file is missing or invalid, or names an environment variable that is not
                set; the message names the file, the line and the field.
        """
        config, lines = _load_with_lines(path)
        _check_environment(config.headers_from_env, source=str(path), lines=lines)
        return cls(config, transport=transport)

    def __repr__(self) -> str:
        return f"RemoteGraphAssistant(name={self.name!r}, url={self._where!r})"

    def server_thread_id(self, thread_id: str) -> str:
        """The server's thread for botdrill's `thread_id`: a UUID, the same on every call and process."""
        return str(uuid.uuid5(THREAD_NAMESPACE, f"{self.config.assistant_id}\n{thread_id}"))

    async def respond(self, messages: list[Message], *, thread_id: str) -> Reply:
        """Run the graph on the new user messages in the conversation's server thread; read its reply."""
        new = _new_user_messages(messages)
        if not new:
            return Reply(text="")  # nothing the server has not seen: no run
        server_thread = self.server_thread_id(thread_id)
        where = f"{self._where}/threads/{server_thread}/runs/stream"
        graph = self._graph()
        config: RunnableConfig = {"configurable": {"thread_id": server_thread}}
        state: Any = None
        got_state = False
        interrupts: list[Any] = []
        try:
            async with asyncio.timeout(self.config.timeout):
                async for part in graph.astream({"messages": new}, config, stream_mode=["values", "updates"]):
                    event, data = getattr(part, "event", None), getattr(part, "data", None)
                    if event == "values":
                        state, got_state = data, True
                    elif event == "updates" and isinstance(data, dict):
                        found = data.get("__interrupt__")
                        if isinstance(found, list):
                            interrupts.extend(found)
        except (TimeoutError, httpx.TimeoutException):
            raise AssistantTimeout(
                f"POST {where}: no whole answer within {self.config.timeout:g} s"
            ) from None
        except httpx.HTTPStatusError as exc:
            raise self._status_error(where, exc) from None
        except RemoteException as exc:
            raise AssistantError(
                self._redact(f"POST {where}: the graph failed on the server: {_error_event(exc)}")
            ) from None
        except httpx.TransportError as exc:
            if "text/event-stream" in str(exc):  # a 2xx that is not a stream: not a LangGraph server
                raise AssistantProtocolError(
                    self._redact(f"POST {where} answered something other than server-sent events: {exc}")
                ) from None
            raise AssistantError(
                self._redact(f"POST {where} failed: {type(exc).__name__}: {exc or 'no detail'}")
            ) from None
        except ValueError as exc:  # orjson's JSONDecodeError: an event whose data is not JSON
            raise AssistantProtocolError(
                self._redact(f"POST {where} streamed an event whose data is not JSON: {exc}")
            ) from None
        except Exception as exc:  # the client failed some other way: still the target's failure, as data
            raise AssistantError(self._redact(f"POST {where} failed: {type(exc).__name__}: {exc}")) from None
        if not got_state:
            raise AssistantProtocolError(f"POST {where}: the run streamed no state (no 'values' event)")
        if interrupts and isinstance(state, dict) and not state.get("__interrupt__"):
            state = {**state, "__interrupt__": interrupts}  # an older server: interrupts only in updates
        try:
            return graph_reply(state)
        except AssistantProtocolError as exc:
            raise AssistantProtocolError(
                self._redact(f"POST {where}: assistant {self.config.assistant_id!r}: {exc}")
            ) from None

    def _status_error(self, where: str, exc: httpx.HTTPStatusError) -> AssistantHTTPError:
        response = exc.response
        status = response.status_code
        body: object = getattr(exc, "body", None)
        if body is None:
            with contextlib.suppress(httpx.HTTPError, UnicodeDecodeError):
                body = response.text
        note = ""
        if status == 404:
            note = f" (is {self.config.assistant_id!r} an assistant or graph of this server?)"
        elif status == 429:
            note = " (rate limited: lower the run's concurrency)"
        elif status >= 500:
            note = " (server error)"
        return AssistantHTTPError(
            self._redact(
                f"POST {where} answered HTTP {status} {response.reason_phrase}{note}: {_snippet(body or '')}"
            ),
            status=status,
        )

    def _redact(self, text: str) -> str:
        """`text` with the value of every header's environment variable blanked out."""
        for variable in self.config.headers_from_env.values():
            secret = os.environ.get(variable)
            if secret:
                text = text.replace(secret, "***")
        return text

    def _headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for header, variable in self.config.headers_from_env.items():
            value = os.environ.get(variable)
            if not value:
                raise AssistantError(f"environment variable {variable} (header {header}) is no longer set")
            headers[header] = value
        return headers

    def _graph(self) -> RemoteGraph:
        """The running loop's `RemoteGraph`, opening its client on first use."""
        loop = asyncio.get_running_loop()
        held = self._by_loop.get(loop)
        if held is None or held.keeper.done():
            # Built here rather than by the SDK's `get_client`, whose transport retries a refused connection
            # five times with back-off, and which would add an API key found in the environment.
            http = httpx.AsyncClient(
                base_url=self.config.url,
                transport=self._transport or httpx.AsyncHTTPTransport(retries=1),
                timeout=httpx.Timeout(self.config.timeout),
                headers=self._headers(),
                follow_redirects=False,
            )
            graph = RemoteGraph(self.config.assistant_id, client=LangGraphClient(http), name=self.name)
            held = self._by_loop[loop] = _LoopGraph(http, graph)
        return held.graph

    async def aclose(self) -> None:
        """Close the connections of the running event loop (a later turn opens new ones)."""
        held = self._by_loop.pop(asyncio.get_running_loop(), None)
        if held is not None:
            await held.close()


def _error_event(exc: RemoteException) -> str:
    """The words of a run's `error` event: `{"error": "ValueError", "message": "..."}` from a server."""
    data = exc.args[0] if exc.args else None
    if isinstance(data, dict):
        kind, message = data.get("error"), data.get("message")
        if isinstance(kind, str) and isinstance(message, str):
            return f"{kind}: {message}"
    return _snippet(data if data is not None else "")


def load_remote_graph_target(spec: str) -> RemoteGraphAssistant:
    """The assistant named by `langgraph:URL#ASSISTANT_ID` or `langgraph:CONFIG.yaml`.

    Raises:
        TargetError: the spec names neither, or its url has no assistant id after `#`.
        AdapterConfigError: the file is missing or invalid (file, line and field named).
    """
    rest = spec.removeprefix("langgraph:")
    if rest.startswith(("http://", "https://")):
        return _from_url(spec, rest)
    if not rest or "://" in rest:
        raise TargetError(
            f"target {spec!r} is neither 'langgraph:URL#ASSISTANT_ID' (e.g. "
            "'langgraph:http://127.0.0.1:2024#agent') nor 'langgraph:CONFIG.yaml'"
        )
    return RemoteGraphAssistant.from_file(rest)


def _from_url(spec: str, url: str) -> RemoteGraphAssistant:
    parts = urlsplit(url)
    assistant_id = unquote(parts.fragment)
    if not assistant_id:
        raise TargetError(
            f"target {spec!r}: name the assistant after '#', e.g. 'langgraph:{_where(url)}#agent'"
        )
    if parts.query:
        raise TargetError(
            f"target {spec!r}: the url takes no options; put headers and a timeout in a "
            "'langgraph:CONFIG.yaml' file"
        )
    base = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    try:
        config = RemoteGraphConfig(url=base, assistant_id=assistant_id)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        reason = str(first["msg"]).removeprefix("Value error, ")
        raise TargetError(f"target {spec!r}: {reason}") from None
    return RemoteGraphAssistant(config)
