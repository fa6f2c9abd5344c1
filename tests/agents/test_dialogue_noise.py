"""Dialogue-level perturbations acted out by the agenda user: vague openings, off answers, topic switches,
abandoning, barging in and double-texting."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from botdrill.agents import Agenda, AgendaUser, UserTurn
from botdrill.scenarios import Pack, Scenario, normalize_value, sample_scenarios

NOT_UNDERSTOOD = "Sorry, I didn't understand that. Could you put it another way?"
OPEN = "How can I help you today?"
CARD = "Could you give me the last four digits of the card?"
QUESTIONS = {
    "amount": "How much was it for?",
    "merchant": "Which merchant was the payment to?",
    "date": "When did it happen?",
    "payee": "Who would you like to send the money to?",
    "card_last4": CARD,
}
FRAUD = {"amount": "45.50", "merchant": "Tesco", "date": "2026-03-14"}
TRANSFER = {"amount": "45.50", "payee": "my landlord"}
DIALOGUE_NOISE = ("vague_opening", "off_answer", "topic_switch", "abandon", "barge_in", "double_text")

SCRIPT = [
    OPEN,
    "How much was it for?",
    NOT_UNDERSTOOD,
    "Which merchant was the payment to?",
    "When did it happen?",
    "Who would you like to send the money to?",
    CARD,
    "Just to confirm: £1.00 at Tesco on the 1st. Is that right?",
    "Is there anything else I can help with?",
]


def assert_gold_is_exact(pack: Pack, scenario: Scenario, turn: UserTurn) -> None:
    for gold in turn.slots:
        assert gold.slot in scenario.goal.slots
        assert gold.value == scenario.goal.slots[gold.slot]
        surface = turn.text[gold.start : gold.end]
        assert normalize_value(pack.slot(gold.slot), surface, pack) == gold.value, (turn.text, gold)


def noise_names(turn: UserTurn) -> list[str]:
    return [name for name, _ in turn.noise]


def play(
    user: AgendaUser,
    scenario: Scenario,
    messages: list[str | None],
    noise: Mapping[str, int] | None = None,
) -> list[UserTurn]:
    """The user's turns for `messages`; `None` in `messages` stands for an interjection while waiting."""
    agenda = user.start(scenario, noise=noise)
    turns = [user.next_turn(agenda, None)]
    for message in messages:
        if turns[-1].ends_dialogue:
            break
        turns.append(user.interject(agenda) if message is None else user.next_turn(agenda, message))
    for turn in turns:
        assert_gold_is_exact(user.pack, scenario, turn)
    return turns


# -- vague_opening ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("level", [1, 2, 3])
@pytest.mark.parametrize("seed", range(8))
def test_vague_opening_forces_a_vague_first_message(
    pack: Pack, user: AgendaUser, scenario_for: Any, level: int, seed: int
) -> None:
    scenario = scenario_for("report_fraud", FRAUD, seed=seed, vagueness=0.0)
    agenda = user.start(scenario, noise={"vague_opening": level})
    first = user.next_turn(agenda, None)
    assert first.acts == ["vague_intent"]
    assert ("vague_opening", level) in first.noise
    assert first.slots == []
    assert not agenda.stated_intent
    vague = [v.lower() for v in pack.intent("report_fraud").vague_openings]
    assert any(first.text.lower().endswith(v) for v in vague), first.text
    # The clean twin states the problem straight away.
    clean = user.start(scenario)
    assert user.next_turn(clean, None).acts[0] == "inform_intent"


@pytest.mark.parametrize("level", [1, 2, 3])
@pytest.mark.parametrize("seed", range(8))
def test_vague_opening_stays_vague_when_asked_what_the_problem_is(
    pack: Pack, user: AgendaUser, scenario_for: Any, level: int, seed: int
) -> None:
    assert any(cue in OPEN.lower() for cue in pack.lexicon.open_question_cues)
    scenario = scenario_for("report_fraud", FRAUD, seed=seed, vagueness=0.0)
    turns = play(user, scenario, [OPEN] * 4, noise={"vague_opening": level})
    acts = [t.acts for t in turns]
    # Intensity 1: vague once; 2: vague once more when asked; 3: twice more.
    assert acts[:level] == [["vague_intent"]] * level
    assert acts[level][0] == "inform_intent"
    for turn in turns[:level]:
        assert turn.noise == [("vague_opening", level)]
    assert turns[level].noise == []


def test_vague_opening_restatement_is_not_the_clear_opening(
    pack: Pack, user: AgendaUser, scenario_for: Any
) -> None:
    intent = pack.intent("report_fraud")
    scenario = scenario_for("report_fraud", FRAUD, vagueness=0.0)
    turns = play(user, scenario, [OPEN], noise={"vague_opening": 2})
    assert any(turns[1].text.lower().endswith(v.lower()) for v in intent.vague_openings), turns[1].text


# -- off_answer ------------------------------------------------------------------------------------------


def _off_rate(user: AgendaUser, scenario_for: Any, noise: dict[str, int], seeds: int = 400) -> float:
    asked_times = off = 0
    for seed in range(seeds):
        scenario = scenario_for("report_fraud", FRAUD, seed=seed)
        agenda = user.start(scenario, noise=noise)
        user.next_turn(agenda, None)
        pending = [s for s in FRAUD if s not in agenda.given]
        if len(pending) < 2:
            continue
        asked = pending[0]
        turn = user.next_turn(agenda, QUESTIONS[asked])
        assert_gold_is_exact(user.pack, scenario, turn)
        assert turn.acts == ["inform"]
        assert len(turn.slots) == 1
        answered = turn.slots[0].slot
        assert answered in pending
        assert agenda.given[answered] == FRAUD[answered]
        asked_times += 1
        if answered != asked:
            off += 1
            assert turn.noise == [("off_answer", noise["off_answer"])]
            assert asked not in agenda.given
        else:
            assert turn.noise == []
    assert asked_times > seeds // 2
    return off / asked_times


@pytest.mark.parametrize(("level", "rate"), [(1, 0.25), (2, 0.5), (3, 0.75)])
def test_off_answer_answers_another_pending_slot(
    user: AgendaUser, scenario_for: Any, level: int, rate: float
) -> None:
    assert abs(_off_rate(user, scenario_for, {"off_answer": level}) - rate) < 0.08


@pytest.mark.parametrize("noise", [{}, {"off_answer": 0}, {"topic_switch": 0, "vague_opening": 0}])
def test_no_off_answer_without_the_noise(user: AgendaUser, scenario_for: Any, noise: dict[str, int]) -> None:
    assert _off_rate(user, scenario_for, noise, seeds=100) == 0.0


def test_off_answer_with_nothing_else_pending_restates(user: AgendaUser, scenario_for: Any) -> None:
    asked = restated = 0
    for seed in range(300):
        scenario = scenario_for("lost_or_stolen_card", {"card_last4": "0042"}, seed=seed)
        agenda = user.start(scenario, noise={"off_answer": 3})
        user.next_turn(agenda, None)
        if "card_last4" in agenda.given:  # some openings say the card
            continue
        asked += 1
        turn = user.next_turn(agenda, CARD)
        if turn.acts == ["restate"]:
            restated += 1
            assert turn.noise == [("off_answer", 3)]
            assert "card_last4" not in agenda.given
        else:
            assert turn.acts == ["inform"]
            assert [g.slot for g in turn.slots] == ["card_last4"]
            assert turn.noise == []
    assert asked > 100
    assert abs(restated / asked - 0.75) < 0.1


# -- topic_switch ----------------------------------------------------------------------------------------


def _assert_switch(pack: Pack, scenario: Scenario, turn: UserTurn, level: int) -> None:
    assert turn.acts == ["switch_topic"]
    assert turn.intent != scenario.goal.intent
    assert not pack.intent(turn.intent).critical
    assert turn.slots == []
    assert turn.noise == [("topic_switch", level)]
    lead = next((lead for lead in pack.lexicon.topic_switch_leads if turn.text.startswith(lead + " ")), None)
    assert lead is not None, turn.text
    rest = turn.text[len(lead) + 1 :]
    assert rest.lower() in [o.lower() for o in pack.intent(turn.intent).openings], turn.text


def _assert_return(pack: Pack, scenario: Scenario, turn: UserTurn, level: int) -> None:
    assert turn.acts == ["return", "restate"]
    assert turn.intent == scenario.goal.intent
    assert turn.noise == [("topic_switch", level)]
    returns = [r.lower() for r in pack.lexicon.topic_returns]
    assert any(turn.text.lower().startswith(r) for r in returns), turn.text
    restatements = [r.lower() for r in pack.intent(scenario.goal.intent).restatements]
    assert any(turn.text.lower().endswith(r) for r in restatements), turn.text


@pytest.mark.parametrize("seed", range(10))
def test_topic_switch_after_the_first_reply_then_return(
    pack: Pack, user: AgendaUser, scenario_for: Any, seed: int
) -> None:
    scenario = scenario_for("transfer_money", TRANSFER, seed=seed)
    agenda = user.start(scenario, noise={"topic_switch": 2})
    opening = user.next_turn(agenda, None)
    assert opening.acts[0] == "inform_intent"
    assert opening.noise == []
    switch = user.next_turn(agenda, NOT_UNDERSTOOD)
    _assert_switch(pack, scenario, switch, 2)
    back = user.next_turn(agenda, "Our branches are open 9 to 5.")
    _assert_return(pack, scenario, back, 2)
    assert agenda.switches == 1
    # Then the dialogue carries on as usual: no more switches at intensity 2.
    rest = [
        user.next_turn(agenda, m) for m in ["How much was it for?", "Who is the recipient?", NOT_UNDERSTOOD]
    ]
    assert all(t.noise == [] for t in rest)
    assert all(t.intent == scenario.goal.intent for t in rest)
    assert agenda.switches == 1


@pytest.mark.parametrize("seed", range(10))
def test_topic_switch_at_intensity_3_switches_twice(
    pack: Pack, user: AgendaUser, scenario_for: Any, seed: int
) -> None:
    scenario = scenario_for("check_balance", {}, seed=seed, patience="long")
    turns = play(user, scenario, [NOT_UNDERSTOOD] * 6, noise={"topic_switch": 3})
    acts = [t.acts for t in turns]
    assert acts[1] == ["switch_topic"] and acts[3] == ["switch_topic"]
    assert acts[2] == ["return", "restate"] and acts[4] == ["return", "restate"]
    assert sum(a == ["switch_topic"] for a in acts) == 2
    for i in (1, 3):
        _assert_switch(pack, scenario, turns[i], 3)
    for i in (2, 4):
        _assert_return(pack, scenario, turns[i], 3)


@pytest.mark.parametrize("seed", range(5))
def test_topic_switch_at_intensity_1_waits_for_the_second_reply(
    pack: Pack, user: AgendaUser, scenario_for: Any, seed: int
) -> None:
    scenario = scenario_for("check_balance", {}, seed=seed, patience="long")
    turns = play(user, scenario, [NOT_UNDERSTOOD] * 4, noise={"topic_switch": 1})
    assert [t.acts for t in turns[1:4]] == [["restate"], ["switch_topic"], ["return", "restate"]]
    _assert_switch(pack, scenario, turns[2], 1)


def test_topic_switch_never_interrupts_a_confirmation(user: AgendaUser, scenario_for: Any) -> None:
    scenario = scenario_for("transfer_money", TRANSFER)
    agenda = user.start(scenario, noise={"topic_switch": 2})
    user.next_turn(agenda, None)
    turn = user.next_turn(agenda, "Just to confirm: £45.50 to my landlord. Is that right?")
    assert "switch_topic" not in turn.acts


def test_returning_from_a_switch_counts_as_stating_the_problem(user: AgendaUser, scenario_for: Any) -> None:
    scenario = scenario_for("report_fraud", FRAUD, vagueness=0.0)
    agenda = user.start(scenario, noise={"vague_opening": 1, "topic_switch": 2})
    assert user.next_turn(agenda, None).acts == ["vague_intent"]
    assert user.next_turn(agenda, OPEN).acts == ["switch_topic"]
    back = user.next_turn(agenda, OPEN)
    assert "restate" in back.acts
    assert agenda.stated_intent


# -- abandon ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("level", "after"), [(1, 3), (2, 2), (3, 1)])
@pytest.mark.parametrize("seed", range(5))
def test_abandon_leaves_silently_after_the_nth_reply(
    user: AgendaUser, scenario_for: Any, level: int, after: int, seed: int
) -> None:
    scenario = scenario_for("transfer_money", TRANSFER, seed=seed, patience="long")
    turns = play(user, scenario, [OPEN, NOT_UNDERSTOOD, "Our branches are open 9 to 5.", NOT_UNDERSTOOD])
    assert not any(t.ends_dialogue for t in turns)  # the clean twin would carry on
    noisy = play(
        user,
        scenario,
        [OPEN, NOT_UNDERSTOOD, "Our branches are open 9 to 5.", NOT_UNDERSTOOD],
        noise={"abandon": level},
    )
    assert len(noisy) == after + 1
    last = noisy[-1]
    assert last.acts == ["abandon"]
    assert last.text == ""
    assert last.slots == []
    assert last.ends_dialogue
    assert last.intent == scenario.goal.intent
    assert last.noise == [("abandon", level)]
    assert not any(t.ends_dialogue for t in noisy[:-1])
    # Until it leaves, the user says exactly what its clean twin says.
    assert noisy[:-1] == turns[:after]


def test_a_finished_request_ends_with_goodbye_not_abandon(user: AgendaUser, scenario_for: Any) -> None:
    scenario = scenario_for("check_balance", {})
    turns = play(user, scenario, ["Your balance is £20. Is there anything else?"], noise={"abandon": 3})
    assert turns[-1].acts == ["goodbye"]


# -- interjections: barge_in and double_text -------------------------------------------------------------


@pytest.mark.parametrize("level", [1, 2, 3])
@pytest.mark.parametrize("seed", range(10))
def test_barge_in_sends_the_bare_value_of_a_pending_slot(
    pack: Pack, user: AgendaUser, scenario_for: Any, level: int, seed: int
) -> None:
    scenario = scenario_for("report_fraud", FRAUD, seed=seed)
    agenda = user.start(scenario, noise={"barge_in": level})
    user.next_turn(agenda, None)
    pending = [s for s in FRAUD if s not in agenda.given]
    assert pending
    turns_before = agenda.turns
    turn = user.interject(agenda)
    assert turn.acts == ["inform"]
    assert turn.noise == [("barge_in", level)]
    (gold,) = turn.slots
    assert gold.slot == pending[0]
    assert (gold.start, gold.end) == (0, len(turn.text))
    assert normalize_value(pack.slot(gold.slot), turn.text, pack) == FRAUD[gold.slot]
    assert agenda.given[gold.slot] == FRAUD[gold.slot]
    assert agenda.turns == turns_before + 1
    assert agenda.interjections == 1
    assert_gold_is_exact(pack, scenario, turn)


def test_barge_in_with_nothing_pending_restates(pack: Pack, user: AgendaUser, scenario_for: Any) -> None:
    scenario = scenario_for("check_balance", {})
    agenda = user.start(scenario, noise={"barge_in": 2})
    user.next_turn(agenda, None)
    turn = user.interject(agenda)
    assert turn.acts == ["restate"]
    assert turn.noise == [("barge_in", 2)]
    restatements = [r.lower() for r in pack.intent("check_balance").restatements]
    assert turn.text.lower() in restatements


def test_barge_in_gives_every_pending_slot_in_turn(pack: Pack, user: AgendaUser, scenario_for: Any) -> None:
    scenario = scenario_for("report_fraud", FRAUD, seed=3)
    agenda = user.start(scenario, noise={"barge_in": 3})
    user.next_turn(agenda, None)
    said = []
    while len(agenda.given) < len(FRAUD):
        turn = user.interject(agenda)
        assert_gold_is_exact(pack, scenario, turn)
        said.append(turn.slots[0].slot)
    assert len(said) == len(set(said))
    assert agenda.given == FRAUD
    assert user.interject(agenda).acts == ["restate"]


@pytest.mark.parametrize("seed", range(10))
def test_without_noise_an_interjection_is_a_nudge(
    pack: Pack, user: AgendaUser, scenario_for: Any, seed: int
) -> None:
    scenario = scenario_for("report_fraud", FRAUD, seed=seed)
    agenda = user.start(scenario)
    user.next_turn(agenda, None)
    given = dict(agenda.given)
    turn = user.interject(agenda)
    assert turn.acts == ["nudge"]
    assert turn.text.lower() in [n.lower() for n in pack.lexicon.nudges]
    assert turn.slots == []
    assert turn.noise == []
    assert turn.intent == scenario.goal.intent
    assert not turn.ends_dialogue
    assert agenda.given == given
    assert agenda.interjections == 1


@pytest.mark.parametrize("level", [1, 2, 3])
@pytest.mark.parametrize("seed", range(5))
def test_double_text_tags_the_nudge(
    pack: Pack, user: AgendaUser, scenario_for: Any, level: int, seed: int
) -> None:
    scenario = scenario_for("report_fraud", FRAUD, seed=seed)
    clean = play(user, scenario, [None, "How much was it for?", None])
    noisy = play(user, scenario, [None, "How much was it for?", None], noise={"double_text": level})
    for i in (1, 3):
        assert noisy[i].acts == ["nudge"]
        assert noisy[i].text.lower() in [n.lower() for n in pack.lexicon.nudges]
        assert noisy[i].noise == [("double_text", level)]
        # The same nudge as the clean twin's, only tagged.
        assert noisy[i].text == clean[i].text
    assert noisy[0] == clean[0] and noisy[2] == clean[2]


# -- clean users and determinism -------------------------------------------------------------------------

_SCRIPT_WITH_WAITS: list[str | None] = [SCRIPT[0], None, *SCRIPT[1:4], None, *SCRIPT[4:]]


def test_zero_intensities_are_a_clean_user(pack: Pack, user: AgendaUser) -> None:
    zeros = dict.fromkeys(DIALOGUE_NOISE, 0) | {"typo": 0}
    for scenario in sample_scenarios(pack, 40, seed=11):
        clean = play(user, scenario, _SCRIPT_WITH_WAITS)
        assert play(user, scenario, _SCRIPT_WITH_WAITS, noise={}) == clean
        assert play(user, scenario, _SCRIPT_WITH_WAITS, noise={"typo": 0}) == clean
        assert play(user, scenario, _SCRIPT_WITH_WAITS, noise=zeros) == clean
        assert all(t.noise == [] for t in clean)
        agenda = user.start(scenario, noise=zeros)
        assert agenda.noise == {}
        assert agenda.vague_left == 0


@pytest.mark.parametrize(
    "noise",
    [
        {"vague_opening": 2, "off_answer": 3},
        {"topic_switch": 3, "barge_in": 1},
        {"abandon": 1, "double_text": 2, "off_answer": 1},
        dict.fromkeys(DIALOGUE_NOISE, 2),
    ],
)
def test_same_scenario_and_noise_same_turns(pack: Pack, noise: dict[str, int]) -> None:
    for scenario in sample_scenarios(pack, 30, seed=5):
        first = play(AgendaUser(pack), scenario, _SCRIPT_WITH_WAITS, noise=noise)
        second = play(AgendaUser(pack), scenario, _SCRIPT_WITH_WAITS, noise=noise)
        assert [t.text for t in first] == [t.text for t in second]
        assert first == second
        for turn in first:
            for name, level in turn.noise:
                assert name in noise
                assert level == noise[name]


@pytest.mark.parametrize("name", DIALOGUE_NOISE)
@pytest.mark.parametrize("level", [1, 2, 3])
def test_gold_spans_hold_under_every_perturbation(
    pack: Pack, user: AgendaUser, name: str, level: int
) -> None:
    seen = 0
    for scenario in sample_scenarios(pack, 40, seed=level):
        turns = play(user, scenario, _SCRIPT_WITH_WAITS, noise={name: level})
        seen += sum(1 for t in turns if t.noise)
        for turn in turns:
            assert turn.acts
            assert all(n == name and k == level for n, k in turn.noise)
            if turn.acts == ["switch_topic"]:
                assert turn.intent != scenario.goal.intent
            else:
                assert turn.intent in scenario.goal.walk
        assert not any(t.ends_dialogue for t in turns[:-1])
    assert seen > 0, f"{name} at {level} never showed"


def test_agenda_records_the_noise(user: AgendaUser, scenario_for: Any) -> None:
    scenario = scenario_for("transfer_money", TRANSFER)
    agenda: Agenda = user.start(scenario, noise={"vague_opening": 3, "abandon": 0, "off_answer": 2})
    assert agenda.noise == {"vague_opening": 3, "off_answer": 2}
    assert agenda.vague_left == 2
