"""What botdrill simulates: the pack (slots, intents, personas, lexicon) and the sampled scenarios.

Every model forbids unknown keys, so a typo in a pack file is an error that names the field rather than a
silent default. Models are plain data: nothing here imports LangGraph or talks to an assistant.
"""

from __future__ import annotations

import datetime as _dt
import re
from enum import StrEnum
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

_NAME = r"^[a-z][a-z0-9_]*$"
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def located(path: str, reason: str) -> ValueError:
    """A validation error that names the field it is about, for checks that span several fields.

    Pydantic places errors of a model-level check at the model itself; the `@path:` prefix lets the pack
    loader point at the right line instead.
    """
    return ValueError(f"@{path}: {reason}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Verbosity(StrEnum):
    """How much a simulated user says per message."""

    TERSE = "terse"
    """Bare answers, no greetings: "card ending 4410"."""
    NORMAL = "normal"
    """A short sentence per message."""
    VERBOSE = "verbose"
    """Greetings, context and explanations around every answer."""


class Formality(StrEnum):
    """The register a simulated user writes in."""

    CASUAL = "casual"
    """Lower case, "hey", "thx"."""
    NEUTRAL = "neutral"
    """Plain everyday writing."""
    FORMAL = "formal"
    """"Good morning", "please", "thank you very much"."""


class Emotion(StrEnum):
    """How strongly the situation weighs on a simulated user."""

    CALM = "calm"
    """Unhurried; errors and repeats are rare."""
    WORRIED = "worried"
    """Concerned and a little quicker to ask for help."""
    DISTRESSED = "distressed"
    """Upset: slower to get to the point, quick to want a person."""
    PANICKED = "panicked"
    """Frightened and rushing: types fast, waits for nobody, wants a person now."""


class Expertise(StrEnum):
    """How well a simulated user knows the domain and its words."""

    NOVICE = "novice"
    """Does not know the terms; describes the problem around its edges."""
    EVERYDAY = "everyday"
    """Knows the usual words; says what is wrong, gives details when asked."""
    EXPERT = "expert"
    """Names the problem exactly and gives every detail up front."""


class Patience(StrEnum):
    """How long a simulated user puts up with an assistant that is unhelpful or slow."""

    SHORT = "short"
    """Leaves after one unhelpful turn; texts again after a few seconds without a reply."""
    MODERATE = "moderate"
    """Tolerates a few unhelpful turns and a reply that takes its time."""
    LONG = "long"
    """Tries many times and waits a long while before nudging."""


class Proficiency(StrEnum):
    """How at home a simulated user is in the pack's language."""

    NATIVE = "native"
    """First language."""
    FLUENT = "fluent"
    """Fluent second language: careful, formal phrasing, reads more slowly."""
    LEARNER = "learner"
    """Still learning: slow to type and read, keeps messages short."""


class Channel(StrEnum):
    """Where the user's words come from, which decides typing speed and the kind of noise."""

    MOBILE_CHAT = "mobile_chat"
    """Typed with thumbs on a phone: short, fast, neighbour-key slips."""
    DESKTOP_CHAT = "desktop_chat"
    """Typed on a keyboard: longer messages, fewer slips."""
    VOICE = "voice"
    """Spoken and transcribed: no typing time, no casing or punctuation choices, homophone errors."""


class Persona(_Model):
    """Who the simulated user is: style knobs that the user simulator turns into behaviour.

    The knobs are read in one place, `botdrill.agents.behaviour_of`, so a persona is data and never code.
    The three probabilities override what the knobs imply, for packs that need a persona pinned down.
    """

    id: str = Field(pattern=_NAME)
    """Stable identifier, stored on every dialogue."""
    description: str
    """One line for people reading a report."""
    weight: float = Field(default=1.0, gt=0)
    """Relative sampling weight among the pack's personas."""
    formality: Formality = Formality.NEUTRAL
    """The register the user writes in."""
    verbosity: Verbosity = Verbosity.NORMAL
    """How much the user says per message."""
    emotion: Emotion = Emotion.CALM
    """How strongly the situation weighs on the user."""
    expertise: Expertise = Expertise.EVERYDAY
    """How well the user knows the domain's words."""
    patience: Patience = Patience.MODERATE
    """How long the user puts up with an unhelpful or slow assistant."""
    proficiency: Proficiency = Proficiency.NATIVE
    """How at home the user is in the pack's language."""
    channel: Channel = Channel.MOBILE_CHAT
    """Where the words come from: phone, keyboard or a voice transcript."""
    vagueness: float | None = Field(default=None, ge=0, le=1)
    """Probability that the opening message does not name the problem clearly (default: from the knobs)."""
    volunteers: float | None = Field(default=None, ge=0, le=1)
    """Probability of giving each needed slot before being asked (default: from the knobs)."""
    asks_for_human: float | None = Field(default=None, ge=0, le=1)
    """Probability of asking for a person when patience is nearly gone (default: from the knobs)."""


class SlotType(StrEnum):
    """How values of a slot are generated, spoken and normalised for comparison."""

    CARD_LAST4 = "card_last4"
    """Four digits."""
    AMOUNT = "amount"
    """A sum of money in the pack's currency; canonical form "45.50"."""
    DATE = "date"
    """A recent day; canonical form ISO "2026-03-14", spoken relative to the pack's reference date."""
    CHOICE = "choice"
    """One of the slot's listed values (merchants, payees, account types)."""


class SlotSpec(_Model):
    """A piece of information an intent needs, with the words users and assistants use for it."""

    name: str = Field(pattern=_NAME)
    """Slot name as stored in gold labels and slot checks."""
    type: SlotType
    """How values are generated and normalised."""
    values: list[str] = Field(default_factory=list)
    """Possible values for a `choice` slot (ignored for other types)."""
    cues: list[str] = Field(min_length=1)
    """Lower-case phrases that, found in an assistant message, mean it asks for this slot."""
    answers: list[str] = Field(min_length=1)
    """User answer templates; `{value}` marks where the value goes."""

    @model_validator(mode="after")
    def _check(self) -> SlotSpec:
        if self.type is SlotType.CHOICE and not self.values:
            raise ValueError("a slot of type 'choice' needs a non-empty 'values' list")
        for template in self.answers:
            if "{value}" not in template:
                raise ValueError(f"answer template {template!r} has no {{value}} placeholder")
        return self


class Escalation(_Model):
    """What the assistant must do about handing this intent to a person."""

    expected: Literal["must", "never", "may"]
    """`must`: a person must take over; `never`: a hand-off is an over-escalation unless the user asked for
    one; `may`: either is acceptable."""
    within_turns: int | None = Field(default=None, ge=1)
    """For `must`: the hand-off is late after this many assistant turns."""

    @model_validator(mode="after")
    def _check(self) -> Escalation:
        if self.expected == "must" and self.within_turns is None:
            raise ValueError("an escalation that is a 'must' needs 'within_turns'")
        return self


class IntentSpec(_Model):
    """A reason a user contacts the assistant, and how the user says it."""

    name: str = Field(pattern=_NAME)
    """Gold intent label."""
    description: str
    """One line for people reading a report."""
    critical: bool = False
    """Rare but costly when missed (fraud, a lost card, a customer in crisis)."""
    weight: float = Field(default=1.0, gt=0)
    """Relative share in real traffic; the sampler may over-sample critical intents."""
    slots: list[str] = Field(default_factory=list)
    """Names of the slots the assistant needs to serve this intent."""
    escalation: Escalation
    """Whether and how fast this intent must reach a person."""
    openings: list[str] = Field(min_length=3)
    """First messages that state the problem; may hold `{slot}` placeholders that volunteer values."""
    vague_openings: list[str] = Field(default_factory=list)
    """First messages that hint at the problem without naming it."""
    restatements: list[str] = Field(min_length=1)
    """What the user says when asked to rephrase or told they were misunderstood."""

    @property
    def plain_openings(self) -> tuple[str, ...]:
        """Openings that need no slot value: what a user can ask in passing, in a topic switch.

        A property, not a cached one: `model_copy(update=...)` would carry a stale cached value over."""
        return tuple(o for o in self.openings if not _PLACEHOLDER.search(o))


class Lexicon(_Model):
    """Stock phrases of the pack's users, and the cues they read in an assistant's words."""

    greetings: dict[Formality, list[str]]
    """Openers per register, prepended by verbose users ("Hi,", "Good morning,")."""
    affirm: list[str] = Field(min_length=1)
    """Yes, when the assistant's summary is right."""
    negate: list[str] = Field(min_length=1)
    """No, when it is wrong; followed by a correction."""
    corrections: list[str] = Field(min_length=1)
    """Correction templates with `{value}`: "no, it was {value}"."""
    dont_know: list[str] = Field(min_length=1)
    """When asked for something the user's goal does not include."""
    request_human: list[str] = Field(min_length=1)
    """Asking for a person."""
    give_up: list[str] = Field(min_length=1)
    """Leaving in frustration."""
    goodbye: list[str] = Field(min_length=1)
    """Leaving satisfied."""
    confirm_cues: list[str] = Field(min_length=1)
    """Lower-case phrases that mark an assistant message as asking to confirm a summary."""
    done_cues: list[str] = Field(min_length=1)
    """Lower-case phrases that mark the assistant as finished with the request ("anything else")."""
    not_understood_cues: list[str] = Field(min_length=1)
    """Lower-case phrases of an assistant that did not understand."""
    open_question_cues: list[str] = Field(min_length=1)
    """Lower-case phrases of an assistant asking what the problem is ("how can I help")."""
    nudges: list[str] = Field(
        default_factory=lambda: [
            "hello?",
            "??",
            "are you still there?",
            "hellooo",
            "anyone there?",
            "hello??",
        ],
        min_length=1,
    )
    """What an impatient user sends while waiting for a reply."""
    topic_switch_leads: list[str] = Field(
        default_factory=lambda: ["oh and also,", "actually, quick question:", "btw", "sorry, another thing:"],
        min_length=1,
    )
    """How a user starts asking about something unrelated mid-way."""
    topic_returns: list[str] = Field(
        default_factory=lambda: ["anyway, back to my problem.", "sorry, where was I.", "anyway."],
        min_length=1,
    )
    """How a user comes back to the problem after a detour."""
    pivots: list[str] = Field(
        default_factory=lambda: [
            "wait, actually, never mind that.",
            "hang on, forget that.",
            "actually, something more important:",
            "oh no, wait.",
            "sorry, scratch that.",
        ],
        min_length=1,
    )
    """How a user drops what it was asking when it realises the real problem is something else."""
    also_leads: list[str] = Field(
        default_factory=lambda: ["and also", "oh and", "plus", "and another thing,", "also,"],
        min_length=1,
    )
    """How a user joins a second request to the first in one message."""


class RequestTrigger(_Model):
    """A user who asks for a person must get one."""

    within_turns: int = Field(default=1, ge=1)
    """Assistant turns allowed after the request before the hand-off is late."""


class FailureTrigger(_Model):
    """An assistant that keeps failing must hand over."""

    after: int = Field(default=2, ge=1)
    """Failed assistant replies (it did not understand, or said the same thing again) that make a hand-off
    due."""
    within_turns: int = Field(default=1, ge=1)
    """Assistant turns allowed after the last of those failures."""


class CrisisTrigger(_Model):
    """A user in crisis must reach a person, whatever the request was about."""

    cues: list[str] = Field(min_length=1)
    """Lower-case phrases that, in what the user means to say, mark a crisis (matched on the user's words
    before any perturbation, so a typo does not hide a crisis from the gold labels)."""
    within_turns: int = Field(default=1, ge=1)
    """Assistant turns allowed after the first crisis cue."""


class Triggers(_Model):
    """Situations that make a hand-off due whatever the intent; a trigger left out is not expected."""

    request: RequestTrigger | None = None
    """An explicit request for a person."""
    repeated_failure: FailureTrigger | None = None
    """Repeated failure of the assistant."""
    crisis: CrisisTrigger | None = None
    """Crisis cues in the user's words."""


class Complexity(StrEnum):
    """The shape of a dialogue, walked on the pack's domain graph."""

    SIMPLE = "simple"
    """One intent, stated and pursued."""
    TURN_INTO = "turn_into"
    """Starts as an everyday request and turns into a critical one mid-way (a balance check that becomes a
    fraud report)."""
    TWO_INTENTS = "two_intents"
    """Two requests in the first message: the goal's and an everyday one (`Goal.also`), in either order;
    the user then pursues the goal."""
    CORRECTION = "correction"
    """The user gives a wrong slot value, then corrects it in its next message."""


class Pack(_Model):
    """A scenario pack: one domain's slots, intents, personas and lexicon."""

    name: str = Field(pattern=_NAME)
    """Pack identifier, stored on every run."""
    version: str
    """Pack version, stored on every run."""
    description: str
    """One line for people."""
    reference_date: _dt.date
    """The simulated "today" that relative dates ("yesterday") refer to."""
    currency_symbol: str = "£"
    """Prefix for amounts."""
    currency_word: str = "pounds"
    """Word for amounts said out loud."""
    slots: list[SlotSpec] = Field(min_length=1)
    """Every slot any intent needs."""
    intents: list[IntentSpec] = Field(min_length=2)
    """The intents users come with."""
    personas: list[Persona] = Field(min_length=1)
    """The users."""
    lexicon: Lexicon
    """Stock phrases and cues."""
    triggers: Triggers = Field(default_factory=Triggers)
    """Hand-offs due whatever the intent: on request, after repeated failure, on crisis cues."""

    @field_validator("slots", "intents", "personas")
    @classmethod
    def _unique(cls, items: list[Any], info: ValidationInfo) -> list[Any]:
        seen: set[str] = set()
        for index, item in enumerate(items):
            attr = "id" if isinstance(item, Persona) else "name"
            key: str = getattr(item, attr)
            if key in seen:
                raise located(f"{info.field_name}.{index}.{attr}", f"duplicate name {key!r}")
            seen.add(key)
        return items

    @model_validator(mode="after")
    def _check_references(self) -> Pack:
        known = {s.name for s in self.slots}
        for i, intent in enumerate(self.intents):
            for j, slot in enumerate(intent.slots):
                if slot not in known:
                    raise located(
                        f"intents.{i}.slots.{j}",
                        f"slot {slot!r} of intent {intent.name!r} is not declared under 'slots'",
                    )
            for kind in ("openings", "vague_openings", "restatements"):
                allowed = set(intent.slots) if kind == "openings" else set()
                for j, template in enumerate(getattr(intent, kind)):
                    unknown = set(_PLACEHOLDER.findall(template)) - allowed
                    if unknown:
                        raise located(
                            f"intents.{i}.{kind}.{j}",
                            f"{template!r} uses {', '.join(sorted('{' + u + '}' for u in unknown))}, which "
                            + ("is not one of this intent's slots" if allowed else "is not allowed here"),
                        )
        for j, template in enumerate(self.lexicon.corrections):
            if "{value}" not in template:
                raise located(f"lexicon.corrections.{j}", f"{template!r} has no {{value}} placeholder")
        return self

    @cached_property
    def _slots_by_name(self) -> dict[str, SlotSpec]:
        return {s.name: s for s in self.slots}

    @cached_property
    def _intents_by_name(self) -> dict[str, IntentSpec]:
        return {i.name: i for i in self.intents}

    def slot(self, name: str) -> SlotSpec:
        """The slot named `name` (KeyError if the pack has none)."""
        return self._slots_by_name[name]

    def intent(self, name: str) -> IntentSpec:
        """The intent named `name` (KeyError if the pack has none)."""
        return self._intents_by_name[name]


class Goal(_Model):
    """What one simulated user wants, with the gold answer for scoring."""

    intent: str
    """Gold intent."""
    slots: dict[str, str] = Field(default_factory=dict)
    """Gold slot values in canonical form (amount "45.50", date "2026-03-14")."""
    escalation: Literal["must", "never", "may"]
    """Whether a person must, must never or may take over."""
    escalation_within: int | None = None
    """For `must`: assistant turns allowed before the hand-off is late."""
    critical: bool = False
    """Whether the intent is one of the pack's rare, critical ones."""
    complexity: Complexity = Complexity.SIMPLE
    """The dialogue's shape."""
    opens_with: str | None = None
    """`turn_into`: the everyday intent the user starts with, before turning to `intent`."""
    also: str | None = None
    """`two_intents`: the other intent said in the first message."""
    also_first: bool = False
    """`two_intents`: whether the other intent is said before the goal's."""
    mistaken: dict[str, str] = Field(default_factory=dict)
    """`correction`: slot name to the wrong canonical value the user says before correcting it."""

    @property
    def walk(self) -> list[str]:
        """The intents in the order the user raises them."""
        if self.opens_with:
            return [self.opens_with, self.intent]
        if self.also:
            return [self.also, self.intent] if self.also_first else [self.intent, self.also]
        return [self.intent]


class Scenario(_Model):
    """One dialogue to simulate: who, wanting what, with which seed."""

    id: str
    """Stable within a run: derived from the run seed and the index."""
    index: int = Field(ge=0)
    """Position in the run's sample."""
    persona: Persona
    """The user."""
    goal: Goal
    """What the user wants."""
    seed: int
    """Seed of this dialogue's random stream; the same seed gives the same words."""
