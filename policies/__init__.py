"""What the assistant must do: the domain graph of a pack and its problems, escalation specs and the
verdict on a dialogue, and the human team that receives the hand-offs (a SimPy capacity model)."""

from ._capacity import (
    AgentShift,
    ByClass,
    CapacityConfig,
    CapacityReport,
    HandoffProfile,
    IntentHandoff,
    ScopeStats,
    Surge,
    erlang_c_wait,
    parse_surge,
    simulate_capacity,
)
from ._domain import DomainGraph, IntentEdge, Problem
from ._escalation import EscalationRule, EscalationSpec, Expectation, Verdict, judge

__all__ = [
    "AgentShift",
    "ByClass",
    "CapacityConfig",
    "CapacityReport",
    "DomainGraph",
    "EscalationRule",
    "EscalationSpec",
    "Expectation",
    "HandoffProfile",
    "IntentEdge",
    "IntentHandoff",
    "Problem",
    "ScopeStats",
    "Surge",
    "Verdict",
    "erlang_c_wait",
    "judge",
    "parse_surge",
    "simulate_capacity",
]
