"""The `typo` perturbation: keyboard slips and real misspellings, in the proportions people make them.

Each misspelt word gets one edit type, drawn from a mix fitted to real misspellings (`data/typos.yaml`,
written by `python -m bench.calibrate_typos`): a missing letter, an extra one, a wrong one, two letters
swapped, or several of these at once. Within a type the edit is drawn the way people err: a vowel for a
vowel or a sound-alike letter (cognitive slips), a doubled or undoubled letter, or a key next to the
intended one on a QWERTY keyboard (motor slips, twice as frequent on a phone). When the word has a
listed real misspelling of the drawn type ("recieved", "seperate"), that is used most of the time.

Drawing the type and mode first and checking every result with `edit_mode` keeps the generated mix equal
to the fitted one by construction, whatever the words; `bench/_fidelity_typos.py` measures it. A slip that
would make a profanity or a slur ("where" -> "whore") is drawn again.

Slot values keep their exact characters: only words outside them (`Utterance.free_words`) are edited.
"""

from __future__ import annotations

import functools
import hashlib
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

from ._data import load_data
from ._perturb import NoiseContext, Utterance, register

EditType = Literal["omission", "insertion", "substitution", "transposition", "multi"]
"""How a misspelling differs from its word: one Damerau edit of a kind, or more than one (`multi`)."""

Edge = Literal["first", "middle", "last"]
"""Where in a word an edit falls."""

EDIT_TYPES: tuple[EditType, ...] = get_args(EditType)
SINGLE_EDITS: tuple[EditType, ...] = EDIT_TYPES[:4]

MODES: dict[EditType, tuple[str, ...]] = {
    "substitution": ("vowel", "sound", "keyboard", "other"),
    "insertion": ("double", "vowel", "keyboard", "other"),
    "omission": ("double", "vowel", "other"),
}
"""How a single edit of each type came about, in the order `edit_mode` tests them (first match wins)."""

VOWELS = frozenset("aeiouy")
"""Letters that stand for vowel sounds; `y` counts, since people swap it with `i` ("tipical")."""
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_K = TypeVar("_K")


def edit_type(correct: str, wrong: str) -> EditType | None:
    """The kind of edit that turns `correct` into `wrong`, ignoring letter case.

    Case is ignored because lists of misspellings (and people) are inconsistent about capitals, which
    are not what a spelling error is about. `None` when the two are the same word.

    Example:
        >>> edit_type("until", "untill"), edit_type("received", "recieved"), edit_type("succeed", "seceed")
        ('insertion', 'transposition', 'multi')
    """
    return _edit(correct.lower(), wrong.lower())[0]


def edit_mode(correct: str, wrong: str, model: TypoModel | None = None) -> tuple[EditType | None, str | None]:
    """`edit_type` and, for a substitution, insertion or omission, how it came about (see `MODES`).

    The mode tells cognitive errors (a vowel for a vowel, a sound-alike consonant, a doubled or undoubled
    letter) from motor ones (a neighbouring key); calibration counts modes with exactly this function,
    and `misspell` checks its own edits with it. `model` gives the keyboard and the sound-alikes (the
    shipped ones by default).
    """
    m = model or load_model()
    c, w = correct.lower(), wrong.lower()
    kind, at = _edit(c, w)
    if kind == "substitution":
        a, b = c[at], w[at]
        if a in VOWELS and b in VOWELS:
            return kind, "vowel"
        if b in m.sound_alikes.get(a, {}):
            return kind, "sound"
        return kind, "keyboard" if b in m.neighbours.get(a, "") else "other"
    if kind == "insertion":
        x, around = w[at], w[at - 1 : at] + w[at + 1 : at + 2]
        if x in around:
            return kind, "double"
        if x in VOWELS:
            return kind, "vowel"
        return kind, "keyboard" if any(x in m.neighbours.get(n, "") for n in around) else "other"
    if kind == "omission":
        x, around = c[at], c[at - 1 : at] + c[at + 1 : at + 2]
        return kind, "double" if x in around else "vowel" if x in VOWELS else "other"
    return kind, None


def _edit(c: str, w: str) -> tuple[EditType | None, int]:
    """Edit type and the offset it happens at (in `w` for an insertion, in `c` otherwise)."""
    if c == w:
        return None, -1
    if len(w) == len(c) - 1:
        for i in range(len(c)):
            if c[:i] + c[i + 1 :] == w:
                return "omission", i
    elif len(w) == len(c) + 1:
        for i in range(len(w)):
            if w[:i] + w[i + 1 :] == c:
                return "insertion", i
    elif len(w) == len(c):
        diff = [i for i in range(len(c)) if c[i] != w[i]]
        if len(diff) == 1:
            return "substitution", diff[0]
        if (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and c[diff[0]] == w[diff[1]]
            and c[diff[1]] == w[diff[0]]
        ):
            return "transposition", diff[0]
    return "multi", -1


@dataclass(frozen=True)
class WordEdit:
    """One change inside a word: `word[start:end]` becomes `new`."""

    start: int
    end: int
    new: str
    kind: str
    """`typo.<edit type>` for a generated edit, `typo.misspelling` for a listed real misspelling."""


@dataclass(frozen=True)
class Misspelling:
    """A misspelt word and how it was made."""

    word: str
    wrong: str
    edit_type: EditType
    edits: tuple[WordEdit, ...]
    """Non-overlapping changes in `word` coordinates, left to right, with an unchanged letter between."""
    listed: bool
    """Whether `wrong` came from the list of real misspellings rather than from edit operations."""


@dataclass(frozen=True)
class TypoModel:
    """Everything `misspell` draws from; `load_model` builds it from `data/typos.yaml`."""

    edit_types: Mapping[EditType, float]
    modes: Mapping[EditType, Mapping[str, float]]
    rates: Mapping[str, tuple[float, float, float]]
    """Share of eligible words misspelt at intensity 1, 2, 3, per channel."""
    keyboard_boost: Mapping[str, float]
    """Factor on the weight of neighbour-key modes, per channel (thumbs on glass slip more)."""
    short_word_weight: float
    edges: Mapping[EditType, Mapping[Edge, float]]
    """Per edit type, the weight of a word's first and last letter against 1 for a middle one."""
    doubled_letters: Mapping[str, float]
    """Letters people double or undouble by mistake, with relative weights."""
    use_listed: float
    neighbours: Mapping[str, str]
    vowel_swaps: Mapping[str, Mapping[str, float]]
    sound_alikes: Mapping[str, Mapping[str, float]]
    inserted_vowels: Mapping[str, float]
    inserted_consonants: Mapping[str, float]
    misspellings: Mapping[str, tuple[str, ...]]
    never_produce: frozenset[str]
    """Words no slip may produce (profanities and slurs), as the first 16 hex digits of their SHA-256."""


def keyboard_neighbours(rows: Sequence[str], offsets: Sequence[float]) -> dict[str, str]:
    """Keys that touch each key on a staggered keyboard.

    Two keys touch when they sit side by side in a row, or in adjacent rows less than one key width apart
    horizontally (rows are shifted right by `offsets`, in key widths).
    """
    where = {k: (r, i + offsets[r]) for r, row in enumerate(rows) for i, k in enumerate(row)}
    return {
        k: "".join(
            o
            for o, (r2, x2) in where.items()
            if o != k and ((r2 == r and abs(x2 - x) == 1) or (abs(r2 - r) == 1 and abs(x2 - x) < 1))
        )
        for k, (r, x) in where.items()
    }


def model_from_config(config: Mapping[str, Any]) -> TypoModel:
    """A `TypoModel` from the parsed `typos.yaml`."""
    fitted, kb = config["fitted"], config["keyboard"]
    return TypoModel(
        edit_types={t: float(fitted["edit_types"][t]) for t in EDIT_TYPES},
        modes={t: {m: float(fitted["modes"][t][m]) for m in ms} for t, ms in MODES.items()},
        rates={ch: (float(r[0]), float(r[1]), float(r[2])) for ch, r in config["rates"].items()},
        keyboard_boost={ch: float(v) for ch, v in config["keyboard_boost"].items()},
        short_word_weight=float(config["short_word_weight"]),
        edges={t: {e: float(w) for e, w in fitted["edges"][t].items()} for t in SINGLE_EDITS},
        doubled_letters=config["doubled_letters"],
        use_listed=float(config["use_listed"]),
        neighbours=keyboard_neighbours(kb["rows"], kb["offsets"]),
        vowel_swaps=config["vowel_swaps"],
        sound_alikes=config["sound_alikes"],
        inserted_vowels=config["inserted_vowels"],
        inserted_consonants=config["inserted_consonants"],
        misspellings={k.lower(): tuple(v) for k, v in config["misspellings"].items()},
        never_produce=frozenset(str(h) for h in config["never_produce"]),
    )


def load_config() -> dict[str, Any]:
    """The shipped `typos.yaml`, parsed."""
    config: dict[str, Any] = load_data("typos.yaml")
    return config


@functools.cache
def load_model() -> TypoModel:
    """The shipped typo model (parsed once per process)."""
    return model_from_config(load_config())


def misspell(
    word: str,
    rng: random.Random,
    *,
    channel: str = "desktop_chat",
    model: TypoModel | None = None,
) -> Misspelling | None:
    """`word` misspelt once, with an edit type drawn from the fitted mix.

    Args:
        channel: decides how often the slip is a neighbouring key rather than a cognitive error.

    Returns:
        `None` for a word with fewer than two letters (there is no telling a slip in it from another
        word), or in the unlikely case that no drawn edit reads as the edit type drawn.
    """
    m = model or load_model()
    if sum(ch.isalpha() for ch in word) < 2:
        return None
    boost = m.keyboard_boost.get(channel, 1.0)
    for _ in range(8):
        kind = _pick(rng, m.edit_types)
        listed = [
            w
            for w in m.misspellings.get(word.lower(), ())
            if edit_type(word, w) == kind and not _offensive(w, m)
        ]
        if listed and _simple_case(word) and rng.random() < m.use_listed:
            wrong = _match_case(word, rng.choice(listed))
            edit = WordEdit(0, len(word), wrong, "typo.misspelling")
            return Misspelling(word, wrong, kind, (edit,), listed=True)
        for _ in range(8):
            drawn = _draw(word, kind, rng, m, boost)
            if drawn is None:
                break
            edits, mode = drawn
            wrong = _apply(word, edits)
            # A drawn edit can read as another (a vowel added beside the same vowel is a doubling):
            # keeping only those that read as drawn keeps the generated mix the fitted one.
            if edit_mode(word, wrong, m) == (kind, mode) and not _offensive(wrong, m):
                return Misspelling(word, wrong, kind, edits, listed=False)
    return None


def _draw(
    word: str, kind: EditType, rng: random.Random, m: TypoModel, boost: float
) -> tuple[tuple[WordEdit, ...], str | None] | None:
    """Edits of type `kind` in `word` and their mode, or `None` when the word has no room for them."""
    if kind != "multi":
        one = _single(word, kind, rng, m, boost)
        return None if one is None else ((one[0],), one[1])
    if sum(ch.isalpha() for ch in word) < 3:  # two edits in "my" make a new word, not a misspelt one
        return None
    singles = {t: m.edit_types[t] for t in SINGLE_EDITS}
    for _ in range(8):
        one = _single(word, _pick(rng, singles), rng, m, boost)
        two = _single(word, _pick(rng, singles), rng, m, boost)
        if one is None or two is None:
            continue
        a, b = sorted((one[0], two[0]), key=lambda e: (e.start, e.end))
        if a.end < b.start:  # an unchanged letter between keeps each edit readable on its own
            return (a, b), None
    return None


def _single(
    word: str, kind: EditType, rng: random.Random, m: TypoModel, boost: float
) -> tuple[WordEdit, str | None] | None:
    """One edit of a single-edit type, its mode drawn from the fitted shares among those the word allows.

    Offsets are weighted by the fitted `edges` (people seldom get a word's first or last letter wrong)
    and, for a doubled or undoubled letter, by how readily that letter is doubled.
    """
    low, n, tag = word.lower(), len(word), f"typo.{kind}"
    letters = [i for i in range(n) if low[i] in _LETTERS]

    def edge(i: int) -> float:
        return m.edges[kind].get(position(kind, i, n), 1.0)

    def doubling(i: int) -> float:
        return edge(i) * m.doubled_letters.get(low[i], 0.0)

    if kind == "transposition":
        pairs = [i for i in letters if i + 1 < n and low[i + 1] in _LETTERS and low[i] != low[i + 1]]
        if not pairs:
            return None
        i = _pick_at(rng, pairs, edge)
        swapped = word[i + 1] + word[i]
        if word[i].isupper() != word[i + 1].isupper():  # "The" -> "Hte", not "hTe"
            swapped = swapped.swapcase()
        return WordEdit(i, i + 2, swapped, tag), None

    if kind == "omission":
        pair = {i for i in letters if low[i] == low[i + 1 : i + 2]}
        in_pair = pair | {i + 1 for i in pair}
        where: dict[str, list[int]] = {
            "double": [i for i in pair if low[i] in m.doubled_letters],
            "vowel": [i for i in letters if low[i] in VOWELS and i not in in_pair],
            "other": [i for i in range(n) if low[i] not in VOWELS and i not in in_pair],
        }
        mode = _pick_mode(rng, m.modes[kind], where, boost)
        if mode is None:
            return None
        i = _pick_at(rng, where[mode], doubling if mode == "double" else edge)
        if i == 0 and _capitalised(word):  # "Received" -> "Eceived": the shift key goes with the first key
            return WordEdit(0, 2, word[1].upper(), tag), mode
        return WordEdit(i, i + 1, "", tag), mode

    if kind == "substitution":
        options: dict[tuple[str, int], Mapping[str, float]] = {}
        for i in letters:
            c = low[i]
            options["vowel", i] = m.vowel_swaps.get(c, {})
            options["sound", i] = m.sound_alikes.get(c, {})
            options["keyboard", i] = dict.fromkeys(m.neighbours.get(c, ""), 1.0)
            options["other", i] = dict.fromkeys(_LETTERS.replace(c, ""), 1.0)
        where = {md: [i for i in letters if options[md, i]] for md in MODES[kind]}
        mode = _pick_mode(rng, m.modes[kind], where, boost)
        if mode is None:
            return None
        i = _pick_at(rng, where[mode], edge)
        new = _pick(rng, options[mode, i])
        return WordEdit(i, i + 1, new.upper() if word[i].isupper() else new, tag), mode

    # insertion: the new letter goes before offset `at` (`n`: after the last letter)
    def around(at: int) -> str:
        return "".join(ch for ch in low[max(0, at - 1) : at + 1] if ch in _LETTERS)

    spots = list(range(n + 1))
    where = {
        "double": [i for i in letters if low[i] in m.doubled_letters],  # a copy of `word[i]` before it
        "vowel": spots,
        "keyboard": [at for at in spots if any(m.neighbours.get(ch) for ch in around(at))],
        "other": spots,
    }
    mode = _pick_mode(rng, m.modes[kind], where, boost)
    if mode is None:
        return None
    at = _pick_at(rng, where[mode], doubling if mode == "double" else edge)
    if mode == "double":
        new = low[at]
    elif mode == "vowel":
        new = _pick(rng, m.inserted_vowels)
    elif mode == "keyboard":
        new = rng.choice("".join(m.neighbours.get(ch, "") for ch in around(at)))
    else:
        new = _pick(rng, m.inserted_consonants)
    if at == 0 and _capitalised(word):  # "Received" -> "Rreceived", with the capital first
        return WordEdit(0, 1, new.upper() + word[0].lower(), tag), mode
    left, right = word[at - 1 : at], word[at : at + 1]
    upper = (left or right).isupper() and (right or left).isupper()
    return WordEdit(at, at, new.upper() if upper else new, tag), mode


def position(kind: EditType, at: int, n: int) -> Edge:
    """Whether an edit of `kind` at offset `at` of an `n`-letter word is at its first, middle or last letter.

    `at` is the offset `_edit` reports: of the new letter for an insertion, of the first of the two
    letters for a transposition.
    """
    last = {"insertion": n, "transposition": n - 2}.get(kind, n - 1)
    return "first" if at == 0 else "last" if at == last else "middle"


def _pick_mode(
    rng: random.Random, shares: Mapping[str, float], where: Mapping[str, Sequence[int]], boost: float
) -> str | None:
    """A mode by its fitted share (neighbour keys scaled by `boost`) among those with somewhere to go."""
    weights = {k: v * (boost if k == "keyboard" else 1.0) for k, v in shares.items() if where.get(k)}
    return _pick(rng, weights) if weights else None


def _pick_at(rng: random.Random, offsets: Sequence[int], weight: Callable[[int], float]) -> int:
    return rng.choices(offsets, weights=[weight(i) for i in offsets])[0]


def _pick(rng: random.Random, weights: Mapping[_K, float]) -> _K:
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]


def _apply(word: str, edits: Sequence[WordEdit]) -> str:
    for e in sorted(edits, key=lambda e: e.start, reverse=True):
        word = word[: e.start] + e.new + word[e.end :]
    return word


def _offensive(word: str, m: TypoModel) -> bool:
    return hashlib.sha256(word.lower().encode()).hexdigest()[:16] in m.never_produce


def _simple_case(word: str) -> bool:
    return word.islower() or word.isupper() or (word[:1].isupper() and word[1:].islower())


def _capitalised(word: str) -> bool:
    return word[:1].isupper() and not word.isupper()


def _match_case(model_word: str, new: str) -> str:
    """`new` in the casing of `model_word` (lower, Capitalised or UPPER)."""
    if model_word.isupper() and len(model_word) > 1:
        return new.upper()
    if model_word[:1].isupper():
        return new[:1].upper() + new[1:]
    return new


@register(
    "typo",
    "Misspells words outside slot values: neighbour-key slips and real misspellings in the fitted mix of "
    "edit types (about 4%, 10%, 20% of words; more on mobile, fewer on desktop, none by voice).",
)
def typo(utt: Utterance, rng: random.Random, intensity: int, ctx: NoiseContext) -> Utterance:
    """Misspell a share of the free words (`rates` in `typos.yaml`, by channel), at least one.

    Words of two letters are rarely touched (`short_word_weight`) and single letters never: a slip in
    "I" or "a" reads as another word, not a typo. A voice transcript has no typing errors, so on the
    voice channel the utterance comes back as it was.
    """
    channel = str(ctx.channel)
    if channel == "voice":
        return utt
    m = load_model()
    rate = m.rates.get(channel, m.rates["mobile_chat"])[intensity - 1]
    words = [(s, e) for s, e in utt.free_words() if sum(ch.isalpha() for ch in utt.text[s:e]) >= 2]
    weights = [1.0 if e - s > 2 else m.short_word_weight for s, e in words]
    chosen = [w for w, wt in zip(words, weights, strict=True) if rng.random() < rate * wt]
    if not chosen and words:
        chosen = rng.choices(words, weights=weights)
    for s, e in sorted(chosen, reverse=True):  # right to left: offsets of words still to edit stay valid
        wrong = misspell(utt.text[s:e], rng, channel=channel, model=m)
        for edit in reversed(wrong.edits if wrong else ()):
            utt = utt.replace(
                s + edit.start,
                s + edit.end,
                edit.new,
                perturbation="typo",
                kind=edit.kind,
                intensity=intensity,
            )
    return utt


def read_misspellings(path: Path) -> list[tuple[str, str]]:
    """`(correct, wrong)` pairs from a list in Roger Mitton's format.

    Each correct word is on a line of its own after a `$`, followed by its misspellings one a line; `_`
    stands for a space. The files are latin-1.
    """
    pairs: list[tuple[str, str]] = []
    correct = ""
    for line in path.read_text(encoding="latin-1").splitlines():
        line = line.strip().replace("_", " ")
        if line.startswith("$"):
            correct = line[1:]
        elif line and correct:
            pairs.append((correct, line))
    return pairs


def fit(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """The `fitted` part of `typos.yaml` from real `(correct, wrong)` pairs.

    `edges` compare how often each type of edit falls on a word's first and last letter with how often it
    would if every offset were equally likely, relative to the same ratio for middle letters. Identical
    pairs are no misspelling and are dropped. Figures are rounded to 4 decimals so that the written file
    is stable and readable.
    """
    types: Counter[EditType] = Counter()
    modes: dict[EditType, Counter[str]] = {t: Counter() for t in MODES}
    seen: dict[EditType, Counter[Edge]] = {t: Counter() for t in SINGLE_EDITS}
    uniform: dict[EditType, dict[Edge, float]] = {t: dict.fromkeys(get_args(Edge), 0.0) for t in SINGLE_EDITS}
    for correct, wrong in pairs:
        kind, mode = edit_mode(correct, wrong)
        if kind is None:
            continue
        types[kind] += 1
        if mode is not None:
            modes[kind][mode] += 1
        if kind != "multi":
            n, at = len(correct), _edit(correct.lower(), wrong.lower())[1]
            seen[kind][position(kind, at, n)] += 1
            offsets = n + 1 if kind == "insertion" else n - 1 if kind == "transposition" else n
            for i in range(offsets):
                uniform[kind][position(kind, i, n)] += 1 / offsets

    def ratio(t: EditType, e: Edge) -> float:
        return seen[t][e] / uniform[t][e] if uniform[t][e] else 0.0

    total = sum(types.values())
    return {
        "pairs": total,
        "edit_types": {t: round(types[t] / total, 4) for t in EDIT_TYPES},
        "modes": {t: {md: round(c[md] / max(1, types[t]), 4) for md in MODES[t]} for t, c in modes.items()},
        "edges": {
            t: {e: round(ratio(t, e) / ratio(t, "middle"), 4) for e in ("first", "last")}
            for t in SINGLE_EDITS
        },
    }
