"""Surface perturbations: how a message is typed or transcribed, not what it says.

Four registered perturbations change the look of a user message while its meaning and its gold slot
values stay put:

- `casing`: capitals and punctuation people skip on a phone.
- `chatspeak`: chat abbreviations ("u", "pls", "idk").
- `homophone`: words swapped for ones that sound the same, as a typist or a speech recogniser does.
- `fragments`: one message sent as several.

The word lists live in `data/surface.yaml` so that they can grow without touching code. Every change
goes through `Utterance.replace` or `Utterance.split_at`, so the gold spans follow the text. Slot
characters are never rewritten, with one exception: when a whole message is lower-cased, the slot values
are lower-cased too, because a person who types in lower case types names and postcodes that way, and
`normalize_value` lower-cases before it compares, so the gold values still hold.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._data import load_data
from ._perturb import NoiseContext, Utterance, register

_SHARE = {1: 0.3, 2: 0.6, 3: 1.0}
"""Share of the eligible words `chatspeak` and `homophone` change at each intensity."""

_APOSTROPHE = "['\u2019]"
_WORD_EDGE_BEFORE = r"(?<![\w'\u2019])"
_WORD_EDGE_AFTER = r"(?![\w'\u2019])"

# (start, end, new text, edit kind, whether the span is inside a slot value)
_Plan = tuple[int, int, str, str, bool]


# --------------------------------------------------------------------------------------------------
# Word lists


@functools.cache
def _data() -> dict[str, Any]:
    """The word lists, read once: every perturbation call would otherwise parse the same file again."""
    data: dict[str, Any] = load_data("surface.yaml")
    _check_strings(data, "surface.yaml")
    return data


def _check_strings(node: object, where: str) -> None:
    """Every word in the lists is a string: an unquoted `no` would otherwise arrive as `False`.

    Raises:
        ValueError: a key or a word is not a string.
    """
    if isinstance(node, dict):
        for key, value in node.items():
            if not isinstance(key, str):
                raise ValueError(f"{where}: key {key!r} is not a string (quote it)")
            _check_strings(value, f"{where}: {key}")
    elif isinstance(node, list):
        for item in node:
            _check_strings(item, where)
    elif not isinstance(node, str):
        raise ValueError(f"{where}: {node!r} is not a string (quote it)")


def _normal(phrase: str, *, drop_apostrophes: bool) -> str:
    """The lookup form of a word or phrase: lower case, straight apostrophes, single spaces."""
    out = " ".join(phrase.lower().replace("\u2019", "'").split())
    return out.replace("'", "") if drop_apostrophes else out


@dataclass(frozen=True)
class _Lexicon:
    """Words and phrases to look for, each with what it may become.

    Matching is whole-word (a key never matches inside a longer word, nor across an apostrophe, so
    "you" matches neither "youth" nor "you're") and longest-first, so a phrase wins over its words.
    """

    pattern: re.Pattern[str]
    options: Mapping[str, tuple[str, ...]]
    """Lookup form of a key -> its replacements."""
    drop_apostrophes: bool
    """Whether an apostrophe in a key is optional in the text."""

    @classmethod
    def build(cls, table: Mapping[str, Sequence[str]], *, drop_apostrophes: bool) -> _Lexicon:
        """A lexicon from `key -> replacements`.

        Raises:
            ValueError: two keys read the same once apostrophes are optional, or a key has no replacement.
        """
        options: dict[str, tuple[str, ...]] = {}
        for key, replacements in table.items():
            norm = _normal(key, drop_apostrophes=drop_apostrophes)
            if norm in options:
                raise ValueError(f"surface word list: {key!r} collides with another key")
            choices = tuple(
                dict.fromkeys(
                    r
                    for r in replacements
                    if _normal(r, drop_apostrophes=False) != _normal(key, drop_apostrophes=False)
                )
            )
            if not choices:
                raise ValueError(f"surface word list: {key!r} has nothing to become")
            options[norm] = choices
        alternatives = sorted(
            (_key_regex(k, optional_apostrophe=drop_apostrophes) for k in table), key=lambda r: (-len(r), r)
        )
        pattern = re.compile(
            _WORD_EDGE_BEFORE + "(?:" + "|".join(alternatives) + ")" + _WORD_EDGE_AFTER, re.IGNORECASE
        )
        return cls(pattern=pattern, options=options, drop_apostrophes=drop_apostrophes)

    def find(self, utt: Utterance) -> list[tuple[int, int, tuple[str, ...]]]:
        """Occurrences outside every slot value, in text order, with their replacements."""
        found = []
        for m in self.pattern.finditer(utt.text):
            if utt.protected(m.start(), m.end()):
                continue
            options = self.options.get(_normal(m.group(), drop_apostrophes=self.drop_apostrophes))
            if options:
                found.append((m.start(), m.end(), options))
        return found


def _key_regex(key: str, *, optional_apostrophe: bool) -> str:
    """The regex for one key: any run of spaces between its words, either kind of apostrophe."""
    apostrophe = _APOSTROPHE + ("?" if optional_apostrophe else "")
    words = []
    for word in key.split():
        parts = [re.escape(p) for p in word.replace("\u2019", "'").split("'")]
        words.append(apostrophe.join(parts))
    return r"\s+".join(words)


@functools.cache
def _chatspeak_lexicon() -> _Lexicon:
    """Apostrophes are optional: "dont know" abbreviates like "don't know"."""
    table: dict[str, list[str]] = _data()["chatspeak"]
    return _Lexicon.build(table, drop_apostrophes=True)


@functools.cache
def _homophone_lexicon(voice: bool) -> _Lexicon:
    """Typed channels get the spelling confusions; the voice channel also gets what a recogniser mishears."""
    lists: dict[str, Any] = _data()["homophone"]
    sets: list[list[str]] = list(lists["spelling"])
    if voice:
        sets += lists["spoken"]
    table: dict[str, list[str]] = {}
    for group in sets:
        for word in group:
            others = table.setdefault(_normal(word, drop_apostrophes=False), [])
            others += [w for w in group if w != word and w not in others]
    if voice:
        for word, heard in lists["misheard"].items():
            table.setdefault(_normal(word, drop_apostrophes=False), []).extend(heard)
    return _Lexicon.build(table, drop_apostrophes=False)


# --------------------------------------------------------------------------------------------------
# Shared helpers


def _at_sentence_start(text: str, offset: int) -> bool:
    before = text[:offset].rstrip()
    return not before or before[-1] in ".!?"


def _match_case(before: str, new: str, *, sentence_start: bool) -> str:
    """`new` in the case `before` was typed in: capitals stay capitals, a sentence keeps its capital.

    A capital mid-sentence is dropped on purpose: it is usually "I" ("I don't know" -> "idk"), and an
    abbreviation typed mid-sentence is lower case.
    """
    letters = [c for c in before if c.isalpha()]
    if len(letters) > 1 and all(c.isupper() for c in letters):
        return new.upper()
    if before[:1].isupper() and sentence_start:
        return new[:1].upper() + new[1:]
    return new


def _swap(
    utt: Utterance,
    rng: random.Random,
    intensity: int,
    lexicon: _Lexicon,
    *,
    perturbation: str,
    kind: str,
    lower: bool = False,
) -> Utterance:
    """Replace a share of the lexicon's occurrences (at least one when there is any)."""
    found = lexicon.find(utt)
    if not found:
        return utt
    count = max(1, round(_SHARE[intensity] * len(found)))
    chosen = sorted(rng.sample(found, count), key=lambda f: f[0], reverse=True)
    for start, end, options in chosen:  # right to left: earlier offsets stay valid
        before = utt.text[start:end]
        new = _match_case(before, rng.choice(options), sentence_start=_at_sentence_start(utt.text, start))
        if lower:
            new = new.lower()
        if new != before:
            utt = utt.replace(start, end, new, perturbation=perturbation, kind=kind, intensity=intensity)
    return utt


def _apply(utt: Utterance, plan: Sequence[_Plan], *, perturbation: str, intensity: int) -> Utterance:
    """Carry out non-overlapping planned edits, right to left so that each plan's offsets still hold.

    Edits inside a slot value only ever lower-case it (same length, same normalised value), so they pass
    the unchanged slots explicitly.
    """
    for start, end, new, kind, in_slot in sorted(plan, key=lambda p: p[0], reverse=True):
        utt = utt.replace(
            start,
            end,
            new,
            perturbation=perturbation,
            kind=kind,
            intensity=intensity,
            slots=utt.slots if in_slot else None,
        )
    return utt


_LETTERS = re.compile(r"[^\W\d_]+")


def _lowercase_plan(utt: Utterance) -> list[_Plan]:
    """Lower-case every letter, slot values included, one edit per run of letters that has a capital.

    A run is cut at slot edges so that an edit is either wholly inside a slot value or wholly outside.
    A character whose lower case is longer ("İ") is left alone: slot spans must not move.
    """
    edges = sorted({0, len(utt.text), *(p for s in utt.slots for p in (s.start, s.end))})
    plan: list[_Plan] = []
    for m in _LETTERS.finditer(utt.text):
        cuts = [m.start(), *(e for e in edges if m.start() < e < m.end()), m.end()]
        for a, b in itertools.pairwise(cuts):
            before = utt.text[a:b]
            after = "".join(c.lower() if len(c.lower()) == 1 else c for c in before)
            if after != before:
                plan.append((a, b, after, "casing", utt.protected(a, b)))
    return plan


def _punctuation_plan(utt: Utterance, marks: str) -> list[_Plan]:
    """Drop runs of `marks` that end a word (followed by a space or the end), outside slot values.

    A space typed before the mark goes with it ("thanks ." -> "thanks"), so no double or trailing spaces
    are left. Marks that start the text, or sit inside a token ("3.5", "e.g"), stay.
    """
    plan: list[_Plan] = []
    text = utt.text
    for m in re.finditer(f"[{re.escape(marks)}]+", text):
        start, end = m.span()
        if end < len(text) and not text[end].isspace():
            continue
        lead = len(text[:start]) - len(text[:start].rstrip())
        if lead == start:  # nothing but space before it
            continue
        if not utt.protected(start - lead, end):
            plan.append((start - lead, end, "", "punctuation", False))
    return plan


_INNER_APOSTROPHE = re.compile(r"(?<=[^\W\d_])['\u2019](?=[^\W\d_])|(?<=[sS])['\u2019](?=\s|$)")


def _apostrophe_plan(utt: Utterance) -> list[_Plan]:
    """Drop apostrophes in words ("don't" -> "dont", "parents'" -> "parents"), outside slot values."""
    return [
        (m.start(), m.end(), "", "punctuation", False)
        for m in _INNER_APOSTROPHE.finditer(utt.text)
        if not utt.protected(*m.span())
    ]


_SENTENCE_MARKS = ".,!;:\u2026"


# --------------------------------------------------------------------------------------------------
# casing


@register(
    "casing",
    "Capitals and punctuation left out, as typed quickly on a phone (1: first capital and final stop; "
    "2: all lower case, most punctuation gone; 3: apostrophes and question marks too).",
)
def casing(utt: Utterance, rng: random.Random, intensity: int, ctx: NoiseContext) -> Utterance:
    """Casing and punctuation loss; deterministic, so `rng` is not drawn from.

    Intensity 1 lower-cases the message's first letter and drops a final full stop; 2 lower-cases
    everything (slot values too, see the module docstring) and drops full stops, commas, exclamation
    marks, colons and semicolons that end a word; 3 also drops question marks and apostrophes ("dont",
    "im"). Apostrophes and punctuation inside slot values ("£45.50", "Sainsbury's") always stay.
    """
    del rng, ctx
    plan: list[_Plan] = []
    if intensity == 1:
        plan += _first_letter_plan(utt)
        plan += _final_stop_plan(utt)
    else:
        plan += _lowercase_plan(utt)
        plan += _punctuation_plan(utt, _SENTENCE_MARKS + ("?" if intensity >= 3 else ""))
        if intensity >= 3:
            plan += _apostrophe_plan(utt)
    return _apply(utt, plan, perturbation="casing", intensity=intensity)


def _first_letter_plan(utt: Utterance) -> list[_Plan]:
    """The first letter lower-cased, unless it is in a slot value or starts a word in capitals ("BT")."""
    m = _LETTERS.search(utt.text)
    if m is None or utt.protected(m.start(), m.start() + 1):
        return []
    word = m.group()
    first = word[0]
    if not first.isupper() or len(first.lower()) != 1 or (len(word) > 1 and word.isupper()):
        return []
    return [(m.start(), m.start() + 1, first.lower(), "casing", False)]


def _final_stop_plan(utt: Utterance) -> list[_Plan]:
    """The last full stop, when the message ends with one (an ellipsis is a choice, not a habit)."""
    body = utt.text.rstrip()
    if not body.endswith(".") or body.endswith("..") or len(body) < 2 or body[-2].isspace():
        return []
    at = len(body) - 1
    return [] if utt.protected(at, at + 1) else [(at, at + 1, "", "punctuation", False)]


# --------------------------------------------------------------------------------------------------
# chatspeak


@register(
    "chatspeak",
    "Chat abbreviations such as u, pls, thx, idk and tbh (about 30%, 60%, all of the words that have one).",
)
def chatspeak(utt: Utterance, rng: random.Random, intensity: int, ctx: NoiseContext) -> Utterance:
    """Words and phrases from the `chatspeak` list replaced by an abbreviation.

    Intensity is the share of eligible occurrences replaced: about 30%, 60% and all of them (at least
    one when there is any). Whole words only, never inside a slot value; the case follows the word it
    replaces (see `_match_case`).
    """
    del ctx
    return _swap(utt, rng, intensity, _chatspeak_lexicon(), perturbation="chatspeak", kind="chatspeak")


# --------------------------------------------------------------------------------------------------
# homophone


@register(
    "homophone",
    "Words swapped for ones that sound alike (their/there; on voice also four/for, a count/account); "
    "from intensity 2 a voice turn reads like a raw transcript.",
)
def homophone(utt: Utterance, rng: random.Random, intensity: int, ctx: NoiseContext) -> Utterance:
    """Words swapped for homophones, as a speech recogniser or a hurried typist writes them.

    On a typed channel only spelling confusions people really make are used ("their"/"there",
    "your"/"you're"); on the `voice` channel also number words ("for"/"four"), homophones nobody
    misspells ("hour"/"our") and one-way mishearings ("account" -> "a count"). Intensity is the share of
    candidate words swapped: about 30%, 60% and all of them (at least one when there is any). From
    intensity 2, a voice turn also reads like a raw transcript: lower case, no punctuation outside slot
    values except apostrophes in words, which recognisers write.
    """
    voice = ctx.channel == "voice"
    transcript = voice and intensity >= 2
    utt = _swap(
        utt,
        rng,
        intensity,
        _homophone_lexicon(voice),
        perturbation="homophone",
        kind="homophone",
        lower=transcript,
    )
    if not transcript:
        return utt
    # Swapped words are already in lower case, so the transcript edits never overlap them and every
    # edit still says what the text holds.
    plan = _lowercase_plan(utt) + _punctuation_plan(utt, _SENTENCE_MARKS + "?")
    return _apply(utt, plan, perturbation="homophone", intensity=intensity)


# --------------------------------------------------------------------------------------------------
# fragments

_PIECES = {1: (2,), 2: (2, 3), 3: (3, 4)}
"""How many messages a turn becomes at each intensity (one of these, drawn)."""
_CLAUSE_WORDS = frozenset(
    {"and", "but", "so", "because", "cos", "coz", "cuz", "bc", "or", "then", "though", "also", "plus"}
)
_CLAUSE_END = tuple(",.;:!?\u2026")
_MAX_COMBINATIONS = 2000


@dataclass(frozen=True)
class _Gap:
    offset: int
    """Where the break goes: the start of the word after the space, not the end of the word before.
    `Utterance.messages` gives an edit that sits exactly at a cut to the message after it; cutting after
    the space keeps a mark dropped from the end of the word before with the message it was dropped from."""
    clause: bool
    """Whether it is a clause boundary (after , . ? ! ; : or before a conjunction)."""


@register(
    "fragments",
    "One message sent as several, split at clause boundaries (2, 2-3, 3-4 messages where the text allows).",
)
def fragments(utt: Utterance, rng: random.Random, intensity: int, ctx: NoiseContext) -> Utterance:
    """The turn sent as several messages, as people do who hit send after every clause.

    Intensity 1 makes 2 messages, 2 makes 2 or 3, and 3 makes 3 or 4, as many as the text allows with
    at least two words in each: a message of one word is rarely sent on its own, so a short turn gets
    fewer messages rather than one-word ones. Only a turn too short for two such messages is cut into
    shorter pieces ("card" / "7437"), and a one-word message stays whole. Breaks go between words,
    never inside a slot value; clause boundaries (after a comma or a sentence, before "and", "but",
    "so", "because", ...) are preferred. A turn that already has breaks gets only what it needs to
    reach the drawn number.
    """
    del ctx
    text = utt.text
    tokens = [m.span() for m in re.finditer(r"\S+", text)]
    current = len(utt.messages())
    needed = rng.choice(_PIECES[intensity]) - current
    if len(tokens) < 2 or needed <= 0:
        return utt
    gaps = [
        _Gap(offset=nxt, clause=_is_clause_gap(text[start:end], text[nxt:nxt_end]))
        for (start, end), (nxt, nxt_end) in itertools.pairwise(tokens)
        if not utt.protected(nxt, nxt) and not any(end <= b <= nxt for b in utt.breaks)
    ]
    starts = [s for s, _ in tokens]
    for count in range(min(needed, len(gaps)), 0, -1):
        chosen, fewest_words = _best_breaks(utt, _pool(gaps, count, rng), count, starts, rng)
        if fewest_words >= 2 or (count == 1 and current == 1):
            return utt.split_at((g.offset for g in chosen), perturbation="fragments", intensity=intensity)
    return utt


def _best_breaks(
    utt: Utterance, pool: Sequence[_Gap], count: int, starts: Sequence[int], rng: random.Random
) -> tuple[tuple[_Gap, ...], int]:
    """`count` gaps from `pool`, and the fewest words a message then has.

    Messages of two words or more come first, then the number of clause boundaries; ties are drawn.
    """
    best: list[tuple[_Gap, ...]] = []
    best_score = (-1, -1)
    for combo in itertools.combinations(pool, count):
        cuts = [0, *sorted({*utt.breaks, *(g.offset for g in combo)}), len(utt.text)]
        fewest = min(
            bisect.bisect_left(starts, b) - bisect.bisect_left(starts, a) for a, b in itertools.pairwise(cuts)
        )
        score = (min(fewest, 2), sum(g.clause for g in combo))
        if score > best_score:
            best, best_score = [combo], score
        elif score == best_score:
            best.append(combo)
    return rng.choice(best), best_score[0]


def _is_clause_gap(before: str, after: str) -> bool:
    word = after.lower().strip("\"'()[]")
    return before.rstrip("\"')]").endswith(_CLAUSE_END) or word in _CLAUSE_WORDS


def _pool(gaps: list[_Gap], needed: int, rng: random.Random) -> list[_Gap]:
    """The gaps to search, cut down (clause boundaries kept first) when a long turn has too many."""
    if math.comb(len(gaps), needed) <= _MAX_COMBINATIONS:
        return gaps
    clause = [g for g in gaps if g.clause]
    plain = [g for g in gaps if not g.clause]
    rng.shuffle(clause)
    rng.shuffle(plain)
    size = len(gaps)
    while size > needed and math.comb(size, needed) > _MAX_COMBINATIONS:
        size -= 1
    return sorted((clause + plain)[:size], key=lambda g: g.offset)
