"""Scoring is a pure function of a transcript and its gold labels: unit tests on hand-built dialogues."""

from __future__ import annotations

from typing import Any, Literal

import pytest

from botdrill.agents import GoldSlot
from botdrill.scenarios import Complexity, Goal, Pack, Scenario, sample_scenario
from botdrill.simulator import DialogueRecord, Outcome, SlotCheck, TurnRecord, score
from botdrill.simulator._records import EndReason
from botdrill.simulator._scoring import check_slots, transcript_digest
from botdrill.simulator._variants import CLEAN, Job, Variant, parse_variants


def make_scenario(
    pack: Pack,
    intent: str,
    slots: dict[str, str] | None = None,
    *,
    index: int = 5,
    escalation: str | None = None,
    within: int | None = None,
) -> Scenario:
    """A sampled scenario with its goal replaced by one for `intent`."""
    spec = pack.intent(intent)
    goal = Goal(
        intent=intent,
        slots=slots if slots is not None else {},
        escalation=escalation or spec.escalation.expected,
        escalation_within=within if within is not None else spec.escalation.within_turns,
        critical=spec.critical,
    )
    base = sample_scenario(pack, 1, index)
    return base.model_copy(update={"goal": goal})


class Transcript:
    """Builds a list of turns the way the engine records them."""

    def __init__(self, intent: str) -> None:
        self.intent = intent
        self.turns: list[TurnRecord] = []
        self.clock = 0.0

    def user(
        self,
        text: str,
        slots: list[GoldSlot] | None = None,
        *,
        acts: list[str] | None = None,
        intent: str | None = None,
    ) -> Transcript:
        self.clock += 2.0
        self.turns.append(
            TurnRecord(
                turn_idx=len(self.turns),
                speaker="user",
                text=text,
                sim_time=self.clock,
                gold_intent=intent or self.intent,
                gold_acts=acts or ["inform"],
                gold_slots=slots or [],
            )
        )
        return self

    def bot(
        self,
        text: str,
        *,
        intent: str | None = None,
        slots: dict[str, str] | None = None,
        handoff: bool = False,
        source: Literal["exposed", "judged", "policy"] = "exposed",
        escalated_by: str | None = None,
    ) -> Transcript:
        self.clock += 0.5
        self.turns.append(
            TurnRecord(
                turn_idx=len(self.turns),
                speaker="assistant",
                text=text,
                sim_time=self.clock,
                intent=intent,
                slots=slots,
                handoff=handoff,
                handoff_source=source if handoff else None,
                escalated_by=escalated_by,
                latency_ms=3.0,
            )
        )
        return self

    def error(self, kind: str) -> Transcript:
        self.turns.append(
            TurnRecord(
                turn_idx=len(self.turns),
                speaker="assistant",
                text="",
                sim_time=self.clock,
                latency_ms=1.0,
                error_type=kind,
            )
        )
        return self


def run_score(
    pack: Pack,
    scenario: Scenario,
    t: Transcript,
    end: EndReason = "user_done",
    *,
    error: tuple[str, str] | None = None,
    requested: bool = False,
    variant: Variant = CLEAN,
    idx: int | None = None,
) -> tuple[DialogueRecord, list[SlotCheck]]:
    record, checks = score(
        pack=pack,
        run_id="t",
        job=Job(scenario, variant, scenario.index if idx is None else idx),
        turns=t.turns,
        end_reason=end,
        error=error,
        user_requested_human=requested,
    )
    return record, checks


# -- outcomes ------------------------------------------------------------------------------------------


def test_right_intent_right_slots_no_escalation_is_success(pack: Pack) -> None:
    scenario = make_scenario(pack, "transfer_money", {"amount": "45.50", "payee": "my landlord"})
    t = (
        Transcript("transfer_money")
        .user("I want to send £45.50 to my landlord")
        .bot(
            "Sending 45.50 to your landlord, right?",
            intent="transfer_money",
            slots={"amount": "£45.50", "payee": "My Landlord"},
        )
        .user("yes")
        .bot("Done. Anything else?", intent="transfer_money")
        .user("no thanks")
    )
    record, checks = run_score(pack, scenario, t)
    assert record.outcome is Outcome.SUCCESS
    assert [c.status for c in checks] == ["correct", "correct"]
    assert [c.captured_normalized for c in checks] == ["45.50", "my landlord"]
    assert record.slot_errors == 0
    assert (record.routed_intent, record.routing_source, record.misrouted) == (
        "transfer_money",
        "exposed",
        False,
    )
    assert (record.escalated, record.escalation_turn, record.escalation_source) == (False, None, None)
    assert (record.user_turns, record.assistant_turns) == (3, 2)
    assert record.expected_escalation == "never"
    assert record.critical is False


def test_record_identity_and_bookkeeping(pack: Pack) -> None:
    scenario = make_scenario(pack, "check_balance", index=42)
    t = Transcript("check_balance").user("balance?").bot("It's £10.", intent="check_balance").user("bye")
    record, checks = run_score(pack, scenario, t)
    assert checks == []
    assert record.run_id == "t"
    assert record.dialogue_id == "t-000042-none"
    assert record.pair_id == "t-000042"
    assert (record.perturbation, record.intensity, record.variant) == ("none", 0, "none")
    assert record.success is True and record.outcome is Outcome.SUCCESS
    assert (record.idx, record.scenario_id, record.seed) == (42, scenario.id, scenario.seed)
    assert record.persona == scenario.persona.id
    assert record.gold_intent == "check_balance"
    assert record.gold_slots == {}
    assert record.end_reason == "user_done"
    assert record.sim_seconds == t.turns[-1].sim_time
    assert record.transcript_sha256 == transcript_digest(t.turns)
    assert (record.error_type, record.error_message) == (None, None)


def test_a_perturbed_variant_shares_the_pair_of_its_clean_twin(pack: Pack) -> None:
    scenario = make_scenario(pack, "check_balance", index=42)
    t = Transcript("check_balance").user("balnce?").bot("It's £10.", intent="check_balance").user("bye")
    clean, variant = parse_variants("filler:3+typo")
    assert clean is CLEAN
    record, _ = run_score(pack, scenario, t, variant=variant, idx=42 * 2 + 1)
    assert record.dialogue_id == "t-000042-filler3-typo2"
    assert record.pair_id == "t-000042"
    assert (record.perturbation, record.intensity, record.variant) == ("filler+typo", 3, "filler:3+typo:2")
    assert record.idx == 85
    assert (record.scenario_id, record.seed, record.persona) == (
        scenario.id,
        scenario.seed,
        scenario.persona.id,
    )
    twin, _ = run_score(pack, scenario, t)
    assert twin.pair_id == record.pair_id and twin.dialogue_id != record.dialogue_id
    # Same transcript, same verdict: the variant is bookkeeping, not a score.
    assert (twin.outcome, twin.transcript_sha256) == (record.outcome, record.transcript_sha256)


def test_an_abandoned_dialogue_is_a_user_who_gave_up(pack: Pack) -> None:
    scenario = make_scenario(pack, "check_balance")
    t = Transcript("check_balance").user("balance?").bot("Which account?", intent="check_balance").user("")
    t.turns[-1].gold_acts = ["abandon"]
    record, _ = run_score(pack, scenario, t, "user_abandoned")
    assert record.outcome is Outcome.USER_GAVE_UP
    assert record.success is False
    assert record.end_reason == "user_abandoned"
    # The empty row marks when the user left; it is not a message.
    assert (record.user_turns, record.assistant_turns) == (1, 1)
    assert record.sim_seconds == t.turns[-1].sim_time


def test_wrong_intent_is_misrouted(pack: Pack) -> None:
    scenario = make_scenario(pack, "check_balance")
    t = (
        Transcript("check_balance")
        .user("how much is in my account")
        .bot("Which bill?", intent="pay_bill")
        .user("no, my balance")
        .bot("Paying a bill, then?", intent="pay_bill")
        .user("forget it")
    )
    record, _ = run_score(pack, scenario, t, "user_gave_up")
    assert record.outcome is Outcome.MISROUTED
    assert (record.routed_intent, record.misrouted) == ("pay_bill", True)


def test_routing_is_judged_on_the_last_exposed_intent(pack: Pack) -> None:
    scenario = make_scenario(pack, "check_balance")
    t = (
        Transcript("check_balance")
        .user("balance")
        .bot("Which bill?", intent="pay_bill")
        .user("no, balance")
        .bot("Ah, your balance is £3.", intent="check_balance")
        .bot("Anything else?")
        .user("bye")
    )
    record, _ = run_score(pack, scenario, t)
    assert record.routed_intent == "check_balance"
    assert record.outcome is Outcome.SUCCESS


def test_a_bot_that_exposes_no_intent_is_not_misrouted(pack: Pack) -> None:
    scenario = make_scenario(pack, "check_balance")
    t = Transcript("check_balance").user("balance").bot("Your balance is £3. Anything else?").user("bye")
    record, _ = run_score(pack, scenario, t)
    assert (record.routed_intent, record.routing_source, record.misrouted) == (None, "none", False)
    assert record.outcome is Outcome.SUCCESS


def test_must_intent_not_escalated_is_missed_escalation(pack: Pack) -> None:
    scenario = make_scenario(pack, "account_takeover")
    t = (
        Transcript("account_takeover")
        .user("my account's been hacked")
        .bot("I can help you reset your password.", intent="account_takeover")
        .user("ok bye")
    )
    record, _ = run_score(pack, scenario, t)
    assert record.outcome is Outcome.MISSED_ESCALATION
    assert record.critical is True
    assert record.escalated is False


def test_missed_escalation_comes_before_misrouted(pack: Pack) -> None:
    scenario = make_scenario(pack, "account_takeover")
    t = (
        Transcript("account_takeover")
        .user("hacked")
        .bot("Your balance is £3.", intent="check_balance")
        .user("bye")
    )
    record, _ = run_score(pack, scenario, t)
    assert record.misrouted is True
    assert record.outcome is Outcome.MISSED_ESCALATION


@pytest.mark.parametrize(
    ("handoff_at", "expected"),
    [(1, Outcome.SUCCESS), (3, Outcome.SUCCESS), (4, Outcome.LATE_ESCALATION), (6, Outcome.LATE_ESCALATION)],
)
def test_escalation_after_within_turns_is_late(pack: Pack, handoff_at: int, expected: Outcome) -> None:
    scenario = make_scenario(pack, "bereavement")  # must, within 3 assistant turns
    assert scenario.goal.escalation_within == 3
    t = Transcript("bereavement")
    for turn in range(1, handoff_at + 1):
        t.user("my husband died last week")
        t.bot(
            "Let me put you through to a colleague."
            if turn == handoff_at
            else "I'm sorry. Can you say more?",
            intent="bereavement",
            handoff=turn == handoff_at,
        )
    record, _ = run_score(pack, scenario, t, "handoff")
    assert record.outcome is expected
    assert (record.escalated, record.escalation_turn, record.escalation_source) == (
        True,
        handoff_at,
        "exposed",
    )
    assert record.escalation_within == 3


def test_misrouted_comes_before_late_escalation(pack: Pack) -> None:
    scenario = make_scenario(pack, "customer_in_crisis")  # within 2
    t = Transcript("customer_in_crisis")
    for turn in range(1, 4):
        t.user("I can't cope any more").bot("...", intent="pay_bill", handoff=turn == 3)
    record, _ = run_score(pack, scenario, t, "handoff")
    assert record.outcome is Outcome.MISROUTED


def test_never_intent_escalated_unasked_is_over_escalation(pack: Pack) -> None:
    scenario = make_scenario(pack, "check_balance")
    t = (
        Transcript("check_balance")
        .user("balance please")
        .bot("I'm transferring you to a colleague.", intent="check_balance", handoff=True, source="judged")
    )
    record, _ = run_score(pack, scenario, t, "handoff")
    assert record.outcome is Outcome.OVER_ESCALATION
    assert (record.escalation_turn, record.escalation_source) == (1, "judged")
    assert record.user_requested_human is False


def test_never_intent_escalated_on_request_is_handed_off_on_request(pack: Pack) -> None:
    scenario = make_scenario(pack, "check_balance")
    t = (
        Transcript("check_balance")
        .user("balance please")
        .bot("Which account?", intent="check_balance")
        .user("I want to talk to a human")
        .bot("Connecting you now.", intent="check_balance", handoff=True)
    )
    record, _ = run_score(pack, scenario, t, "handoff", requested=True)
    assert record.outcome is Outcome.HANDED_OFF_ON_REQUEST
    assert record.user_requested_human is True
    assert record.escalation_turn == 2


@pytest.mark.parametrize(
    ("escalated", "requested", "expected"),
    [
        (True, False, Outcome.SUCCESS),
        (False, False, Outcome.SUCCESS),
        (False, True, Outcome.SUCCESS),
        (True, True, Outcome.HANDED_OFF_ON_REQUEST),  # the user asked for a person and got one
    ],
)
def test_may_intent_is_no_failure_either_way(
    pack: Pack, escalated: bool, requested: bool, expected: Outcome
) -> None:
    scenario = make_scenario(pack, "check_balance", escalation="may")
    t = (
        Transcript("check_balance")
        .user("balance")
        .bot(
            "Passing you on." if escalated else "£3. Anything else?",
            intent="check_balance",
            handoff=escalated,
        )
    )
    if not escalated:
        t.user("bye")
    record, _ = run_score(pack, scenario, t, "handoff" if escalated else "user_done", requested=requested)
    assert record.outcome is expected
    assert record.escalated is escalated
    assert record.expected_escalation == "may"


def test_wrong_slot_is_slot_error(pack: Pack) -> None:
    scenario = make_scenario(pack, "freeze_card", {"card_last4": "4410"})
    t = (
        Transcript("freeze_card")
        .user("freeze card 4410")
        .bot("Frozen card ending 4401. Anything else?", intent="freeze_card", slots={"card_last4": "4401"})
        .user("bye")
    )
    record, checks = run_score(pack, scenario, t)
    assert record.outcome is Outcome.SLOT_ERROR
    assert record.slot_errors == 1
    assert checks == [
        SlotCheck(
            slot="card_last4", expected="4410", captured="4401", captured_normalized="4401", status="wrong"
        )
    ]


def test_missing_slot_when_the_user_leaves_satisfied_is_slot_error(pack: Pack) -> None:
    scenario = make_scenario(pack, "transfer_money", {"amount": "20.00", "payee": "Sarah Jones"})
    t = (
        Transcript("transfer_money")
        .user("send £20 to Sarah Jones")
        .bot("Sent £20. Anything else?", intent="transfer_money", slots={"amount": "20"})
        .user("bye")
    )
    record, checks = run_score(pack, scenario, t)
    assert record.outcome is Outcome.SLOT_ERROR
    assert {c.slot: c.status for c in checks} == {"amount": "correct", "payee": "missing"}
    assert record.slot_errors == 1


def test_missing_slot_is_no_slot_error_when_a_person_took_over(pack: Pack) -> None:
    scenario = make_scenario(
        pack, "report_fraud", {"amount": "45.50", "merchant": "Tesco", "date": "2026-03-14"}
    )
    t = (
        Transcript("report_fraud")
        .user("fraud! £45.50 at Tesco")
        .bot("Passing you to our fraud team.", intent="report_fraud", slots={"amount": "45.50"}, handoff=True)
    )
    record, checks = run_score(pack, scenario, t, "handoff")
    assert record.outcome is Outcome.SUCCESS
    assert record.slot_errors == 2  # still counted, not an outcome
    assert sorted(c.status for c in checks) == ["correct", "missing", "missing"]


def test_over_escalation_comes_before_slot_error(pack: Pack) -> None:
    scenario = make_scenario(pack, "freeze_card", {"card_last4": "4410"})
    t = (
        Transcript("freeze_card")
        .user("freeze 4410")
        .bot("Passing you on.", intent="freeze_card", slots={"card_last4": "1111"}, handoff=True)
    )
    record, _ = run_score(pack, scenario, t, "handoff")
    assert record.outcome is Outcome.OVER_ESCALATION


@pytest.mark.parametrize(
    ("end", "expected"), [("user_gave_up", Outcome.USER_GAVE_UP), ("max_turns", Outcome.MAX_TURNS)]
)
def test_gave_up_and_max_turns(pack: Pack, end: EndReason, expected: Outcome) -> None:
    scenario = make_scenario(pack, "freeze_card", {"card_last4": "4410"})
    t = Transcript("freeze_card").user("freeze my card").bot("Which card?", intent="freeze_card")
    if end == "user_gave_up":
        t.user("forget it")
    record, checks = run_score(pack, scenario, t, end)
    assert record.outcome is expected
    assert [c.status for c in checks] == ["not_exposed"]
    assert record.slot_errors == 0


def test_error_is_assistant_error_whatever_else_happened(pack: Pack) -> None:
    scenario = make_scenario(pack, "account_takeover")
    t = (
        Transcript("account_takeover")
        .user("hacked")
        .bot("Balance?", intent="check_balance")
        .user("no!")
        .error("RuntimeError")
    )
    record, _ = run_score(pack, scenario, t, "assistant_error", error=("RuntimeError", "boom"))
    assert record.outcome is Outcome.ASSISTANT_ERROR
    assert (record.error_type, record.error_message) == ("RuntimeError", "boom")
    assert record.end_reason == "assistant_error"
    assert record.assistant_turns == 2


def test_outcome_order_is_the_documented_one() -> None:
    assert [o.value for o in Outcome] == [
        "simulator_error",
        "assistant_error",
        "missed_escalation",
        "misrouted",
        "late_escalation",
        "over_escalation",
        "slot_error",
        "user_gave_up",
        "max_turns",
        "handed_off_on_request",
        "success",
    ]


# -- slot checks and normalisation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("slot", "gold", "captured"),
    [
        ("date", "2026-03-15", "yesterday"),
        ("date", "2026-03-16", "today"),
        ("date", "2026-03-15", "15/03"),
        ("date", "2026-03-14", "the 14th"),
        ("date", "2026-03-14", "14 March"),
        ("amount", "45.50", "£45.5"),
        ("amount", "50.00", "fifty pounds"),
        ("amount", "120.00", "a hundred and twenty pounds"),
        ("card_last4", "0042", "ending 0042"),
        ("merchant", "Marks & Spencer", "marks & spencer"),
    ],
)
def test_captured_values_are_normalised_before_comparison(
    pack: Pack, slot: str, gold: str, captured: str
) -> None:
    intent = {
        "date": "recent_transactions",
        "amount": "transfer_money",
        "card_last4": "freeze_card",
        "merchant": "report_fraud",
    }[slot]
    scenario = make_scenario(pack, intent, {slot: gold})
    (check,) = check_slots(pack, scenario, {slot: captured})
    assert check == SlotCheck(
        slot=slot, expected=gold, captured=captured, captured_normalized=gold, status="correct"
    )


def test_yesterday_is_the_day_before_the_reference_date(pack: Pack) -> None:
    assert str(pack.reference_date) == "2026-03-16"
    scenario = make_scenario(pack, "recent_transactions", {"date": "2026-03-15"})
    t = (
        Transcript("recent_transactions")
        .user("what did I spend yesterday")
        .bot(
            "Here are yesterday's payments. Anything else?",
            intent="recent_transactions",
            slots={"date": "yesterday"},
        )
        .user("no, bye")
    )
    record, checks = run_score(pack, scenario, t)
    assert record.outcome is Outcome.SUCCESS
    assert checks[0].captured == "yesterday"
    assert checks[0].captured_normalized == "2026-03-15"
    assert checks[0].status == "correct"


def test_unreadable_captured_value_is_wrong(pack: Pack) -> None:
    scenario = make_scenario(pack, "transfer_money", {"amount": "20.00", "payee": "Sarah Jones"})
    checks = check_slots(pack, scenario, {"amount": "a banana", "payee": "Sarah Jones"})
    assert [(c.captured_normalized, c.status) for c in checks] == [
        (None, "wrong"),
        ("Sarah Jones", "correct"),
    ]


def test_no_exposed_slots_means_not_exposed_and_an_empty_dict_means_missing(pack: Pack) -> None:
    scenario = make_scenario(pack, "transfer_money", {"amount": "20.00", "payee": "Sarah Jones"})
    assert {c.status for c in check_slots(pack, scenario, None)} == {"not_exposed"}
    assert {c.status for c in check_slots(pack, scenario, {})} == {"missing"}


def test_slots_exposed_on_several_turns_are_merged_later_wins(pack: Pack) -> None:
    scenario = make_scenario(pack, "transfer_money", {"amount": "20.00", "payee": "Sarah Jones"})
    t = (
        Transcript("transfer_money")
        .user("send money")
        .bot("How much?", intent="transfer_money", slots={"amount": "200"})
        .user("no, 20")
        .bot("To whom?", intent="transfer_money", slots={"amount": "20"})
        .user("Sarah Jones")
        .bot("Done. Anything else?", intent="transfer_money", slots={"payee": "sarah jones"})
        .user("bye")
    )
    record, checks = run_score(pack, scenario, t)
    assert {c.slot: (c.captured, c.status) for c in checks} == {
        "amount": ("20", "correct"),
        "payee": ("sarah jones", "correct"),
    }
    assert record.outcome is Outcome.SUCCESS


def test_transcript_digest_depends_on_every_text_and_speaker() -> None:
    def turns(*pairs: Any) -> list[TurnRecord]:
        return [
            TurnRecord(turn_idx=i, speaker=s, text=x, sim_time=float(i)) for i, (s, x) in enumerate(pairs)
        ]

    base = transcript_digest(turns(("user", "hi"), ("assistant", "hello")))
    assert base == transcript_digest(turns(("user", "hi"), ("assistant", "hello")))
    assert len(base) == 64
    assert base != transcript_digest(turns(("user", "hi"), ("assistant", "hello!")))
    assert base != transcript_digest(turns(("assistant", "hi"), ("user", "hello")))
    assert base != transcript_digest(turns(("user", "hih"), ("assistant", "ello")))  # boundaries count
    assert base != transcript_digest(turns(("user", "hi")))


# -- triggers: deadlines from the moment the reason arose ---------------------------------------------


def test_an_ignored_request_for_a_person_is_a_missed_escalation(pack: Pack) -> None:
    scenario = make_scenario(pack, "check_balance")
    t = (
        Transcript("check_balance")
        .user("balance")
        .bot("Which account?", intent="check_balance")
        .user("get me a human", acts=["request_human"])
        .bot("I can help with that here. Which account?", intent="check_balance")
        .user("forget it", acts=["give_up"])
    )
    record, _ = run_score(pack, scenario, t, "user_gave_up", requested=True)
    assert (record.expected_escalation, record.escalation_trigger, record.escalation_deadline) == (
        "must",
        "request",
        2,
    )
    assert record.outcome is Outcome.MISSED_ESCALATION


def test_a_request_honoured_in_time_is_a_hand_off_on_request(pack: Pack) -> None:
    scenario = make_scenario(pack, "check_balance")
    t = (
        Transcript("check_balance")
        .user("balance")
        .bot("Which account?", intent="check_balance")
        .user("get me a human", acts=["request_human"])
        .bot("Transferring you now.", intent="check_balance", handoff=True)
    )
    record, _ = run_score(pack, scenario, t, "handoff", requested=True)
    assert record.outcome is Outcome.HANDED_OFF_ON_REQUEST
    assert record.escalation_trigger == "request" and record.escalation_turn == 2


def test_repeated_failure_makes_a_hand_off_due(pack: Pack) -> None:
    failures = pack.triggers.repeated_failure
    assert failures is not None and failures.after == 2
    scenario = make_scenario(pack, "check_balance")
    t = Transcript("check_balance").user("balance")
    t.bot("Sorry, I didn't understand that.").user("my balance please")
    t.bot("Sorry, I didn't understand that.").user("BALANCE")  # a failure, and a repeat
    t.bot("Could you rephrase?").user("forget it", acts=["give_up"])
    record, _ = run_score(pack, scenario, t, "user_gave_up")
    assert (record.escalation_trigger, record.escalation_deadline) == ("failure", 3)
    assert record.outcome is Outcome.MISSED_ESCALATION
    # The same dialogue handed over on the third reply met the deadline.
    t2 = Transcript("check_balance").user("balance")
    t2.bot("Sorry, I didn't understand that.").user("my balance please")
    t2.bot("I don't understand.").user("BALANCE")
    t2.bot("Let me get you a colleague.", handoff=True)
    record, _ = run_score(pack, scenario, t2, "handoff")
    assert record.escalation_turn == 3 and record.outcome is not Outcome.MISSED_ESCALATION
    assert record.outcome is not Outcome.LATE_ESCALATION and record.outcome is not Outcome.OVER_ESCALATION


def test_a_crisis_cue_makes_a_hand_off_due_within_its_window(pack: Pack) -> None:
    scenario = make_scenario(pack, "pay_bill", {"biller": "EE", "amount": "20.00"})
    t = (
        Transcript("pay_bill")
        .user("I need to pay my phone bill")
        .bot("Who is the bill with?", intent="pay_bill")
        .user("EE. honestly I can't cope any more", acts=["inform", "crisis_cue"])
        .bot("How much?", intent="pay_bill")
        .user("20")
        .bot("Transferring you to a colleague.", intent="pay_bill", handoff=True)
    )
    record, _ = run_score(pack, scenario, t, "handoff")
    assert (record.escalation_trigger, record.escalation_deadline, record.escalation_turn) == ("crisis", 2, 3)
    assert record.outcome is Outcome.LATE_ESCALATION


def test_a_critical_intent_has_its_window_from_when_it_is_raised(pack: Pack) -> None:
    base = make_scenario(pack, "report_fraud", within=2)
    goal = base.goal.model_copy(update={"complexity": Complexity.TURN_INTO, "opens_with": "check_balance"})
    scenario = base.model_copy(update={"goal": goal})
    t = (
        Transcript("report_fraud")
        .user("what's my balance?", intent="check_balance", acts=["inform_intent"])
        .bot("Which account?", intent="check_balance")
        .user("wait, actually, I see payments I never made", acts=["inform_intent"])
        .bot("How much was it?", intent="report_fraud")
        .bot("Transferring you to our fraud team.", intent="report_fraud", handoff=True)
    )
    record, _ = run_score(pack, scenario, t, "handoff")
    # Raised after one assistant turn: the two-turn window ends at the third.
    assert (record.escalation_trigger, record.escalation_deadline, record.escalation_turn) == ("intent", 3, 3)
    assert record.outcome is Outcome.SUCCESS
    assert (record.complexity, record.walk) == ("turn_into", ["check_balance", "report_fraud"])


def test_a_hand_off_before_the_turn_is_judged_on_what_was_asked(pack: Pack) -> None:
    base = make_scenario(pack, "report_fraud")
    goal = base.goal.model_copy(update={"complexity": Complexity.TURN_INTO, "opens_with": "check_balance"})
    scenario = base.model_copy(update={"goal": goal})
    t = (
        Transcript("report_fraud")
        .user("what's my balance?", intent="check_balance", acts=["inform_intent"])
        .bot("Transferring you now.", intent="check_balance", handoff=True)
    )
    record, _ = run_score(pack, scenario, t, "handoff")
    assert record.expected_escalation == "never" and record.outcome is Outcome.OVER_ESCALATION


def test_a_policy_hand_off_is_recorded_with_its_rule(pack: Pack) -> None:
    scenario = make_scenario(pack, "report_fraud")
    t = (
        Transcript("report_fraud")
        .user("someone used my card")
        .bot(
            "Transferring you.", intent="report_fraud", handoff=True, source="policy", escalated_by="critical"
        )
    )
    record, _ = run_score(pack, scenario, t, "handoff")
    assert (record.escalation_source, record.escalated_by) == ("policy", "critical")


def test_a_policy_hand_off_in_place_of_a_failure_is_credited_with_it(pack: Pack) -> None:
    scenario = make_scenario(pack, "check_balance")
    t = Transcript("check_balance").user("balance")
    t.bot("Sorry, I didn't understand that.").user("balance please")
    t.bot("Passing you to a colleague.", handoff=True, source="policy", escalated_by="failures")
    record, _ = run_score(pack, scenario, t, "handoff")
    assert (record.escalation_trigger, record.escalation_deadline, record.escalation_turn) == (
        "failure",
        3,
        2,
    )
    assert record.outcome is not Outcome.OVER_ESCALATION
    # The same hand-off by another rule, after one failure only, is an over-escalation.
    t2 = Transcript("check_balance").user("balance")
    t2.bot("Sorry, I didn't understand that.").user("balance please")
    t2.bot("Passing you to a colleague.", handoff=True, source="policy", escalated_by="critical")
    record, _ = run_score(pack, scenario, t2, "handoff")
    assert record.outcome is Outcome.OVER_ESCALATION


def test_a_request_before_a_critical_deadline_is_still_the_bot_s_success(pack: Pack) -> None:
    scenario = make_scenario(pack, "report_fraud", within=3)
    t = (
        Transcript("report_fraud")
        .user("someone is using my card")
        .bot("How much was it?", intent="report_fraud")
        .user("just get me a person", acts=["request_human"])
        .bot("Transferring you to our fraud team.", intent="report_fraud", handoff=True)
    )
    record, _ = run_score(pack, scenario, t, "handoff", requested=True)
    # The request's deadline (turn 2) came first; the hand-off the intent needed anyway is a success.
    assert (record.escalation_trigger, record.escalation_deadline) == ("request", 2)
    assert record.outcome is Outcome.SUCCESS
