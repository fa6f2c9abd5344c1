"""Who talks: simulated users, the built-in reference assistant, and adapters for assistants under test."""

from ._reference import ReferenceAssistant
from ._types import DialogueAct, GoldSlot, Message, Reply, UserTurn
from ._user import Agenda, AgendaUser

__all__ = [
    "Agenda",
    "AgendaUser",
    "DialogueAct",
    "GoldSlot",
    "Message",
    "ReferenceAssistant",
    "Reply",
    "UserTurn",
]
