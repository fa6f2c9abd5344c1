"""Persona knobs turned into behaviour: the one place where a persona's style becomes numbers.

A pack describes people with a handful of enums (formality, verbosity, emotion, expertise, patience,
proficiency, channel). The user simulator and the simulated clock never read those enums; they read the
`Behaviour` computed here, so the mapping from "a panicking fraud victim on a phone" to "types 6 characters
a second, nudges after 4 seconds, gives up after one unhelpful answer" can be read, tested and changed in
one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from botdrill.scenarios import (
    Channel,
    Emotion,
    Expertise,
    Formality,
    Patience,
    Persona,
    Proficiency,
    Verbosity,
)

# Typing speed in characters per second by channel; voice is spoken at about 14 characters a second.
_CPS = {Channel.MOBILE_CHAT: 4.5, Channel.DESKTOP_CHAT: 6.5, Channel.VOICE: 14.0}
_CPS_EMOTION = {Emotion.CALM: 1.0, Emotion.WORRIED: 1.05, Emotion.DISTRESSED: 0.85, Emotion.PANICKED: 1.3}
_CPS_PROFICIENCY = {Proficiency.NATIVE: 1.0, Proficiency.FLUENT: 0.85, Proficiency.LEARNER: 0.6}
_CPS_EXPERTISE = {Expertise.NOVICE: 0.8, Expertise.EVERYDAY: 1.0, Expertise.EXPERT: 1.15}
_READ_CPS = {Proficiency.NATIVE: 25.0, Proficiency.FLUENT: 18.0, Proficiency.LEARNER: 11.0}

# Unhelpful assistant turns tolerated, and seconds waited for a reply before texting again.
_TURNS = {Patience.SHORT: 2, Patience.MODERATE: 3, Patience.LONG: 5}
_WAIT_S = {Patience.SHORT: 8.0, Patience.MODERATE: 20.0, Patience.LONG: 45.0}
_WAIT_EMOTION = {Emotion.CALM: 1.0, Emotion.WORRIED: 0.8, Emotion.DISTRESSED: 0.7, Emotion.PANICKED: 0.4}

_VAGUE = {Expertise.NOVICE: 0.6, Expertise.EVERYDAY: 0.2, Expertise.EXPERT: 0.0}
_VAGUE_EMOTION = {Emotion.CALM: 0.0, Emotion.WORRIED: 0.05, Emotion.DISTRESSED: 0.2, Emotion.PANICKED: 0.1}
_VOLUNTEER = {Expertise.NOVICE: 0.1, Expertise.EVERYDAY: 0.35, Expertise.EXPERT: 0.8}
_HUMAN = {Emotion.CALM: 0.15, Emotion.WORRIED: 0.4, Emotion.DISTRESSED: 0.65, Emotion.PANICKED: 0.85}
_GREET = {Verbosity.TERSE: 0.0, Verbosity.NORMAL: 0.3, Verbosity.VERBOSE: 1.0}


@dataclass(frozen=True)
class Behaviour:
    """What a persona does, in numbers the simulator and the clock use."""

    turn_patience: int
    """Unhelpful assistant turns (re-asks, "I didn't understand", off-topic questions) tolerated before
    the user gives up."""
    wait_patience_s: float
    """Seconds the user waits for a reply before texting again (double-text or barge-in)."""
    typing_cps: float
    """Characters per second the user types (or speaks, on the voice channel)."""
    think_s: float
    """Seconds between reading a reply and starting to type."""
    reading_cps: float
    """Characters per second the user reads the assistant's messages."""
    vagueness: float
    """Probability that the opening message does not name the problem clearly."""
    volunteers: float
    """Probability of giving each needed slot before being asked."""
    asks_for_human: float
    """Probability of asking for a person when patience is down to its last unit."""
    greets: float
    """Probability of opening with a greeting."""
    lowercase: float
    """Probability that a message is written all in lower case."""


def _clip(x: float) -> float:
    return round(min(1.0, max(0.0, x)), 3)


@lru_cache(maxsize=256)
def behaviour_of(persona: Persona) -> Behaviour:
    """The behaviour a persona's knobs stand for (overrides in the persona win).

    Example:
        >>> from botdrill.scenarios import load_pack
        >>> victim = next(p for p in load_pack("banking").personas if p.id == "panicked_fraud_victim")
        >>> b = behaviour_of(victim)
        >>> b.turn_patience, b.wait_patience_s < 5
        (2, True)
    """
    cps = (
        _CPS[persona.channel]
        * _CPS_EMOTION[persona.emotion]
        * _CPS_PROFICIENCY[persona.proficiency]
        * _CPS_EXPERTISE[persona.expertise]
    )
    turns = _TURNS[persona.patience]
    if persona.emotion is Emotion.CALM and persona.patience is not Patience.SHORT:
        turns += 1
    vague = _VAGUE[persona.expertise] + _VAGUE_EMOTION[persona.emotion]
    if persona.proficiency is Proficiency.LEARNER:
        vague += 0.15
    volunteers = _VOLUNTEER[persona.expertise]
    if persona.verbosity is Verbosity.TERSE:
        volunteers += 0.1
    human = _HUMAN[persona.emotion] + (0.15 if persona.expertise is Expertise.NOVICE else 0.0)
    lowercase = {Formality.CASUAL: 0.5, Formality.NEUTRAL: 0.1, Formality.FORMAL: 0.0}[persona.formality]
    if persona.channel is Channel.VOICE:
        lowercase = 0.0  # a transcript's casing is the recogniser's, not the speaker's
    return Behaviour(
        turn_patience=turns,
        wait_patience_s=round(_WAIT_S[persona.patience] * _WAIT_EMOTION[persona.emotion], 3),
        typing_cps=round(cps, 3),
        think_s=1.0 if persona.emotion is Emotion.PANICKED else 2.0,
        reading_cps=_READ_CPS[persona.proficiency],
        vagueness=persona.vagueness if persona.vagueness is not None else _clip(vague),
        volunteers=persona.volunteers if persona.volunteers is not None else _clip(volunteers),
        asks_for_human=persona.asks_for_human if persona.asks_for_human is not None else _clip(human),
        greets=_GREET[persona.verbosity] * (0.5 if persona.emotion is Emotion.PANICKED else 1.0),
        lowercase=lowercase,
    )
