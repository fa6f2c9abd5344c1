"""Escalation policies: rules that decide when a conversation goes to a person, wrapped around any bot.

Whether a bot hands over at the right moment is mostly a matter of its escalation rules, and those are
what a team wants to compare: hand over on every critical intent, or only after two failures? Honour every
request for a person? A policy here is such a set of rules, as data (`Policy`), and `wrap_with_policy` puts
it around any assistant under test. To compare policy A with policy B, run the same bot (ideally one with
no escalation rules of its own, such as `reference-bare`) under each: the bot is the same, only the wrapper
differs, so every difference in the verdicts is the policy's. Each hand-off the wrapper makes is exposed as
`Reply(handoff=True, escalated_by=<rule>)`, so a stored dialogue says which rule fired, not just that the
conversation ended with a person.

The rules, in the order they are checked on a turn:

- `crisis` and `request` read the user's newest messages *before* the bot is called: a user in crisis or
  one who asks for a person is handed over without the bot getting a say (the bot is not called at all).
- `critical`, `confidence` and `failures` read the bot's reply *after* it answered: it routed to a
  critical intent, it was unsure of its routing too many times in a row, or it failed too often (a reply
  that says it did not understand, or the same reply as last time). The bot's own reply is kept under
  `raw` for debugging.

A bot that hands over by itself is passed through unchanged. Policies are named by a spec (see
`parse_policy`): a built-in name (`none`, `critical`, `standard`, `cautious`), an inline chain of rules
(`critical+failures:2+crisis+request+confidence:0.5x3`) or a YAML file holding a `Policy`.

    >>> policy = parse_policy("critical+failures:3")
    >>> policy.rules, policy.max_failures
    (('critical', 'failures'), 3)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, cast

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from botdrill.agents._adapters import (
    Assistant,
    AssistantProtocolError,
    BatchAssistant,
    as_assistant,
    coerce_reply,
)
from botdrill.agents._judge import judge_handoff
from botdrill.agents._types import Message, Reply
from botdrill.scenarios import Pack
from botdrill.scenarios._errors import LocatedError
from botdrill.scenarios._loader import _line_for, compose_mapping

RuleName = Literal["crisis", "request", "critical", "confidence", "failures"]

_MESSAGE = "I'm transferring you to a member of our team now."

_FAILURE_CUES = (
    "didn't understand",
    "did not understand",
    "not sure i understand",
    "could you rephrase",
    "put it another way",
    "didn't catch",
    "not sure what you mean",
)

# Generic phrases of a person in danger, for any domain. Literal phrases matched on word boundaries, case
# and apostrophes ignored ("cant breathe" matches "can't breathe"). Bare emergency numbers are left out:
# "999" is also an amount.
_CRISIS_KEYWORDS = (
    # suicide and self-harm
    "suicide",
    "suicidal",
    "kill myself",
    "killing myself",
    "end my life",
    "take my own life",
    "end it all",
    "ending it all",
    "want to die",
    "don't want to live",
    "don't want to be alive",
    "don't want to be here any more",
    "don't want to be here anymore",
    "better off without me",
    "better off dead",
    "no reason to live",
    "self-harm",
    "self harm",
    "harm myself",
    "hurt myself",
    "hurting myself",
    "cut myself",
    "can't go on",
    "cannot go on",
    "can't keep going",
    "can't cope",
    "cannot cope",
    "in crisis",
    # medical emergencies
    "ambulance",
    "medical emergency",
    "heart attack",
    "chest pain",
    "chest pains",
    "can't breathe",
    "cannot breathe",
    "not breathing",
    "stopped breathing",
    "overdose",
    "overdosed",
    "seizure",
    "unconscious",
    "collapsed",
    # violence and abuse
    "domestic abuse",
    "domestic violence",
    "financial abuse",
    "being abused",
    "abusing me",
    "hits me",
    "hitting me",
    "beats me",
    "threatened to kill",
    "threatening to kill",
    "going to kill me",
    "fear for my life",
    "afraid for my life",
    "not safe at home",
    "in danger",
    "assaulted",
)

# A request for a person, in any domain: the words for one, or a verb asking to be put through to one.
_PERSON = r"(?:someone|somebody|a person|a human|a colleague|an agent|an advis[oe]r|a real person)"
_REQUEST = re.compile(
    r"\b(?:humans?|real person|actual person|real people|someone real|live (?:agent|person|chat)|an agent|"
    r"advis[oe]rs?|operators?|representatives?|member of staff|customer services?|"
    rf"(?:speak|talk|chat)(?:ing)? (?:to|with) {_PERSON}|"
    rf"(?:transfer|put|pass|connect) me (?:through |over |on )?(?:to|with) {_PERSON})\b",
    re.IGNORECASE,
)

_INTENT = re.compile(r"^[a-z][a-z0-9_]*$")
_FAILURES = re.compile(r"^\d+$")
_CONFIDENCE = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)(?:x(\d+))?$")
_BUILTIN_CHAINS: dict[str, tuple[str, ...]] = {
    "none": (),
    "critical": ("critical",),
    "standard": ("critical", "request", "crisis", "failures:2"),
    "cautious": ("standard", "confidence:0.5"),
}
_RULE_SYNTAX = {
    "critical": "critical[:intent,intent...]",
    "crisis": "crisis",
    "request": "request",
    "failures": "failures[:N]",
    "confidence": "confidence[:T[xN]]",
}


class PolicyError(LocatedError):
    """An escalation policy spec or file is malformed or invalid, or does not fit the pack.

    Attributes (see `LocatedError`): `path` is the policy file, or `None` for a built-in or inline policy;
    `field` a dotted path such as `crisis_keywords.2`.
    """

    code = "policy_invalid"


def _fold(text: str) -> str:
    """Lower case, apostrophes dropped (typed straight, curly or not at all), runs of spaces as one."""
    return " ".join(re.sub(r"['\u2018\u2019\u02bc`]", "", text.lower()).split())


def _phrases(phrases: Sequence[str]) -> re.Pattern[str]:
    """One pattern for literal phrases on word boundaries: user input is escaped, never read as regex."""
    alternatives = sorted({r"\s+".join(map(re.escape, _fold(p).split())) for p in phrases}, key=len)
    return re.compile(r"(?<!\w)(?:" + "|".join(reversed(alternatives)) + r")(?!\w)")


def _non_blank(phrase: str) -> str:
    if not _fold(phrase):
        raise ValueError(f"a phrase must not be blank; got {phrase!r}")
    return phrase


_Phrase = Annotated[str, AfterValidator(_non_blank)]


class Policy(BaseModel):
    """An escalation policy: when to hand a conversation to a person, whatever the bot would do.

    A rule is switched on by its field (a list, a threshold, `True`); a policy with no rule switched on is
    the pass-through policy, `none`. Build one with `parse_policy`, or in code:

        >>> Policy(name="fraud-only", critical_intents=["report_fraud"]).rules
        ('critical',)
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    """How runs and reports name the policy; the wrapped bot is named `<bot>+<name>`."""
    critical_intents: list[str] | Literal["pack"] | None = None
    """`critical`: hand over as soon as the bot routes to one of these intents; `pack` means the pack's
    intents that are critical or must reach a person."""
    min_confidence: float | None = Field(default=None, ge=0, le=1)
    """`confidence`: hand over when the bot's exposed confidence is below this, `low_confidence_turns`
    replies in a row (replies without a confidence neither count nor break the run)."""
    low_confidence_turns: int = Field(default=2, ge=1)
    """How many unsure replies in a row the `confidence` rule tolerates before handing over."""
    max_failures: int | None = Field(default=None, ge=1)
    """`failures`: hand over when this many of the bot's replies in a conversation were failures (one
    with a `failure_cues` phrase, or the same words as its previous reply)."""
    failure_cues: list[_Phrase] = Field(default_factory=lambda: list(_FAILURE_CUES), min_length=1)
    """Phrases that mark a reply as a failure to understand (matched as substrings, in any case)."""
    crisis_keywords: list[_Phrase] | None = None
    """`crisis`: hand over, without calling the bot, when a new user message contains one of these
    phrases (literal, on word boundaries, any case). `true` in a file means the built-in list."""
    honour_requests: bool = False
    """`request`: hand over, without calling the bot, when a new user message asks for a person."""
    request_phrases: list[_Phrase] = Field(default_factory=list)
    """More phrases that count as asking for a person, besides the built-in pattern (literal, as for
    `crisis_keywords`)."""
    message: str = _MESSAGE
    """What the user reads when the policy hands over; it must say so, as a hand-off judge would read it."""

    @field_validator("critical_intents", mode="before")
    @classmethod
    def _check_critical(cls, value: Any) -> Any:
        if value is not None and value != "pack" and not isinstance(value, list):
            raise ValueError(
                f"a list of intent names, or 'pack' for the pack's critical intents; got {value!r}"
            )
        if isinstance(value, list):
            if not value:
                raise ValueError(
                    "an empty list hands nothing over; leave the field out to switch the rule off"
                )
            for item in value:
                if not isinstance(item, str) or not _INTENT.match(item):
                    raise ValueError(f"{item!r} is not an intent name (lower case, digits and '_')")
        return value

    @field_validator("crisis_keywords", mode="before")
    @classmethod
    def _default_keywords(cls, value: Any) -> Any:
        if value is True:
            return list(_CRISIS_KEYWORDS)
        if value is False:
            return None
        if isinstance(value, list) and not value:
            raise ValueError("an empty list hands nothing over; leave the field out to switch the rule off")
        return value

    @field_validator("request_phrases")
    @classmethod
    def _requests_need_the_rule(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if value and not info.data.get("honour_requests"):
            raise ValueError("request phrases are read only by the request rule: set honour_requests: true")
        return value

    @field_validator("message")
    @classmethod
    def _reads_as_handoff(cls, value: str) -> str:
        if not judge_handoff(value):
            raise ValueError(f"{value!r} does not read as a hand-off to a person; say so, e.g. {_MESSAGE!r}")
        return value

    @property
    def rules(self) -> tuple[RuleName, ...]:
        """The rules switched on, in the order they are checked (empty: the pass-through policy)."""
        on: list[tuple[RuleName, object]] = [
            ("crisis", self.crisis_keywords),
            ("request", self.honour_requests or None),
            ("critical", self.critical_intents),
            ("confidence", self.min_confidence),
            ("failures", self.max_failures),
        ]
        return tuple(rule for rule, value in on if value is not None)


# -- specs ----------------------------------------------------------------------------------------


def builtin_policies() -> dict[str, Policy]:
    """The policies named by a word: `none` (pass through), `critical` (the pack's critical intents),
    `standard` (critical, requests, crisis words, two failures) and `cautious` (standard, and two unsure
    replies in a row below 0.5)."""
    return {name: _parse_chain(name, name=name) for name in _BUILTIN_CHAINS}


def parse_policy(spec: str, *, base_dir: str | Path | None = None) -> Policy:
    """The policy a spec names: a built-in name, an inline chain of rules, or a `.yaml`/`.yml` file.

    An inline chain joins rules with `+`: `critical` (or `critical:report_fraud,bereavement`), `crisis`,
    `request`, `failures:N` (default 2), `confidence:T` or `confidence:TxN` (threshold T, N unsure
    replies in a row; default 0.5 and 2); built-in names may be chained too (`standard+confidence:0.4`).
    Its name is the chain, without spaces and in lower case.

    Example:
        >>> parse_policy(" Critical + confidence:0.40x3 ").name
        'critical+confidence:0.4x3'

    Args:
        spec: the spec.
        base_dir: where a relative policy file is looked for (default: the current directory).

    Raises:
        PolicyError: an unknown rule (the message lists the valid ones), a bad parameter, a rule given
            twice, or a missing or invalid file (the message names file, line and field).
    """
    text = spec.strip()
    if text.lower().endswith((".yaml", ".yml")):
        path = Path(text)
        if base_dir is not None and not path.is_absolute():
            path = Path(base_dir) / path
        return load_policy(path)
    if not text:
        raise PolicyError(f"an empty policy spec; {_valid()}")
    return _parse_chain(text, name=None)


def load_policy(path: str | Path) -> Policy:
    """Load a policy from a YAML file holding a `Policy` (its `name` defaults to the file's stem).

    Raises:
        PolicyError: the file is missing, malformed or invalid; the message names file, line and field.
    """
    file, source = Path(path), str(path)
    if not file.is_file():
        raise PolicyError(f"no such policy file; {_valid()}", path=source)
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(
            f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})", path=source
        ) from None
    return _parse_yaml(text, source=source, default_name=file.stem)


def _valid() -> str:
    rules = ", ".join(_RULE_SYNTAX[r] for r in sorted(_RULE_SYNTAX))
    return f"valid rules: {rules}; built-in policies: {', '.join(sorted(_BUILTIN_CHAINS))}; or a .yaml file"


def _parse_chain(spec: str, *, name: str | None) -> Policy:
    fields: dict[str, Any] = {}
    given: dict[str, str] = {}  # rule -> the token that set it
    tokens: list[str] = []
    for raw in spec.split("+"):
        token = "".join(raw.split())
        if not token:
            raise PolicyError(f"policy {spec!r} has an empty rule (a '+' with nothing on one side)")
        rule, sep, param = token.partition(":")
        rule = rule.lower()
        if rule in _RULE_SYNTAX:
            parts = [(rule, param if sep else None)]
        elif rule in _BUILTIN_CHAINS:
            if sep:
                raise PolicyError(f"policy {spec!r}: the built-in policy {rule!r} takes no parameter")
            parts = _expand(rule)
        else:
            hint = " (a policy file's name ends in .yaml or .yml)" if "." in rule or "/" in rule else ""
            raise PolicyError(f"policy {spec!r}: unknown rule {rule!r}{hint}; {_valid()}")
        canonical = [rule]
        for part_rule, part_param in parts:
            if part_rule in given:
                raise PolicyError(
                    f"policy {spec!r}: rule {part_rule!r} is set twice ({given[part_rule]!r} and {token!r})"
                )
            given[part_rule] = token
            updates, written = _rule(spec, part_rule, part_param)
            fields.update(updates)
            if rule == part_rule:
                canonical = [written]
        tokens.extend(canonical)
    try:
        return Policy(name=name or "+".join(tokens), **fields)
    except ValidationError as exc:  # a parameter in range for the chain but not for the model
        problem = exc.errors(include_url=False)[0]
        raise PolicyError(f"policy {spec!r}: {problem['msg']}") from None


def _expand(token: str) -> list[tuple[str, str | None]]:
    """A built-in chain's token as (rule, parameter) pairs, built-in names expanded."""
    rule, sep, param = token.partition(":")
    if rule in _RULE_SYNTAX:
        return [(rule, param if sep else None)]
    return [p for t in _BUILTIN_CHAINS[rule] for p in _expand(t)]


def _rule(spec: str, rule: str, param: str | None) -> tuple[dict[str, Any], str]:
    """The Policy fields one rule token sets, and the token as the policy's name writes it."""
    if rule in ("crisis", "request"):
        if param is not None:
            raise PolicyError(
                f"policy {spec!r}: rule {rule!r} takes no parameter (list phrases in a policy file)"
            )
        if rule == "crisis":
            return {"crisis_keywords": list(_CRISIS_KEYWORDS)}, rule
        return {"honour_requests": True}, rule
    if rule == "critical":
        if param is None:
            return {"critical_intents": "pack"}, rule
        intents = [i for i in param.split(",") if i]
        if not intents or not all(_INTENT.match(i) for i in intents):
            raise PolicyError(
                f"policy {spec!r}: rule 'critical' takes intent names separated by commas "
                f"(e.g. critical:report_fraud,bereavement); got {param!r}"
            )
        return {"critical_intents": intents}, f"critical:{','.join(intents)}"
    if rule == "failures":
        if param is None:
            return {"max_failures": 2}, rule
        if not _FAILURES.match(param) or int(param) < 1:
            raise PolicyError(
                f"policy {spec!r}: rule 'failures' takes a whole number of failures of at least 1 "
                f"(e.g. failures:2); got {param!r}"
            )
        return {"max_failures": int(param)}, f"failures:{int(param)}"
    assert rule == "confidence"
    if param is None:
        return {"min_confidence": 0.5}, rule
    match = _CONFIDENCE.match(param.lower())
    threshold = float(match.group(1)) if match else -1.0
    turns = int(match.group(2)) if match and match.group(2) else None
    if not match or not 0 <= threshold <= 1 or turns == 0:
        raise PolicyError(
            f"policy {spec!r}: rule 'confidence' takes a threshold from 0 to 1 and optionally a number of "
            f"replies in a row (e.g. confidence:0.5 or confidence:0.5x3); got {param!r}"
        )
    fields: dict[str, Any] = {"min_confidence": threshold}
    written = f"confidence:{threshold:g}"
    if turns is not None:
        fields["low_confidence_turns"] = turns
        written += f"x{turns}"
    return fields, written


def _parse_yaml(text: str, *, source: str, default_name: str) -> Policy:
    data, lines = compose_mapping(text, source=source, error=PolicyError, what="a policy file")
    data.setdefault("name", default_name)
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0]
        loc = _data_path(tuple(first["loc"]), data)
        more = len({tuple(e["loc"][:1]) for e in errors}) - 1  # a union reports each of its branches
        tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more > 0 else ""
        raise PolicyError(
            first["msg"].removeprefix("Value error, ") + tail,
            path=source,
            line=_line_for(loc, lines),
            field=".".join(map(str, loc)) or None,
        ) from None


def _data_path(loc: tuple[str | int, ...], data: Any) -> tuple[str | int, ...]:
    """The part of a pydantic error location that names data in the file (not a union branch's tag)."""
    path: list[str | int] = []
    for i, part in enumerate(loc):
        if isinstance(data, dict):
            inside = part in data
        else:
            inside = isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        if inside:
            data = data[part]
        elif isinstance(data, dict) and i == len(loc) - 1 and isinstance(part, str):
            path.append(part)  # a missing or unknown key: still the field's name
            break
        else:
            break
        path.append(part)
    return tuple(path)


# -- the wrappers ---------------------------------------------------------------------------------


@dataclass
class _Thread:
    """What the policy remembers about one conversation."""

    seen: int = 0  # user messages in the last call
    low_confidence: int = 0  # unsure replies in a row
    failures: int = 0  # failed replies so far
    last_text: str | None = None
    intent: str | None = None
    slots: dict[str, str] | None = None


class _PolicyWrapper:
    """What both wrappers share: the compiled rules and the per-conversation state."""

    def __init__(self, inner: Any, policy: Policy, pack: Pack | None = None) -> None:
        self.inner = inner
        """The assistant under test, unchanged."""
        self.policy = policy
        """The policy around it."""
        self.name: str = f"{inner.name}+{policy.name}"
        self.modelled_latency = bool(getattr(inner, "modelled_latency", False))
        """Passed through: the wrapper adds no latency of its own worth modelling."""
        self._critical = _critical_intents(policy, pack)
        self._crisis = _phrases(policy.crisis_keywords) if policy.crisis_keywords else None
        self._requests = _phrases(policy.request_phrases) if policy.request_phrases else None
        self._cues = tuple(_fold(c) for c in policy.failure_cues)
        self._threads: dict[str, _Thread] = {}

    def forget(self, thread_id: str) -> None:
        """Drop what the policy and the bot remember of a finished conversation."""
        self._threads.pop(thread_id, None)
        forget = getattr(self.inner, "forget", None)
        if callable(forget):
            forget(thread_id)

    def _thread(self, thread_id: str, messages: list[Message]) -> _Thread:
        users = sum(1 for m in messages if m["role"] == "user")
        state = self._threads.get(thread_id)
        # Fewer user messages than last time: a new conversation under a reused id. As many: the same turn
        # again (the runner retries a failed batch one conversation at a time), so nothing is reset.
        if state is None or users < state.seen:
            state = self._threads[thread_id] = _Thread()
        state.seen = users
        return state

    def _before(self, state: _Thread, messages: list[Message]) -> Reply | None:
        """The hand-off the pre-rules make on the user's newest messages, if any."""
        newest: list[str] = []
        for message in reversed(messages):
            if message["role"] == "assistant":
                break
            if message["role"] == "user":
                newest.insert(0, _fold(message["content"]))
        patterns: list[tuple[RuleName, re.Pattern[str] | None]] = [("crisis", self._crisis)]
        if self.policy.honour_requests:
            patterns += [("request", _REQUEST), ("request", self._requests)]
        for rule, pattern in patterns:
            if pattern is None:
                continue
            for text in newest:
                if found := pattern.search(text):  # each message alone: no match across two
                    return self._handoff(rule, state, {"matched": found.group(0)})
        return None

    def _handoff(self, rule: RuleName, state: _Thread, raw: dict[str, Any]) -> Reply:
        return Reply(
            text=self.policy.message,
            intent=state.intent,
            slots=None if state.slots is None else dict(state.slots),
            handoff=True,
            escalated_by=rule,
            raw=raw,
        )

    def _after(self, state: _Thread, reply: Reply) -> Reply:
        """The bot's reply, or the hand-off a post-rule makes instead; the state learns from it either way."""
        policy = self.policy
        text = reply.text.strip()
        folded = _fold(text)
        if any(cue in folded for cue in self._cues) or text == state.last_text:
            state.failures += 1
        state.last_text = text
        if reply.confidence is not None:
            unsure = policy.min_confidence is not None and reply.confidence < policy.min_confidence
            state.low_confidence = state.low_confidence + 1 if unsure else 0
        if reply.intent is not None:
            state.intent = reply.intent
        if reply.slots is not None:
            state.slots = dict(reply.slots)
        if reply.handoff is True:
            return reply
        rule: RuleName | None = None
        if reply.intent is not None and reply.intent in self._critical:
            rule = "critical"
        elif policy.min_confidence is not None and state.low_confidence >= policy.low_confidence_turns:
            rule = "confidence"
        elif policy.max_failures is not None and state.failures >= policy.max_failures:
            rule = "failures"
        if rule is None:
            return reply
        return Reply(
            text=policy.message,
            intent=reply.intent,
            slots=reply.slots,
            handoff=True,
            confidence=reply.confidence,
            escalated_by=rule,
            raw={"inner_text": reply.text, "inner_raw": reply.raw},
        )


class PolicyAssistant(_PolicyWrapper):
    """An assistant (async `respond`) with an escalation policy around it; see `wrap_with_policy`.

    The inner assistant's exceptions propagate unchanged: the runner records them as the dialogue's error.
    """

    def __init__(self, inner: Assistant, policy: Policy, pack: Pack | None = None) -> None:
        super().__init__(inner, policy, pack)
        self._inner: Assistant = inner

    async def respond(self, messages: list[Message], *, thread_id: str) -> Reply:
        """The policy's hand-off, or the inner assistant's reply."""
        state = self._thread(thread_id, messages)
        pre = self._before(state, messages)
        if pre is not None:
            return pre
        reply = coerce_reply(await self._inner.respond(messages, thread_id=thread_id))
        return self._after(state, reply)


class BatchPolicyAssistant(_PolicyWrapper):
    """A batch assistant with an escalation policy around it; see `wrap_with_policy`.

    One call of the inner `respond_batch` per batch, with only the conversations no pre-rule handed over
    (none at all when every one was). A reply the inner returns that is not a reply is passed on as it is,
    so the runner records it on that conversation alone, as it would without the policy.
    """

    def __init__(self, inner: BatchAssistant, policy: Policy, pack: Pack | None = None) -> None:
        super().__init__(inner, policy, pack)
        self._inner: BatchAssistant = inner

    def respond_batch(self, requests: Sequence[tuple[str, list[Message]]]) -> list[Reply]:
        """One reply per `(thread_id, messages)`, in the order of the requests."""
        replies: list[Any] = []
        states: list[_Thread] = []
        asked: list[int] = []
        for thread_id, messages in requests:
            state = self._thread(thread_id, messages)
            pre = self._before(state, messages)
            if pre is None:
                asked.append(len(replies))
            replies.append(pre)
            states.append(state)
        if asked:
            answers = list(self._inner.respond_batch([requests[i] for i in asked]))
            if len(answers) != len(asked):
                raise AssistantProtocolError(
                    f"respond_batch returned {len(answers)} replies for {len(asked)} conversations"
                )
            for i, answer in zip(asked, answers, strict=True):
                try:
                    reply = coerce_reply(answer)
                except AssistantProtocolError:
                    replies[i] = answer
                else:
                    replies[i] = self._after(states[i], reply)
        return cast(list[Reply], replies)

    async def respond(self, messages: list[Message], *, thread_id: str) -> Reply:
        """Answer one conversation (the async single-dialogue interface every assistant has)."""
        return self.respond_batch([(thread_id, messages)])[0]


def wrap_with_policy(
    assistant: object, policy: Policy, pack: Pack | None = None
) -> Assistant | BatchAssistant:
    """Put `policy` around an assistant under test.

    A batch assistant gets a `BatchPolicyAssistant`, any other a `PolicyAssistant`; a plain callable or
    graph is adapted first, as `load_target` would. The pass-through policy (no rule) returns the
    assistant itself, so `none` is exactly the bare bot.

    Example:
        >>> from botdrill.agents import ReferenceAssistant
        >>> from botdrill.scenarios import load_pack
        >>> bare, critical = ReferenceAssistant(escalation=False), parse_policy("critical")
        >>> bot = wrap_with_policy(bare, critical, load_pack("banking"))
        >>> reply = bot.respond_batch([("t1", [{"role": "user", "content": "my card was stolen"}])])[0]
        >>> bot.name, reply.intent, reply.handoff, reply.escalated_by
        ('reference-bare+critical', 'lost_or_stolen_card', True, 'critical')
        >>> reply.text
        "I'm transferring you to a member of our team now."

    Args:
        assistant: the assistant under test.
        policy: the policy (see `parse_policy`).
        pack: the pack, needed when the policy hands over the pack's critical intents; when given, the
            intents a policy names are checked against it.

    Raises:
        PolicyError: the policy needs a pack and none was given, or names intents the pack does not have.
        TargetError: `assistant` is not something botdrill can talk to.
    """
    inner = as_assistant(assistant)
    if not policy.rules:
        return inner
    if isinstance(inner, BatchAssistant):
        return BatchPolicyAssistant(inner, policy, pack)
    return PolicyAssistant(inner, policy, pack)


def _critical_intents(policy: Policy, pack: Pack | None) -> frozenset[str]:
    wanted = policy.critical_intents
    if wanted is None:
        return frozenset()
    if wanted == "pack":
        if pack is None:
            raise PolicyError(
                f"policy {policy.name!r} hands over the pack's critical intents, but no pack was given"
            )
        return frozenset(i.name for i in pack.intents if i.critical or i.escalation.expected == "must")
    if pack is not None:
        known = {i.name for i in pack.intents}
        unknown = [i for i in wanted if i not in known]
        if unknown:
            raise PolicyError(
                f"policy {policy.name!r} names intents the pack {pack.name!r} does not have: "
                f"{', '.join(unknown)} (it has: {', '.join(sorted(known))})"
            )
    return frozenset(wanted)
