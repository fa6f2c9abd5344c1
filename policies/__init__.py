"""What the assistant must do: escalation specs read from a pack, and the verdict on a dialogue."""

from ._escalation import EscalationRule, EscalationSpec, Expectation, Verdict, judge

__all__ = ["EscalationRule", "EscalationSpec", "Expectation", "Verdict", "judge"]
