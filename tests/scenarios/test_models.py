"""Pack models: unknown keys are errors, invariants are validated, models are frozen data."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from botdrill.scenarios import (
    Channel,
    Escalation,
    Formality,
    Goal,
    IntentSpec,
    Lexicon,
    Pack,
    Patience,
    Persona,
    Scenario,
    SlotSpec,
    SlotType,
    Verbosity,
)

PERSONA: dict[str, Any] = {"id": "tester", "description": "a test user"}
SLOT: dict[str, Any] = {"name": "amount", "type": "amount", "cues": ["how much"], "answers": ["{value}"]}
ESCALATION: dict[str, Any] = {"expected": "must", "within_turns": 2}
INTENT: dict[str, Any] = {
    "name": "report_fraud",
    "description": "fraud",
    "escalation": ESCALATION,
    "openings": ["a", "b", "c {amount}"],
    "restatements": ["fraud"],
    "slots": ["amount"],
}
LEXICON: dict[str, Any] = {
    "greetings": {"casual": ["hey,"]},
    "affirm": ["yes"],
    "negate": ["no"],
    "corrections": ["no, {value}"],
    "dont_know": ["no idea"],
    "request_human": ["a human please"],
    "give_up": ["bye"],
    "goodbye": ["thanks"],
    "confirm_cues": ["is that right"],
    "done_cues": ["anything else"],
    "not_understood_cues": ["didn't understand"],
    "open_question_cues": ["how can i help"],
}
GOAL: dict[str, Any] = {"intent": "report_fraud", "escalation": "must", "escalation_within": 2}


def pack_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "mini",
        "version": "1",
        "description": "a tiny pack",
        "reference_date": "2026-03-16",
        "slots": [SLOT],
        "personas": [PERSONA],
        "lexicon": LEXICON,
        "intents": [
            INTENT,
            {
                **INTENT,
                "name": "check_balance",
                "critical": False,
                "slots": [],
                "escalation": {"expected": "never"},
                "openings": ["x", "y", "z"],
            },
        ],
    }
    data.update(changes)
    return data


CASES: list[tuple[type[BaseModel], dict[str, Any]]] = [
    (Persona, PERSONA),
    (SlotSpec, SLOT),
    (Escalation, ESCALATION),
    (IntentSpec, INTENT),
    (Lexicon, LEXICON),
    (Goal, GOAL),
    (Scenario, {"id": "s000000", "index": 0, "persona": PERSONA, "goal": GOAL, "seed": 1}),
    (Pack, pack_data()),
]


@pytest.mark.parametrize(("model", "data"), CASES, ids=[m.__name__ for m, _ in CASES])
def test_valid_minimal_data(model: type[BaseModel], data: dict[str, Any]) -> None:
    assert isinstance(model.model_validate(data), model)


@pytest.mark.parametrize(("model", "data"), CASES, ids=[m.__name__ for m, _ in CASES])
def test_unknown_keys_are_forbidden(model: type[BaseModel], data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as info:
        model.model_validate({**data, "patiance": 3})
    (error,) = info.value.errors()
    assert error["type"] == "extra_forbidden"
    assert error["loc"] == ("patiance",)


@pytest.mark.parametrize(("model", "data"), CASES, ids=[m.__name__ for m, _ in CASES])
def test_models_are_frozen(model: type[BaseModel], data: dict[str, Any]) -> None:
    obj = model.model_validate(data)
    field = next(iter(data))
    with pytest.raises(ValidationError):
        setattr(obj, field, data[field])


def test_persona_defaults() -> None:
    persona = Persona.model_validate(PERSONA)
    assert persona.patience is Patience.MODERATE
    assert persona.channel is Channel.MOBILE_CHAT
    assert persona.vagueness is None
    assert persona.verbosity is Verbosity.NORMAL
    assert persona.formality is Formality.NEUTRAL
    assert persona.weight == 1.0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("patience", 3),
        ("patience", "endless"),
        ("emotion", "furious"),
        ("expertise", "guru"),
        ("proficiency", "none"),
        ("channel", "fax"),
        ("vagueness", 1.5),
        ("volunteers", -0.1),
        ("asks_for_human", 2),
        ("weight", 0),
        ("typing_cps", 5),
        ("verbosity", "loud"),
        ("formality", "rude"),
        ("id", "Bad Id"),
        ("id", "1st"),
    ],
)
def test_persona_knobs_are_range_checked(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as info:
        Persona.model_validate({**PERSONA, field: value})
    assert info.value.errors()[0]["loc"] == (field,)


def test_escalation_must_needs_within_turns() -> None:
    with pytest.raises(ValidationError, match="within_turns"):
        Escalation(expected="must")


@pytest.mark.parametrize("expected", ["never", "may"])
def test_escalation_never_or_may_without_within_turns(expected: str) -> None:
    assert Escalation.model_validate({"expected": expected}).within_turns is None


@pytest.mark.parametrize("data", [{"expected": "must", "within_turns": 0}, {"expected": "always"}])
def test_escalation_invalid(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Escalation.model_validate(data)


def test_choice_slot_needs_values() -> None:
    with pytest.raises(ValidationError, match="non-empty 'values'"):
        SlotSpec.model_validate({**SLOT, "type": "choice"})
    slot = SlotSpec.model_validate({**SLOT, "name": "shop", "type": "choice", "values": ["Tesco"]})
    assert slot.type is SlotType.CHOICE


def test_answer_template_needs_value_placeholder() -> None:
    with pytest.raises(ValidationError, match="no \\{value\\} placeholder"):
        SlotSpec.model_validate({**SLOT, "answers": ["{value}", "it was that"]})


@pytest.mark.parametrize(("field", "value"), [("cues", []), ("answers", []), ("type", "iban")])
def test_slot_spec_invalid(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        SlotSpec.model_validate({**SLOT, field: value})


def test_intent_needs_three_openings() -> None:
    with pytest.raises(ValidationError) as info:
        IntentSpec.model_validate({**INTENT, "openings": ["a", "b"]})
    assert info.value.errors()[0]["loc"] == ("openings",)


def test_pack_duplicate_names() -> None:
    with pytest.raises(ValidationError, match="duplicate name 'tester'"):
        Pack.model_validate(pack_data(personas=[PERSONA, PERSONA]))
    with pytest.raises(ValidationError, match="duplicate name 'amount'"):
        Pack.model_validate(pack_data(slots=[SLOT, SLOT]))


def test_pack_unknown_slot_reference() -> None:
    bad = {**INTENT, "slots": ["amount", "iban"]}
    with pytest.raises(ValidationError, match="'iban' of intent 'report_fraud' is not declared"):
        Pack.model_validate(pack_data(intents=[bad, {**bad, "name": "other", "slots": []}]))


def test_pack_placeholder_must_be_an_intent_slot() -> None:
    bad = {**INTENT, "openings": ["a", "b", "c {amount} {card}"]}
    with pytest.raises(ValidationError, match=r"uses \{card\}, which is not one of this intent's slots"):
        Pack.model_validate(pack_data(intents=[bad, {**INTENT, "name": "other"}]))
    slotless = {**INTENT, "slots": [], "openings": ["a", "b", "c {amount}"]}
    with pytest.raises(ValidationError, match=r"uses \{amount\}"):
        Pack.model_validate(pack_data(intents=[slotless, {**INTENT, "name": "other"}]))


def test_pack_lookup_helpers() -> None:
    pack = Pack.model_validate(pack_data())
    assert pack.slot("amount").type is SlotType.AMOUNT
    assert pack.intent("check_balance").escalation.expected == "never"
    with pytest.raises(KeyError):
        pack.intent("nope")


def test_scenario_index_is_non_negative() -> None:
    with pytest.raises(ValidationError):
        Scenario.model_validate({"id": "s", "index": -1, "persona": PERSONA, "goal": GOAL, "seed": 1})
