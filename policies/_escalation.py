"""Escalation specs: which intents must reach a person, how fast, which never should, and the triggers
that make a hand-off due whatever the intent (an explicit request, repeated failure, crisis cues).

A spec is read from a pack and judged against what happened in a dialogue; the verdict is what the
outcome of a dialogue is built from. Deadlines count assistant turns from the moment the reason arose: a
fraud report that comes after a balance question has its three turns from the moment fraud is mentioned,
and a crisis cue in the fifth message makes a hand-off due within one turn of it. Escalation *policies*
(rules that wrap a bot, `_policy.py`) are what a team deploys to meet the spec.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from botdrill.scenarios import Pack, Triggers

Expectation = Literal["must", "never", "may"]
Verdict = Literal["met", "missed", "late", "over", "on_request", "not_needed"]
"""`met`: handed over in time when it had to; `missed`: had to and did not; `late`: did, after the deadline;
`over`: handed over an intent it should have served, unasked; `on_request`: handed over because the user
asked, for an intent that did not need it; `not_needed`: no hand-off, none needed."""
Trigger = Literal["intent", "request", "failure", "crisis"]
"""Why a hand-off became due: the intent's own rule, the user asking for a person, the assistant failing
repeatedly, or a crisis cue."""
_TRIGGER_ORDER: dict[Trigger, int] = {"intent": 0, "crisis": 1, "request": 2, "failure": 3}


@dataclass(frozen=True)
class Events:
    """What happened in a dialogue that bears on escalation, each counted in assistant turns before it."""

    intent_at: int | None = 0
    """Assistant turns before the user first spoke of the intent (None: it never did)."""
    request_at: int | None = None
    """Assistant turns before the user first asked for a person."""
    crisis_at: int | None = None
    """Assistant turns before the first crisis cue."""
    failures: tuple[int, ...] = ()
    """1-based assistant turns that failed (did not understand, or said the same thing again)."""


@dataclass(frozen=True)
class Due:
    """The escalation a dialogue called for."""

    expected: Expectation
    """`must` when the intent or any trigger made a hand-off due, else the intent's own rule."""
    deadline: int | None = None
    """For `must`: the assistant turn (1-based) by which the hand-off had to come."""
    trigger: Trigger | None = None
    """For `must`: the reason with the earliest deadline."""


@dataclass(frozen=True)
class EscalationRule:
    """The expectation for one intent."""

    expected: Expectation
    within_turns: int | None = None
    """For `must`: assistant turns allowed before the hand-off is late."""


@dataclass(frozen=True)
class EscalationSpec:
    """Escalation expectations per intent.

    Example:
        >>> from botdrill.scenarios import load_pack
        >>> spec = EscalationSpec.from_pack(load_pack("banking"))
        >>> spec.rule("report_fraud").expected, spec.verdict("report_fraud", handoff_turn=5)
        ('must', 'late')
    """

    rules: dict[str, EscalationRule]
    triggers: Triggers = field(default_factory=Triggers)
    failure_cues: tuple[str, ...] = ()
    """Lower-case phrases of an assistant that did not understand (the pack's `not_understood_cues`)."""
    _failure: re.Pattern[str] | None = field(init=False, default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        cues = sorted(self.failure_cues, key=len, reverse=True)
        pattern = re.compile("|".join(re.escape(c.lower()) for c in cues)) if cues else None
        object.__setattr__(self, "_failure", pattern)

    @classmethod
    def from_pack(cls, pack: Pack) -> EscalationSpec:
        """The spec a pack declares on its intents and in its `triggers`."""
        return cls(
            {i.name: EscalationRule(i.escalation.expected, i.escalation.within_turns) for i in pack.intents},
            pack.triggers,
            tuple(pack.lexicon.not_understood_cues),
        )

    def failed(self, text: str, previous: str | None) -> bool:
        """Whether an assistant reply counts as a failure: it did not understand, or it repeated itself."""
        pattern = self._failure
        if previous is not None and text.strip() and text.strip() == previous.strip():
            return True
        return bool(pattern and pattern.search(text.lower().replace("\u2019", "'")))

    def due(self, intent: str, events: Events, *, rule: EscalationRule | None = None) -> Due:
        """The escalation a dialogue of `intent` called for, given what happened in it.

        `rule` replaces the spec's rule for the intent (a scenario may carry its own)."""
        rule, triggers = rule or self.rule(intent), self.triggers
        reasons: list[tuple[int, int, Trigger]] = []

        def add(deadline: int, why: Trigger) -> None:
            reasons.append((deadline, _TRIGGER_ORDER[why], why))

        if rule.expected == "must" and events.intent_at is not None:
            add(events.intent_at + (rule.within_turns or 10**6), "intent")
        if triggers.crisis is not None and events.crisis_at is not None:
            add(events.crisis_at + triggers.crisis.within_turns, "crisis")
        if triggers.request is not None and events.request_at is not None:
            add(events.request_at + triggers.request.within_turns, "request")
        failing = triggers.repeated_failure
        if failing is not None and len(events.failures) >= failing.after:
            add(events.failures[failing.after - 1] + failing.within_turns, "failure")
        if not reasons:
            return Due("may" if rule.expected == "must" else rule.expected)
        deadline, _, why = min(reasons)
        return Due("must", None if deadline >= 10**6 else deadline, why)

    def rule(self, intent: str) -> EscalationRule:
        """The rule for `intent`; intents the spec does not name may go either way."""
        return self.rules.get(intent, EscalationRule("may"))

    def verdict(self, intent: str, *, handoff_turn: int | None, user_requested: bool = False) -> Verdict:
        """Judge a dialogue of `intent` that was handed over at `handoff_turn` (1-based), or not."""
        rule = self.rule(intent)
        return judge(
            rule.expected, rule.within_turns, handoff_turn=handoff_turn, user_requested=user_requested
        )


def judge(
    expected: Expectation,
    deadline: int | None,
    *,
    handoff_turn: int | None,
    user_requested: bool = False,
    trigger: Trigger | None = None,
) -> Verdict:
    """The escalation verdict for one dialogue (see `Verdict`).

    Args:
        expected: what the dialogue called for (`Due.expected`).
        deadline: for `must`, the assistant turn by which the hand-off had to come.
        handoff_turn: the 1-based assistant turn of the hand-off, or None.
        user_requested: whether the user asked for a person.
        trigger: why a `must` was due; a hand-off due only because the user asked is `on_request` when
            honoured in time, neither a failure nor a success of the bot.
    """
    if handoff_turn is None:
        return "missed" if expected == "must" else "not_needed"
    if expected == "must":
        if deadline is not None and handoff_turn > deadline:
            return "late"
        return "on_request" if trigger == "request" else "met"
    if expected == "never":
        return "on_request" if user_requested else "over"
    return "on_request" if user_requested else "met"
