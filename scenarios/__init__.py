"""What to simulate: scenario packs (YAML validated by pydantic), personas, goals and the sampler.

    >>> from botdrill.scenarios import load_pack, sample_scenarios
    >>> pack = load_pack("banking")
    >>> [s.goal.intent for s in sample_scenarios(pack, 2, seed=7)] == \\
    ...     [s.goal.intent for s in sample_scenarios(pack, 2, seed=7)]
    True
"""

from ._errors import BotdrillError, ScenarioError
from ._loader import builtin_packs, load_pack, pack_digest, parse_pack
from ._models import (
    Channel,
    Complexity,
    CrisisTrigger,
    Emotion,
    Escalation,
    Expertise,
    FailureTrigger,
    Formality,
    Goal,
    IntentSpec,
    Lexicon,
    Pack,
    Patience,
    Persona,
    Proficiency,
    RequestTrigger,
    Scenario,
    SlotSpec,
    SlotType,
    Triggers,
    Verbosity,
)
from ._sampler import (
    DEFAULT_COMPLEXITY,
    QuotaError,
    Quotas,
    Sampler,
    dialogue_rng,
    sample_scenario,
    sample_scenarios,
)
from ._schema import pack_schema, schema_text
from ._values import generate_value, mentions, normalize_value, render_value

__all__ = [
    "DEFAULT_COMPLEXITY",
    "BotdrillError",
    "Channel",
    "Complexity",
    "CrisisTrigger",
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
