"""The default simulated user: an agenda (goal, slots still to give, patience) realised as words.

No model is involved. The user reads the assistant's last message for a few cues (a question about a slot,
a summary to confirm, "anything else?", "I didn't understand"), picks its next act from its agenda and says
it with the pack's templates, in its persona's voice. Every slot value it says is recorded with its
character span, so gold labels are exact by construction.

State goes in and comes out explicitly: `AgendaUser` holds only the pack; everything about one dialogue is
in its `Agenda`, which the caller keeps.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from botdrill.scenarios import (
    Formality,
    Pack,
    Persona,
    Scenario,
    Verbosity,
    dialogue_rng,
    mentions,
    render_value,
)

from ._types import DialogueAct, GoldSlot, UserTurn

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


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

    @property
    def persona(self) -> Persona:
        return self.scenario.persona


def _any_of(cues: list[str]) -> re.Pattern[str]:
    """A pattern that finds any of `cues` as a plain substring (nothing in a cue is a regex)."""
    return re.compile("|".join(re.escape(c.lower()) for c in sorted(cues, key=len, reverse=True)))


class _Builder:
    """Accumulates sentences and records where each slot value lands in the final text."""

    def __init__(self) -> None:
        self.text = ""
        self.slots: list[GoldSlot] = []

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
            self.slots.append(GoldSlot(slot=slot, value=canonical, start=start, end=len(self.text)))


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

    def start(self, scenario: Scenario) -> Agenda:
        """A fresh agenda for `scenario`."""
        return Agenda(
            scenario=scenario,
            rng=dialogue_rng(scenario.seed, scenario.index, "user"),
            patience=scenario.persona.patience,
        )

    def next_turn(self, agenda: Agenda, assistant_text: str | None) -> UserTurn:
        """The user's next message, given the assistant's last one (`None` before the first)."""
        agenda.turns += 1
        if assistant_text is None:
            return self._opening(agenda)
        kind, slot = self._read(agenda, assistant_text)
        if kind == "done":
            return self._say(agenda, ["goodbye"], self.pack.lexicon.goodbye)
        if kind == "confirm":
            return self._confirm(agenda, assistant_text)
        if kind == "request" and slot is not None:
            if slot in agenda.scenario.goal.slots:
                if slot in agenda.given and (early := self._lose_patience(agenda)):
                    return early
                return self._answer(agenda, slot)
            return self._lose_patience(agenda) or self._restate(agenda, dont_know=True)
        if kind == "open" and not agenda.stated_intent:
            return self._state_intent(agenda)
        early = self._lose_patience(agenda)
        if early:
            return early
        pending = self._pending(agenda)
        if kind == "other" and pending:
            return self._answer(agenda, pending[0])
        return self._restate(agenda, dont_know=False)

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

    def _values(self, agenda: Agenda, names: list[str]) -> dict[str, tuple[str, str]]:
        goal = agenda.scenario.goal.slots
        return {n: (goal[n], render_value(self.pack.slot(n), goal[n], self.pack, agenda.rng)) for n in names}

    def _opening(self, agenda: Agenda) -> UserTurn:
        persona, intent = agenda.persona, self.pack.intent(agenda.scenario.goal.intent)
        builder = _Builder()
        if persona.verbosity is Verbosity.VERBOSE or (
            persona.verbosity is Verbosity.NORMAL and agenda.rng.random() < 0.3
        ):
            greeting = agenda.rng.choice(self.pack.lexicon.greetings.get(persona.formality, [""]) or [""])
            if greeting:
                builder.add(greeting, {})
        acts: list[DialogueAct]
        if intent.vague_openings and agenda.rng.random() < persona.vagueness:
            builder.add(agenda.rng.choice(intent.vague_openings), {})
            acts = ["vague_intent"]
        else:
            template = agenda.rng.choice(intent.openings)
            used = _PLACEHOLDER.findall(template)
            builder.add(template, self._values(agenda, used))
            agenda.given.update({n: agenda.scenario.goal.slots[n] for n in used})
            agenda.stated_intent = True
            acts = ["inform_intent"]
            for name in self._pending(agenda):
                if agenda.rng.random() < persona.volunteers:
                    self._add_answer(agenda, builder, name)
        if builder.slots:
            acts.append("inform")
        return self._finish(agenda, builder, acts)

    def _state_intent(self, agenda: Agenda) -> UserTurn:
        intent = self.pack.intent(agenda.scenario.goal.intent)
        builder = _Builder()
        template = agenda.rng.choice(intent.openings)
        used = _PLACEHOLDER.findall(template)
        builder.add(template, self._values(agenda, used))
        agenda.given.update({n: agenda.scenario.goal.slots[n] for n in used})
        agenda.stated_intent = True
        return self._finish(agenda, builder, ["inform_intent", "inform"] if used else ["inform_intent"])

    def _add_answer(self, agenda: Agenda, builder: _Builder, name: str) -> None:
        slot = self.pack.slot(name)
        answers = slot.answers
        if agenda.persona.verbosity is Verbosity.TERSE and "{value}" in answers:
            template = "{value}"
        else:
            template = agenda.rng.choice(answers)
        values = self._values(agenda, [name])
        builder.add(template, values, value_slot=name)
        agenda.given[name] = agenda.scenario.goal.slots[name]

    def _answer(self, agenda: Agenda, name: str) -> UserTurn:
        builder = _Builder()
        self._add_answer(agenda, builder, name)
        for other in self._pending(agenda):
            if agenda.rng.random() < agenda.persona.volunteers / 2:
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
        intent = self.pack.intent(agenda.scenario.goal.intent)
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
            and agenda.rng.random() < agenda.persona.asks_for_human
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
        if agenda.persona.formality is Formality.CASUAL and agenda.rng.random() < 0.5:
            lowered = text.lower()
            if len(lowered) == len(text):  # keeps every span valid
                text = lowered
        return UserTurn(text=text, intent=agenda.scenario.goal.intent, acts=acts, slots=builder.slots)
