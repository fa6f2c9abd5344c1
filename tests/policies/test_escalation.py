"""Escalation verdicts: every branch of the rule, and the spec read from the built-in pack."""

from __future__ import annotations

import pytest

from botdrill.policies import EscalationRule, EscalationSpec, judge
from botdrill.scenarios import load_pack


@pytest.mark.parametrize(
    ("expected", "within", "turn", "requested", "verdict"),
    [
        ("must", 3, None, False, "missed"),
        ("must", 3, None, True, "missed"),
        ("must", 3, 1, False, "met"),
        ("must", 3, 3, False, "met"),
        ("must", 3, 4, False, "late"),
        ("must", None, 9, False, "met"),
        ("never", None, None, False, "not_needed"),
        ("never", None, 2, False, "over"),
        ("never", None, 2, True, "on_request"),
        ("may", None, None, False, "not_needed"),
        ("may", None, 1, False, "met"),
        ("may", None, 1, True, "on_request"),
    ],
)
def test_judge(expected: str, within: int | None, turn: int | None, requested: bool, verdict: str) -> None:
    assert judge(expected, within, handoff_turn=turn, user_requested=requested) == verdict  # type: ignore[arg-type]


def test_spec_from_builtin_pack_requires_critical_intents_to_reach_a_person() -> None:
    pack = load_pack("banking")
    spec = EscalationSpec.from_pack(pack)
    for intent in pack.intents:
        rule = spec.rule(intent.name)
        if intent.critical:
            assert rule.expected == "must"
            assert rule.within_turns is not None
            assert spec.verdict(intent.name, handoff_turn=None) == "missed"
            assert spec.verdict(intent.name, handoff_turn=rule.within_turns + 1) == "late"
        else:
            assert rule.expected == "never"
            assert spec.verdict(intent.name, handoff_turn=1) == "over"


def test_unknown_intent_may_go_either_way() -> None:
    spec = EscalationSpec({"x": EscalationRule("must", 2)})
    assert spec.rule("not_in_spec") == EscalationRule("may")
    assert spec.verdict("not_in_spec", handoff_turn=None) == "not_needed"
    assert spec.verdict("not_in_spec", handoff_turn=4) == "met"


def test_public_api_is_pinned() -> None:
    import botdrill.policies as policies

    assert sorted(policies.__all__) == [
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
    for name in policies.__all__:
        assert hasattr(policies, name)
