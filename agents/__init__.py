"""Who talks: simulated users, the built-in reference assistant, and adapters for assistants under test.

`ReferenceAssistant` is imported on first use: it brings scikit-learn, which most callers do not need.
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
    from ._reference import ReferenceAssistant


def __getattr__(name: str) -> Any:
    if name == "ReferenceAssistant":
        from ._reference import ReferenceAssistant

        globals()[name] = ReferenceAssistant
        return ReferenceAssistant
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Agenda",
    "AgendaUser",
    "Behaviour",
    "DialogueAct",
    "Edit",
    "Fragment",
    "GoldSlot",
    "Message",
    "NoiseContext",
    "PerturbationSpec",
    "ReferenceAssistant",
    "Reply",
    "UserTurn",
    "Utterance",
    "apply_chain",
    "behaviour_of",
    "get_perturbation",
    "perturbations",
]
