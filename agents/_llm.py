"""The client every LLM call of botdrill goes through: LLM users, LLM assistants under test, LLM judges.

`LLMClient(config)` wraps langchain-openai's `ChatOpenAI` with botdrill's own call policy, the same for every
OpenAI-compatible endpoint:

- a concurrency limit per endpoint (base URL), shared by every client of the endpoint in an event loop;
- a timeout per attempt and a deadline over the whole call (queueing, retries and back-off included), so a
  call never hangs;
- retries on 429 and 5xx, on timeouts and on dropped connections, with exponential back-off and seeded
  jitter, waiting as long as a `Retry-After` asks; none on other 4xx (the request is at fault). The client
  library's own retries are off, so this policy is the one in force;
- a circuit breaker per endpoint: after `breaker_threshold` consecutive failed attempts (5xx, timeouts,
  connection errors) calls fail at once for `breaker_cooldown` seconds, then one trial call decides;
- record and replay through an `LLMStore` (`mode="record"` or `"replay"`), keyed by the request (see
  `botdrill.agents._llm_store`): a replayed run makes no network call at all.

Errors are `AssistantError`s, so a dialogue records them and the run goes on; each message says what
happened, at which endpoint (host only), after how many attempts:

    AssistantError
    └── LLMCallError            the call failed (attributes: endpoint, model, attempts, status)
        ├── LLMStatusError      an HTTP error status: 429 or 5xx once retries are spent, other 4xx at once
        ├── LLMConnectionError  the connection was refused or dropped, retries spent
        ├── LLMTimeout          no reply in time (also an `AssistantTimeout`)
        ├── LLMCircuitOpen      the endpoint is failing: the breaker is open, nothing was sent
        ├── LLMResponseError    the reply cannot be used (also an `AssistantProtocolError`)
        └── LLMReplayMiss       replay mode, and this request was never recorded
    TargetError
    └── LLMConfigError          the configuration is at fault (a missing environment variable...)

The API key is read from the environment variable that `LLMConfig.api_key_env` names, when the client is
built; it is never stored, logged, or written into an error message.

    client = LLMClient(LLMConfig(base_url="https://api.openai.com/v1", model="gpt-4o-mini"))
    async with client:
        result = await client.complete([{"role": "user", "content": "hi"}])
    result.text, result.prompt_tokens, result.latency_ms
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import email.utils
import functools
import importlib
import json
import logging
import os
import random
import re
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from ._adapters import AssistantError, AssistantProtocolError, AssistantTimeout, TargetError
from ._llm_store import LLMCallRecord, LLMStore, canonical_json, request_key

__all__ = [
    "METER",
    "CacheMode",
    "LLMBacked",
    "LLMCallError",
    "LLMCircuitOpen",
    "LLMClient",
    "LLMConfig",
    "LLMConfigError",
    "LLMConnectionError",
    "LLMReplayMiss",
    "LLMResponseError",
    "LLMResult",
    "LLMStatusError",
    "LLMTimeout",
    "ModelPrice",
    "ToolCall",
    "Usage",
    "is_loopback",
]

logger = logging.getLogger("botdrill.llm")

CacheMode = Literal["live", "record", "replay"]
"""`live`: always call, store nothing. `record`: call and store; a request already made in this run is
answered from the store. `replay`: answer from the store only; a request never recorded is an error."""

StructuredMethod = Literal["function_calling", "json_schema", "json_mode"]
ToolLike = Mapping[str, Any] | type[BaseModel] | Callable[..., Any]

LOOPBACK_KEY = "botdrill-loopback"
"""The placeholder API key sent to a loopback endpoint when the key's variable is not set."""

KEY_VERSION = 1
"""Part of every record/replay key: bumped when the request's canonical form changes."""

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


# -- errors ------------------------------------------------------------------------------------------------


class LLMConfigError(TargetError):
    """An LLM configuration cannot be used (a missing environment variable, replay without a store...)."""

    code = "llm_config"


class LLMCallError(AssistantError):
    """An LLM call failed; the message says how, where and after how many attempts.

    Attributes:
        endpoint: host and port of the endpoint.
        model: the model asked for.
        attempts: requests sent (0 when nothing was sent).
        status: the last HTTP status, when there was one.
    """

    code = "llm_error"

    def __init__(
        self, message: str, *, endpoint: str, model: str, attempts: int = 0, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.model = model
        self.attempts = attempts
        self.status = status


class LLMStatusError(LLMCallError):
    """The endpoint answered an HTTP error status."""

    code = "llm_http_error"


class LLMConnectionError(LLMCallError):
    """The endpoint could not be reached, or dropped the connection."""

    code = "llm_connection"


class LLMTimeout(LLMCallError, AssistantTimeout):
    """No reply within the timeout of an attempt or the deadline of the call."""

    code = "llm_timeout"


class LLMCircuitOpen(LLMCallError):
    """The endpoint's circuit breaker is open: the call failed at once, without a request."""

    code = "llm_circuit_open"


class LLMResponseError(LLMCallError, AssistantProtocolError):
    """The endpoint answered something unusable (a malformed tool call, invalid structured output)."""

    code = "llm_bad_response"


class LLMReplayMiss(LLMCallError):
    """Replay mode, and the request was never recorded.

    Attributes:
        key: the request's record/replay key.
    """

    code = "llm_replay_miss"

    def __init__(self, message: str, *, key: str, endpoint: str, model: str) -> None:
        super().__init__(message, endpoint=endpoint, model=model)
        self.key = key


# -- configuration -----------------------------------------------------------------------------------------


class ModelPrice(BaseModel):
    """What a model costs, in USD per million tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: float = Field(ge=0)
    """USD per 1M prompt (input) tokens."""
    completion: float = Field(ge=0)
    """USD per 1M completion (output) tokens."""


class LLMConfig(BaseModel):
    """How to reach one model at one OpenAI-compatible endpoint, and the policy for calling it.

    Secrets are never part of it: `api_key_env` and the values of `headers_from_env` name environment
    variables, read when a client is built. Validation errors never quote the values they refuse (a key
    pasted into the wrong field stays out of logs).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    base_url: str
    """The API's base URL, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:8000/v1`."""
    model: str = Field(min_length=1)
    api_key_env: str = "OPENAI_API_KEY"
    """The NAME of the environment variable holding the API key. For a loopback `base_url` (127.0.0.1,
    localhost, ::1) the variable may be unset, and a placeholder key is sent."""
    temperature: float | None = Field(default=0.0, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0)
    max_tokens_param: Literal["max_completion_tokens", "max_tokens"] = "max_completion_tokens"
    """The request field `max_tokens` goes in: OpenAI's current name, or the older `max_tokens` that some
    servers (llama.cpp's, vLLM's older ones) read instead and that they otherwise ignore."""
    seed: int | None = None
    """Sent to the endpoint (best-effort determinism there); also seeds the retry jitter."""
    timeout: float = Field(default=30.0, gt=0)
    """Seconds one attempt may take."""
    deadline: float = Field(default=120.0, gt=0)
    """Seconds the whole call may take, waiting for a slot, retries and back-off included."""
    max_retries: int = Field(default=3, ge=0)
    """Retries after the first attempt, on 429, 5xx, timeouts and dropped connections."""
    backoff: float = Field(default=0.5, gt=0)
    """Seconds before the first retry when the endpoint gives no `Retry-After`; doubles each retry, with
    jitter (half of the delay is random)."""
    backoff_max: float = Field(default=20.0, gt=0)
    concurrency: int = Field(default=8, ge=1)
    """Calls in flight at once to this endpoint (shared by every client of the same base URL; the lowest
    limit asked for wins)."""
    breaker_threshold: int = Field(default=5, ge=1)
    """Consecutive failed attempts (5xx, timeouts, connection errors) that open the circuit breaker."""
    breaker_cooldown: float = Field(default=30.0, gt=0)
    """Seconds the breaker stays open before one trial call is let through."""
    headers_from_env: dict[str, str] = Field(default_factory=dict)
    """Extra request headers: header name -> NAME of the environment variable holding its value."""
    prices: dict[str, ModelPrice] = Field(default_factory=dict)
    """USD per 1M tokens, per model name, to put a cost on each call (`None` for a model not listed)."""

    @model_validator(mode="before")
    @classmethod
    def _no_secrets(cls, data: Any) -> Any:
        # A key passed inline would be echoed by pydantic's "extra inputs" error; say so without it.
        if isinstance(data, Mapping):
            for name in ("api_key", "key", "openai_api_key", "headers"):
                if name in data:
                    raise ValueError(
                        f"LLMConfig takes no {name!r}: secrets stay in environment variables; name them "
                        "with 'api_key_env' and 'headers_from_env'"
                    )
        return data

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("base_url must be an http:// or https:// URL with a host")
        if parts.username or parts.password or parts.query:
            raise ValueError("base_url must carry no credentials or query string (use headers_from_env)")
        return value.rstrip("/")

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not _ENV_NAME.match(value):
            # Never echo the value: it may be the key itself, pasted in the wrong field.
            raise ValueError("api_key_env must be the name of an environment variable, not a key")
        return value

    @field_validator("headers_from_env")
    @classmethod
    def _header_envs(cls, value: dict[str, str]) -> dict[str, str]:
        for header, env in value.items():
            if not _HEADER_NAME.match(header):
                raise ValueError(f"{header!r} is not a valid header name")
            if not _ENV_NAME.match(env):
                raise ValueError(f"header {header!r}: the value must name an environment variable")
        return value

    @model_validator(mode="after")
    def _timeouts(self) -> LLMConfig:
        if self.timeout > self.deadline:
            raise ValueError(f"timeout ({self.timeout} s) is longer than the deadline ({self.deadline} s)")
        return self

    @property
    def endpoint(self) -> str:
        """Host and port of `base_url`: how the endpoint is named in records and messages."""
        return urlsplit(self.base_url).netloc

    def cost(self, prompt_tokens: int | None, completion_tokens: int | None) -> float | None:
        """USD for a call, from `prices` (`None` when the model has no price or no token counts)."""
        price = self.prices.get(self.model)
        if price is None or prompt_tokens is None or completion_tokens is None:
            return None
        return (prompt_tokens * price.prompt + completion_tokens * price.completion) / 1_000_000


def is_loopback(base_url: str) -> bool:
    """Whether `base_url` points at this machine (127.0.0.0/8, localhost, ::1)."""
    host = (urlsplit(base_url).hostname or "").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


# -- results -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool the model called, with its parsed arguments."""

    name: str
    arguments: dict[str, Any]
    id: str = ""


@dataclass(frozen=True, slots=True)
class LLMResult:
    """One answer of the model.

    A result served from the store is the recorded one, latencies included (so a replayed run's simulated
    clock reads the same), with `cached=True` and `attempts=0`.
    """

    text: str
    tool_calls: tuple[ToolCall, ...]
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: float
    """The round trip of the attempt that succeeded (as recorded, for a cached result)."""
    cached: bool
    """Served from the store, without a request."""
    model: str
    """The model that answered, as the endpoint names it (the one asked for when it does not say)."""
    finish_reason: str | None = None
    parsed: Any = None
    """The structured output, an instance of the `schema` asked for (`None` without one)."""
    cost_usd: float | None = None
    """What the tokens cost by the config's price table, whether or not this call paid for them."""
    attempts: int = 1
    """Requests sent for this result (0 when cached)."""
    first_token_ms: float | None = None
    """Time to the first streamed token (streamed calls only)."""
    key: str | None = None
    """The record/replay key (only computed when a store is in use)."""
    wall_ms: float = 0.0
    """Time the call took here, waiting and retries included (0 for a cached result)."""


@dataclass(slots=True)
class Usage:
    """LLM calls counted for one dialogue (or anything else a caller meters): what they cost and took.

    Tokens and cost count every result, a replayed or cached one included (they say what the dialogue
    needs); `calls` counts only requests actually sent, so a replayed run shows zero.
    """

    calls: int = 0
    """Requests sent over the network (retries included)."""
    cached: int = 0
    """Results served from the store or from an identical call in flight."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    """`None` until a result with a price is counted."""
    wall_ms: float = 0.0

    def add(self, result: LLMResult) -> None:
        """Count one result."""
        self.calls += result.attempts
        self.cached += result.cached
        self.prompt_tokens += result.prompt_tokens or 0
        self.completion_tokens += result.completion_tokens or 0
        if result.cost_usd is not None:
            self.cost_usd = (self.cost_usd or 0.0) + result.cost_usd
        self.wall_ms += result.wall_ms


METER: contextvars.ContextVar[Usage | None] = contextvars.ContextVar("botdrill_llm_meter", default=None)
"""Where `LLMClient.complete` counts its results: set it in a task (each asyncio task has its own context)
and every call made in that task, by any client, is counted there."""


# -- per-endpoint state: concurrency gate and circuit breaker ----------------------------------------------


class _Gate:
    """A semaphore whose limit can be lowered while in use (the lowest limit asked for wins)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    async def __aenter__(self) -> None:
        if self.active < self.limit and not self._waiters:
            self.active += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # the slot is taken for us before we are woken
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # woken and cancelled at once: hand the slot on
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._release()

    def _release(self) -> None:
        self.active -= 1
        while self._waiters and self.active < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.active += 1
                waiter.set_result(None)


@dataclass
class _Breaker:
    failures: int = 0
    """Consecutive failed attempts."""
    open_until: float = 0.0
    """`time.monotonic()` when the cool-down ends; 0 while closed."""
    probe: object | None = None
    """The call trying the endpoint once the cool-down is over (half-open), if any."""
    last: str = ""

    def blocked(self, now: float, call: object) -> float | None:
        """Seconds left before `call` may go through (0: another call is trying the endpoint), or `None`
        if it may: the breaker is closed, or the cool-down is over and `call` is the one trial call."""
        if self.open_until == 0.0 or self.probe is call:
            return None
        if now < self.open_until:
            return self.open_until - now
        if self.probe is not None:
            return 0.0
        self.probe = call
        return None


@dataclass
class _Endpoint:
    gate: _Gate
    breaker: _Breaker = field(default_factory=_Breaker)


_ENDPOINTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Endpoint]] = (
    weakref.WeakKeyDictionary()
)


def _endpoint_state(base_url: str, limit: int) -> _Endpoint:
    per_loop = _ENDPOINTS.setdefault(asyncio.get_running_loop(), {})
    state = per_loop.get(base_url)
    if state is None:
        state = per_loop[base_url] = _Endpoint(_Gate(limit))
    elif limit < state.gate.limit:
        state.gate.limit = limit
    return state


@dataclass
class _LoopState:
    """What a client keeps per event loop: the HTTP connection pool and the chat models bound to it."""

    http: Any
    model: Any
    bound: dict[tuple[Any, ...], Any] = field(default_factory=dict)


@dataclass
class _Failure:
    """A failed attempt, classified."""

    kind: Literal["status", "timeout", "connection", "response", "other"]
    detail: str
    retryable: bool
    health: Literal["failed", "alive", "neutral"]
    """What it says of the endpoint, for the breaker."""
    status: int | None = None
    retry_after: float | None = None


# -- the client ---------------------------------------------------------------------------------------------


class LLMClient:
    """Calls one model at one endpoint under botdrill's call policy (see the module docstring).

    Args:
        config: the endpoint, model, sampling parameters and policy.
        store: where calls are recorded and replayed from (needed by `record` and `replay`).
        mode: `live`, `record` or `replay` (see `CacheMode`).

    Raises:
        LLMConfigError: the API key's (or a header's) environment variable is not set, or `mode` needs a
            store. In `replay` mode no variable is read: a replayed run needs no secret.

    Use it as an async context manager, or call `aclose()`, to close its connections.
    """

    def __init__(self, config: LLMConfig, *, store: LLMStore | None = None, mode: CacheMode = "live") -> None:
        if mode not in ("live", "record", "replay"):
            raise LLMConfigError(f"mode must be 'live', 'record' or 'replay', not {mode!r}")
        if mode != "live" and store is None:
            raise LLMConfigError(f"mode {mode!r} needs an LLMStore to record into or replay from")
        self.config = config
        self.store = store
        self.mode: CacheMode = mode
        self.endpoint = config.endpoint
        self._api_key: SecretStr | None = None
        self._headers: dict[str, str] = {}
        self._secrets: list[str] = []
        if mode != "replay":
            self._api_key = SecretStr(self._read_key())
            self._headers = self._read_headers()
            self._secrets = [
                s for s in [self._api_key.get_secret_value(), *self._headers.values()] if len(s) >= 4
            ]
        self._rng = random.Random(config.seed if config.seed is not None else 0)
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary()
        )
        self._inflight: dict[str, asyncio.Task[LLMResult]] = {}
        self._schemas: dict[type[BaseModel], dict[str, Any]] = {}

    def _read_key(self) -> str:
        name = self.config.api_key_env
        value = os.environ.get(name, "")
        if value:
            return value
        if is_loopback(self.config.base_url):
            return LOOPBACK_KEY
        raise LLMConfigError(
            f"the LLM endpoint {self.endpoint} needs an API key: environment variable {name} is not set "
            "(LLMConfig.api_key_env names it)"
        )

    def _read_headers(self) -> dict[str, str]:
        headers = {}
        for header, name in self.config.headers_from_env.items():
            value = os.environ.get(name)
            if value is None:
                raise LLMConfigError(
                    f"header {header!r} for the LLM endpoint {self.endpoint}: environment variable {name} "
                    "is not set (LLMConfig.headers_from_env names it)"
                )
            headers[header] = value
        return headers

    # -- public API -------------------------------------------------------------------------------------

    async def complete(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        tools: Sequence[ToolLike] = (),
        tool_choice: str | None = None,
        schema: type[BaseModel] | None = None,
        schema_method: StructuredMethod = "function_calling",
        stream: bool = False,
        salt: str | None = None,
    ) -> LLMResult:
        """Ask the model for the next message.

        Args:
            messages: OpenAI-style chat messages (`role`, `content`; tool calls and tool results allowed).
            tools: tools the model may call: OpenAI tool dicts, pydantic models or typed functions.
            tool_choice: `"auto"`, `"required"`, `"none"` or a tool's name.
            schema: a pydantic model the reply must fill; the result's `parsed` holds the instance.
            schema_method: how langchain-openai asks for it: a forced tool call, a JSON schema response
                format, or JSON mode.
            stream: stream the reply (server-sent events); the result is the same, with `first_token_ms`.
            salt: mixed into the record/replay key, to tell apart requests that are identical but must
                not share an answer (repeated trials of one dialogue, say).

        Raises:
            LLMCallError: in one of its forms; never anything else for a failure of the endpoint.
            ValueError: the request itself is malformed (stream with a schema, unserialisable messages).
        """
        result = await self._complete(messages, tools, tool_choice, schema, schema_method, stream, salt)
        meter = METER.get()
        if meter is not None:
            meter.add(result)
        return result

    async def _complete(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[ToolLike],
        tool_choice: str | None,
        schema: type[BaseModel] | None,
        schema_method: StructuredMethod,
        stream: bool,
        salt: str | None,
    ) -> LLMResult:
        if stream and schema is not None:
            raise ValueError("stream and schema do not go together: structured output is read whole")
        tool_dicts = [_openai_tool(t) for t in tools]
        if self.mode == "live":
            return await self._live(messages, tool_dicts, tool_choice, schema, schema_method, stream, None)
        assert self.store is not None
        request = self._request(messages, tool_dicts, tool_choice, schema, schema_method, salt)
        key = _key(request)
        if self.mode == "replay":
            record = self.store.get(key)
            if record is None:
                raise LLMReplayMiss(
                    f"replay: no recorded LLM call for model {self.config.model} with key {key} (a request "
                    "not made when the run was recorded: record it again with mode 'record')",
                    key=key,
                    endpoint=self.endpoint,
                    model=self.config.model,
                )
            return self._from_record(record, schema, schema_method)
        record = self.store.recorded(key)
        if record is not None:
            return self._from_record(record, schema, schema_method)
        task = self._inflight.get(key)
        if task is None:  # one request per key in flight; identical ones wait for its answer
            task = asyncio.ensure_future(
                self._live(messages, tool_dicts, tool_choice, schema, schema_method, stream, (key, request))
            )
            self._inflight[key] = task
            task.add_done_callback(functools.partial(self._settled, key))
            return await asyncio.shield(task)
        result = await asyncio.shield(task)
        return _replace(result, cached=True, attempts=0, wall_ms=0.0)

    def request_key(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        tools: Sequence[ToolLike] = (),
        tool_choice: str | None = None,
        schema: type[BaseModel] | None = None,
        schema_method: StructuredMethod = "function_calling",
        salt: str | None = None,
    ) -> str:
        """The record/replay key `complete` would use for these arguments."""
        request = self._request(
            messages, [_openai_tool(t) for t in tools], tool_choice, schema, schema_method, salt
        )
        return _key(request)

    async def aclose(self) -> None:
        """Close the connections opened in the running event loop."""
        state = self._loops.pop(asyncio.get_running_loop(), None)
        if state is not None:
            await state.http.aclose()

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- record and replay ------------------------------------------------------------------------------

    def _request(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: list[dict[str, Any]],
        tool_choice: str | None,
        schema: type[BaseModel] | None,
        schema_method: StructuredMethod,
        salt: str | None,
    ) -> dict[str, Any]:
        """The request in the form its key is computed from: no endpoint, key or header in it."""
        c = self.config
        request: dict[str, Any] = {
            "v": KEY_VERSION,
            "model": c.model,
            "params": {"temperature": c.temperature, "max_tokens": c.max_tokens, "seed": c.seed},
            "messages": [dict(m) for m in messages],
        }
        if tools:
            request["tools"] = tools
        if tool_choice is not None:
            request["tool_choice"] = tool_choice
        if schema is not None:
            request["schema"] = {
                "name": schema.__name__,
                "method": schema_method,
                "json": self._schema(schema),
            }
        if salt is not None:
            request["salt"] = salt
        return request

    def _schema(self, schema: type[BaseModel]) -> dict[str, Any]:
        found = self._schemas.get(schema)
        if found is None:
            found = self._schemas[schema] = schema.model_json_schema()
        return found

    def _settled(self, key: str, task: asyncio.Task[LLMResult]) -> None:
        self._inflight.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved here, so an answer nobody waits for any more logs nothing

    def _from_record(
        self, record: LLMCallRecord, schema: type[BaseModel] | None, method: StructuredMethod
    ) -> LLMResult:
        response = record.response
        calls = tuple(
            ToolCall(name=c["name"], arguments=dict(c["arguments"]), id=c.get("id", ""))
            for c in response.get("tool_calls", ())
        )
        text = str(response.get("text", ""))
        parsed = None if schema is None else self._parse(schema, method, text, calls, attempts=0)
        return LLMResult(
            text=text,
            tool_calls=calls,
            prompt_tokens=record.prompt_tokens,
            completion_tokens=record.completion_tokens,
            latency_ms=record.latency_ms or 0.0,
            cached=True,
            model=str(response.get("model") or record.model),
            finish_reason=response.get("finish_reason"),
            parsed=parsed,
            cost_usd=self.config.cost(record.prompt_tokens, record.completion_tokens),
            attempts=0,
            first_token_ms=response.get("first_token_ms"),
            key=record.key,
            wall_ms=0.0,
        )

    # -- live calls -------------------------------------------------------------------------------------

    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None:
            state = self._loops[loop] = self._build()
        return state

    def _build(self) -> _LoopState:
        import openai
        from langchain_openai import ChatOpenAI

        c = self.config
        assert self._api_key is not None
        http = openai.DefaultAsyncHttpxClient(timeout=c.timeout)
        extra_body = None
        max_tokens = c.max_tokens
        if c.max_tokens is not None and c.max_tokens_param == "max_tokens":
            extra_body, max_tokens = {"max_tokens": c.max_tokens}, None
        model = ChatOpenAI(
            model=c.model,
            base_url=c.base_url,
            api_key=self._api_key,
            temperature=c.temperature,
            max_completion_tokens=max_tokens,
            extra_body=extra_body,
            seed=c.seed,
            timeout=c.timeout,
            max_retries=0,  # botdrill's retry policy is the one in force
            default_headers=self._headers or None,
            http_async_client=http,
            stream_usage=True,
        )
        return _LoopState(http=http, model=model)

    def _runnable(
        self,
        state: _LoopState,
        tools: list[dict[str, Any]],
        tool_choice: str | None,
        schema: type[BaseModel] | None,
        method: StructuredMethod,
    ) -> Any:
        if not tools and schema is None:
            return state.model
        slot = (canonical_json(tools) if tools else "", tool_choice, schema, method)
        runnable = state.bound.get(slot)
        if runnable is None:
            if schema is not None:
                runnable = state.model.with_structured_output(schema, method=method, include_raw=True)
            else:
                runnable = state.model.bind_tools(tools, tool_choice=tool_choice)
            state.bound[slot] = runnable
        return runnable

    async def _live(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: list[dict[str, Any]],
        tool_choice: str | None,
        schema: type[BaseModel] | None,
        method: StructuredMethod,
        stream: bool,
        recording: tuple[str, dict[str, Any]] | None,
    ) -> LLMResult:
        c = self.config
        state = self._state()
        runnable = self._runnable(state, tools, tool_choice, schema, method)
        sent = [dict(m) for m in messages]
        endpoint = _endpoint_state(c.base_url, c.concurrency)
        call = object()  # this call, as the breaker's trial call
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        attempts = 0
        failure: _Failure | None = None
        try:
            async with asyncio.timeout_at(loop.time() + c.deadline):
                while True:
                    self._check_breaker(endpoint, call, attempts)
                    async with endpoint.gate:
                        self._check_breaker(endpoint, call, attempts)  # it may have opened meanwhile
                        attempts += 1
                        t0 = time.perf_counter()
                        first: list[float] = []
                        health = "neutral"
                        try:
                            async with asyncio.timeout(c.timeout):
                                message = await self._invoke(runnable, sent, stream, schema, first)
                            latency_ms = (time.perf_counter() - t0) * 1000
                            result = self._result(message, schema, method, latency_ms, attempts, first, t0)
                            health = "alive"
                        except LLMResponseError:
                            health = "alive"
                            raise
                        except Exception as exc:
                            failure = self._classify(exc)
                            health = failure.health
                        finally:
                            self._tell_breaker(endpoint, call, health, failure)
                    if failure is None:
                        break
                    delay = self._delay(failure, attempts)
                    self._raise_unless_retry(failure, attempts, started, delay)
                    logger.info(
                        "LLM call to %s (model %s) attempt %d failed (%s); retrying in %.2f s",
                        self.endpoint, c.model, attempts, failure.detail, delay,
                    )  # fmt: skip
                    await asyncio.sleep(delay)
                    failure = None
        except TimeoutError:
            last = f"last: {failure.detail}" if failure else "waiting for a slot or a reply"
            raise LLMTimeout(
                f"LLM call to {self.endpoint} (model {c.model}) passed its deadline of {c.deadline:g} s "
                f"after {attempts} attempt(s) ({last})",
                endpoint=self.endpoint,
                model=c.model,
                attempts=attempts,
                status=failure.status if failure else None,
            ) from None
        finally:
            if endpoint.breaker.probe is call:  # cancelled before its trial attempt told the breaker
                endpoint.breaker.probe = None
        result = _replace(result, wall_ms=(time.perf_counter() - started) * 1000)
        if recording is not None and self.store is not None:
            key, request = recording
            result = _replace(result, key=key)
            self.store.put(
                LLMCallRecord(
                    key=key,
                    model=c.model,
                    endpoint=self.endpoint,
                    request=request,
                    response={
                        "text": result.text,
                        "tool_calls": [
                            {"id": t.id, "name": t.name, "arguments": t.arguments} for t in result.tool_calls
                        ],
                        "finish_reason": result.finish_reason,
                        "model": result.model,
                        "first_token_ms": result.first_token_ms,
                    },
                    prompt_tokens=result.prompt_tokens,
                    completion_tokens=result.completion_tokens,
                    latency_ms=result.latency_ms,
                    cost_usd=result.cost_usd,
                )
            )
        return result

    async def _invoke(
        self,
        runnable: Any,
        messages: list[dict[str, Any]],
        stream: bool,
        schema: type[BaseModel] | None,
        first: list[float],
    ) -> Any:
        if not stream:
            output = await runnable.ainvoke(messages)
            return output["raw"] if schema is not None else output
        message: Any = None
        async for chunk in runnable.astream(messages):
            if not first and (chunk.content or getattr(chunk, "tool_call_chunks", None)):
                first.append(time.perf_counter())
            message = chunk if message is None else message + chunk
        if message is None:
            raise ValueError("the stream ended without a message")
        return message

    def _result(
        self,
        message: Any,
        schema: type[BaseModel] | None,
        method: StructuredMethod,
        latency_ms: float,
        attempts: int,
        first: list[float],
        t0: float,
    ) -> LLMResult:
        c = self.config
        bad = getattr(message, "invalid_tool_calls", None)
        if bad:
            call = bad[0]
            raise LLMResponseError(
                f"LLM at {self.endpoint} (model {c.model}) called tool {call.get('name')!r} with arguments "
                f"that are not a JSON object: {self._scrub(str(call.get('args')))[:200]!r}",
                endpoint=self.endpoint,
                model=c.model,
                attempts=attempts,
                status=200,
            )
        calls = tuple(
            ToolCall(name=str(t["name"]), arguments=dict(t["args"]), id=str(t.get("id") or ""))
            for t in getattr(message, "tool_calls", None) or ()
        )
        text = str(message.text)
        usage = getattr(message, "usage_metadata", None) or {}
        meta = getattr(message, "response_metadata", None) or {}
        prompt, completion = usage.get("input_tokens"), usage.get("output_tokens")
        parsed = None if schema is None else self._parse(schema, method, text, calls, attempts)
        return LLMResult(
            text=text,
            tool_calls=calls,
            prompt_tokens=prompt,
            completion_tokens=completion,
            latency_ms=latency_ms,
            cached=False,
            model=str(meta.get("model_name") or c.model),
            finish_reason=meta.get("finish_reason"),
            parsed=parsed,
            cost_usd=c.cost(prompt, completion),
            attempts=attempts,
            first_token_ms=(first[0] - t0) * 1000 if first else None,
        )

    def _parse(
        self,
        schema: type[BaseModel],
        method: StructuredMethod,
        text: str,
        calls: tuple[ToolCall, ...],
        attempts: int,
    ) -> BaseModel:
        try:
            if method == "function_calling":
                call = next((t for t in calls if t.name == schema.__name__), None)
                if call is None:
                    raise ValueError(f"no call of the tool {schema.__name__!r}")
                return schema.model_validate(call.arguments)
            return schema.model_validate_json(text)
        except (ValidationError, ValueError) as exc:
            raise LLMResponseError(
                f"LLM at {self.endpoint} (model {self.config.model}) did not fill {schema.__name__} "
                f"({method}): {self._scrub(str(exc))[:300]}",
                endpoint=self.endpoint,
                model=self.config.model,
                attempts=attempts,
                status=200,
            ) from None

    # -- policy -----------------------------------------------------------------------------------------

    def _classify(self, exc: Exception) -> _Failure:
        import openai

        if isinstance(exc, TimeoutError | openai.APITimeoutError):
            return _Failure("timeout", f"no reply within {self.config.timeout:g} s", True, "failed")
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            message = _error_message(exc)
            detail = f"HTTP {status}" + (f": {self._scrub(message)[:200]}" if message else "")
            if status == 429:
                return _Failure("status", detail, True, "neutral", status, _retry_after(exc.response))
            if status >= 500:
                return _Failure("status", detail, True, "failed", status, _retry_after(exc.response))
            return _Failure("status", detail, False, "alive", status)
        if isinstance(exc, (openai.APIConnectionError, *_transport_errors())):
            cause = _root_cause(exc)
            reason = f"{type(cause).__name__}: {cause}".rstrip(": ")
            return _Failure("connection", f"connection failed ({self._scrub(reason)[:200]})", True, "failed")
        if isinstance(exc, ValidationError | json.JSONDecodeError | openai.OpenAIError):
            # The SDK's own parsing of a structured reply (json_schema), or a reply cut short.
            return _Failure("response", f"unusable reply ({self._scrub(str(exc))[:300]})", False, "alive")
        return _Failure("other", f"{type(exc).__name__}: {self._scrub(str(exc))[:300]}", False, "neutral")

    def _tell_breaker(self, endpoint: _Endpoint, call: object, health: str, failure: _Failure | None) -> None:
        breaker = endpoint.breaker
        if health == "alive":
            breaker.failures, breaker.open_until, breaker.probe = 0, 0.0, None
            return
        was_probe = breaker.probe is call
        if was_probe:
            breaker.probe = None
        if health != "failed" or failure is None:
            return
        breaker.failures += 1
        breaker.last = failure.detail
        if breaker.failures >= self.config.breaker_threshold or was_probe:
            breaker.open_until = time.monotonic() + self.config.breaker_cooldown
            logger.warning(
                "LLM endpoint %s: circuit open for %g s after %d consecutive failures (last: %s)",
                self.endpoint, self.config.breaker_cooldown, breaker.failures, failure.detail,
            )  # fmt: skip

    def _check_breaker(self, endpoint: _Endpoint, call: object, attempts: int) -> None:
        breaker = endpoint.breaker
        wait = breaker.blocked(time.monotonic(), call)
        if wait is None:
            return
        raise LLMCircuitOpen(
            f"LLM endpoint {self.endpoint} (model {self.config.model}) is failing: circuit breaker open "
            f"after {breaker.failures} consecutive failures (last: {breaker.last}); failing fast "
            + (f"for another {wait:.1f} s" if wait > 0 else "while a trial call is in flight")
            + f", {attempts} attempt(s) made by this call",
            endpoint=self.endpoint,
            model=self.config.model,
            attempts=attempts,
        )

    def _raise_unless_retry(self, failure: _Failure, attempts: int, started: float, delay: float) -> None:
        """Raise the error for `failure` unless another attempt, `delay` seconds from now, is allowed."""
        c = self.config
        elapsed = time.perf_counter() - started
        if failure.retryable:
            if attempts > c.max_retries:
                why = f"retries spent ({c.max_retries})"
            elif elapsed + delay >= c.deadline:
                why = f"waiting {delay:.1f} s more would pass the deadline of {c.deadline:g} s"
            else:
                return
        elif failure.kind == "status":
            why = "not retried: a 4xx other than 429 refuses the request itself"
        else:
            why = "not retried"
        message = (
            f"LLM call to {self.endpoint} (model {c.model}) failed after {attempts} attempt(s) in "
            f"{elapsed:.1f} s: {failure.detail}; {why}"
        )
        kwargs: dict[str, Any] = {
            "endpoint": self.endpoint, "model": c.model, "attempts": attempts, "status": failure.status,
        }  # fmt: skip
        kinds: dict[str, type[LLMCallError]] = {
            "timeout": LLMTimeout, "connection": LLMConnectionError, "status": LLMStatusError,
            "response": LLMResponseError,
        }  # fmt: skip
        raise kinds.get(failure.kind, LLMCallError)(message, **kwargs)

    def _delay(self, failure: _Failure, attempts: int) -> float:
        """Seconds before the next attempt: `Retry-After` when the endpoint gave one, else exponential
        back-off with equal jitter (half fixed, half random from the seeded generator)."""
        if failure.retry_after is not None:
            return failure.retry_after
        step = min(self.config.backoff_max, self.config.backoff * 2.0 ** (attempts - 1))
        return step / 2 + self._rng.uniform(0, step / 2)

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def _root_cause(exc: BaseException) -> BaseException:
    """The first error of a chain (the socket's, under the SDK's and langchain's wrappers)."""
    seen = {id(exc)}
    while (inner := exc.__cause__ or exc.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        exc = inner
    return exc


@functools.cache
def _transport_errors() -> tuple[type[BaseException], ...]:
    """Errors of the HTTP layer that reach us unwrapped (a stream cut short), whichever httpx is in use."""
    errors: list[type[BaseException]] = [OSError]
    for name in ("httpx2", "httpx"):
        try:
            errors.append(importlib.import_module(name).TransportError)
        except (ImportError, AttributeError):
            continue
    return tuple(errors)


def _key(request: Mapping[str, Any]) -> str:
    try:
        return request_key(request)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the request cannot be recorded: it is not plain JSON ({exc})") from None


def _replace(result: LLMResult, **changes: Any) -> LLMResult:
    from dataclasses import replace

    return replace(result, **changes)


def _openai_tool(tool: ToolLike) -> dict[str, Any]:
    from langchain_core.utils.function_calling import convert_to_openai_tool

    if isinstance(tool, Mapping) and tool.get("type") == "function" and "function" in tool:
        return dict(tool)
    return convert_to_openai_tool(tool)


def _error_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping) and inner.get("message"):
            return str(inner["message"])
        if body.get("message"):
            return str(body["message"])
    return str(getattr(exc, "message", "") or "")


def _retry_after(response: Any) -> float | None:
    """Seconds the endpoint asked to wait: `retry-after-ms`, or `Retry-After` in seconds or as a date."""
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class LLMBacked:
    """What every botdrill component that calls a model shares (the LLM user, assistant, judge and
    paraphraser): one client, built on first use, so that a component loaded for a replay, which
    `use_store` rebinds before any call, never asks for an API key it will not use.

    Args:
        llm: the endpoint and model.
        client: an `LLMClient` to call it through (one is built from `llm` when not given; pass one made
            with a store to record or replay, or call `use_store`).
    """

    def __init__(self, llm: LLMConfig, client: LLMClient | None = None) -> None:
        self._llm = llm
        self._client = client

    @property
    def client(self) -> LLMClient:
        """The client calls go through (built live from the config if none was given or bound).

        Raises:
            LLMConfigError: building it needs an environment variable that is not set.
        """
        if self._client is None:
            self._client = LLMClient(self._llm)
        return self._client

    def use_store(self, store: Any, mode: CacheMode) -> None:
        """Send every call through `store` (an `LLMStore`): recorded, or replayed with no network."""
        self._client = LLMClient(self._llm, store=store, mode=mode)

    async def aclose(self) -> None:
        """Close the client's connections (none to close if it was never built)."""
        if self._client is not None:
            await self._client.aclose()
