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
from ._escalation import Due, EscalationRule, EscalationSpec, Events, Expectation, Trigger, Verdict, judge
from ._policy import (
    BatchPolicyAssistant,
    Policy,
    PolicyAssistant,
    PolicyError,
    builtin_policies,
    load_policy,
    parse_policy,
    wrap_with_policy,
)

__all__ = [
    "AgentShift",
    "BatchPolicyAssistant",
    "ByClass",
    "CapacityConfig",
    "CapacityReport",
    "DomainGraph",
    "Due",
    "EscalationRule",
    "EscalationSpec",
    "Events",
    "Expectation",
    "HandoffProfile",
    "IntentEdge",
    "IntentHandoff",
    "Policy",
    "PolicyAssistant",
    "PolicyError",
    "Problem",
    "ScopeStats",
    "Surge",
    "Trigger",
    "Verdict",
    "builtin_policies",
    "erlang_c_wait",
    "judge",
    "load_policy",
    "parse_policy",
    "parse_surge",
    "simulate_capacity",
    "wrap_with_policy",
]
