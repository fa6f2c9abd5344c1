"""The agenda-based simulated user: exact gold labels, and behaviour that follows the assistant's cues."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from botdrill.agents import Agenda, AgendaUser, ReferenceAssistant, UserTurn, behaviour_of
from botdrill.scenarios import Pack, Scenario, load_pack, normalize_value, sample_scenario, sample_scenarios

_PACK = load_pack("banking")  # for building strategies at import time

SLOT_QUESTIONS = sorted(
    {f"Could you tell me the {cue}?" for s in _PACK.slots for cue in s.cues}
    | {f"Thanks. And {cue}?" for s in _PACK.slots for cue in s.cues}
)
NOT_UNDERSTOOD = "Sorry, I didn't understand that. Could you put it another way?"
ANYTHING_ELSE = "Is there anything else I can help with?"
OTHER = [
    NOT_UNDERSTOOD,
    ANYTHING_ELSE,
    "How can I help you today?",
    "I'm not sure I understand.",
    "Our branches are open 9 to 5.",
    "asdf qwerty",
    "",
    "???",
    "1234 £5 yesterday Tesco",
]

confirmations = st.builds(
    "Just to confirm: an amount of {}, a payment to {}, {}, the card ending {}, to {}. Is that right?".format,
    st.sampled_from(["£45.50", "£20", "£1,200", "12 pounds", "£999.99"]),
    st.sampled_from([*_PACK.slot("merchant").values, "Corner Shop"]),
    st.sampled_from(["on the 14th", "yesterday", "on 3 March", "today", "on 01/03"]),
    st.from_regex(r"\d{4}", fullmatch=True),
    st.sampled_from(_PACK.slot("payee").values),
)
assistant_messages = st.one_of(
    st.sampled_from(SLOT_QUESTIONS),
    st.sampled_from(OTHER),
    confirmations,
    st.text(max_size=40),
)


def assert_gold_is_exact(pack: Pack, scenario: Scenario, turn: UserTurn) -> None:
    assert turn.intent in scenario.goal.walk
    assert turn.acts
    for wrong in turn.retracted:  # a value said by mistake is the scenario's planned mistake, said right
        assert scenario.goal.mistaken.get(wrong.slot) == wrong.value
        surface = turn.text[wrong.start : wrong.end]
        assert normalize_value(pack.slot(wrong.slot), surface, pack) == wrong.value, (surface, wrong)
    previous_end = 0
    for gold in turn.slots:
        surface = turn.text[gold.start : gold.end]
        assert surface, gold
        assert surface == surface.strip()
        assert gold.start >= previous_end  # spans come in order and never overlap
        previous_end = gold.end
        assert gold.slot in scenario.goal.slots
        assert gold.value == scenario.goal.slots[gold.slot]
        assert normalize_value(pack.slot(gold.slot), surface, pack) == gold.value, (surface, gold)


def converse(user: AgendaUser, scenario: Scenario, messages: list[str]) -> list[UserTurn]:
    agenda = user.start(scenario)
    turns = [user.next_turn(agenda, None)]
    for message in messages:
        if turns[-1].ends_dialogue:
            break
        turns.append(user.next_turn(agenda, message))
    return turns


# -- the key invariant ------------------------------------------------------------------------------


@settings(max_examples=250, deadline=None, database=None)
@given(
    seed=st.integers(min_value=0, max_value=2**63),
    index=st.integers(min_value=0, max_value=10_000),
    messages=st.lists(assistant_messages, max_size=10),
)
def test_gold_slot_spans_normalise_to_their_values(
    pack: Pack, user: AgendaUser, seed: int, index: int, messages: list[str]
) -> None:
    scenario = sample_scenario(pack, seed, index)
    turns = converse(user, scenario, messages)
    for turn in turns:
        assert_gold_is_exact(pack, scenario, turn)
    # Nothing after the user left.
    assert not any(t.ends_dialogue for t in turns[:-1])
    # Same seed, same words.
    assert converse(user, scenario, messages) == turns


def test_gold_labels_hold_against_the_reference_bot(
    pack: Pack, user: AgendaUser, bot: ReferenceAssistant
) -> None:
    endings: set[str] = set()
    for scenario in sample_scenarios(pack, 60, seed=4):
        agenda = user.start(scenario)
        conversation: list[Any] = []
        reply_text = None
        thread = f"user-vs-bot-{scenario.index}"
        for _ in range(12):
            turn = user.next_turn(agenda, reply_text)
            assert_gold_is_exact(pack, scenario, turn)
            if turn.ends_dialogue:
                endings.add(turn.acts[-1])
                break
            conversation.append({"role": "user", "content": turn.text})
            reply = bot.respond_batch([(thread, conversation)])[0]
            conversation.append({"role": "assistant", "content": reply.text})
            reply_text = reply.text
            if reply.handoff:
                endings.add("handoff")
                break
        else:
            pytest.fail(f"dialogue {scenario.index} did not end in 12 turns")
        bot.forget(thread)
    assert {"handoff", "goodbye"} <= endings


# -- opening ----------------------------------------------------------------------------------------


def test_opening_states_the_intent(pack: Pack, user: AgendaUser, scenario_for: Any) -> None:
    scenario = scenario_for("transfer_money", {"amount": "45.50", "payee": "my landlord"})
    agenda = user.start(scenario)
    turn = user.next_turn(agenda, None)
    assert turn.acts[0] == "inform_intent"
    assert agenda.stated_intent
    assert agenda.turns == 1
    assert_gold_is_exact(pack, scenario, turn)
    # Slots said in a placeholder of the opening count as given.
    assert set(agenda.given) == {g.slot for g in turn.slots}
    assert ("inform" in turn.acts) == bool(turn.slots)


def test_vague_user_opens_vaguely_then_states_the_problem(
    pack: Pack, user: AgendaUser, scenario_for: Any
) -> None:
    scenario = scenario_for(
        "report_fraud", {"amount": "45.50", "merchant": "Tesco", "date": "2026-03-14"}, vagueness=1.0
    )
    agenda = user.start(scenario)
    first = user.next_turn(agenda, None)
    assert first.acts == ["vague_intent"]
    assert any(first.text.endswith(v) for v in pack.intent("report_fraud").vague_openings)
    assert not agenda.stated_intent
    second = user.next_turn(agenda, "Of course. How can I help?")
    assert second.acts[0] == "inform_intent"
    assert agenda.stated_intent


def test_volunteering_user_gives_every_slot_up_front(pack: Pack, user: AgendaUser, scenario_for: Any) -> None:
    slots = {"amount": "45.50", "merchant": "Tesco", "date": "2026-03-14"}
    scenario = scenario_for("report_fraud", slots, volunteers=1.0)
    agenda = user.start(scenario)
    turn = user.next_turn(agenda, None)
    assert {g.slot for g in turn.slots} == set(slots)
    assert agenda.given == slots
    assert turn.acts == ["inform_intent", "inform"]
    assert_gold_is_exact(pack, scenario, turn)


# -- answering --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "slot"),
    [
        ("How much was it for?", "amount"),
        ("What amount are we talking about?", "amount"),
        ("Who would you like to send the money to?", "payee"),
        ("Who is the recipient?", "payee"),
    ],
)
def test_asked_for_a_goal_slot_informs_it(
    pack: Pack, user: AgendaUser, scenario_for: Any, question: str, slot: str
) -> None:
    scenario = scenario_for("transfer_money", {"amount": "45.50", "payee": "my landlord"})
    agenda = user.start(scenario)
    user.next_turn(agenda, None)
    turn = user.next_turn(agenda, question)
    assert turn.acts == ["inform"]
    assert [g.slot for g in turn.slots] == [slot]
    assert turn.slots[0].value == scenario.goal.slots[slot]
    assert agenda.given[slot] == scenario.goal.slots[slot]
    assert_gold_is_exact(pack, scenario, turn)


def test_terse_user_answers_with_the_bare_value(pack: Pack, user: AgendaUser, scenario_for: Any) -> None:
    scenario = scenario_for("lost_or_stolen_card", {"card_last4": "0042"}, verbosity="terse")
    agenda = user.start(scenario)
    user.next_turn(agenda, None)
    turn = user.next_turn(agenda, "Could you give me the last four digits of the card?")
    assert turn.text == "0042"
    assert turn.slots[0].start == 0 and turn.slots[0].end == 4


def test_asked_for_a_slot_outside_the_goal(user: AgendaUser, scenario_for: Any) -> None:
    scenario = scenario_for("check_balance", {}, patience="long")
    agenda = user.start(scenario)
    user.next_turn(agenda, None)
    turn = user.next_turn(agenda, "Could you give me the last four digits of the card?")
    assert turn.acts == ["dont_know", "restate"]
    assert turn.slots == []
    assert agenda.patience == 4  # an irrelevant question is unhelpful


def test_unclear_message_with_pending_slot_answers_it(user: AgendaUser, scenario_for: Any) -> None:
    scenario = scenario_for("transfer_money", {"amount": "45.50", "payee": "my landlord"})
    agenda = user.start(scenario)
    user.next_turn(agenda, None)
    pending = [s for s in scenario.goal.slots if s not in agenda.given]
    turn = user.next_turn(agenda, "OK.")
    if pending:
        assert turn.acts == ["inform"]
        assert turn.slots[0].slot == pending[0]
    else:
        assert turn.acts == ["restate"]


# -- confirming -------------------------------------------------------------------------------------


def _after_giving(user: AgendaUser, scenario: Scenario) -> Agenda:
    agenda = user.start(scenario)
    user.next_turn(agenda, None)
    for question in ["How much was it for?", "Who would you like to send the money to?"]:
        user.next_turn(agenda, question)
    assert agenda.given == scenario.goal.slots
    return agenda


def test_wrong_amount_in_summary_is_corrected(pack: Pack, user: AgendaUser, scenario_for: Any) -> None:
    scenario = scenario_for("transfer_money", {"amount": "45.50", "payee": "my landlord"})
    agenda = _after_giving(user, scenario)
    turn = user.next_turn(agenda, "Just to confirm: an amount of £54.50, to my landlord. Is that right?")
    assert turn.acts == ["negate", "correct"]
    assert [(g.slot, g.value) for g in turn.slots] == [("amount", "45.50")]
    assert_gold_is_exact(pack, scenario, turn)
    assert not turn.ends_dialogue


def test_wrong_payee_in_summary_is_corrected(pack: Pack, user: AgendaUser, scenario_for: Any) -> None:
    scenario = scenario_for("transfer_money", {"amount": "45.50", "payee": "my landlord"})
    agenda = _after_giving(user, scenario)
    turn = user.next_turn(agenda, "Just to confirm: an amount of £45.50, to my mum. Is that right?")
    assert turn.acts == ["negate", "correct"]
    assert [(g.slot, g.value) for g in turn.slots] == [("payee", "my landlord")]


@pytest.mark.parametrize(
    "summary",
    [
        "Just to confirm: an amount of £45.50, to my landlord. Is that right?",
        "Just to confirm: 45.50 pounds to My Landlord. Is that correct?",
        "Shall I send it?",
    ],
)
def test_right_summary_is_affirmed(pack: Pack, user: AgendaUser, scenario_for: Any, summary: str) -> None:
    scenario = scenario_for("transfer_money", {"amount": "45.50", "payee": "my landlord"})
    agenda = _after_giving(user, scenario)
    turn = user.next_turn(agenda, summary)
    assert turn.acts == ["affirm"]
    assert turn.text.strip().lower() in [a.lower() for a in pack.lexicon.affirm]


# -- leaving ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "done", [ANYTHING_ELSE, "Done: £45.50 is on its way. Is there anything else?", "You're all set!"]
)
def test_anything_else_ends_with_goodbye(pack: Pack, user: AgendaUser, scenario_for: Any, done: str) -> None:
    scenario = scenario_for("check_balance", {})
    agenda = user.start(scenario)
    user.next_turn(agenda, None)
    turn = user.next_turn(agenda, done)
    assert turn.acts == ["goodbye"]
    assert turn.ends_dialogue
    assert turn.text.lower() in [g.lower() for g in pack.lexicon.goodbye]


@pytest.mark.parametrize(
    ("knob", "emotion", "patience"),
    [("short", "worried", 2), ("moderate", "worried", 3), ("moderate", "calm", 4), ("long", "worried", 5)],
)
def test_unhelpful_replies_exhaust_patience(
    user: AgendaUser, scenario_for: Any, knob: str, emotion: str, patience: int
) -> None:
    scenario = scenario_for("check_balance", {}, patience=knob, emotion=emotion, asks_for_human=0.0)
    assert behaviour_of(scenario.persona).turn_patience == patience
    agenda = user.start(scenario)
    user.next_turn(agenda, None)
    turns = [user.next_turn(agenda, NOT_UNDERSTOOD) for _ in range(patience)]
    assert all(t.acts == ["restate"] for t in turns[:-1])
    assert turns[-1].acts == ["give_up"]
    assert turns[-1].ends_dialogue
    assert not any(t.ends_dialogue for t in turns[:-1])


def test_user_asks_for_a_person_before_giving_up(user: AgendaUser, scenario_for: Any) -> None:
    scenario = scenario_for("check_balance", {}, patience="moderate", asks_for_human=1.0)
    agenda = user.start(scenario)
    user.next_turn(agenda, None)
    acts = [user.next_turn(agenda, NOT_UNDERSTOOD).acts for _ in range(3)]
    assert acts == [["restate"], ["request_human"], ["give_up"]]
    assert agenda.asked_for_human


@pytest.mark.parametrize("seed", [0, 1, 8, 10])  # 8 and 10 say the card in the opening
def test_repeated_question_for_a_given_slot_costs_patience(
    user: AgendaUser, scenario_for: Any, seed: int
) -> None:
    scenario = scenario_for("lost_or_stolen_card", {"card_last4": "4410"}, patience="short", seed=seed)
    agenda = user.start(scenario)
    user.next_turn(agenda, None)
    in_opening = "card_last4" in agenda.given
    acts = []
    for _ in range(5):
        turn = user.next_turn(agenda, "Which card is it? The last 4 digits are enough.")
        acts.append(turn.acts)
        if turn.ends_dialogue:
            break
    # Asking for something already said is unhelpful: patience 2 lasts one re-ask, the next gives up.
    expected = [["inform"]] * (1 if in_opening else 2) + [["give_up"]]
    assert acts == expected


# -- determinism ------------------------------------------------------------------------------------

SCRIPT = [
    "How can I help?",
    "How much was it for?",
    NOT_UNDERSTOOD,
    "Which merchant was the payment to?",
    "When did it happen?",
    "Just to confirm: £1.00 at Tesco on the 1st. Is that right?",
    ANYTHING_ELSE,
]


def test_same_seed_same_texts(pack: Pack) -> None:
    # Two independent users: nothing about a dialogue lives in the AgendaUser.
    for scenario in sample_scenarios(pack, 20, seed=8):
        first = converse(AgendaUser(pack), scenario, SCRIPT)
        second = converse(AgendaUser(pack), scenario, SCRIPT)
        assert [t.text for t in first] == [t.text for t in second]
        assert first == second


def test_different_seeds_different_texts(pack: Pack, user: AgendaUser, scenario_for: Any) -> None:
    goal = {"amount": "45.50", "merchant": "Tesco", "date": "2026-03-14"}
    texts = {
        tuple(t.text for t in converse(user, scenario_for("report_fraud", goal, seed=seed), SCRIPT))
        for seed in range(20)
    }
    assert len(texts) > 10


def test_wrong_card_in_summary_is_corrected(user: AgendaUser, scenario_for: Any) -> None:
    scenario = scenario_for("freeze_card", {"card_last4": "4410"})
    agenda = user.start(scenario)
    user.next_turn(agenda, None)
    if "card_last4" not in agenda.given:
        user.next_turn(agenda, "Could you give me the last four digits of the card?")
    turn = user.next_turn(agenda, "Just to confirm: the card ending 4411. Is that right?")
    assert turn.acts == ["negate", "correct"]


def test_wrong_card_in_summary_is_corrected_mid_sentence(user: AgendaUser, scenario_for: Any) -> None:
    scenario = scenario_for("freeze_card", {"card_last4": "4410"})
    agenda = user.start(scenario)
    user.next_turn(agenda, None)
    if "card_last4" not in agenda.given:
        user.next_turn(agenda, "Could you give me the last four digits of the card?")
    turn = user.next_turn(agenda, "Just to confirm: the card ending 4411, is that right?")
    assert turn.acts == ["negate", "correct"]
    assert [(g.slot, g.value) for g in turn.slots] == [("card_last4", "4410")]
