"""Escalation verdicts: every branch of the rule, and the spec read from the built-in pack."""

from __future__ import annotations

import pytest

from botdrill.policies import Due, EscalationRule, EscalationSpec, Events, judge
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
    for name in policies.__all__:
        assert hasattr(policies, name)


# -- triggers -----------------------------------------------------------------------------------------


def _spec(**triggers: object) -> EscalationSpec:
    from botdrill.scenarios import Triggers

    return EscalationSpec(
        {"fraud": EscalationRule("must", 3), "balance": EscalationRule("never")},
        Triggers.model_validate(triggers),
        ("didn't understand",),
    )


def test_the_intent_window_counts_from_when_the_intent_was_raised() -> None:
    spec = _spec()
    assert spec.due("fraud", Events(intent_at=0)) == Due("must", 3, "intent")
    assert spec.due("fraud", Events(intent_at=2)) == Due("must", 5, "intent")
    assert spec.due("fraud", Events(intent_at=None)) == Due("may")  # never raised: nothing was due
    assert spec.due("balance", Events()) == Due("never")


def test_a_trigger_left_out_of_the_spec_is_not_expected() -> None:
    spec = _spec()
    assert spec.due("balance", Events(request_at=1, crisis_at=1, failures=(1, 2, 3))) == Due("never")


def test_each_trigger_makes_a_hand_off_due_and_the_earliest_deadline_wins() -> None:
    spec = _spec(
        request={"within_turns": 1},
        repeated_failure={"after": 2, "within_turns": 1},
        crisis={"cues": ["can't cope"], "within_turns": 2},
    )
    assert spec.due("balance", Events(request_at=2)) == Due("must", 3, "request")
    assert spec.due("balance", Events(crisis_at=1)) == Due("must", 3, "crisis")
    assert spec.due("balance", Events(failures=(1,))) == Due("never")
    assert spec.due("balance", Events(failures=(1, 4))) == Due("must", 5, "failure")
    assert spec.due("balance", Events(request_at=4, failures=(1, 2))) == Due("must", 3, "failure")
    # A fraud report raised at once is due by turn 3; a crisis cue at turn 0 brings it to 2.
    assert spec.due("fraud", Events(intent_at=0, crisis_at=0)) == Due("must", 2, "crisis")
    # Ties go to the intent's own rule.
    assert spec.due("fraud", Events(intent_at=0, crisis_at=1)) == Due("must", 3, "intent")


def test_a_request_honoured_in_time_is_on_request_not_a_success() -> None:
    assert judge("must", 2, handoff_turn=2, trigger="request") == "on_request"
    assert judge("must", 2, handoff_turn=3, trigger="request") == "late"
    assert judge("must", 2, handoff_turn=None, trigger="request") == "missed"
    assert judge("must", 2, handoff_turn=2, trigger="crisis") == "met"


def test_failures_are_not_understood_replies_or_repeats() -> None:
    spec = _spec()
    assert spec.failed("Sorry, I DIDN'T understand that.", None)
    assert spec.failed("Sorry, I didn\u2019t understand that.", None)
    assert spec.failed("Which account?", "Which account?")
    assert not spec.failed("Which account?", "How much?")
    assert not spec.failed("", "")


def test_the_banking_pack_declares_every_trigger() -> None:
    spec = EscalationSpec.from_pack(load_pack("banking"))
    assert spec.triggers.request is not None
    assert spec.triggers.repeated_failure is not None
    assert spec.triggers.crisis is not None and spec.triggers.crisis.cues
    assert spec.failure_cues
