"""The default simulated user: an agenda (goal, slots still to give, patience) realised as words.

No model is involved. The user reads the assistant's last message for a few cues (a question about a slot,
a summary to confirm, "anything else?", "I didn't understand"), picks its next act from its agenda and says
it with the pack's templates, in its persona's voice. Every slot value it says is recorded with its
character span, so gold labels are exact by construction.

State goes in and comes out explicitly: `AgendaUser` holds only the pack; everything about one dialogue is
in its `Agenda`, which the caller keeps.
"""

from __future__ import annotations

import copy
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from botdrill.scenarios import (
    Complexity,
    Pack,
    Persona,
    Scenario,
    Verbosity,
    dialogue_rng,
    mentions,
    render_value,
)

from ._style import Behaviour, behaviour_of
from ._types import DialogueAct, GoldSlot, UserTurn

_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_QUIET = random.Random(0)  # the noise stream of a user without dialogue-level noise: never drawn from


@dataclass
class Agenda:
    """One simulated user's private state in one dialogue."""

    scenario: Scenario
    """Who the user is and what they want."""
    rng: random.Random
    """The user's own random stream (seeded from the scenario)."""
    patience: int
    """Unhelpful assistant turns the user will still tolerate."""
    given: dict[str, str] = field(default_factory=dict)
    """Slots the user has said so far, with their canonical values."""
    stated_intent: bool = False
    """Whether the user has named the problem clearly."""
    asked_for_human: bool = False
    """Whether the user has already asked for a person."""
    turns: int = 0
    """User messages sent so far."""
    noise: dict[str, int] = field(default_factory=dict)
    """Dialogue-level perturbations this user acts out, with their intensities."""
    noise_rng: random.Random = field(default_factory=lambda: _QUIET)
    """A separate stream for those perturbations, so the user's own choices stay aligned with its clean
    twin's for as long as the assistant's replies do."""
    replies: int = 0
    """Assistant replies read so far."""
    switches: int = 0
    """Topic switches made so far."""
    returning: bool = False
    """Whether the next message comes back to the problem after a switch."""
    vague_left: int = 0
    """Further times the user will stay vague when asked what the problem is."""
    interjections: int = 0
    """Messages sent while waiting for a reply."""
    pivoted: bool = False
    """`turn_into`: whether the user has turned from its first request to its goal."""
    mistakes_left: dict[str, str] = field(default_factory=dict)
    """`correction`: slots the user will get wrong the first time it says them, with the wrong value."""
    correction_due: str | None = None
    """`correction`: the slot whose wrong value the user has said and will correct in its next message."""

    @property
    def intent(self) -> str:
        """The intent the user is pursuing now: the first request of a `turn_into` dialogue until it
        turns, the goal otherwise."""
        goal = self.scenario.goal
        if goal.opens_with and not self.pivoted:
            return goal.opens_with
        return goal.intent

    @property
    def persona(self) -> Persona:
        return self.scenario.persona

    @property
    def behaviour(self) -> Behaviour:
        return behaviour_of(self.scenario.persona)

    def save(self) -> AgendaState:
        """Everything `restore` needs to take back what the user did since: fields and random streams."""
        snapshot = copy.copy(self)
        snapshot.given = dict(self.given)
        snapshot.mistakes_left = dict(self.mistakes_left)
        return AgendaState(snapshot, self.rng.getstate(), self.noise_rng.getstate())

    def restore(self, state: AgendaState) -> None:
        """Back to the saved state, as if the user had never composed what came after."""
        self.__dict__.update(state.fields.__dict__)
        self.given = dict(state.fields.given)
        self.mistakes_left = dict(state.fields.mistakes_left)
        self.rng.setstate(state.rng)
        self.noise_rng.setstate(state.noise_rng)


@dataclass(frozen=True)
class AgendaState:
    """A saved `Agenda` (see `Agenda.save`)."""

    fields: Agenda
    rng: Any
    noise_rng: Any


def _any_of(cues: list[str]) -> re.Pattern[str]:
    """A pattern that finds any of `cues` as a plain substring (nothing in a cue is a regex)."""
    return re.compile("|".join(re.escape(c.lower()) for c in sorted(cues, key=len, reverse=True)))


class _Builder:
    """Accumulates sentences and records where each slot value lands in the final text."""

    def __init__(self) -> None:
        self.text = ""
        self.slots: list[GoldSlot] = []
        self.retracted: list[GoldSlot] = []
        """Values said by mistake (`correction` dialogues): where they are, never gold."""
        self.wrong: dict[str, str] = {}
        """Slot name to a wrong canonical value: a value equal to it goes to `retracted`."""

    def add(self, template: str, values: dict[str, tuple[str, str]], value_slot: str | None = None) -> None:
        """Append `template` as a new sentence.

        `{name}` takes `values[name] = (canonical, surface)`; `{value}` stands for the slot `value_slot`.
        """
        if self.text:
            self.text += " "
        pieces = _PLACEHOLDER.split(template)
        for i, piece in enumerate(pieces):
            if i % 2 == 0:
                self.text += piece
                continue
            slot = value_slot if piece == "value" and value_slot else piece
            canonical, surface = values[slot]
            start = len(self.text)
            self.text += surface
            span = GoldSlot(slot=slot, value=canonical, start=start, end=len(self.text))
            (self.retracted if self.wrong.get(slot) == canonical else self.slots).append(span)


class AgendaUser:
    """The agenda-based simulated user for one pack.

    Example:
        >>> from botdrill.scenarios import load_pack, sample_scenario
        >>> pack = load_pack("banking")
        >>> user = AgendaUser(pack)
        >>> agenda = user.start(sample_scenario(pack, seed=1, index=0))
        >>> turn = user.next_turn(agenda, None)
        >>> all(turn.text[s.start:s.end] for s in turn.slots)
        True
    """

    def __init__(self, pack: Pack) -> None:
        self.pack = pack
        lex = pack.lexicon
        # Cues are plain substrings; one compiled alternation per cue list keeps reading a reply cheap.
        self._cue_done = _any_of(lex.done_cues)
        self._cue_confirm = _any_of(lex.confirm_cues)
        self._cue_not_understood = _any_of(lex.not_understood_cues)
        self._cue_open = _any_of(lex.open_question_cues)
        self._slot_cues = [(s.name, _any_of(s.cues)) for s in pack.slots]

    def start(self, scenario: Scenario, noise: Mapping[str, int] | None = None) -> Agenda:
        """A fresh agenda for `scenario`.

        Args:
            noise: dialogue-level perturbations (`vague_opening`, `off_answer`, `topic_switch`, `abandon`,
                `barge_in`, `double_text`) and their intensities 0-3.
        """
        noise = {k: v for k, v in (noise or {}).items() if v}
        return Agenda(
            scenario=scenario,
            rng=dialogue_rng(scenario.seed, scenario.index, "user"),
            patience=behaviour_of(scenario.persona).turn_patience,
            noise=noise,
            # Seeding a stream costs more than a short turn; a user without noise never draws from it.
            noise_rng=dialogue_rng(scenario.seed, scenario.index, "user-noise") if noise else _QUIET,
            vague_left=max(0, noise.get("vague_opening", 0) - 1),
            mistakes_left=dict(scenario.goal.mistaken),
        )

    def next_turn(self, agenda: Agenda, assistant_text: str | None) -> UserTurn:
        """The user's next message, given the assistant's last one (`None` before the first)."""
        agenda.turns += 1
        if assistant_text is None:
            return self._opening(agenda)
        agenda.replies += 1
        if agenda.correction_due is not None:
            return self._correct_own_mistake(agenda)
        if not agenda.pivoted and agenda.scenario.goal.opens_with:
            return self._pivot(agenda)
        kind, slot = self._read(agenda, assistant_text)
        if kind == "done":
            return self._say(agenda, ["goodbye"], self.pack.lexicon.goodbye)
        noisy = self._act_out_noise(agenda, kind)
        if noisy is not None:
            return noisy
        if kind == "confirm":
            return self._confirm(agenda, assistant_text)
        if kind == "request" and slot is not None:
            if slot in agenda.scenario.goal.slots:
                if slot in agenda.given and (early := self._lose_patience(agenda)):
                    return early
                return self._off_answer(agenda, slot) or self._answer(agenda, slot)
            return self._lose_patience(agenda) or self._restate(agenda, dont_know=True)
        if kind == "open" and not agenda.stated_intent:
            if agenda.vague_left:
                agenda.vague_left -= 1
                return self._vague(agenda)
            return self._state_intent(agenda)
        early = self._lose_patience(agenda)
        if early:
            return early
        pending = self._pending(agenda)
        if kind == "other" and pending:
            return self._answer(agenda, pending[0])
        return self._restate(agenda, dont_know=False)

    def interject(self, agenda: Agenda) -> UserTurn:
        """What the user sends while still waiting for a reply.

        With `barge_in` the user says what it would have said next (a detail not yet given, or the problem
        again); otherwise it nudges ("hello??"). Whether it is sent at all is for the clock to decide.
        """
        agenda.turns += 1
        agenda.interjections += 1
        if "barge_in" in agenda.noise:
            level = agenda.noise["barge_in"]
            pending = self._pending(agenda)
            if pending:  # typed in a hurry: the bare value
                builder = _Builder()
                builder.add("{value}", self._values(agenda, [pending[0]]), value_slot=pending[0])
                agenda.given[pending[0]] = agenda.scenario.goal.slots[pending[0]]
                turn = self._finish(agenda, builder, ["inform"])
            else:
                turn = self._restate(agenda, dont_know=False)
            turn.noise.append(("barge_in", level))
            return turn
        turn = self._say(agenda, ["nudge"], self.pack.lexicon.nudges)
        if "double_text" in agenda.noise:
            turn.noise.append(("double_text", agenda.noise["double_text"]))
        return turn

    # -- dialogue-level perturbations -----------------------------------------------------------

    def _act_out_noise(self, agenda: Agenda, kind: str) -> UserTurn | None:
        """A message shaped by a dialogue-level perturbation instead of the agenda, if one applies now."""
        noise = agenda.noise
        if not noise:
            return None
        if (level := noise.get("abandon")) and agenda.replies >= 4 - level:
            turn = UserTurn(text="", intent=agenda.intent, acts=["abandon"])
            turn.noise.append(("abandon", level))
            return turn
        if agenda.returning:
            agenda.returning = False
            agenda.stated_intent = True
            builder = _Builder()
            builder.add(agenda.noise_rng.choice(self.pack.lexicon.topic_returns), {})
            builder.add(agenda.rng.choice(self.pack.intent(agenda.intent).restatements), {})
            turn = self._finish(agenda, builder, ["return", "restate"])
            turn.noise.append(("topic_switch", noise["topic_switch"]))
            return turn
        level = noise.get("topic_switch", 0)
        # Intensity 1 switches after the 2nd reply, 2 after the 1st, 3 after the 1st and the 3rd.
        when = {1: (2,), 2: (1,), 3: (1, 3)}.get(level, ())
        if agenda.replies in when and kind not in ("confirm",):
            return self._switch_topic(agenda, level)
        return None

    def _switch_topic(self, agenda: Agenda, level: int) -> UserTurn | None:
        own = agenda.intent
        options = [
            (i.name, o)
            for i in self.pack.intents
            if i.name != own and not i.critical
            for o in i.plain_openings
        ]
        if not options:
            return None
        intent, opening = agenda.noise_rng.choice(options)
        agenda.switches += 1
        agenda.returning = True
        lead = agenda.noise_rng.choice(self.pack.lexicon.topic_switch_leads)
        # "Btw what are your opening hours": lower-case the opening's first letter unless it is "I".
        if opening[:1].isupper() and opening[1:2].islower():
            opening = opening[0].lower() + opening[1:]
        builder = _Builder()
        builder.add(f"{lead} {opening}", {})
        turn = self._finish(agenda, builder, ["switch_topic"])
        turn.intent = intent
        turn.noise.append(("topic_switch", level))
        return turn

    def _off_answer(self, agenda: Agenda, asked: str) -> UserTurn | None:
        """With `off_answer`, the user answers a different question than `asked`, sometimes."""
        level = agenda.noise.get("off_answer", 0)
        if not level or agenda.noise_rng.random() >= 0.25 * level:
            return None
        others = [s for s in self._pending(agenda) if s != asked]
        if others:
            turn = self._answer_only(agenda, agenda.noise_rng.choice(others))
        else:
            turn = self._restate(agenda, dont_know=False)
        turn.noise.append(("off_answer", level))
        return turn

    def _vague(self, agenda: Agenda) -> UserTurn:
        intent = self.pack.intent(agenda.intent)
        builder = _Builder()
        builder.add(agenda.noise_rng.choice(intent.vague_openings or intent.restatements), {})
        turn = self._finish(agenda, builder, ["vague_intent"])
        turn.noise.append(("vague_opening", agenda.noise["vague_opening"]))
        return turn

    # -- reading the assistant ------------------------------------------------------------------

    def _read(self, agenda: Agenda, text: str) -> tuple[str, str | None]:
        lowered = text.lower().replace("\u2019", "'")
        if self._cue_done.search(lowered):
            return "done", None
        if self._cue_confirm.search(lowered):
            return "confirm", None
        asked = [name for name, cues in self._slot_cues if cues.search(lowered)]
        if asked:
            wanted = [s for s in asked if s in agenda.scenario.goal.slots]
            return "request", (wanted or asked)[0]
        if self._cue_not_understood.search(lowered):
            return "not_understood", None
        if self._cue_open.search(lowered):
            return "open", None
        return "other", None

    # -- acts -------------------------------------------------------------------------------------

    def _pending(self, agenda: Agenda) -> list[str]:
        return [s for s in agenda.scenario.goal.slots if s not in agenda.given]

    def _values(
        self, agenda: Agenda, names: list[str], builder: _Builder | None = None
    ) -> dict[str, tuple[str, str]]:
        """Canonical and spoken values of `names`; with a `builder`, a slot the user is to get wrong is
        said wrong once (and its span kept apart from the gold ones)."""
        goal = agenda.scenario.goal.slots
        out = {}
        for n in names:
            value = goal[n]
            if builder is not None and n in agenda.mistakes_left:
                value = agenda.mistakes_left.pop(n)
                builder.wrong[n] = value
                agenda.correction_due = n
            out[n] = (value, render_value(self.pack.slot(n), value, self.pack, agenda.rng))
        return out

    def _opening(self, agenda: Agenda) -> UserTurn:
        persona, intent = agenda.persona, self.pack.intent(agenda.intent)
        builder = _Builder()
        if agenda.rng.random() < agenda.behaviour.greets:
            greeting = agenda.rng.choice(self.pack.lexicon.greetings.get(persona.formality, [""]) or [""])
            if greeting:
                builder.add(greeting, {})
        complexity = agenda.scenario.goal.complexity
        if complexity is Complexity.TURN_INTO:
            builder.add(agenda.rng.choice(intent.plain_openings), {})
            agenda.stated_intent = True
            return self._finish(agenda, builder, ["inform_intent"])
        if complexity is Complexity.TWO_INTENTS:
            return self._two_intents(agenda, builder)
        acts: list[DialogueAct]
        forced = "vague_opening" in agenda.noise and bool(intent.vague_openings)
        if intent.vague_openings and (agenda.rng.random() < agenda.behaviour.vagueness or forced):
            builder.add(agenda.rng.choice(intent.vague_openings), {})
            acts = ["vague_intent"]
        else:
            self._add_opening(agenda, builder, intent.openings)
            acts = ["inform_intent"]
            for name in self._pending(agenda):
                if agenda.rng.random() < agenda.behaviour.volunteers:
                    self._add_answer(agenda, builder, name)
        if builder.slots:
            acts.append("inform")
        turn = self._finish(agenda, builder, acts)
        if forced:
            turn.noise.append(("vague_opening", agenda.noise["vague_opening"]))
        return turn

    def _add_opening(self, agenda: Agenda, builder: _Builder, openings: list[str], lead: str = "") -> None:
        """One of the goal's openings (after `lead`), with the values its placeholders volunteer."""
        template = agenda.rng.choice(openings)
        used = _PLACEHOLDER.findall(template)
        if lead:
            template = f"{lead} {_lower_first(template)}"
        values = self._values(agenda, used, builder)
        builder.add(template, values)
        agenda.given.update({n: values[n][0] for n in used})
        agenda.stated_intent = True

    def _state_intent(self, agenda: Agenda) -> UserTurn:
        intent = self.pack.intent(agenda.intent)
        builder = _Builder()
        self._add_opening(agenda, builder, intent.openings)
        acts: list[DialogueAct] = ["inform_intent", "inform"] if builder.slots else ["inform_intent"]
        return self._finish(agenda, builder, acts)

    def _two_intents(self, agenda: Agenda, builder: _Builder) -> UserTurn:
        """Two requests in one message: the goal's and, before or after it, an everyday one."""
        goal = agenda.scenario.goal
        assert goal.also is not None
        other = agenda.rng.choice(self.pack.intent(goal.also).plain_openings)
        lead = agenda.rng.choice(self.pack.lexicon.also_leads)
        openings = self.pack.intent(goal.intent).openings
        if goal.also_first:
            builder.add(other, {})
            self._add_opening(agenda, builder, openings, lead)
        else:
            self._add_opening(agenda, builder, openings)
            builder.add(f"{lead} {_lower_first(other)}", {})
        acts: list[DialogueAct] = ["inform_intent", "inform"] if builder.slots else ["inform_intent"]
        return self._finish(agenda, builder, acts)

    def _pivot(self, agenda: Agenda) -> UserTurn:
        """`turn_into`: the user drops its first request for the real, critical problem."""
        agenda.pivoted = True
        builder = _Builder()
        builder.add(agenda.rng.choice(self.pack.lexicon.pivots), {})
        self._add_opening(agenda, builder, self.pack.intent(agenda.intent).openings)
        acts: list[DialogueAct] = ["inform_intent", "inform"] if builder.slots else ["inform_intent"]
        return self._finish(agenda, builder, acts)

    def _correct_own_mistake(self, agenda: Agenda) -> UserTurn:
        """`correction`: the user takes back the wrong value it gave in its last message."""
        name = agenda.correction_due
        assert name is not None
        agenda.correction_due = None
        agenda.given[name] = agenda.scenario.goal.slots[name]
        builder = _Builder()
        template = agenda.rng.choice(self.pack.lexicon.corrections)
        builder.add(template, self._values(agenda, [name]), value_slot=name)
        return self._finish(agenda, builder, ["correct", "inform"])

    def _add_answer(self, agenda: Agenda, builder: _Builder, name: str) -> None:
        slot = self.pack.slot(name)
        answers = slot.answers
        if agenda.persona.verbosity is Verbosity.TERSE and "{value}" in answers:
            template = "{value}"
        else:
            template = agenda.rng.choice(answers)
        values = self._values(agenda, [name], builder)
        builder.add(template, values, value_slot=name)
        agenda.given[name] = values[name][0]

    def _answer_only(self, agenda: Agenda, name: str) -> UserTurn:
        builder = _Builder()
        self._add_answer(agenda, builder, name)
        return self._finish(agenda, builder, ["inform"])

    def _answer(self, agenda: Agenda, name: str) -> UserTurn:
        builder = _Builder()
        self._add_answer(agenda, builder, name)
        for other in self._pending(agenda):
            if agenda.rng.random() < agenda.behaviour.volunteers / 2:
                self._add_answer(agenda, builder, other)
        return self._finish(agenda, builder, ["inform"])

    def _confirm(self, agenda: Agenda, text: str) -> UserTurn:
        for name, value in agenda.given.items():
            seen = mentions(self.pack.slot(name), text, self.pack)
            if seen and value not in seen:
                builder = _Builder()
                builder.add(agenda.rng.choice(self.pack.lexicon.negate), {})
                template = agenda.rng.choice(self.pack.lexicon.corrections)
                builder.add(template, self._values(agenda, [name]), value_slot=name)
                return self._finish(agenda, builder, ["negate", "correct"])
        return self._say(agenda, ["affirm"], self.pack.lexicon.affirm)

    def _restate(self, agenda: Agenda, *, dont_know: bool) -> UserTurn:
        intent = self.pack.intent(agenda.intent)
        builder = _Builder()
        acts: list[DialogueAct] = []
        if dont_know:
            builder.add(agenda.rng.choice(self.pack.lexicon.dont_know), {})
            acts.append("dont_know")
        builder.add(agenda.rng.choice(intent.restatements), {})
        acts.append("restate")
        agenda.stated_intent = True
        return self._finish(agenda, builder, acts)

    def _lose_patience(self, agenda: Agenda) -> UserTurn | None:
        """Count one unhelpful assistant turn; the message to send instead, if patience says so."""
        agenda.patience -= 1
        if agenda.patience <= 0:
            return self._say(agenda, ["give_up"], self.pack.lexicon.give_up)
        if (
            agenda.patience == 1
            and not agenda.asked_for_human
            and agenda.rng.random() < agenda.behaviour.asks_for_human
        ):
            agenda.asked_for_human = True
            return self._say(agenda, ["request_human"], self.pack.lexicon.request_human)
        return None

    def _say(self, agenda: Agenda, acts: list[DialogueAct], phrases: list[str]) -> UserTurn:
        builder = _Builder()
        builder.add(agenda.rng.choice(phrases), {})
        return self._finish(agenda, builder, acts)

    def _finish(self, agenda: Agenda, builder: _Builder, acts: list[DialogueAct]) -> UserTurn:
        text = builder.text
        if agenda.rng.random() < agenda.behaviour.lowercase:
            lowered = text.lower()
            if len(lowered) == len(text):  # keeps every span valid
                text = lowered
        return UserTurn(
            text=text, intent=agenda.intent, acts=acts, slots=builder.slots, retracted=builder.retracted
        )


def _lower_first(text: str) -> str:
    """ "What's my balance?" after "and also": lower-case the first letter unless it starts a name or "I"."""
    if text[:1].isupper() and text[1:2].islower():
        return text[0].lower() + text[1:]
    return text
