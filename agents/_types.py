"""The words that pass between a simulated user and the assistant under test, with their gold labels."""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field

DialogueAct = Literal[
    "inform_intent",  # states the problem clearly
    "vague_intent",  # hints at the problem without naming it
    "inform",  # gives one or more slot values
    "affirm",  # yes, the summary is right
    "negate",  # no, the summary is wrong
    "correct",  # gives the right value after a wrong one
    "dont_know",  # cannot answer what was asked
    "restate",  # says the problem again after being misunderstood
    "request_human",  # asks for a person
    "give_up",  # leaves in frustration
    "goodbye",  # leaves satisfied
    "abandon",  # leaves without a word (the message is empty and never sent)
    "nudge",  # texts again while waiting for a reply ("hello??")
    "switch_topic",  # asks about something unrelated to the goal
    "return",  # comes back to the goal after a switch
    "crisis_cue",  # says a crisis cue of the pack's `triggers.crisis` (marked by the engine)
]
"""What a user turn does, as gold dialogue acts."""


class Message(TypedDict):
    """One OpenAI-style chat message, as passed to an assistant under test."""

    role: Literal["user", "assistant", "system"]
    content: str


class GoldSlot(BaseModel):
    """A slot value in a user turn, with the characters that say it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    slot: str
    """Slot name."""
    value: str
    """Canonical gold value (what a correct assistant captures, after normalisation)."""
    start: int = Field(ge=0)
    """Offset of the first character of the value's surface form in the turn's text."""
    end: int = Field(ge=0)
    """Offset one past its last character: `text[start:end]` says the value."""


class UserTurn(BaseModel):
    """One message of a simulated user, with its gold labels."""

    model_config = ConfigDict(extra="forbid")

    text: str
    """What the user sends."""
    intent: str
    """Gold intent the user is pursuing."""
    acts: list[DialogueAct]
    """Gold dialogue acts of this message."""
    slots: list[GoldSlot] = Field(default_factory=list)
    """Gold slot values said in this message, with character spans into `text`."""
    noise: list[tuple[str, int]] = Field(default_factory=list)
    """Dialogue-level perturbations that shaped this message, with their intensities."""
    retracted: list[GoldSlot] = Field(default_factory=list)
    """Slot values said by mistake and corrected in the next message (their `value` is the wrong one):
    where the text says something the gold labels do not."""
    fault: str | None = None
    """A simulator fault the consistency check found in this message (`invented_value`, `left_goal`):
    only an LLM user commits one."""
    llm: dict[str, Any] | None = None
    """What an LLM user was told and answered (the plan, its structured answer, the control signals, the
    check's findings), stored with the turn for review; `None` for the agenda user."""

    @property
    def ends_dialogue(self) -> bool:
        """Whether the user leaves with this message (satisfied, frustrated or silently)."""
        return "goodbye" in self.acts or "give_up" in self.acts or "abandon" in self.acts


class Reply(BaseModel):
    """What the assistant under test answered, with whatever it exposes besides its words.

    Fields a bot does not expose stay `None`; scoring then falls back on a judge of the words and the
    dialogue record says which source was used.
    """

    model_config = ConfigDict(extra="forbid")

    text: str
    """The words the user sees."""
    intent: str | None = None
    """The intent the assistant routed to, if it exposes one."""
    slots: dict[str, str] | None = None
    """Slot values the assistant captured so far, if it exposes them."""
    handoff: bool | None = None
    """Whether the assistant handed the conversation to a person, if it says so."""
    confidence: float | None = Field(default=None, ge=0, le=1, strict=True)
    """The assistant's confidence in its routed intent, 0 to 1, if it exposes one: what a confidence rule
    of an escalation policy reads (a bool or a numeric string is refused, not guessed at)."""
    escalated_by: str | None = None
    """The escalation-policy rule that handed the conversation over, when a policy wrapper did
    (`None`: the assistant itself did, or nobody did), so a policy's hand-offs can be told from the bot's."""
    raw: Any = None
    """Anything else the assistant returned, kept for debugging (stored as JSON when possible)."""
