"""Perturbations: named, seeded, composable edits that make a clean user message sound like a person.

A perturbation takes an `Utterance` (text, gold slot spans, gold acts, the edits made so far and where the
text splits into separate messages), a random stream, an intensity 0-3 and a `NoiseContext`, and returns a
new `Utterance`. All text changes go through `Utterance.replace`, which moves every gold span, every earlier
edit and every message break with the text, and refuses to touch a gold slot's characters unless the caller
says how the slots change. That is what keeps gold labels exact after any chain of perturbations.

Intensity 0 is always the identity; 1-3 mean "a little", "clearly", "a lot", and each perturbation's
docstring says in what unit.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import Literal

from botdrill.scenarios import Pack

from ._types import DialogueAct, GoldSlot

_WORD = re.compile(r"[A-Za-z][A-Za-z']*")


@dataclass
class EditSelection:
    """Which of a turn's edits happen, by the order the chain attempts them (0, 1, 2...).

    Failure shrinking re-runs a dialogue with some edits left out: an edit that is not kept never
    happens (its `replace` or break is a no-op), so the text is what it would have been without it. Edits
    are identified by position because a perturbation attempts them in a seeded, repeatable order.
    """

    keep: Callable[[int], bool] = field(default=lambda j: True)
    attempted: int = 0
    """Edits attempted so far in the turn, kept or not."""

    def allow(self) -> bool:
        """Number the next attempted edit; whether it happens."""
        j = self.attempted
        self.attempted += 1
        return self.keep(j)


_SELECTION: ContextVar[EditSelection | None] = ContextVar("botdrill_edit_selection", default=None)


@dataclass(frozen=True)
class Edit:
    """One change a perturbation made, located in the final text of its message."""

    perturbation: str
    """Name of the perturbation that made it."""
    kind: str
    """What kind of edit: `filler`, `repetition`, `typo.keyboard`, `typo.misspelling`, ..."""
    start: int
    """Offset of the changed text in the final message (or in the whole turn before it is split)."""
    end: int
    """One past its end; `start == end` for a deletion."""
    before: str
    """The text the edit replaced (empty for an insertion)."""
    after: str
    """The text it put there (empty for a deletion)."""
    intensity: int
    """The intensity the perturbation ran at."""


@dataclass(frozen=True)
class Utterance:
    """A user turn on its way through a chain of perturbations.

    `breaks` are offsets at which the turn is sent as separate messages (fragments); offsets, slot spans
    and edit spans are all in the coordinates of the whole `text`.
    """

    text: str
    intent: str
    acts: tuple[DialogueAct, ...] = ()
    slots: tuple[GoldSlot, ...] = ()
    edits: tuple[Edit, ...] = ()
    breaks: tuple[int, ...] = ()

    def protected(self, start: int, end: int) -> bool:
        """Whether `[start, end)` overlaps a gold slot's characters (or touches one, for an insertion)."""
        for s in self.slots:
            if start == end:
                if s.start < start < s.end:
                    return True
            elif start < s.end and s.start < end:
                return True
        return False

    def free_words(self) -> list[tuple[int, int]]:
        """Spans of the words that are not part of a gold slot value (safe to garble)."""
        return [(m.start(), m.end()) for m in _WORD.finditer(self.text) if not self.protected(*m.span())]

    def replace(
        self,
        start: int,
        end: int,
        new: str,
        *,
        perturbation: str,
        kind: str,
        intensity: int,
        slots: Sequence[GoldSlot] | None = None,
    ) -> Utterance:
        """`text[start:end]` becomes `new`, with every span moved to match and the edit recorded.

        Args:
            slots: the gold slots after the edit, in new-text coordinates, for a perturbation that changes
                slot values by design. Without it the edit must not touch a slot's characters.

        Raises:
            ValueError: the edit would touch a gold slot value and no new slots were given.
        """
        if not 0 <= start <= end <= len(self.text):
            raise ValueError(f"edit [{start}, {end}) is outside a text of {len(self.text)} characters")
        selection = _SELECTION.get()
        if selection is not None and not selection.allow():
            return self
        delta = len(new) - (end - start)
        if slots is None:
            if self.protected(start, end):
                raise ValueError(f"{perturbation}: edit [{start}, {end}) would change a gold slot value")
            slots = [
                s if s.end <= start else s.model_copy(update={"start": s.start + delta, "end": s.end + delta})
                for s in self.slots
            ]
        edits = [_move_edit(e, start, end, delta) for e in self.edits]
        edits.append(
            Edit(
                perturbation=perturbation,
                kind=kind,
                start=start,
                end=start + len(new),
                before=self.text[start:end],
                after=new,
                intensity=intensity,
            )
        )
        breaks = sorted({_move_point(b, start, end, delta) for b in self.breaks})
        return replace(
            self,
            text=self.text[:start] + new + self.text[end:],
            slots=tuple(slots),
            edits=tuple(edits),
            breaks=tuple(b for b in breaks if 0 < b < len(self.text) + delta),
        )

    def split_at(self, offsets: Iterable[int], *, perturbation: str, intensity: int) -> Utterance:
        """The same text sent as several messages, split at `offsets` (each outside every slot value)."""
        selection = _SELECTION.get()
        wanted = sorted({o for o in offsets if 0 < o < len(self.text) and o not in self.breaks})
        if selection is not None:
            wanted = [o for o in wanted if selection.allow()]
        new = sorted(set(self.breaks) | set(wanted))
        for o in new:
            if self.protected(o, o):
                raise ValueError(f"{perturbation}: a break at {o} would split a gold slot value")
        added = [o for o in new if o not in self.breaks]
        edits = self.edits + tuple(
            Edit(
                perturbation=perturbation,
                kind="break",
                start=o,
                end=o,
                before="",
                after="",
                intensity=intensity,
            )
            for o in added
        )
        return replace(self, breaks=tuple(new), edits=edits)

    def messages(self) -> list[Fragment]:
        """The turn as the messages the user sends, each with its own slots and edits rebased to it.

        Whitespace around a break is dropped; a piece that would be empty is merged into its neighbour.
        """
        if not self.breaks and self.text.strip() == self.text and self.text:
            return [Fragment(text=self.text, slots=self.slots, edits=self.edits)]  # the common case
        cuts = [0, *self.breaks, len(self.text)]
        out: list[Fragment] = []
        for a, b in pairwise(cuts):
            piece = self.text[a:b]
            lead = len(piece) - len(piece.lstrip())
            body = piece.strip()
            if not body:
                continue
            lo, hi = a + lead, a + lead + len(body)
            out.append(
                Fragment(
                    text=body,
                    slots=tuple(
                        s.model_copy(update={"start": s.start - lo, "end": s.end - lo})
                        for s in self.slots
                        if lo <= s.start and s.end <= hi
                    ),
                    edits=tuple(
                        _clip(e, lo, hi, body)
                        for e in self.edits
                        if a <= e.start < b
                        or (e.start == e.end == b == len(self.text))
                        or e.start < a < e.end
                    ),
                )
            )
        if not out:
            out.append(Fragment(text=self.text.strip(), slots=(), edits=self.edits))
        return out


def _clip(edit: Edit, lo: int, hi: int, body: str) -> Edit:
    """An edit rebased to the message `[lo, hi)` it falls in; one that a break cuts keeps, as `after`, the
    part this message holds, so its span still says what the edit put there."""
    start, end = min(max(edit.start, lo), hi) - lo, min(max(edit.end, lo), hi) - lo
    cut = (end - start) != (edit.end - edit.start)
    return replace(edit, start=start, end=end, after=body[start:end] if cut else edit.after)


@dataclass(frozen=True)
class Fragment:
    """One message of a (possibly fragmented) user turn, with spans rebased to its own text."""

    text: str
    slots: tuple[GoldSlot, ...]
    edits: tuple[Edit, ...]


def _move_point(p: int, start: int, end: int, delta: int) -> int:
    if p <= start:
        return p
    if p >= end:
        return p + delta
    return start  # a break inside replaced text moves to its start


def _move_edit(e: Edit, start: int, end: int, delta: int) -> Edit:
    """An earlier edit's span after `[start, end)` was replaced by text `delta` characters longer."""
    if e.end <= start:  # wholly before (an insertion where an edit ends goes after it)
        return e
    if e.start >= end:
        return replace(e, start=e.start + delta, end=e.end + delta)
    # Overlap or containment: the old edit now covers the union of both.
    return replace(e, start=min(e.start, start), end=max(e.end + delta, end + delta, start))


@dataclass(frozen=True)
class NoiseContext:
    """What perturbations may draw on besides the text itself.

    Args:
        pack: the scenario pack (slot specs for plausible wrong values, the lexicon). `None` when
            perturbing text that is not from a dialogue, as the fidelity benchmark does.
        distractors: words a restart or a correction may use for the thing the user first said by mistake.
        channel: the persona's channel (`mobile_chat`, `desktop_chat`, `voice`).
    """

    pack: Pack | None = None
    distractors: Sequence[str] = ()
    channel: str = "mobile_chat"


PerturbFn = Callable[[Utterance, random.Random, int, NoiseContext], Utterance]
Level = Literal["text", "dialogue"]


@dataclass(frozen=True)
class PerturbationSpec:
    """A registered perturbation."""

    name: str
    level: Level
    """`text`: edits a user message; `dialogue`: changes what the user does (the user simulator and the
    clock read it), so its edits are recorded where it acts."""
    description: str
    fn: PerturbFn | None = field(default=None, compare=False)

    def __call__(self, utt: Utterance, rng: random.Random, intensity: int, ctx: NoiseContext) -> Utterance:
        if not 0 <= intensity <= 3:
            raise ValueError(f"{self.name}: intensity must be 0-3, got {intensity}")
        if intensity == 0 or self.fn is None:
            return utt
        return self.fn(utt, rng, intensity, ctx)


_REGISTRY: dict[str, PerturbationSpec] = {}


def register(name: str, description: str, *, level: Level = "text") -> Callable[[PerturbFn], PerturbFn]:
    """Class-free registration: `@register("filler", "...")` on a perturbation function."""

    def wrap(fn: PerturbFn) -> PerturbFn:
        if name in _REGISTRY:
            raise ValueError(f"perturbation {name!r} is registered twice")
        _REGISTRY[name] = PerturbationSpec(name=name, level=level, description=description, fn=fn)
        return fn

    return wrap


def register_dialogue(name: str, description: str) -> None:
    """A dialogue-level perturbation: acted out by the user simulator and the clock, not a text edit."""
    if name in _REGISTRY:
        raise ValueError(f"perturbation {name!r} is registered twice")
    _REGISTRY[name] = PerturbationSpec(name=name, level="dialogue", description=description)


def perturbations() -> dict[str, PerturbationSpec]:
    """Every registered perturbation by name, in registration order."""
    _load_builtins()
    return dict(_REGISTRY)


def get_perturbation(name: str) -> PerturbationSpec:
    """The perturbation called `name`.

    Raises:
        KeyError: no such perturbation (the message lists the known ones).
    """
    _load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown perturbation {name!r}; known: {', '.join(_REGISTRY)}") from None


def apply_chain(
    utt: Utterance,
    chain: Sequence[tuple[str, int]],
    rng_for: Callable[[str], random.Random],
    ctx: NoiseContext,
    selection: EditSelection | None = None,
) -> Utterance:
    """Apply text perturbations in order; dialogue-level ones in `chain` are skipped here.

    Args:
        chain: `(name, intensity)` pairs.
        rng_for: the random stream for a perturbation name, so adding one perturbation to a chain does
            not change what the others do.
        selection: which attempted edits happen (all when not given); it counts the attempts.
    """
    token = _SELECTION.set(selection)
    try:
        for name, intensity in chain:
            spec = get_perturbation(name)
            if spec.level == "text":
                utt = spec(utt, rng_for(name), intensity, ctx)
    finally:
        _SELECTION.reset(token)
    return utt


def _load_builtins() -> None:
    """Import the modules whose `@register` decorators fill the registry."""
    from . import _dialogue_noise, _disfluency, _surface, _typos  # noqa: F401
