"""The public API of `botdrill.scenarios` (named apart from tests/agents' twin: no __init__.py here)."""

from __future__ import annotations

import importlib

import pytest

import botdrill.scenarios

EXPECTED = [
    "BotdrillError",
    "Channel",
    "Complexity",
    "CrisisTrigger",
    "DEFAULT_COMPLEXITY",
    "Emotion",
    "Escalation",
    "Expertise",
    "FailureTrigger",
    "Formality",
    "Goal",
    "IntentSpec",
    "Lexicon",
    "Pack",
    "Patience",
    "Persona",
    "Proficiency",
    "QuotaError",
    "Quotas",
    "RequestTrigger",
    "Sampler",
    "Scenario",
    "ScenarioError",
    "SlotSpec",
    "SlotType",
    "Triggers",
    "Verbosity",
    "builtin_packs",
    "dialogue_rng",
    "generate_value",
    "load_pack",
    "mentions",
    "normalize_value",
    "pack_digest",
    "pack_schema",
    "parse_pack",
    "render_value",
    "sample_scenario",
    "sample_scenarios",
    "schema_text",
]


def test_all_is_pinned() -> None:
    assert sorted(botdrill.scenarios.__all__) == EXPECTED
    assert len(set(botdrill.scenarios.__all__)) == len(botdrill.scenarios.__all__)


@pytest.mark.parametrize("name", EXPECTED)
def test_every_name_is_importable(name: str) -> None:
    module = importlib.import_module("botdrill.scenarios")
    assert getattr(module, name) is not None
    namespace: dict[str, object] = {}
    exec(f"from botdrill.scenarios import {name}", namespace)
    assert namespace[name] is getattr(module, name)


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from botdrill.scenarios import *", namespace)
    assert sorted(k for k in namespace if k != "__builtins__") == EXPECTED
