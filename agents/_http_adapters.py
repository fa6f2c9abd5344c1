"""Adapters for assistants deployed behind HTTP: any JSON endpoint, and Rasa's REST channel.

Two targets, both `Assistant`s:

- `HttpAssistant`: a JSON endpoint described by a YAML (or JSON) file, `HttpTargetConfig`. The request body
  is a template built as data: a string that is exactly a placeholder (`"{{messages}}"`) becomes that JSON
  value, a placeholder inside a longer string is replaced by text, and what the user wrote is never read as
  a template or as JSON text. Reply fields are taken from the response with small paths (`$.reply.text`,
  `$.choices[0].message`), dotted keys and `[index]` only.
- `RasaRestAssistant`: Rasa's REST input channel (`POST /webhooks/rest/webhook`), which keeps its own
  tracker per sender; optionally Rasa's `POST /model/parse` for the intent, its confidence and entities.

A header's value can come from an environment variable (`{env: MYBOT_TOKEN, prefix: "Bearer "}`): it is
read when a request is sent, never kept on the adapter, and blanked out of every error message.

Each adapter holds one `httpx.AsyncClient` and one concurrency limit per event loop: `run_drill` runs each
call in an event loop of its own (`asyncio.run`), and connections cannot outlive their loop. The client of a
loop is closed when that loop ends its tasks (as `asyncio.run` does) or by `aclose()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import math
import os
import re
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

import httpx
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from botdrill.scenarios._errors import LocatedError
from botdrill.scenarios._loader import _line_for, compose_mapping

from ._adapters import AssistantError, AssistantProtocolError, AssistantTimeout, TargetError
from ._types import Message, Reply

__all__ = [
    "AdapterConfigError",
    "AssistantHTTPError",
    "HandoffWhen",
    "Header",
    "HttpAssistant",
    "HttpTargetConfig",
    "JsonPath",
    "RasaRestAssistant",
    "ResponseMap",
    "load_http_config",
    "load_http_target",
    "parse_http_config",
    "render_template",
]


class AdapterConfigError(LocatedError, TargetError):
    """An HTTP target's configuration file is malformed or invalid (see `LocatedError` for its attributes).

    It is a `TargetError` too: the target named by the user cannot be loaded.
    """

    code = "adapter_config_invalid"
    unnamed = "<http target>"


class AssistantHTTPError(AssistantError):
    """The assistant's endpoint answered with an HTTP status other than 2xx.

    Attributes:
        status: the HTTP status code.
    """

    code = "assistant_http"

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


# -- paths into a JSON document ---------------------------------------------------------------------

_STEP = re.compile(r"""\.([\w-]+)|\[(-?\d+)\]|\[(?:"([^"\\]*)"|'([^'\\]*)')\]""")
_MISSING: Any = object()


@dataclass(frozen=True)
class JsonPath:
    """A path into a JSON document: `$`, then `.key`, `[index]` (negative from the end) or `["any key"]`.

    Nothing is evaluated: no filters, wildcards or expressions.
    """

    text: str
    steps: tuple[str | int, ...]

    @classmethod
    def parse(cls, text: str) -> JsonPath:
        """Read a path.

        Raises:
            ValueError: the path does not start with `$` or has a step that is not `.key`, `[n]` or `["key"]`.
        """
        return _parse_path(text)

    def find(self, doc: Any) -> Any:
        """The value at this path in `doc`, or `JsonPath.MISSING`."""
        for step in self.steps:
            if isinstance(step, int):
                if not isinstance(doc, list) or not -len(doc) <= step < len(doc):
                    return _MISSING
            elif not isinstance(doc, dict) or step not in doc:
                return _MISSING
            doc = doc[step]
        return doc

    def explain_missing(self, doc: Any) -> str:
        """Why `find` found nothing in `doc`, naming the deepest part of the path that exists."""
        where = "$"
        for step in self.steps:
            part = (
                f"[{step}]"
                if isinstance(step, int)
                else (f".{step}" if _STEP.fullmatch(f".{step}") else f"[{step!r}]")
            )
            if isinstance(step, int):
                if not isinstance(doc, list):
                    return f"{where} is {_kind(doc)}, not a list"
                if not -len(doc) <= step < len(doc):
                    return f"{where} has {len(doc)} item{'s' if len(doc) != 1 else ''}"
            else:
                if not isinstance(doc, dict):
                    return f"{where} is {_kind(doc)}, not an object"
                if step not in doc:
                    keys = sorted(map(str, doc))
                    shown = ", ".join(keys[:12]) + (", ..." if len(keys) > 12 else "")
                    return f"{where} has no key {step!r} (it has: {shown or 'no keys'})"
            doc = doc[step]
            where += part
        return "found"

    MISSING = _MISSING


@functools.lru_cache(maxsize=256)
def _parse_path(text: str) -> JsonPath:
    if not text.startswith("$"):
        raise ValueError(f"a path starts with '$' (e.g. '$.reply.text'); got {text!r}")
    steps: list[str | int] = []
    pos = 1
    while pos < len(text):
        m = _STEP.match(text, pos)
        if m is None:
            raise ValueError(
                f"path {text!r}: cannot read it from character {pos + 1} on; a step is .key, [index] or "
                '["key"] (no wildcards, filters or expressions)'
            )
        key, index, dq, sq = m.groups()
        if index is not None:
            steps.append(int(index))
        else:
            steps.append(next(k for k in (key, dq, sq) if k is not None))
        pos = m.end()
    return JsonPath(text, tuple(steps))


def _check_path(text: str) -> str:
    _parse_path(text)
    return text


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


_PathText = Annotated[str, AfterValidator(_check_path)]
_Lines = dict[tuple[str | int, ...], int]
ConfigT = TypeVar("ConfigT", bound=BaseModel)


# -- the request body template ------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_VALUES = {
    "thread_id": "the conversation's id (a string)",
    "last_user_message": "the newest user message (a string)",
    "messages": "the whole conversation as a list of {role, content} (only as a whole value)",
}
_TEXT_VALUES = ("thread_id", "last_user_message")


def _template_problems(
    template: Any, path: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Each string in the template with a placeholder that is unknown or cannot stand where it is."""
    if isinstance(template, dict):
        for key, value in template.items():
            yield from _template_problems(value, (*path, key))
    elif isinstance(template, list):
        for i, value in enumerate(template):
            yield from _template_problems(value, (*path, i))
    elif isinstance(template, str):
        whole = _PLACEHOLDER.fullmatch(template)
        for m in _PLACEHOLDER.finditer(template):
            name = m.group(1)
            if name not in _VALUES:
                known = "; ".join(f"{{{{{k}}}}}: {v}" for k, v in _VALUES.items())
                yield path, f"unknown placeholder {m.group(0)!r} (known: {known})"
            elif name not in _TEXT_VALUES and whole is None:
                yield (
                    path,
                    (
                        f"placeholder {m.group(0)!r} is a list: it must be the whole value "
                        f'("{{{{{name}}}}}"), not part of a string'
                    ),
                )


def render_template(template: Any, values: Mapping[str, Any]) -> Any:
    """The template with its placeholders replaced, built as data.

    A string that is exactly one placeholder becomes the value itself (a list stays a list); a placeholder
    inside a longer string is replaced by the value's text, in one pass, so text that comes in (what the
    user wrote) is never scanned for placeholders. Keys are not templated.
    """
    if isinstance(template, dict):
        return {key: render_template(value, values) for key, value in template.items()}
    if isinstance(template, list):
        return [render_template(value, values) for value in template]
    if isinstance(template, str):
        whole = _PLACEHOLDER.fullmatch(template)
        if whole is not None:
            return values[whole.group(1)]
        return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), template)
    return template


# -- the configuration ---------------------------------------------------------------------------------


class Header(BaseModel):
    """A request header: a literal `value`, or the value of environment variable `env` after `prefix`.

    In the file, a plain string is a literal value.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: str | None = None
    """The literal value (do not put secrets here: use `env`)."""
    env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """The environment variable holding the value, read when a request is sent and never stored."""
    prefix: str = ""
    """Text put before the variable's value (`"Bearer "`)."""

    @model_validator(mode="before")
    @classmethod
    def _plain_string(cls, data: Any) -> Any:
        return {"value": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _one_source(self) -> Header:
        if (self.value is None) == (self.env is None):
            raise ValueError(
                "a header needs either a literal value or {env: VARIABLE, prefix: ...}, not both"
            )
        if self.value is not None and self.prefix:
            raise ValueError("'prefix' goes with 'env' only")
        return self


class ResponseMap(BaseModel):
    """Where each reply field is in the endpoint's JSON answer. Only `text` must be there."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: _PathText
    """The words the user sees: must be a string (a missing one is a protocol error)."""
    intent: _PathText | None = None
    """The intent the bot routed to: a string or null."""
    slots: _PathText | None = None
    """Slot values captured so far: an object (values are turned into strings) or null."""
    handoff: _PathText | None = None
    """Whether the bot handed over to a person: a boolean or null."""
    confidence: _PathText | None = None
    """The bot's confidence in its intent: a number from 0 to 1, or null."""


class HandoffWhen(BaseModel):
    """A hand-off is the value at `path` being `equals` (`true` and `1` are not the same)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: _PathText
    equals: str | int | float | bool | None


def _scalar_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


_DEFAULT_BODY: dict[str, Any] = {"thread_id": "{{thread_id}}", "messages": "{{messages}}"}


class HttpTargetConfig(BaseModel):
    """How to talk to an assistant behind a JSON HTTP endpoint: one YAML or JSON file.

    Example:

        name: mybot
        url: https://bots.example.com/api/chat
        method: POST
        headers:
          Authorization: {env: MYBOT_TOKEN, prefix: "Bearer "}
          X-Client: botdrill
        timeout: 20
        concurrency: 8
        body:
          session: "{{thread_id}}"
          input: {text: "{{last_user_message}}"}
          history: "{{messages}}"
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

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(default=None, min_length=1)
    """The assistant's name in run records (default: `http:` and the file's name, or the host)."""
    url: str
    """The endpoint: `http://` or `https://`; `{{thread_id}}` may stand in its path (percent-encoded)."""
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    headers: dict[str, Header] = Field(default_factory=dict)
    """Request headers: a literal string, or `{env: VARIABLE, prefix: "..."}` for secrets."""
    timeout: float = Field(default=30.0, gt=0, allow_inf_nan=False)
    """Seconds one request may take, from sending to the whole answer."""
    concurrency: int = Field(default=8, ge=1, le=1024)
    """Requests in flight at once to this endpoint; more wait their turn."""
    body: Any = Field(default_factory=lambda: dict(_DEFAULT_BODY))
    """The JSON body, with placeholders `{{thread_id}}`, `{{last_user_message}}`, `{{messages}}`."""
    response: ResponseMap
    """Where the reply's fields are in the answer."""
    handoff_when: list[HandoffWhen] = Field(default_factory=list)
    """Conditions that mean a hand-off (any one is enough); one condition may be written without a list."""
    keep_raw: bool = False
    """Keep the whole JSON answer on each turn (the `raw` column), for debugging."""

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the url must be http:// or https:// with a host; got {url!r}")
        for m in _PLACEHOLDER.finditer(url):
            if m.group(1) != "thread_id":
                raise ValueError(f"only {{{{thread_id}}}} may stand in the url; got {m.group(0)!r}")
        return url

    @field_validator("headers")
    @classmethod
    def _header_names(cls, headers: dict[str, Header]) -> dict[str, Header]:
        for name in headers:
            if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name):
                raise ValueError(f"{name!r} is not a valid header name")
        return headers

    @field_validator("handoff_when", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value

    @field_validator("body")
    @classmethod
    def _valid_template(cls, body: Any) -> Any:
        for where, problem in _template_problems(body):
            raise ValueError(f"at {_dotted(('body', *where))}: {problem}")
        return body


def parse_http_config(text: str, *, source: str = "<http target>") -> HttpTargetConfig:
    """Parse and validate an HTTP target's configuration from YAML (or JSON) text.

    Raises:
        AdapterConfigError: with `source`, the line and the field of the first problem.
    """
    config, _ = _parse_with_lines(text, source=source)
    return config


def _parse_with_lines(text: str, *, source: str) -> tuple[HttpTargetConfig, _Lines]:
    data, lines = compose_mapping(text, source=source, error=AdapterConfigError, what="an http target file")
    body = data.get("body")
    for where, problem in _template_problems(body if body is not None else {}):
        loc = ("body", *where)
        raise AdapterConfigError(problem, path=source, line=_line_for(loc, lines), field=_dotted(loc))
    try:
        return HttpTargetConfig.model_validate(data), lines
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0]
        msg = str(first["msg"]).removeprefix("Value error, ")
        loc = _data_path(tuple(first["loc"]), data)
        more = len(errors) - 1
        tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more > 0 else ""
        raise AdapterConfigError(
            msg + tail, path=source, line=_line_for(loc, lines), field=_dotted(loc) or None
        ) from None


def _dotted(path: tuple[str | int, ...]) -> str:
    return ".".join(str(p) for p in path)


def _data_path(loc: tuple[str | int, ...], data: Any) -> tuple[str | int, ...]:
    """The part of a pydantic error location that names data in the file.

    Drops what pydantic adds (a union branch's tag, `[0]` for a single `handoff_when` made a list), keeping
    a missing or unknown key's name when it is the last part.
    """
    path: list[str | int] = []
    for i, part in enumerate(loc):
        inside = (isinstance(data, dict) and part in data) or (
            isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        )
        if inside:
            data = data[part]
        elif isinstance(data, dict) and isinstance(part, str) and i == len(loc) - 1:
            path.append(part)
            break
        elif isinstance(data, dict) and isinstance(part, int) and part == 0:
            continue  # one condition written without a list
        else:
            break
        path.append(part)
    return tuple(path)


def load_http_config(path: str | Path) -> HttpTargetConfig:
    """Load an HTTP target's configuration from a YAML or JSON file.

    Raises:
        AdapterConfigError: the file is missing, not UTF-8, malformed or invalid; the message names the
            file, the line and the field.
    """
    return _load_with_lines(path)[0]


def _load_with_lines(path: str | Path) -> tuple[HttpTargetConfig, _Lines]:
    return _parse_with_lines(_read_text(path, AdapterConfigError), source=str(path))


def _read_text(path: str | Path, error: type[AdapterConfigError]) -> str:
    """A config file's text, or `error` saying why there is none (missing, not UTF-8, unreadable)."""
    source = str(path)
    file = Path(path).expanduser()
    if not file.is_file():
        raise error("no such file", path=source)
    try:
        return file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})", path=source) from None
    except OSError as exc:
        raise error(f"cannot read the file ({exc.strerror})", path=source) from None


def read_config(
    path: str | Path, model: type[ConfigT], *, what: str, error: type[AdapterConfigError] = AdapterConfigError
) -> tuple[ConfigT, _Lines]:
    """Read a target's, user's or judge's YAML (or JSON) file into `model`, with the line of each key.

    The one reader of botdrill's config files besides the HTTP target's (which checks its templates too).

    Raises:
        AdapterConfigError: (or `error`, a subclass) the file is missing, not UTF-8, malformed or invalid;
            the message names the file, the line and the field, and counts any further problems.
    """
    source = str(path)
    text = _read_text(path, error)
    data, lines = compose_mapping(text, source=source, error=error, what=what)
    try:
        return model.model_validate(data), lines
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0]
        loc = tuple(first["loc"])
        more = len(errors) - 1
        tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more > 0 else ""
        raise error(
            str(first["msg"]).removeprefix("Value error, ") + tail,
            path=source,
            line=_line_for(loc, lines),
            field=_dotted(loc) or None,
        ) from None


# -- the HTTP session shared by both adapters -------------------------------------------------------


class LoopClient:
    """An HTTP client for one event loop, closed when the loop ends its tasks (or by `close`).

    An `httpx.AsyncClient` belongs to the loop that opened it; a keeper task closes it when `asyncio.run`
    cancels what is left at its end, so no socket outlives its loop.
    """

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.keeper = asyncio.get_running_loop().create_task(self._keep(), name="botdrill-http-keeper")

    async def _keep(self) -> None:
        try:
            await asyncio.get_running_loop().create_future()  # until cancelled: by aclose, or the loop's end
        finally:
            await self.client.aclose()

    async def close(self) -> None:
        self.keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.keeper
        await self.client.aclose()  # a keeper cancelled before it started never ran its `finally`


class _Connections(LoopClient):
    """The HTTP adapters' client for one event loop, with their concurrency limit."""

    def __init__(self, client: httpx.AsyncClient, concurrency: int) -> None:
        super().__init__(client)
        self.gate = asyncio.Semaphore(concurrency)


def _unset_variable(headers: Mapping[str, Header]) -> tuple[str, str] | None:
    """The first header whose environment variable is not set (or empty), and that variable."""
    for name, header in headers.items():
        if header.env is not None and not os.environ.get(header.env):
            return name, header.env
    return None


def _check_environment(
    headers: Mapping[str, Header], *, source: str | None = None, lines: _Lines | None = None
) -> None:
    """Raise `AdapterConfigError` (field `headers.NAME.env`) for a variable that is not set."""
    unset = _unset_variable(headers)
    if unset is not None:
        loc = ("headers", unset[0], "env")
        raise AdapterConfigError(
            f"environment variable {unset[1]} is not set (or is empty)",
            path=source,
            line=_line_for(loc, lines) if lines is not None else None,
            field=_dotted(loc),
        )


def _where(url: str) -> str:
    """The url to name in messages: without its query and fragment, which may hold keys."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


class _Session:
    """Sends JSON requests to one assistant: headers from the environment, a deadline, a concurrency limit,
    and failures turned into `AssistantError`s with no secret in them."""

    def __init__(
        self,
        *,
        headers: Mapping[str, Header],
        timeout: float,
        concurrency: int,
        transport: httpx.AsyncBaseTransport | None,
    ) -> None:
        self.headers = dict(headers)
        self.timeout = timeout
        self._concurrency = concurrency
        self._transport = transport
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Connections] = (
            weakref.WeakKeyDictionary()
        )

    def _resolved_headers(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, header in self.headers.items():
            if header.env is None:
                out[name] = header.value or ""
                continue
            value = os.environ.get(header.env)
            if not value:
                raise AssistantError(f"environment variable {header.env} (header {name}) is no longer set")
            out[name] = header.prefix + value
        return out

    def redact(self, text: str) -> str:
        """`text` with the value of every header's environment variable blanked out."""
        for header in self.headers.values():
            secret = os.environ.get(header.env) if header.env is not None else None
            if secret:
                text = text.replace(secret, "***")
        return text

    def _connections(self) -> _Connections:
        loop = asyncio.get_running_loop()
        conn = self._by_loop.get(loop)
        if conn is None or conn.keeper.done():
            client = httpx.AsyncClient(
                transport=self._transport,
                timeout=httpx.Timeout(self.timeout),
                limits=httpx.Limits(max_connections=self._concurrency),
                follow_redirects=False,
            )
            conn = self._by_loop[loop] = _Connections(client, self._concurrency)
        return conn

    async def post_json(self, method: str, url: str, body: Any, *, reading: str | None = None) -> Any:
        """Send `body` as JSON and return the decoded JSON answer.

        Raises:
            AssistantTimeout: no whole answer within the timeout.
            AssistantHTTPError: a status other than 2xx.
            AssistantProtocolError: the answer is not JSON.
            AssistantError: the request could not be sent (refused, reset, bad TLS...).
        """
        where = _where(url)
        conn = self._connections()
        headers = self._resolved_headers()
        async with conn.gate:
            try:
                async with asyncio.timeout(self.timeout):
                    response = await conn.client.request(method, url, json=body, headers=headers)
            except (TimeoutError, httpx.TimeoutException):
                raise AssistantTimeout(f"{method} {where}: no answer within {self.timeout:g} s") from None
            except httpx.HTTPError as exc:
                raise AssistantError(
                    self.redact(f"{method} {where} failed: {type(exc).__name__}: {exc}")
                ) from None
        if not 200 <= response.status_code < 300:
            status = response.status_code
            note = ""
            if status == 429:
                note = " (rate limited: lower the concurrency or the run's concurrency)"
            elif status >= 500:
                note = " (server error)"
            raise AssistantHTTPError(
                self.redact(
                    f"{method} {where} answered HTTP {status} {response.reason_phrase}{note}: "
                    f"{_snippet(response.text)}"
                ),
                status=status,
            )
        try:
            return response.json()
        except ValueError:
            raise AssistantProtocolError(
                self.redact(
                    f"{method} {where} answered a body that is not JSON"
                    + (f", so {reading} cannot be read" if reading else "")
                    + f": {_snippet(response.text)}"
                )
            ) from None

    async def aclose(self) -> None:
        """Close the connections of the running event loop (a later request opens new ones)."""
        conn = self._by_loop.pop(asyncio.get_running_loop(), None)
        if conn is not None:
            await conn.close()


def _snippet(value: object, limit: int = 200) -> str:
    """A short, one-line repr of a body (or of any JSON value) for an error message."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _user_messages_since_reply(messages: list[Message]) -> list[str]:
    """The user messages after the last assistant message, oldest first."""
    out: list[str] = []
    for message in reversed(messages):
        if message["role"] == "assistant":
            break
        if message["role"] == "user":
            out.append(message["content"])
    return out[::-1]


# -- a generic JSON endpoint ---------------------------------------------------------------------------


class HttpAssistant:
    """An assistant behind a JSON HTTP endpoint, described by an `HttpTargetConfig`.

    Each turn sends one request with the body template filled in and maps the JSON answer to a `Reply`.

    Raises (from `respond`): `AssistantTimeout`, `AssistantHTTPError` (a non-2xx status),
    `AssistantProtocolError` (the answer is not JSON, has no string at `response.text`, or a mapped field
    has the wrong type: the message names the path), `AssistantError` (the request could not be sent).
    """

    def __init__(
        self,
        config: HttpTargetConfig,
        *,
        name: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """Args:
            config: the endpoint's configuration.
            name: the name in run records (default: `config.name`, or `http:` and the host).
            transport: an httpx transport to use instead of the network (tests).

        Raises:
            AdapterConfigError: a header's environment variable is not set (field `headers.NAME.env`).
        """
        self.config = config
        self.name: str = name or config.name or f"http:{urlsplit(config.url).hostname}"
        self._session = _Session(
            headers=config.headers,
            timeout=config.timeout,
            concurrency=config.concurrency,
            transport=transport,
        )
        _check_environment(config.headers)
        self._paths = {
            field: JsonPath.parse(path)
            for field, path in config.response.model_dump().items()
            if path is not None
        }
        self._conditions = [(JsonPath.parse(c.path), c.equals) for c in config.handoff_when]

    @classmethod
    def from_file(
        cls, path: str | Path, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> HttpAssistant:
        """The assistant described by a YAML or JSON file.

        Raises:
            AdapterConfigError: the file is missing or invalid, or names an environment variable that is not
                set; the message names the file, the line and the field.
        """
        config, lines = _load_with_lines(path)
        _check_environment(config.headers, source=str(path), lines=lines)
        return cls(config, name=config.name or f"http:{Path(path).name}", transport=transport)

    def __repr__(self) -> str:
        return f"HttpAssistant(name={self.name!r}, url={_where(self.config.url)!r})"

    async def respond(self, messages: list[Message], *, thread_id: str) -> Reply:
        users = [m["content"] for m in messages if m["role"] == "user"]
        values = {
            "thread_id": thread_id,
            "last_user_message": users[-1] if users else "",
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
        }
        body = render_template(self.config.body, values)
        url = _PLACEHOLDER.sub(lambda _: quote(thread_id, safe=""), self.config.url)
        doc = await self._session.post_json(self.config.method, url, body, reading=self.config.response.text)
        return self._reply(doc)

    def _reply(self, doc: Any) -> Reply:
        text = self._field(doc, "text", (str,), required=True)
        intent = self._field(doc, "intent", (str,))
        slots = self._field(doc, "slots", (dict,))
        handoff = self._field(doc, "handoff", (bool,))
        confidence = self._field(doc, "confidence", (int, float))
        if confidence is not None:
            if not 0 <= confidence <= 1 or not math.isfinite(confidence):
                raise AssistantProtocolError(
                    f"response field confidence at {self._paths['confidence'].text} must be from 0 to 1; "
                    f"got {confidence!r}"
                )
            confidence = float(confidence)
        if self._conditions:
            met = any(
                (value := path.find(doc)) is not _MISSING and _scalar_equal(value, equals)
                for path, equals in self._conditions
            )
            handoff = bool(handoff) or met
        return Reply(
            text=text,
            intent=intent,
            slots={str(k): _slot_text(v) for k, v in slots.items() if v is not None}
            if slots is not None
            else None,
            handoff=handoff,
            confidence=confidence,
            raw=doc if self.config.keep_raw else None,
        )

    def _field(self, doc: Any, field: str, types: tuple[type, ...], *, required: bool = False) -> Any:
        path = self._paths.get(field)
        if path is None:
            return None
        value = path.find(doc)
        if value is _MISSING:
            if required:
                raise AssistantProtocolError(
                    f"the answer has no {field} at {path.text}: {path.explain_missing(doc)}"
                )
            return None
        if value is None and not required:
            return None
        wrong_bool = isinstance(value, bool) and bool not in types
        if not isinstance(value, types) or wrong_bool:
            wanted = {str: "a string", dict: "an object", bool: "a boolean", int: "a number"}[types[0]]
            raise AssistantProtocolError(
                f"the answer's {field} at {path.text} must be {wanted}{'' if required else ' or null'}; "
                f"got {_kind(value)}"
            )
        return value

    async def aclose(self) -> None:
        """Close the connections of the running event loop."""
        await self._session.aclose()


def _slot_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# -- Rasa's REST channel ------------------------------------------------------------------------------------


class RasaRestAssistant:
    """A Rasa bot through its REST input channel, `POST {url}/webhooks/rest/webhook`.

    Rasa keeps a tracker per sender, so each turn sends only the user messages written since the bot's last
    reply, one request each (`{"sender": thread_id, "message": ...}`); the reply's text is the texts of all
    the bot's messages, joined by newlines. Messages with buttons, images or custom payloads are kept under
    `raw`.

    A hand-off is a bot message whose `custom` payload has `handoff_key` set to `true`; otherwise the reply
    says nothing about hand-offs and botdrill's judge reads the words.

    With `parse_url` (Rasa's HTTP API, `POST /model/parse`, served with `--enable-api`), each user message is
    parsed too: the reply's intent and confidence are those of the newest message, and its slots are the
    entities found so far in the conversation (the latest value of each).
    """

    def __init__(
        self,
        url: str,
        *,
        parse_url: str | None = None,
        handoff_key: str = "handoff",
        timeout: float = 30.0,
        concurrency: int = 8,
        headers: Mapping[str, str | Header] | None = None,
        name: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """Args:
            url: the Rasa server, e.g. `http://localhost:5005` (the webhook path is added).
            parse_url: the full url of `/model/parse`, or `None` not to parse.
            handoff_key: the key of a `custom` payload that marks a hand-off.
            timeout: seconds one request may take.
            concurrency: requests in flight at once.
            headers: extra request headers (a `Header` may read its value from the environment).
            name: the name in run records (default `rasa:` and the url).
            transport: an httpx transport to use instead of the network (tests).

        Raises:
            TargetError: a url is not http(s) with a host, or a number is out of range.
            AdapterConfigError: a header's environment variable is not set.
        """
        for what, value in (("url", url), ("parse_url", parse_url)):
            if value is not None:
                parts = urlsplit(value)
                if parts.scheme not in ("http", "https") or not parts.hostname:
                    raise TargetError(f"rasa: {what} must be http:// or https:// with a host; got {value!r}")
        if not (timeout > 0 and math.isfinite(timeout)):
            raise TargetError(f"rasa: timeout must be a positive number of seconds; got {timeout!r}")
        if concurrency < 1:
            raise TargetError(f"rasa: concurrency must be at least 1; got {concurrency!r}")
        self.url = url.rstrip("/")
        self.webhook_url = self.url + "/webhooks/rest/webhook"
        self.parse_url = parse_url
        self.handoff_key = handoff_key
        self.name: str = name or f"rasa:{_where(self.url)}"
        self._session = _Session(
            headers={k: Header(value=v) if isinstance(v, str) else v for k, v in (headers or {}).items()},
            timeout=timeout,
            concurrency=concurrency,
            transport=transport,
        )
        _check_environment(self._session.headers)
        self._entities: dict[str, dict[str, str]] = {}

    def __repr__(self) -> str:
        parse = self.parse_url is not None
        return f"RasaRestAssistant(name={self.name!r}, url={_where(self.url)!r}, parse={parse})"

    async def respond(self, messages: list[Message], *, thread_id: str) -> Reply:
        said: list[dict[str, Any]] = []
        intent: str | None = None
        confidence: float | None = None
        for text in _user_messages_since_reply(messages):
            answer = await self._session.post_json(
                "POST", self.webhook_url, {"sender": thread_id, "message": text}
            )
            said.extend(self._bot_messages(answer, thread_id))
            if self.parse_url is not None:
                parsed = await self._session.post_json("POST", self.parse_url, {"text": text})
                intent, confidence, found = self._parsed(parsed)
                self._entities.setdefault(thread_id, {}).update(found)
        handoff = any(
            isinstance(m.get("custom"), dict) and m["custom"].get(self.handoff_key) is True for m in said
        )
        extras = [m for m in said if set(m) - {"recipient_id", "text"}]
        return Reply(
            text="\n".join(m["text"] for m in said if isinstance(m.get("text"), str)),
            intent=intent,
            confidence=confidence,
            slots=dict(self._entities.get(thread_id, {})) if self.parse_url is not None else None,
            handoff=True if handoff else None,
            raw={"messages": extras} if extras else None,
        )

    def _bot_messages(self, answer: Any, sender: str) -> list[dict[str, Any]]:
        if not isinstance(answer, list) or not all(isinstance(m, dict) for m in answer):
            raise AssistantProtocolError(
                f"POST {_where(self.webhook_url)}: the answer must be a list of messages; got {_kind(answer)}"
            )
        for i, message in enumerate(answer):
            if "text" in message and not isinstance(message["text"], str):
                kind = _kind(message["text"])
                raise AssistantProtocolError(
                    f"POST {_where(self.webhook_url)}: message [{i}] has a 'text' that is {kind}"
                )
            recipient = message.get("recipient_id")
            if recipient is not None and recipient != sender:
                raise AssistantProtocolError(
                    f"POST {_where(self.webhook_url)}: message [{i}] is for recipient {recipient!r}, "
                    f"not sender {sender!r}"
                )
        return answer

    def _parsed(self, parsed: Any) -> tuple[str | None, float | None, dict[str, str]]:
        where = f"POST {_where(self.parse_url or '')}"
        if not isinstance(parsed, dict):
            raise AssistantProtocolError(f"{where}: the answer must be an object; got {_kind(parsed)}")
        intent_obj = parsed.get("intent")
        name: str | None = None
        confidence: float | None = None
        if intent_obj is not None:
            if not isinstance(intent_obj, dict):
                raise AssistantProtocolError(f"{where}: $.intent must be an object; got {_kind(intent_obj)}")
            name = intent_obj.get("name")
            if name is not None and not isinstance(name, str):
                raise AssistantProtocolError(f"{where}: $.intent.name must be a string; got {_kind(name)}")
            raw_conf = intent_obj.get("confidence")
            if raw_conf is not None:
                if (
                    isinstance(raw_conf, bool)
                    or not isinstance(raw_conf, (int, float))
                    or not 0 <= raw_conf <= 1
                ):
                    raise AssistantProtocolError(
                        f"{where}: $.intent.confidence must be a number from 0 to 1; got {raw_conf!r}"
                    )
                confidence = float(raw_conf)
        entities = parsed.get("entities") or []
        if not isinstance(entities, list):
            raise AssistantProtocolError(f"{where}: $.entities must be a list; got {_kind(entities)}")
        found: dict[str, str] = {}
        for i, entity in enumerate(entities):
            if not isinstance(entity, dict) or not isinstance(entity.get("entity"), str):
                raise AssistantProtocolError(f"{where}: $.entities[{i}] has no string 'entity'")
            if entity.get("value") is not None:
                found[entity["entity"]] = _slot_text(entity["value"])
        return name, confidence, found

    def forget(self, thread_id: str) -> None:
        """Drop the entities kept for a finished conversation (Rasa's own tracker is left alone)."""
        self._entities.pop(thread_id, None)

    async def aclose(self) -> None:
        """Close the connections of the running event loop."""
        await self._session.aclose()


# -- targets named by a spec ---------------------------------------------------------------------------


def _non_empty(value: str) -> str:
    if not value:
        raise ValueError("empty")
    return value


_RASA_OPTIONS: dict[str, Callable[[str], Any]] = {
    "parse": lambda v: {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}[
        v.lower()
    ],
    "handoff_key": _non_empty,
    "timeout": float,
    "concurrency": int,
}


def load_http_target(spec: str) -> HttpAssistant | RasaRestAssistant:
    """The assistant named by `http:CONFIG.yaml` or `rasa:URL`.

    `rasa:URL` takes options in the url's query, which are not sent to Rasa: `parse=1` to read intents,
    confidences and entities from `URL/model/parse`, `handoff_key=NAME`, `timeout=SECONDS`,
    `concurrency=N` (e.g. `rasa:http://127.0.0.1:5005?parse=1`).

    Raises:
        AdapterConfigError: the `http:` file is missing or invalid (file, line and field named).
        TargetError: the spec is neither form, or a `rasa:` url or option is invalid.
    """
    kind, sep, rest = spec.partition(":")
    if sep and kind == "http" and rest and not rest.startswith("//"):
        return HttpAssistant.from_file(rest)
    if sep and kind == "rasa" and rest:
        return _rasa_from_spec(spec, rest)
    raise TargetError(
        f"target {spec!r} is neither 'http:CONFIG.yaml' (a file describing a JSON endpoint) nor 'rasa:URL' "
        "(e.g. 'rasa:http://127.0.0.1:5005?parse=1')"
    )


def _rasa_from_spec(spec: str, url: str) -> RasaRestAssistant:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetError(f"target {spec!r}: the url after 'rasa:' must be http:// or https:// with a host")
    options: dict[str, Any] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        convert = _RASA_OPTIONS.get(key)
        if convert is None:
            raise TargetError(
                f"target {spec!r}: unknown option {key!r} (options: {', '.join(_RASA_OPTIONS)})"
            )
        try:
            options[key] = convert(value)
        except (KeyError, ValueError):
            raise TargetError(f"target {spec!r}: option {key}={value!r} is not valid") from None
    base = urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")).rstrip("/")
    return RasaRestAssistant(
        base,
        parse_url=base + "/model/parse" if options.pop("parse", False) else None,
        name=f"rasa:{base}",
        **options,
    )
