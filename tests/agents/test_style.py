"""Persona knobs turned into behaviour: valid numbers, monotonic in each knob, overrides that win."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import textwrap
from collections.abc import Iterator
from enum import StrEnum
from typing import Any

import pytest

from botdrill.agents import Behaviour, behaviour_of
from botdrill.scenarios import (
    Channel,
    Emotion,
    Expertise,
    Formality,
    Patience,
    Persona,
    Proficiency,
    Verbosity,
    load_pack,
)

KNOBS: dict[str, type[StrEnum]] = {
    "emotion": Emotion,
    "expertise": Expertise,
    "patience": Patience,
    "proficiency": Proficiency,
    "channel": Channel,
    "formality": Formality,
    "verbosity": Verbosity,
}

_PERSONAS = load_pack("banking").personas


def persona(**knobs: Any) -> Persona:
    return Persona(id="tester", description="a test user", **knobs)


def other_knobs(*fixed: str) -> Iterator[dict[str, Any]]:
    """Every combination of the knobs not named in `fixed` (the full grid is under 3,000 personas)."""
    names = [name for name in KNOBS if name not in fixed]
    for values in itertools.product(*(list(KNOBS[name]) for name in names)):
        yield dict(zip(names, values, strict=True))


def assert_valid(behaviour: Behaviour) -> None:
    assert isinstance(behaviour.turn_patience, int)
    assert behaviour.turn_patience >= 1
    assert behaviour.wait_patience_s > 0
    assert behaviour.typing_cps > 0
    assert behaviour.reading_cps > 0
    assert behaviour.think_s >= 0
    for name in ("vagueness", "volunteers", "asks_for_human", "greets", "lowercase"):
        value = getattr(behaviour, name)
        assert 0.0 <= value <= 1.0, (name, value)


# -- the built-in personas --------------------------------------------------------------------------


@pytest.mark.parametrize("built_in", _PERSONAS, ids=[p.id for p in _PERSONAS])
def test_every_banking_persona_has_a_valid_behaviour(built_in: Persona) -> None:
    assert_valid(behaviour_of(built_in))


def test_banking_personas_cover_every_member_of_every_knob() -> None:
    assert len(_PERSONAS) >= 12
    for name, enum in KNOBS.items():
        used = {getattr(p, name) for p in _PERSONAS}
        assert used == set(enum), f"{name}: no persona is {sorted(set(enum) - used)}"


def test_panicked_fraud_victim_is_fast_and_impatient() -> None:
    victim = next(p for p in _PERSONAS if p.id == "panicked_fraud_victim")
    behaviour = behaviour_of(victim)
    assert behaviour.turn_patience == 2
    assert behaviour.wait_patience_s < 5


def test_every_knob_combination_has_a_valid_behaviour() -> None:
    count = 0
    for knobs in other_knobs():
        assert_valid(behaviour_of(persona(**knobs)))
        count += 1
    assert count == 4 * 3 * 3 * 3 * 3 * 3 * 3


# -- one knob at a time ------------------------------------------------------------------------------


def test_panicked_waits_less_than_calm() -> None:
    for knobs in other_knobs("emotion"):
        calm = behaviour_of(persona(emotion=Emotion.CALM, **knobs))
        panicked = behaviour_of(persona(emotion=Emotion.PANICKED, **knobs))
        assert panicked.wait_patience_s < calm.wait_patience_s, knobs
        assert panicked.think_s <= calm.think_s, knobs
        assert panicked.turn_patience <= calm.turn_patience, knobs
        assert panicked.typing_cps > calm.typing_cps, knobs  # "types fast"


def test_emotion_orders_waiting_and_asking_for_a_person() -> None:
    order = [Emotion.CALM, Emotion.WORRIED, Emotion.DISTRESSED, Emotion.PANICKED]
    for knobs in other_knobs("emotion"):
        behaviours = [behaviour_of(persona(emotion=e, **knobs)) for e in order]
        waits = [b.wait_patience_s for b in behaviours]
        humans = [b.asks_for_human for b in behaviours]
        assert waits == sorted(waits, reverse=True) and len(set(waits)) == len(waits), knobs
        assert humans == sorted(humans) and len(set(humans)) == len(humans), knobs


def test_short_patience_tolerates_less_and_waits_less_than_long() -> None:
    for knobs in other_knobs("patience"):
        short = behaviour_of(persona(patience=Patience.SHORT, **knobs))
        moderate = behaviour_of(persona(patience=Patience.MODERATE, **knobs))
        long = behaviour_of(persona(patience=Patience.LONG, **knobs))
        assert short.turn_patience < moderate.turn_patience < long.turn_patience, knobs
        assert short.wait_patience_s < moderate.wait_patience_s < long.wait_patience_s, knobs


def test_short_patience_texts_again_after_a_few_seconds() -> None:
    for knobs in other_knobs("patience"):
        assert behaviour_of(persona(patience=Patience.SHORT, **knobs)).wait_patience_s <= 10, knobs


def test_voice_is_fastest_and_mobile_slower_than_desktop() -> None:
    for knobs in other_knobs("channel"):
        voice = behaviour_of(persona(channel=Channel.VOICE, **knobs))
        mobile = behaviour_of(persona(channel=Channel.MOBILE_CHAT, **knobs))
        desktop = behaviour_of(persona(channel=Channel.DESKTOP_CHAT, **knobs))
        assert voice.typing_cps > mobile.typing_cps, knobs
        assert voice.typing_cps > desktop.typing_cps, knobs
        assert mobile.typing_cps < desktop.typing_cps, knobs


def test_voice_never_lower_cases() -> None:
    for knobs in other_knobs("channel"):
        assert behaviour_of(persona(channel=Channel.VOICE, **knobs)).lowercase == 0.0, knobs


def test_learner_types_and_reads_slower_than_native() -> None:
    for knobs in other_knobs("proficiency"):
        native = behaviour_of(persona(proficiency=Proficiency.NATIVE, **knobs))
        fluent = behaviour_of(persona(proficiency=Proficiency.FLUENT, **knobs))
        learner = behaviour_of(persona(proficiency=Proficiency.LEARNER, **knobs))
        assert learner.typing_cps < native.typing_cps, knobs
        assert learner.reading_cps < fluent.reading_cps < native.reading_cps, knobs


def test_novice_is_vaguer_and_volunteers_less_than_expert() -> None:
    for knobs in other_knobs("expertise"):
        novice = behaviour_of(persona(expertise=Expertise.NOVICE, **knobs))
        everyday = behaviour_of(persona(expertise=Expertise.EVERYDAY, **knobs))
        expert = behaviour_of(persona(expertise=Expertise.EXPERT, **knobs))
        assert novice.vagueness > everyday.vagueness > expert.vagueness, knobs
        assert novice.volunteers < everyday.volunteers < expert.volunteers, knobs


def test_formality_and_verbosity() -> None:
    for knobs in other_knobs("formality", "channel"):
        casual = behaviour_of(persona(formality=Formality.CASUAL, channel=Channel.MOBILE_CHAT, **knobs))
        neutral = behaviour_of(persona(formality=Formality.NEUTRAL, channel=Channel.MOBILE_CHAT, **knobs))
        formal = behaviour_of(persona(formality=Formality.FORMAL, channel=Channel.MOBILE_CHAT, **knobs))
        assert casual.lowercase > neutral.lowercase > formal.lowercase == 0.0, knobs
    for knobs in other_knobs("verbosity"):
        terse = behaviour_of(persona(verbosity=Verbosity.TERSE, **knobs))
        normal = behaviour_of(persona(verbosity=Verbosity.NORMAL, **knobs))
        verbose = behaviour_of(persona(verbosity=Verbosity.VERBOSE, **knobs))
        assert terse.greets == 0.0, knobs  # "bare answers, no greetings"
        assert normal.greets < verbose.greets, knobs


# -- overrides ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0.0, 0.42, 1.0])
def test_explicit_probabilities_win_over_the_knobs(value: float) -> None:
    overrides = {"vagueness": value, "volunteers": value, "asks_for_human": value}
    for knobs in other_knobs():
        behaviour = behaviour_of(persona(**knobs, **overrides))
        assert (behaviour.vagueness, behaviour.volunteers, behaviour.asks_for_human) == (value,) * 3, knobs


def test_one_override_leaves_the_other_probabilities_to_the_knobs() -> None:
    knobs = {"expertise": Expertise.NOVICE, "emotion": Emotion.PANICKED}
    free = behaviour_of(persona(**knobs))
    pinned = behaviour_of(persona(**knobs, vagueness=0.0))
    assert pinned.vagueness == 0.0 and free.vagueness > 0.0
    assert dataclasses.replace(pinned, vagueness=free.vagueness) == free


# -- caching and determinism --------------------------------------------------------------------------


def test_equal_personas_get_equal_behaviour() -> None:
    for built_in in _PERSONAS:
        first = behaviour_of(built_in)
        twin = Persona.model_validate(built_in.model_dump())
        assert twin is not built_in
        assert behaviour_of(twin) == first
        assert behaviour_of(built_in) == first


def test_behaviour_is_immutable() -> None:
    # behaviour_of is cached: a mutable result would let one dialogue change another's user.
    behaviour = behaviour_of(_PERSONAS[0])
    field = "turn_patience"
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(behaviour, field, 99)
    assert behaviour_of(_PERSONAS[0]).turn_patience == behaviour.turn_patience


# -- the one-line docstring per enum member ----------------------------------------------------------


def _parse(source: str) -> ast.Module:
    """`ast.parse`, again if it hits CPython 3.11's shared AST recursion counter.

    Python 3.11 keeps that counter per interpreter, not per thread, so a parse that races a `compile()` in
    another thread (the HTTP client libraries evaluate annotations in worker threads) can fail with
    "AST constructor recursion depth mismatch" (fixed in later releases); the source itself is fine.
    """
    for _ in range(5):
        try:
            return ast.parse(source)
        except SystemError as exc:
            if "recursion depth mismatch" not in str(exc):
                raise
    return ast.parse(source)


@pytest.mark.parametrize("enum", list(KNOBS.values()), ids=list(KNOBS))
def test_every_knob_member_has_a_one_line_docstring(enum: type[StrEnum]) -> None:
    source = textwrap.dedent(inspect.getsource(enum))
    lines = source.splitlines()
    (cls,) = _parse(source).body
    assert isinstance(cls, ast.ClassDef)
    body = cls.body
    documented: set[str] = set()
    for i, statement in enumerate(body):
        if not isinstance(statement, ast.Assign):
            continue
        (target,) = statement.targets
        assert isinstance(target, ast.Name)
        following = body[i + 1] if i + 1 < len(body) else None
        assert isinstance(following, ast.Expr), f"{enum.__name__}.{target.id} has no docstring"
        assert isinstance(following.value, ast.Constant) and isinstance(following.value.value, str)
        assert following.value.value.strip(), f"{enum.__name__}.{target.id} has an empty docstring"
        # The docstring is the very next line and fits on it.
        assert following.lineno == statement.end_lineno + 1  # type: ignore[operator]
        line = lines[following.lineno - 1].strip()
        assert line.startswith('"""') and line.endswith('"""') and len(line) > 6, line
        documented.add(target.id)
    assert documented == {member.name for member in enum}
