"""The public API of `botdrill.agents` (named apart from tests/scenarios' twin: no __init__.py here)."""

from __future__ import annotations

import importlib

import pytest

import botdrill.agents

EXPECTED = [
    "Agenda",
    "AgendaUser",
    "AugmentError",
    "Behaviour",
    "Candidate",
    "DialogueAct",
    "Edit",
    "Expander",
    "Fragment",
    "GenerationSpec",
    "GoldSlot",
    "IntentEntry",
    "LLMParaphraser",
    "Message",
    "NoiseContext",
    "ParaphraseConfig",
    "PerturbationSpec",
    "ReferenceAssistant",
    "Reply",
    "Seed",
    "UserTurn",
    "Utterance",
    "apply_chain",
    "behaviour_of",
    "get_perturbation",
    "load_paraphraser",
    "load_seeds",
    "load_spec",
    "method_names",
    "perturbations",
    "spec_from_pack",
]


def test_all_is_pinned() -> None:
    assert sorted(botdrill.agents.__all__) == EXPECTED
    assert len(set(botdrill.agents.__all__)) == len(botdrill.agents.__all__)


@pytest.mark.parametrize("name", EXPECTED)
def test_every_name_is_importable(name: str) -> None:
    module = importlib.import_module("botdrill.agents")
    assert getattr(module, name) is not None
    namespace: dict[str, object] = {}
    exec(f"from botdrill.agents import {name}", namespace)
    assert namespace[name] is getattr(module, name)


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from botdrill.agents import *", namespace)
    assert sorted(k for k in namespace if k != "__builtins__") == EXPECTED


def test_adapter_names_are_importable_from_their_module() -> None:
    # Used by the simulator and documented for targets; not re-exported from the package.
    from botdrill.agents import _adapters

    for name in [
        "AssistantError",
        "AssistantProtocolError",
        "AssistantTimeout",
        "CallableAssistant",
        "GraphAssistant",
        "TargetError",
        "as_assistant",
        "coerce_reply",
        "load_target",
    ]:
        assert hasattr(_adapters, name), name
