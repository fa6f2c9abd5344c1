"""Escalation specs: which intents must reach a person, how fast, and which never should.

A spec is read from a pack and judged against what happened in a dialogue; the verdict is what the
outcome of a dialogue is built from. Escalation *policies* (rules that wrap a bot) build on this.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from botdrill.scenarios import Pack

Expectation = Literal["must", "never", "may"]
Verdict = Literal["met", "missed", "late", "over", "on_request", "not_needed"]
"""`met`: handed over in time when it had to; `missed`: had to and did not; `late`: did, after the deadline;
`over`: handed over an intent it should have served, unasked; `on_request`: handed over because the user
asked, for an intent that did not need it; `not_needed`: no hand-off, none needed."""


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

    @classmethod
    def from_pack(cls, pack: Pack) -> EscalationSpec:
        """The spec a pack declares on its intents."""
        return cls(
            {i.name: EscalationRule(i.escalation.expected, i.escalation.within_turns) for i in pack.intents}
        )

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
    expected: Expectation, within_turns: int | None, *, handoff_turn: int | None, user_requested: bool = False
) -> Verdict:
    """The escalation verdict for one dialogue (see `Verdict`)."""
    if handoff_turn is None:
        return "missed" if expected == "must" else "not_needed"
    if expected == "must":
        return "late" if within_turns is not None and handoff_turn > within_turns else "met"
    if expected == "never":
        return "on_request" if user_requested else "over"
    return "on_request" if user_requested else "met"
