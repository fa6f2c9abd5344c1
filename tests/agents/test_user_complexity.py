"""Dialogue shapes walked on the domain graph: turning into a critical intent, two intents in one message,
and a slot value the user gets wrong and corrects."""

from __future__ import annotations

from typing import Any

import pytest

from botdrill.agents import AgendaUser, UserTurn
from botdrill.scenarios import Complexity, Pack, Scenario, normalize_value, sample_scenarios

ASK_AMOUNT = "How much was it for?"
ASK_ACCOUNT = "Which account would you like?"
NOT_UNDERSTOOD = "Sorry, I didn't understand that. Could you put it another way?"


def shaped(scenario: Scenario, **update: Any) -> Scenario:
    return scenario.model_copy(update={"goal": scenario.goal.model_copy(update=update)})


def test_turn_into_opens_with_the_everyday_request_then_turns(
    pack: Pack, user: AgendaUser, scenario_for: Any
) -> None:
    scenario = shaped(
        scenario_for("report_fraud", {"amount": "45.50", "merchant": "Tesco", "date": "2026-03-14"}),
        complexity=Complexity.TURN_INTO,
        opens_with="check_balance",
    )
    agenda = user.start(scenario)
    first = user.next_turn(agenda, None)
    assert first.intent == "check_balance"
    assert first.acts == ["inform_intent"] and not first.slots
    assert any(first.text.endswith(o) for o in pack.intent("check_balance").plain_openings)
    # Whatever the bot asks about the balance, the user turns to the fraud.
    turn = user.next_turn(agenda, ASK_ACCOUNT)
    assert turn.intent == "report_fraud"
    assert turn.acts[0] == "inform_intent"
    assert any(turn.text.lower().startswith(p.lower()) for p in pack.lexicon.pivots)
    assert agenda.pivoted and agenda.intent == "report_fraud"
    # From then on it is a fraud report like any other.
    later = user.next_turn(agenda, ASK_AMOUNT)
    assert later.intent == "report_fraud"
    assert any(s.slot == "amount" and s.value == "45.50" for s in later.slots) or "amount" in agenda.given


def test_two_intents_in_one_message(pack: Pack, user: AgendaUser, scenario_for: Any) -> None:
    base = scenario_for("lost_or_stolen_card", {"card_last4": "4410"})
    for also_first in (True, False):
        agenda = user.start(
            shaped(base, complexity=Complexity.TWO_INTENTS, also="branch_hours", also_first=also_first)
        )
        turn = user.next_turn(agenda, None)
        assert turn.intent == "lost_or_stolen_card"
        assert turn.acts[0] == "inform_intent"
        text = turn.text.lower()
        branch = [o for o in pack.intent("branch_hours").plain_openings if o.lower()[1:] in text]
        assert branch, text
        leads = [lead for lead in pack.lexicon.also_leads if lead.lower() in text]
        assert leads, text
        fraud_at = min(
            (
                text.find(o.lower()[1:20])
                for o in pack.intent("lost_or_stolen_card").openings
                if o.lower()[1:20] in text
            ),
            default=-1,
        )
        branch_at = text.find(branch[0].lower()[1:])
        if fraud_at >= 0:
            assert (branch_at < fraud_at) is also_first
        for gold in turn.slots:  # spans stay exact in the joined message
            assert normalize_value(pack.slot(gold.slot), turn.text[gold.start : gold.end], pack) == gold.value


def test_correction_says_a_wrong_value_then_corrects_it(
    pack: Pack, user: AgendaUser, scenario_for: Any
) -> None:
    scenario = shaped(
        scenario_for("transfer_money", {"amount": "45.50", "payee": "my landlord"}),
        complexity=Complexity.CORRECTION,
        mistaken={"amount": "54.00"},
    )
    agenda = user.start(scenario)
    user.next_turn(agenda, None)
    wrong = user.next_turn(agenda, ASK_AMOUNT)
    # The wrong value is said, kept apart from the gold labels, and marked where it stands.
    assert not any(s.slot == "amount" for s in wrong.slots)
    (retracted,) = wrong.retracted
    assert retracted.slot == "amount" and retracted.value == "54.00"
    assert normalize_value(pack.slot("amount"), wrong.text[retracted.start : retracted.end], pack) == "54.00"
    # The next message corrects it, whatever the assistant said in between.
    fix = user.next_turn(agenda, "Who would you like to send the money to?")
    assert fix.acts == ["correct", "inform"]
    assert [(s.slot, s.value) for s in fix.slots] == [("amount", "45.50")]
    assert not fix.retracted
    assert agenda.given["amount"] == "45.50" and agenda.correction_due is None
    # Only once.
    assert not user.next_turn(agenda, "Who would you like to send the money to?").retracted


def test_a_saved_agenda_restores_a_mistake_still_to_make(user: AgendaUser, scenario_for: Any) -> None:
    scenario = shaped(
        scenario_for("transfer_money", {"amount": "45.50", "payee": "my landlord"}),
        complexity=Complexity.CORRECTION,
        mistaken={"amount": "54.00"},
    )
    agenda = user.start(scenario)
    user.next_turn(agenda, None)
    saved = agenda.save()
    first = user.next_turn(agenda, ASK_AMOUNT)
    agenda.restore(saved)
    assert agenda.mistakes_left == {"amount": "54.00"} and agenda.correction_due is None
    assert user.next_turn(agenda, ASK_AMOUNT) == first


@pytest.mark.parametrize("complexity", [Complexity.TURN_INTO, Complexity.TWO_INTENTS, Complexity.CORRECTION])
def test_sampled_shapes_keep_gold_exact(pack: Pack, user: AgendaUser, complexity: Complexity) -> None:
    from botdrill.scenarios import Quotas

    scenarios = sample_scenarios(pack, 60, seed=3, quotas=Quotas(complexity={complexity: 1.0}))
    shaped_ones = [s for s in scenarios if s.goal.complexity is complexity]
    assert len(shaped_ones) >= 20
    script = [ASK_AMOUNT, NOT_UNDERSTOOD, "Could you give me the last four digits of the card?", ASK_ACCOUNT]
    for scenario in shaped_ones:
        agenda = user.start(scenario)
        turns: list[UserTurn] = [user.next_turn(agenda, None)]
        for reply in script:
            if turns[-1].ends_dialogue:
                break
            turns.append(user.next_turn(agenda, reply))
        for turn in turns:
            assert turn.intent in scenario.goal.walk
            for gold in turn.slots:
                assert scenario.goal.slots[gold.slot] == gold.value
                said = turn.text[gold.start : gold.end]
                assert normalize_value(pack.slot(gold.slot), said, pack) == gold.value, (said, gold)
            for wrong in turn.retracted:
                assert scenario.goal.mistaken[wrong.slot] == wrong.value
        if complexity is Complexity.TURN_INTO:
            assert [t.intent for t in turns[:2]] == scenario.goal.walk
