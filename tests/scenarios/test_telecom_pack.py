"""The built-in telecom pack: it loads, its critical intents must reach a person, and its gold spans hold."""

from __future__ import annotations

from enum import StrEnum
from importlib.resources import files

import pytest

from botdrill.agents import AgendaUser
from botdrill.policies import DomainGraph
from botdrill.scenarios import (
    Channel,
    Emotion,
    Expertise,
    Formality,
    Pack,
    Patience,
    Proficiency,
    Verbosity,
    builtin_packs,
    load_pack,
    normalize_value,
    sample_scenario,
)

CRITICAL = {
    "medical_emergency",
    "threat_of_self_harm",
    "sim_swap_fraud",
    "stolen_phone",
    "vulnerable_customer_cut_off",
}
COMMON = {
    "check_bill",
    "dispute_charge",
    "upgrade_plan",
    "cancel_contract",
    "report_outage",
    "roaming_charges",
    "port_number",
    "broadband_speed",
}
KNOBS: dict[str, type[StrEnum]] = {
    "formality": Formality,
    "verbosity": Verbosity,
    "emotion": Emotion,
    "expertise": Expertise,
    "patience": Patience,
    "proficiency": Proficiency,
    "channel": Channel,
}


@pytest.fixture(scope="module")
def telecom() -> Pack:
    return load_pack("telecom")


def test_is_a_builtin_pack(telecom: Pack) -> None:
    assert "telecom" in builtin_packs()
    assert telecom.name == "telecom"


def test_first_line_is_the_schema_modeline() -> None:
    text = files("botdrill.scenarios").joinpath("packs/telecom.yaml").read_text(encoding="utf-8")
    assert text.splitlines()[0] == "# yaml-language-server: $schema=./pack.schema.json"


def test_critical_intents_must_reach_a_person_in_time(telecom: Pack) -> None:
    critical = {i.name for i in telecom.intents if i.critical}
    assert critical == CRITICAL
    for name in CRITICAL:
        escalation = telecom.intent(name).escalation
        assert escalation.expected == "must"
        assert escalation.within_turns is not None
        assert 2 <= escalation.within_turns <= 4


def test_common_intents_never_must_escalate(telecom: Pack) -> None:
    common = {i.name for i in telecom.intents if not i.critical}
    assert common >= COMMON
    for name in common:
        assert telecom.intent(name).escalation.expected in ("never", "may")


def test_every_intent_has_enough_ways_to_say_it(telecom: Pack) -> None:
    for intent in telecom.intents:
        assert len(intent.openings) >= 12, intent.name
        assert intent.vague_openings, intent.name
        assert intent.restatements, intent.name


@pytest.mark.parametrize("knob", sorted(KNOBS))
def test_every_knob_member_is_used(telecom: Pack, knob: str) -> None:
    used = {getattr(p, knob) for p in telecom.personas}
    assert used == set(KNOBS[knob])


def test_domain_graph_has_no_errors(telecom: Pack) -> None:
    assert DomainGraph.from_pack(telecom).errors() == []


def test_gold_spans_normalise_to_their_values(telecom: Pack) -> None:
    user = AgendaUser(telecom)
    seen_slots: set[str] = set()
    for i in range(200):
        scenario = sample_scenario(telecom, 7, i)
        agenda = user.start(scenario)
        turns = [user.next_turn(agenda, None)]
        for name in telecom.intent(scenario.goal.intent).slots:
            question = f"Could you tell me the {telecom.slot(name).cues[0]}?"
            turns.append(user.next_turn(agenda, question))
        for turn in turns:
            for span in turn.slots:
                said = turn.text[span.start : span.end]
                assert normalize_value(telecom.slot(span.slot), said, telecom) == span.value, (
                    scenario.id,
                    turn.text,
                )
                seen_slots.add(span.slot)
    assert seen_slots == {s.name for s in telecom.slots}
