"""Adapters that put any assistant under test behind one async interface.

Errors, by whose fault they are:

    BotdrillError
    ├── TargetError                the target named by the user cannot be loaded (config's fault)
    └── AssistantError             the assistant under test failed on a turn (recorded, never raised out)
        ├── AssistantTimeout       it did not answer within the time limit
        └── AssistantProtocolError it answered something that is not a reply

An `AssistantError` is data: the runner records its type and message on the dialogue and goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import json
import numbers
import os
import re
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from pydantic import ValidationError

from botdrill.scenarios import BotdrillError

from ._types import Message, Reply


class TargetError(BotdrillError):
    """The `--target` could not be imported or is not something botdrill can talk to."""

    code = "target_invalid"


class AssistantError(BotdrillError):
    """The assistant under test failed on a turn; recorded on the dialogue, the run goes on."""

    code = "assistant_error"


class AssistantTimeout(AssistantError):
    """The assistant under test did not answer in time."""

    code = "assistant_timeout"


class AssistantProtocolError(AssistantError):
    """The assistant under test returned something that is not a reply."""

    code = "assistant_protocol"


@runtime_checkable
class Assistant(Protocol):
    """What botdrill talks to: one async call per assistant turn."""

    name: str

    async def respond(self, messages: list[Message], *, thread_id: str) -> Reply:
        """The assistant's reply to the conversation so far."""


@runtime_checkable
class BatchAssistant(Protocol):
    """An assistant that can answer a whole cohort of dialogues in one call (the fast path)."""

    name: str

    def respond_batch(self, requests: Sequence[tuple[str, list[Message]]]) -> list[Reply]:
        """One reply per `(thread_id, messages)`."""

    def forget(self, thread_id: str) -> None:
        """Drop the state kept for a finished conversation."""


_REPLY_KEYS = {"text", "intent", "slots", "handoff", "confidence", "escalated_by"}


def coerce_reply(value: object) -> Reply:
    """Turn what a target returned into a `Reply`.

    Accepts a string, a `Reply`, or a dict with `text` and optionally `intent`, `slots`, `handoff`,
    `confidence` (a number from 0 to 1) and `escalated_by` (other keys are kept under `raw`).

    Raises:
        AssistantProtocolError: anything else, with what was wrong.
    """
    if isinstance(value, Reply):
        return value
    if isinstance(value, str):
        return Reply(text=value)
    if isinstance(value, dict):
        if not isinstance(value.get("text"), str):
            raise AssistantProtocolError(
                f"a reply dict needs a string 'text'; got keys {sorted(map(str, value))}"
            )
        extra = {k: v for k, v in value.items() if k not in _REPLY_KEYS}
        slots = value.get("slots")
        if isinstance(slots, dict):
            slots = {str(k): str(v) for k, v in slots.items() if v is not None}
        confidence = value.get("confidence")
        if isinstance(confidence, numbers.Real) and not isinstance(confidence, bool):
            confidence = float(confidence)  # numpy and torch scalars are numbers too
        try:
            return Reply(
                text=value["text"],
                intent=value.get("intent"),
                slots=slots,
                handoff=value.get("handoff"),
                confidence=confidence,
                escalated_by=value.get("escalated_by"),
                raw=extra or None,
            )
        except ValidationError as exc:
            problem = exc.errors(include_url=False)[0]
            field = ".".join(str(p) for p in problem["loc"])
            raise AssistantProtocolError(f"reply field {field!r}: {problem['msg']}") from None
    raise AssistantProtocolError(f"a reply must be a str or a dict with 'text'; got {type(value).__name__}")


class CallableAssistant:
    """A plain function, sync or async, that takes OpenAI-style messages and returns a string or dict.

    `thread_id` is passed by name only if the function declares it (or takes `**kwargs`). A sync function
    runs in a worker thread so a slow one does not stall the other dialogues.
    """

    def __init__(self, fn: Callable[..., Any], *, name: str | None = None) -> None:
        self._fn = fn
        self.name: str = name or str(getattr(fn, "__qualname__", type(fn).__name__))
        # An object with an async __call__ is async too; inspect needs the method to tell.
        target = fn if inspect.isfunction(fn) or inspect.ismethod(fn) else getattr(fn, "__call__", fn)  # noqa: B004 (the method)
        self._is_async = inspect.iscoroutinefunction(target)
        try:
            params = inspect.signature(fn).parameters
        except (TypeError, ValueError):
            params = {}  # type: ignore[assignment]
        self._wants_thread = "thread_id" in params or any(
            p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()
        )

    async def respond(self, messages: list[Message], *, thread_id: str) -> Reply:
        kwargs = {"thread_id": thread_id} if self._wants_thread else {}
        conversation = [dict(m) for m in messages]  # the target may mutate its copy
        if self._is_async:
            result = await self._fn(conversation, **kwargs)
        else:
            result = await _in_daemon_thread(self._fn, conversation, **kwargs)
            if inspect.isawaitable(result):
                result = await result
        return coerce_reply(result)


def _in_daemon_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
    """Run a blocking call in a daemon thread and await its result.

    Unlike `asyncio.to_thread`, a call that never returns (a hung target) neither delays the end of the
    run, which would wait for the default executor, nor keeps the process alive at exit: once the
    runner's timeout has recorded it, it is abandoned.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():  # timed out and cancelled meanwhile
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def work() -> None:
        try:
            result, error = fn(*args, **kwargs), None
        except BaseException as exc:
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # a closed loop: the run ended without this reply
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=work, name="botdrill-target", daemon=True).start()
    return future


class GraphAssistant:
    """A compiled LangGraph graph whose state has a `messages` list (MessagesState or alike).

    The graph gets the conversation as `{"messages": [...]}` and `configurable.thread_id`; if it has a
    checkpointer it keeps its own history, so only the newest user message is sent. The reply is read from
    the output state by `graph_reply`.
    """

    def __init__(self, graph: Any, *, name: str | None = None) -> None:
        self._graph = graph
        self.name: str = name or getattr(graph, "name", None) or "langgraph"
        # A graph with a checkpointer, or one deployed on a LangGraph server (`RemoteGraph`), keeps the
        # thread's history itself: resending it would double every message.
        self._stateful = (
            getattr(graph, "checkpointer", None) is not None or type(graph).__name__ == "RemoteGraph"
        )

    async def respond(self, messages: list[Message], *, thread_id: str) -> Reply:
        sent = messages[-1:] if self._stateful else messages
        config = {"configurable": {"thread_id": thread_id}}
        output = await self._graph.ainvoke({"messages": [dict(m) for m in sent]}, config=config)
        return graph_reply(output)


_AI_TYPES = ("assistant", "ai", "AIMessage", "AIMessageChunk")


def _message_kind_and_content(message: object) -> tuple[object, object]:
    """A message's kind (`assistant`, `ai`, ...) and content, whatever shape it comes in.

    A local graph gives LangChain message objects (`.type`, `.content`) or OpenAI-style dicts (`role`); a
    deployed graph's state arrives as JSON, where LangChain messages are dicts with `type` (`"ai"`), or, in
    LangChain's constructor form, `{"lc": 1, "type": "constructor", "id": [..., "AIMessage"], "kwargs":
    {...}}`.
    """
    if not isinstance(message, dict):
        return getattr(message, "type", None), getattr(message, "content", None)
    if message.get("type") == "constructor" and isinstance(message.get("kwargs"), dict):
        ids = message.get("id")
        kind = ids[-1] if isinstance(ids, list) and ids else None
        return kind, message["kwargs"].get("content")
    return message.get("role") or message.get("type"), message.get("content")


def _interrupt_value(interrupt: object) -> object:
    """What a graph paused with: an `Interrupt`'s `value`, or the `value` key of one sent as JSON."""
    if isinstance(interrupt, dict):
        return interrupt.get("value")
    return getattr(interrupt, "value", None)


def graph_reply(output: object) -> Reply:
    """The reply in a LangGraph graph's output state, local or deployed.

    The reply is the last message's content when it is the assistant's (content blocks are joined);
    `intent`, `slots` and `handoff` keys of the state are taken when present, and an `__interrupt__` (a
    graph pausing for a person) counts as a hand-off, its value being the words when the graph paused
    before saying anything.

    Raises:
        AssistantProtocolError: the state has no messages, or no assistant message and no interrupt, or the
            last message has no text.
    """
    if not isinstance(output, dict) or not output.get("messages"):
        raise AssistantProtocolError("the graph's output state has no 'messages'")
    if not isinstance(output["messages"], list):
        raise AssistantProtocolError("the graph's output state has 'messages' that are not a list")
    kind, content = _message_kind_and_content(output["messages"][-1])
    interrupts = output.get("__interrupt__")
    if kind not in _AI_TYPES:
        if not interrupts:
            raise AssistantProtocolError("the graph added no assistant message")
        # Paused for a person before saying anything: its words, if any, are the interrupt's value.
        value = _interrupt_value(interrupts[0]) if isinstance(interrupts, (list, tuple)) else None
        content = value if isinstance(value, str) else ""
    if isinstance(content, list):  # content blocks
        content = "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
    if not isinstance(content, str):
        raise AssistantProtocolError("the graph's last message has no text content")
    handoff = output.get("handoff")
    if interrupts:
        handoff = True
    return coerce_reply(
        {
            "text": content,
            "intent": output.get("intent"),
            "slots": output.get("slots"),
            "handoff": handoff,
        }
    )


def _is_graph(obj: object) -> bool:
    return hasattr(obj, "ainvoke") and hasattr(obj, "get_graph")


def as_assistant(obj: object, *, name: str | None = None) -> Assistant | BatchAssistant:
    """Wrap a target object: an `Assistant`, a batch assistant, a compiled graph or a callable.

    Raises:
        TargetError: the object is none of these.
    """
    if isinstance(obj, (Assistant, BatchAssistant)) and not _is_graph(obj):
        return obj
    if _is_graph(obj):
        return GraphAssistant(obj, name=name)
    if callable(obj):
        return CallableAssistant(obj, name=name)
    raise TargetError(
        f"target {name or obj!r} is a {type(obj).__name__}; expected a callable taking a list of messages, "
        "or a compiled LangGraph graph"
    )


_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def load_target(spec: str) -> Assistant | BatchAssistant:
    """Load the assistant under test from `module:attr`, a deployed bot's endpoint, or a built-in bot.

    The built-in bots: `reference`, and `reference-bare`, the same bot without escalation rules of its
    own (it never hands off), to drill escalation policies wrapped around it. Deployed bots:
    `http:CONFIG.yaml` (a JSON endpoint with the request and response mapping in the file),
    `rasa:URL[?parse=1]` (Rasa's REST channel), `llm:CONFIG.yaml` (an OpenAI-compatible chat model with
    a system prompt and a `transfer_to_human` tool), and `langgraph:URL#ASSISTANT_ID` or
    `langgraph:CONFIG.yaml` (a graph deployed on a LangGraph server, reached through `RemoteGraph`).

    The module is imported from the current directory first, as `python -m` would. Nothing is evaluated:
    `attr` is a dotted attribute path, looked up with `getattr`.

    Raises:
        TargetError: the spec is malformed, the module cannot be imported, the attribute is missing, or the
            object cannot be talked to; the message says what was tried.
    """
    if spec in ("reference", "reference-bare"):
        from ._reference import ReferenceAssistant

        return ReferenceAssistant(escalation=spec == "reference")
    if spec.startswith(("http:", "rasa:")):
        from ._http_adapters import load_http_target

        return load_http_target(spec)
    if spec.startswith("llm:"):
        from ._llm_assistant import load_llm_target

        return load_llm_target(spec)
    if spec.startswith("langgraph:"):
        from ._remote_graph import load_remote_graph_target

        return load_remote_graph_target(spec)
    if not _SPEC.match(spec):
        raise TargetError(f"target {spec!r} is not of the form 'module:attribute' (e.g. 'mybot:respond')")
    module_name, attr_path = spec.split(":", 1)
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise TargetError(
            f"target {spec!r}: could not import module {module_name!r} ({exc}); looked in the current "
            "directory and the installed packages"
        ) from None
    except Exception as exc:  # the user's module raised while importing
        raise TargetError(
            f"target {spec!r}: importing module {module_name!r} raised {type(exc).__name__}: {exc}"
        ) from exc
    obj: Any = module
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            public = sorted(n for n in dir(module) if not n.startswith("_"))[:15]
            raise TargetError(
                f"target {spec!r}: module {module_name!r} has no attribute {attr_path!r} "
                f"(it has: {', '.join(public) or 'nothing public'})"
            ) from None
    return as_assistant(obj, name=spec)


def describe_raw(raw: object) -> str | None:
    """`raw` as JSON text for storage, or its repr when it is not JSON-serialisable."""
    if raw is None:
        return None
    try:
        return json.dumps(raw, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return json.dumps(repr(raw))
