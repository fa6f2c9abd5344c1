"""Who talks: simulated users, the built-in reference assistant, and adapters for assistants under test.

`ReferenceAssistant` is imported on first use: it brings scikit-learn, which most callers do not need.
So are the expansion methods for training data (`Expander`, `GenerationSpec`, `Seed`, ...) and the LLM
paraphraser, which bring the LLM client stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._perturb import (
    Edit,
    Fragment,
    NoiseContext,
    PerturbationSpec,
    Utterance,
    apply_chain,
    get_perturbation,
    perturbations,
)
from ._style import Behaviour, behaviour_of
from ._types import DialogueAct, GoldSlot, Message, Reply, UserTurn
from ._user import Agenda, AgendaUser

if TYPE_CHECKING:
    from ._augment import (
        AugmentError,
        Candidate,
        Expander,
        GenerationSpec,
        IntentEntry,
        Seed,
        load_seeds,
        load_spec,
        method_names,
        spec_from_pack,
    )
    from ._paraphrase import LLMParaphraser, ParaphraseConfig, load_paraphraser
    from ._reference import ReferenceAssistant

_LAZY = {
    "ReferenceAssistant": "_reference",
    "AugmentError": "_augment",
    "Candidate": "_augment",
    "Expander": "_augment",
    "GenerationSpec": "_augment",
    "IntentEntry": "_augment",
    "Seed": "_augment",
    "load_seeds": "_augment",
    "load_spec": "_augment",
    "method_names": "_augment",
    "spec_from_pack": "_augment",
    "LLMParaphraser": "_paraphrase",
    "ParaphraseConfig": "_paraphrase",
    "load_paraphraser": "_paraphrase",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
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
