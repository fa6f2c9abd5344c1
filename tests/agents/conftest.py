"""Fixtures shared by the tests of `botdrill.agents`."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from botdrill.agents import AgendaUser, ReferenceAssistant
from botdrill.scenarios import Goal, Pack, Persona, Scenario, load_pack

_threads = itertools.count()


@pytest.fixture(scope="session")
def pack() -> Pack:
    return load_pack("banking")


@pytest.fixture(scope="session")
def user(pack: Pack) -> AgendaUser:
    """The simulated user holds only the pack: every dialogue's state is in its own Agenda."""
    return AgendaUser(pack)


@pytest.fixture(scope="session")
def bot() -> ReferenceAssistant:
    """One reference bot for the session (training takes about a second); tests use fresh thread ids."""
    return ReferenceAssistant()


@pytest.fixture
def thread_id() -> Iterator[str]:
    """A thread id no other test uses."""
    yield f"test-thread-{next(_threads)}"


def make_scenario(
    pack: Pack,
    intent: str,
    slots: dict[str, str] | None = None,
    *,
    seed: int = 1,
    index: int = 0,
    **persona: Any,
) -> Scenario:
    """A scenario with an explicit goal and a persona whose knobs default to fully predictable."""
    spec = pack.intent(intent)
    knobs: dict[str, Any] = {
        "id": "tester",
        "description": "a predictable test user",
        "patience": "moderate",
        "emotion": "worried",
        "verbosity": "normal",
        "formality": "neutral",
        "vagueness": 0.0,
        "volunteers": 0.0,
        "asks_for_human": 0.0,
    }
    knobs.update(persona)
    goal = Goal(
        intent=intent,
        slots=dict(slots or {}),
        escalation=spec.escalation.expected,
        escalation_within=spec.escalation.within_turns,
        critical=spec.critical,
    )
    return Scenario(
        id=f"s{index:06d}", index=index, persona=Persona.model_validate(knobs), goal=goal, seed=seed
    )


@pytest.fixture(scope="session")
def scenario_for(pack: Pack) -> Any:
    """`scenario_for(intent, slots, seed=..., **persona_knobs)`: see `make_scenario`."""

    def build(intent: str, slots: dict[str, str] | None = None, **kwargs: Any) -> Scenario:
        return make_scenario(pack, intent, slots, **kwargs)

    return build
