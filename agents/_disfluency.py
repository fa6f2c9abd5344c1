"""Disfluencies: fillers, repetitions, restarts and self-corrections, with the mix people produce.

People do not type or say a request in one clean go. They hesitate ("um"), repeat a word ("my my card"),
start one sentence and abandon it ("I lost my no wait, my card was stolen"), and give a wrong value before
the right one ("the 5th, no sorry, the 15th"). An assistant that reads the first value it sees, or that is
thrown by an editing phrase, fails on exactly the users who are most stressed.

The shares of each kind, the editing phrases ("no", "or rather", "I mean", "make that"...), the fillers and
the lengths of false starts are not guessed: `bench/calibrate_disfluency.py` fits them on Disfl-QA, human
rewrites of questions, and writes `data/disfluency.yaml`, which this module reads. The same rule that
types a human rewrite for the fit (`analyse_pair`) types botdrill's rewrites in the fidelity benchmark, so
"restart" or "correction" means the same thing on both sides.

Every change goes through `Utterance.replace`, so gold slot spans keep pointing at the value the user
finally meant; a self-correction of a slot value inserts the wrong value before the real one and leaves
the gold span on the real one.
"""

from __future__ import annotations

import datetime as dt
import difflib
import random
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from dataclasses import replace as dataclass_replace
from functools import cache, lru_cache
from typing import Any, TypeVar

from botdrill.scenarios import Pack, SlotType, generate_value, normalize_value, render_value

from ._data import load_data
from ._perturb import NoiseContext, Utterance, register
from ._types import GoldSlot

# -- lexicon: fixed word lists (what counts as a filler or an editing phrase); the shares are fitted --------

FILLER = re.compile(r"(?:u+h*m+|u+h+|e+r+m*|e+r*m+|a+h+|h+m+|m{2,}|u+g+h+|e+h+|o+h+|huh|ahem)")
"""Hesitation sounds (um, uhh, err, erm, ah, hmm, ugh, oh...), spelled with any number of letters."""

EDITING_PHRASES: tuple[str, ...] = (
    "i meant to say",
    "i mean to say",
    "i meant to ask",
    "what i meant was",
    "i'd like to know",
    "i want to know",
    "i wanted to know",
    "let me ask",
    "let me rephrase",
    "tell me",
    "change that to",
    "that should be",
    "not that but",
    "better yet",
    "scratch that",
    "make that",
    "never mind",
    "i'm sorry",
    "my bad",
    "hold on",
    "i mean",
    "i meant",
    "i guess",
    "i should say",
    "excuse me",
    "rather",
    "sorry",
    "actually",
    "instead",
    "wait",
    "oops",
    "oop",
    "no",
    "nope",
    "or",
    "well",
    "like",
    "correction",
)
"""Words that announce a repair, as a speaker uses them between the wrong words and the right ones."""


def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


_REQUESTS = frozenset({"tell me", "let me ask", "i want to know", "i'd like to know", "i wanted to know"})
"""Editing phrases that only make sense before a question ("no sorry, tell me when...")."""

_PHRASES = sorted((tuple(p.split()) for p in EDITING_PHRASES), key=len, reverse=True)

QUESTION_WORDS = _wordset(
    "what which when where who whom whose how why is are was were do does did can could will would should "
    "has have had"
)
"""Words a question starts with: a false start from another question begins with one of them."""

_I_WORDS = frozenset({"i", "i'm", "i've", "i'd", "i'll"})
_WH = ("what", "which", "when", "where", "who", "how", "why")

STOPWORDS = _wordset(
    """a an the and or but if of to in on at by for from with about as into onto over under than then so
    is are was were be been being am do does did done have has had having can could will would shall should
    may might must it its it's this that these those there here i i'm i've i'd me my mine we our us you your
    yours he him his she her they them their what which when where who whom whose how why not no yes just
    very too also only some any all each both more most much many few up down out off again once please
    thanks thank hi hello hey ok okay there's it's that's what's where's who's how's here's let's i'll you're
    we're they're you've we've they've can't don't didn't doesn't won't isn't wasn't aren't weren't haven't
    hasn't couldn't wouldn't shouldn't someone somebody something anyone anything everyone everything"""
)
"""Function words: a correction swaps a content word, never one of these."""

_DETERMINERS = _wordset("the a an my your his her their our its this that these those some any")
"""Words before a noun: the word after one is a likely thing to misname."""

_TOKEN = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)?")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9']*")
_WHOLE_WORD = re.compile(r"(?<![\w£$€.,/:'-])[A-Za-z0-9][A-Za-z0-9']*(?![\w£$€]|[.,/:'-]\w)")
"""A word that is not a piece of a larger token ("40" in "671.40", "mail" in "e-mail")."""


def is_filler(token: str) -> bool:
    """Whether a lower-case token is a hesitation sound."""
    return FILLER.fullmatch(token) is not None


# -- typing a (fluent, disfluent) pair -----------------------------------------------------------------------

DISFLUENCY_TYPES = ("restart", "correction", "filler", "repetition", "other", "none")
"""`restart`: the added words come first and the whole message follows them; `correction`: a repair
inside the message; `filler` / `repetition`: only hesitation sounds / only immediate repeats were added;
`other`: words were only removed or moved; `none`: the two are the same words."""


@dataclass(frozen=True)
class PairAnalysis:
    """What a disfluent rewrite added to its fluent original, read token by token."""

    type: str
    """One of `DISFLUENCY_TYPES`."""
    editing_term: str
    """The editing phrases of the first repair, fillers left out ("or rather", "no i mean"; "" if none)."""
    editing_phrases: tuple[str, ...]
    """The same, phrase by phrase (`("or", "rather")`, `("no", "i mean")`)."""
    interregnum: str
    """The same with each filler written `{F}`: the template a generator fills ("no {F} sorry")."""
    interregnum_units: tuple[str, ...]
    """That template phrase by phrase (`("no", "{F}", "sorry")`)."""
    interregnum_fillers: tuple[str, ...]
    """The fillers inside that interregnum."""
    fillers: tuple[str, ...]
    """Every filler the rewrite added."""
    reparandum: tuple[str, ...]
    """The words said by mistake before the interregnum of the first repair."""
    repair_prefix: tuple[str, ...]
    """Words between the interregnum and the resumed original ("my debit, no, *my* credit card")."""
    regions: int
    """Separate places where words were added."""
    comma_before: bool
    """A comma between the reparandum and the interregnum."""
    comma_after: bool
    """A comma between the interregnum and the repair."""
    restart_mode: str | None
    """For a restart: `same_start` (the false start begins like the message), `swap_first` (it is the
    message's opening with its first word changed) or `other` (it opens another question)."""
    lowercase_repair: bool | None
    """For a restart of a message that starts with a capital: whether the resumed message lost it."""


def _tokens(text: str) -> list[tuple[str, int, int]]:
    return [(m.group().lower(), m.start(), m.end()) for m in _TOKEN.finditer(text.replace("\u2019", "'"))]


_SOFT_FILLERS = ("you know", "like", "well")
"""Words that are fillers only in some places ("it was, like, 40"): counted as such when they are all a
rewrite added."""


def _soft_fillers(tokens: list[str]) -> list[str]:
    text = f" {' '.join(tokens)} "
    return [f for f in _SOFT_FILLERS for _ in range(text.count(f" {f} "))]


def _without_soft_fillers(tokens: list[str]) -> list[str]:
    text = f" {' '.join(tokens)} "
    for f in _SOFT_FILLERS:
        while f" {f} " in text:
            text = text.replace(f" {f} ", " ")
    return text.split()


def _collapse(tokens: list[str]) -> list[str]:
    """`tokens` with every immediately repeated 1-, 2- or 3-gram said once."""
    out = list(tokens)
    changed = True
    while changed:
        changed = False
        for n in (3, 2, 1):
            for i in range(len(out) - 2 * n + 1):
                if out[i : i + n] == out[i + n : i + 2 * n]:
                    del out[i + n : i + 2 * n]
                    changed = True
                    break
            if changed:
                break
    return out


def _is_typo_fix(op: tuple[str, int, int, int, int], a: list[str], b: list[str]) -> bool:
    """A one-for-one replacement of near-identical words: the rater fixed a typo, not a disfluency."""
    tag, i1, i2, j1, j2 = op
    if tag != "replace" or i2 - i1 != j2 - j1:
        return False
    return all(
        difflib.SequenceMatcher(None, x, y).ratio() >= 0.7 for x, y in zip(a[i1:i2], b[j1:j2], strict=True)
    )


def _units(tokens: Sequence[str]) -> list[tuple[int, int, str | None]]:
    """Greedy left-to-right split into editing phrases, fillers (`{F}`) and other words (`None`)."""
    out: list[tuple[int, int, str | None]] = []
    i = 0
    while i < len(tokens):
        if is_filler(tokens[i]):
            out.append((i, i + 1, "{F}"))
            i += 1
            continue
        for phrase in _PHRASES:
            if tuple(tokens[i : i + len(phrase)]) == phrase:
                out.append((i, i + len(phrase), " ".join(phrase)))
                i += len(phrase)
                break
        else:
            out.append((i, i + 1, None))
            i += 1
    return out


def _last_run(tokens: Sequence[str]) -> tuple[int, int, list[str]]:
    """The last run of editing phrases and fillers: `(start, end, units)`; empty at the end if none."""
    best: tuple[int, int, list[str]] | None = None
    run: list[tuple[int, int, str]] = []
    for start, end, unit in _units(tokens):
        if unit is None:
            if run:
                best = (run[0][0], run[-1][1], [u for _, _, u in run])
            run = []
        else:
            run.append((start, end, unit))
    if run:
        best = (run[0][0], run[-1][1], [u for _, _, u in run])
    return best or (len(tokens), len(tokens), [])


def analyse_pair(original: str, disfluent: str) -> PairAnalysis:
    """Read what `disfluent` added to `original` and type it.

    Tokens are compared lower-cased without punctuation, fillers set aside, so that a comma or a capital
    does not count as a disfluency. The first place where words were added (after dropping typo fixes)
    decides the type: at the very start, or before the whole original, it is a restart; anywhere else a
    correction. Deterministic, so botdrill's rewrites can be typed by the very rule that typed the humans'.
    """
    a = [t for t, _, _ in _tokens(original)]
    b_tok = _tokens(disfluent)
    b = [t for t, _, _ in b_tok]
    added_fillers = Counter(t for t in b if is_filler(t)) - Counter(t for t in a if is_filler(t))
    fillers = tuple(t for t in b if is_filler(t) and added_fillers[t] > 0)
    empty = PairAnalysis(
        type="none",
        editing_term="",
        editing_phrases=(),
        interregnum="",
        interregnum_units=(),
        interregnum_fillers=(),
        fillers=fillers,
        reparandum=(),
        repair_prefix=(),
        regions=0,
        comma_before=False,
        comma_after=False,
        restart_mode=None,
        lowercase_repair=None,
    )
    if a == b:
        return empty
    a_nf = [t for t in a if not is_filler(t)]
    b_keep = [i for i, t in enumerate(b) if not is_filler(t)]
    b_nf = [b[i] for i in b_keep]
    if a_nf == b_nf:
        return dataclass_replace(empty, type="filler" if fillers else "none")
    soft = Counter(_soft_fillers(b_nf)) - Counter(_soft_fillers(a_nf))
    if soft and _without_soft_fillers(a_nf) == _without_soft_fillers(b_nf):
        return dataclass_replace(empty, type="filler", fillers=fillers + tuple(soft.elements()))
    ops = difflib.SequenceMatcher(None, a_nf, b_nf, autojunk=False).get_opcodes()
    changes = [op for op in ops if op[0] != "equal" and not _is_typo_fix(op, a_nf, b_nf)]
    adding = [op for op in changes if op[4] > op[3]]
    if not adding:
        return dataclass_replace(empty, type="other" if changes else ("filler" if fillers else "none"))
    if _collapse(b_nf) == _collapse(a_nf):
        return dataclass_replace(empty, type="repetition", regions=len(adding))
    _, _, _, j1, j2 = adding[0]
    restart = j1 == 0 or (len(b_nf) > len(a_nf) and b_nf[-len(a_nf) :] == a_nf)
    # The region in full-token coordinates, with the fillers around and inside it.
    lo, hi = b_keep[j1], b_keep[j2 - 1] + 1
    while lo > 0 and is_filler(b[lo - 1]):
        lo -= 1
    while hi < len(b) and is_filler(b[hi]):
        hi += 1
    segment = b[lo:hi]
    run_start, run_end, units = _last_run(segment)
    reparandum = tuple(t for t in segment[:run_start] if not is_filler(t))
    repair_prefix = tuple(t for t in segment[run_end:] if not is_filler(t))
    comma_before = comma_after = False
    if units:
        first, last = lo + run_start, lo + run_end - 1
        if first > 0:
            comma_before = "," in disfluent[b_tok[first - 1][2] : b_tok[first][1]]
        if last + 1 < len(b_tok):
            comma_after = "," in disfluent[b_tok[last][2] : b_tok[last + 1][1]]
    mode: str | None = None
    lowercase: bool | None = None
    if restart:
        if reparandum and a and reparandum[0] == a[0]:
            mode = "same_start"
        elif len(reparandum) >= 2 and list(reparandum[1:]) == a[1 : len(reparandum)]:
            mode = "swap_first"
        else:
            mode = "other"
        lowercase = (
            _lowercased_repair(original, disfluent, b_tok, hi) if j1 == 0 and not repair_prefix else None
        )
    return PairAnalysis(
        type="restart" if restart else "correction",
        editing_term=" ".join(u for u in units if u != "{F}"),
        editing_phrases=tuple(u for u in units if u != "{F}"),
        interregnum=" ".join(units),
        interregnum_units=tuple(units),
        interregnum_fillers=tuple(t for t in segment[run_start:run_end] if is_filler(t)),
        fillers=fillers,
        reparandum=reparandum,
        repair_prefix=repair_prefix,
        regions=len(adding),
        comma_before=comma_before,
        comma_after=comma_after,
        restart_mode=mode,
        lowercase_repair=lowercase,
    )


def _lowercased_repair(
    original: str, disfluent: str, b_tok: list[tuple[str, int, int]], at: int
) -> bool | None:
    """Whether the resumed message at token `at` lost the capital its original had (None: cannot tell)."""
    o_tok = _tokens(original)
    if not o_tok or at >= len(b_tok):
        return None
    word = original[o_tok[0][1] : o_tok[0][2]]
    if not word[0].isupper() or word.isupper() or o_tok[0][0] in _I_WORDS:
        return None
    return disfluent[b_tok[at][1]].islower()


def classify_pair(original: str, disfluent: str) -> str:
    """The disfluency type of a rewrite: one of `DISFLUENCY_TYPES` (see `analyse_pair`)."""
    return analyse_pair(original, disfluent).type


# -- the fitted model --------------------------------------------------------------------------------


NO_INTERREGNUM = "(none)"
"""How the model file writes a repair with no editing phrase and no filler."""


@dataclass(frozen=True)
class DisfluencyModel:
    """The statistics the generators draw from, as fitted by `bench/calibrate_disfluency.py`."""

    types: dict[str, float]
    """Share of each disfluency type among human rewrites."""
    regions: dict[int, float]
    """Places with added words per rewrite (a restart or correction may be followed by further repairs)."""
    interregna: dict[str, float]
    """Interregnum templates ("or {F} sorry"; "" for a repair with no editing phrase) and their shares."""
    interregnum_fillers: dict[str, float]
    """Fillers said inside an interregnum ("uh sorry", "oh no")."""
    fillers: dict[str, float]
    """Fillers said on their own, between words."""
    comma_before: dict[str, float]
    """Probability of a comma before the interregnum, by its first phrase ("*": any other)."""
    comma_after: dict[str, float]
    """Probability of a comma after it, by its last phrase ("*": any other)."""
    restart_length: dict[int, float]
    """Words in a false start."""
    restart_modes: dict[str, float]
    """Where a false start comes from: `same_start`, `swap_first`, `other` (see `PairAnalysis`)."""
    restart_first_words: dict[str, float]
    """First words of false starts that swap the message's question word."""
    lowercase_repair: float
    """Probability that the message resumed after a false start loses its capital."""
    correction_length: dict[int, float]
    """Words said by mistake before a correction."""
    repeat_previous: float
    """Probability that the repair repeats the word before the corrected one ("my debit, no, my credit")."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DisfluencyModel:
        """Read the YAML document written by the calibration."""

        def shares(key: str) -> dict[str, float]:
            return {str(k): float(v) for k, v in data[key].items()}

        def counts(key: str) -> dict[int, float]:
            return {int(k): float(v) for k, v in data[key].items()}

        return cls(
            types=shares("types"),
            regions=counts("regions"),
            interregna={
                ("" if k in (None, "", NO_INTERREGNUM) else str(k)): float(v)
                for k, v in data["interregna"].items()
            },
            interregnum_fillers=shares("interregnum_fillers"),
            fillers=shares("fillers"),
            comma_before=shares("comma_before"),
            comma_after=shares("comma_after"),
            restart_length=counts("restart_length"),
            restart_modes=shares("restart_modes"),
            restart_first_words=shares("restart_first_words"),
            lowercase_repair=float(data["lowercase_repair"]),
            correction_length=counts("correction_length"),
            repeat_previous=float(data["repeat_previous"]),
        )


_K = TypeVar("_K")


@cache
def model() -> DisfluencyModel:
    """The shipped fitted model (`data/disfluency.yaml`), read once."""
    return DisfluencyModel.from_dict(load_data("disfluency.yaml"))


def _pick(rng: random.Random, shares: Mapping[_K, float]) -> _K:
    keys = list(shares)
    return rng.choices(keys, weights=[shares[k] for k in keys])[0]


# -- shared helpers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    text: str


def _word_spans(utt: Utterance, start: int = 0, *, avoid: str | None = None) -> list[_Span]:
    """Whole words (numbers included) outside every gold slot, from offset `start` on, and outside the
    edits of perturbation `avoid` or just after one (a correction does not correct what an earlier one
    said by mistake, nor the word an earlier one already corrected)."""
    taken = [(e.start, e.end) for e in utt.edits if e.perturbation == avoid]
    return [
        _Span(m.start(), m.end(), m.group())
        for m in _WHOLE_WORD.finditer(utt.text)
        if m.start() >= start
        and not utt.protected(m.start(), m.end())
        and not any(a < m.end() and m.start() <= b for a, b in taken)
    ]


def _is_content(word: str) -> bool:
    lowered = word.lower()
    lowered = lowered[:-2] if lowered.endswith("'s") else lowered
    return lowered not in STOPWORDS and (len(lowered) >= 3 or word.isdigit())


def _noun_like(words: Sequence[_Span], k: int) -> bool:
    """A content word that is probably a noun, a name or a number: the things people misname. Without a
    tagger: a number, a capitalised word inside the sentence, or a word after a determiner."""
    word = words[k].text
    if not _is_content(word):
        return False
    return word.isdigit() or (k > 0 and (word[0].isupper() or words[k - 1].text.lower() in _DETERMINERS))


@lru_cache(maxsize=4096)
def _ending(phrase: str) -> str:
    """The inflection a phrase ends with (-ing, -ed, -ly, -s): a stand-in for its part of speech."""
    last = phrase.split()[-1].lower() if phrase.split() else ""
    return next((e for e in ("ing", "ed", "ly", "s") if last.endswith(e) and len(last) > len(e) + 2), "")


def _keeps_capital(word: str) -> bool:
    """Words whose capital is not just sentence case: "I", "UK", "ATM"."""
    return word.lower() in _I_WORDS or (len(word) > 1 and word.isupper())


def _match_case(phrase: str, text: str) -> str:
    """`phrase` as it would open `text`: capitalised if the text starts with a capital, all lower-case
    if the user writes in lower case."""
    if not phrase:
        return phrase
    if text == text.lower():
        return phrase.lower()
    if text.lstrip()[:1].isupper():
        return phrase[0].upper() + phrase[1:]
    return phrase


def _spoken(word: str) -> str:
    """An editing-phrase word as written: "I", "I'm" with their capital."""
    return word[0].upper() + word[1:] if word in _I_WORDS else word


@lru_cache(maxsize=4)
def _templates(question: bool, required: bool) -> dict[str, float]:
    """The interregnum templates allowed for a repair (see `_interregnum`), filtered once per kind."""
    return {
        t: w
        for t, w in model().interregna.items()
        if (question or not any(r in t for r in _REQUESTS)) and (not required or t.replace("{F}", "").strip())
    } or {"no": 1.0}


def _interregnum(
    rng: random.Random, ctx: NoiseContext, *, question: bool, lowercase: bool, required: bool = False
) -> tuple[str, bool, bool]:
    """An interregnum drawn from the fitted templates: `(words, comma before, comma after)`.

    Templates that ask ("tell me", "I want to know") are kept for repairs that are questions; `required`
    keeps only those with an editing phrase, for a false start that would otherwise read as a mere
    repetition ("what is um what is").
    """
    m = model()
    template = _pick(rng, _templates(question, required))
    units = template_units(template)
    words = [
        _pick(rng, m.interregnum_fillers) if u == "{F}" else " ".join(map(_spoken, u.split())) for u in units
    ]
    phrase = " ".join(words)
    if lowercase:
        phrase = phrase.lower()
    punctuate = bool(units) and ctx.channel != "voice"
    comma_before = punctuate and rng.random() < m.comma_before.get(units[0], m.comma_before["*"])
    comma_after = punctuate and rng.random() < m.comma_after.get(units[-1], m.comma_after["*"])
    return phrase, comma_before, comma_after


def template_units(template: str) -> list[str]:
    """An interregnum template split into its phrases and `{F}` filler places."""
    tokens = template.split()
    units: list[str] = []
    i = 0
    while i < len(tokens):
        if tokens[i] == "{F}":
            units.append("{F}")
            i += 1
            continue
        unit = next(
            (p for p in _PHRASES if tuple(tokens[i : i + len(p)]) == p),
            (tokens[i],),
        )
        units.append(" ".join(unit))
        i += len(unit)
    return units


def _join(reparandum: str, interregnum: tuple[str, bool, bool]) -> str:
    """Reparandum, interregnum and the space before the repair, punctuated."""
    phrase, comma_before, comma_after = interregnum
    if not phrase:
        return reparandum + " "
    return f"{reparandum}{',' if comma_before else ''} {phrase}{',' if comma_after else ''} "


def _is_question(text: str) -> bool:
    words = _WORD.findall(text)
    return text.rstrip().endswith("?") or bool(words and words[0].lower() in QUESTION_WORDS)


@lru_cache(maxsize=64)
def _distractor_index(distractors: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """Each distinct distractor (blanks normalised) with its words as a padded lower-case key: computed
    once per distractor list, since the engine passes the same list for every message of a run."""
    seen: set[str] = set()
    out = []
    for d in distractors:
        d = " ".join(d.split())
        key = d.lower()
        if d and key not in seen:
            seen.add(key)
            out.append((d, f" {' '.join(_WORD.findall(key))} "))
    return tuple(out)


def _usable(ctx: NoiseContext, text: str) -> list[str]:
    """Distractors (blanks normalised, duplicates dropped) that the message does not already say."""
    said = f" {' '.join(_WORD.findall(text.lower()))} "
    return [d for d, words in _distractor_index(tuple(ctx.distractors)) if words not in said]


@lru_cache(maxsize=8192)
def _is_prefix_like(phrase: str) -> bool:
    """A distractor that opens a question or sentence ("when did the", "I want to") rather than a noun."""
    words = phrase.split()
    return len(words) >= 2 and (words[0].lower() in QUESTION_WORDS or words[0].lower() in _I_WORDS)


def _number_slip(number: str, rng: random.Random) -> str:
    """A different number of the same length, as a slip of memory would give ("2019" for "2016")."""
    for _ in range(20):
        digits = list(number)
        if len(digits) >= 4 and rng.random() < 0.7:
            digits[-2:] = f"{rng.randrange(100):02d}"
        else:
            i = rng.randrange(len(digits))
            digits[i] = str(rng.randrange(1 if i == 0 and len(digits) > 1 else 0, 10))
        slip = "".join(digits)
        if slip != number:
            return slip
    return str(int(number) + 1)


def _wrong_phrase(
    target: str, length: int, ctx: NoiseContext, text: str, rng: random.Random, previous: str = ""
) -> str | None:
    """What the user says by mistake for `target`: a number slip, or a distractor of the same shape
    (capital, inflection, length in words) that fits the article before it ("a debit", "an overdraft")."""
    if target.isdigit():
        return _number_slip(target, rng)
    pool = [d for d in _usable(ctx, text) if not _is_prefix_like(d) and d.lower() != target.lower()]
    if not pool:
        return None
    capital = target[:1].isupper()
    shaped = [d for d in pool if d[:1].isupper() == capital] or pool
    shaped = [d for d in shaped if _ending(d) == _ending(target)] or shaped
    if previous.lower() in ("a", "an"):
        shaped = [d for d in shaped if (d[0].lower() in "aeiou") == (previous.lower() == "an")] or shaped
    best = min(abs(len(d.split()) - length) for d in shaped)
    choice = rng.choice([d for d in shaped if abs(len(d.split()) - length) == best])
    return choice if capital or text != text.lower() else choice.lower()


# -- perturbations ------------------------------------------------------------------------------------------


def _fillers(utt: Utterance, rng: random.Random, intensity: int, ctx: NoiseContext, name: str) -> Utterance:
    """Insert fillers before words outside slot values (or at the start of the message)."""
    m = model()
    if not utt.text.strip():
        return utt
    words = _word_spans(utt)
    lead = len(utt.text) - len(utt.text.lstrip())
    positions = sorted({lead, *(w.start for w in words)})
    count = {1: 1, 2: 2, 3: rng.choice((3, 4))}[intensity] + (len(words) // 15) * (intensity - 1)
    chosen = sorted(rng.sample(positions, min(count, len(positions))), reverse=True)
    for pos in chosen:
        filler = _pick(rng, m.fillers)
        text = utt.text
        if pos == lead:
            first = _WORD.match(text, pos)
            lower_next = (
                first is not None
                and text[pos].isupper()
                and not _keeps_capital(first.group())
                and not utt.protected(pos, pos + 1)
            )
            comma = "" if ctx.channel == "voice" else ","
            new = _match_case(filler, text) + comma + " " + (text[pos].lower() if lower_next else "")
            utt = utt.replace(
                pos,
                pos + (1 if lower_next else 0),
                new,
                perturbation=name,
                kind="filler",
                intensity=intensity,
            )
        else:
            utt = utt.replace(pos, pos, filler + " ", perturbation=name, kind="filler", intensity=intensity)
    return utt


def _repetitions(
    utt: Utterance, rng: random.Random, intensity: int, ctx: NoiseContext, name: str
) -> Utterance:
    """Say a word (or two) twice in a row, preferring the short function words people stumble on, and
    never the last word before a full stop: people stumble going into a phrase, not out of it."""
    text = utt.text
    words = [
        w
        for w in _word_spans(utt, _message_start(utt, ctx))
        if w.end < len(text) and text[w.end] not in ".?!,;:"
    ]
    if not words:
        words = _word_spans(utt)
    if not words:
        return utt
    chosen: dict[int, tuple[_Span, _Span]] = {}
    for _ in range(intensity):
        free = [
            i for i in range(len(words)) if i not in chosen and i - 1 not in chosen and i + 1 not in chosen
        ]
        if not free:
            break
        weights = [3.0 if words[i].text.lower() in STOPWORDS else 1.0 for i in free]
        i = rng.choices(free, weights=weights)[0]
        last = words[i]
        nxt = words[i + 1] if i + 1 < len(words) else None
        if nxt is not None and rng.random() < 0.25 and utt.text[last.end : nxt.start] == " ":
            last = nxt
        chosen[i] = (words[i], last)
    for first, last in sorted(chosen.values(), key=lambda p: p[0].start, reverse=True):
        copy = utt.text[first.start : last.end]
        if first.start == words[0].start and copy[0].isupper() and not _keeps_capital(first.text):
            copy = copy[0].lower() + copy[1:]
        utt = utt.replace(
            last.end, last.end, " " + copy, perturbation=name, kind="repetition", intensity=intensity
        )
    return utt


_GREETING = re.compile(
    r"\s*(?:(?:hi|hiya|hello|hey|alright|good (?:morning|afternoon|evening)|dear \w+)(?: there)?[,!.]\s+)+",
    re.IGNORECASE,
)


def _message_start(utt: Utterance, ctx: NoiseContext) -> int:
    """Where the message proper begins: after leading blanks and a greeting ("Hi, ", "Good morning, "),
    since nobody restarts a greeting."""
    text = utt.text
    lead = len(text) - len(text.lstrip())
    greetings: list[str] = []
    if ctx.pack is not None:
        greetings = [
            g.strip() for phrases in ctx.pack.lexicon.greetings.values() for g in phrases if g.strip()
        ]
    for greeting in sorted(greetings, key=len, reverse=True):
        if text[lead:].lower().startswith(greeting.lower()):
            end = lead + len(greeting)
            return end + len(text[end:]) - len(text[end:].lstrip())
    match = _GREETING.match(text, lead)
    return match.end() if match else lead


def _false_start(
    utt: Utterance, rng: random.Random, intensity: int, ctx: NoiseContext, lead: int
) -> str | None:
    """A false start and its interregnum, ready to go before `utt.text[lead:]`; None if there is nothing
    to make one from.

    From the fitted modes: the opening of another question among `ctx.distractors` (`other`), or the
    message's own opening cut short with a word changed (`same_start`, `swap_first`).
    """
    m = model()
    text = utt.text
    body = text[lead:]
    first_slot = min((s.start for s in utt.slots if s.start >= lead), default=len(text))
    words = [w for w in _word_spans(utt, lead) if w.end <= first_slot]
    length = _pick(rng, m.restart_length) + (1 if intensity >= 2 else 0)
    mode = _pick(rng, m.restart_modes)
    reparandum: str | None = None
    echo = False
    prefixes = [d for d in _usable(ctx, text) if _is_prefix_like(d)]
    if mode == "other" and prefixes:
        reparandum = " ".join(rng.choice(prefixes).split()[:length])
    if reparandum is None and words:
        reparandum = _own_false_start(utt, words, length, mode, ctx, rng)
        echo = reparandum == text[words[0].start : words[0].start + len(reparandum)]
    if reparandum is None:
        pool = [d for d in _usable(ctx, text) if not _is_prefix_like(d)]
        if not pool:
            return None
        reparandum = rng.choice(pool)
    reparandum = _match_case(reparandum, body)
    inter = _interregnum(rng, ctx, question=_is_question(body), lowercase=text == text.lower(), required=echo)
    return _join(reparandum, inter)


def _restart_once(
    utt: Utterance, rng: random.Random, intensity: int, ctx: NoiseContext, name: str, count: int = 1
) -> Utterance:
    """Put `count` false starts, each with its editing phrase, before the message (after any greeting),
    as one edit."""
    text = utt.text
    lead = _message_start(utt, ctx)
    if not _WORD.search(text[lead:]):
        return utt
    pieces: list[str] = []
    for _ in range(count):
        piece = _false_start(utt, rng, intensity, ctx, lead)
        if piece is not None:
            pieces.insert(0, piece)
    if not pieces:
        return utt
    first = _WORD.match(text, lead)
    lower = (
        first is not None
        and text[lead].isupper()
        and not _keeps_capital(first.group())
        and not utt.protected(lead, lead + 1)
        and rng.random() < model().lowercase_repair
    )
    if lower:  # the false starts that follow the first one resume in lower case too
        pieces[1:] = [p if _keeps_capital(p.split()[0]) else p[0].lower() + p[1:] for p in pieces[1:]]
    new = "".join(pieces) + (text[lead].lower() if lower else "")
    return utt.replace(
        lead, lead + (1 if lower else 0), new, perturbation=name, kind="restart", intensity=intensity
    )


def _own_false_start(
    utt: Utterance, words: list[_Span], length: int, mode: str, ctx: NoiseContext, rng: random.Random
) -> str:
    """The message's own opening, cut short, with one word changed: a question word for another, or a
    content word for a distractor ("When was" for "Where was", "my debit" for "my credit")."""
    text = utt.text
    length = max(1, min(length, len(words) - 1 if len(words) > 1 else 1))
    span = words[:length]
    pieces = [(w.start, w.end, w.text) for w in span]
    head = span[0].text.lower()
    if mode == "swap_first" and head in _WH:
        options = {w: s for w, s in model().restart_first_words.items() if w != head} or {"what": 1.0}
        new_head = _pick(rng, options)
        pieces[0] = (span[0].start, span[0].end, new_head)
    else:
        content = [i for i in range(1, length) if _noun_like(words, i)]
        if content:
            i = rng.choice(content)
            wrong = _wrong_phrase(span[i].text, 1, ctx, text, rng)
            if wrong is not None:
                pieces[i] = (span[i].start, span[i].end, wrong)
    out = ""
    cursor = span[0].start
    for start, end, word in pieces:
        out += text[cursor:start] + word
        cursor = end
    return out


def _restart(utt: Utterance, rng: random.Random, intensity: int, ctx: NoiseContext, name: str) -> Utterance:
    return _restart_once(utt, rng, intensity, ctx, name, count=2 if intensity == 3 else 1)


def _slot_slip(slot: GoldSlot, surface: str, pack: Pack, rng: random.Random) -> str | None:
    """A plausible wrong value for `slot`, said the way the user said the right one, or None."""
    spec = pack.slot(slot.slot)
    shape = _shape(surface)
    for attempt in range(24):
        canonical = _near_value(spec.type, slot.value, pack, rng) if attempt < 12 else None
        if canonical is None:
            canonical = generate_value(spec, pack, rng)
        if canonical == slot.value:
            continue
        renders = [render_value(spec, canonical, pack, rng) for _ in range(6)]
        wrong = next((r for r in renders if _shape(r) == shape), renders[0])
        if surface == surface.lower():
            wrong = wrong.lower()
        said = normalize_value(spec, wrong, pack)
        if said is not None and said != slot.value:
            return wrong
    return None


def _shape(surface: str) -> str:
    """How a value is written, ignoring which value: "the 15th" and "the 5th" look alike."""
    return re.sub(r"\d+", "0", surface.lower()).replace("st", "th").replace("nd", "th").replace("rd", "th")


def _near_value(kind: SlotType, value: str, pack: Pack, rng: random.Random) -> str | None:
    """A canonical value close to `value`, the kind a person misremembers (a digit, a few days)."""
    if kind is SlotType.CARD_LAST4:
        digits = list(value)
        if rng.random() < 0.5:
            i = rng.randrange(3)
            digits[i], digits[i + 1] = digits[i + 1], digits[i]
        else:
            i = rng.randrange(4)
            digits[i] = str(rng.randrange(10))
        return "".join(digits)
    if kind is SlotType.AMOUNT:
        whole, pence = value.split(".")
        return f"{_number_slip(whole, rng)}.{pence}"
    if kind is SlotType.DATE:
        day = dt.date.fromisoformat(value) - dt.timedelta(days=rng.choice((-3, -2, -1, 1, 2, 3, 7, 10)))
        return min(day, pack.reference_date).isoformat()
    return None


def _correction_at(
    utt: Utterance,
    rng: random.Random,
    intensity: int,
    ctx: NoiseContext,
    name: str,
    start: int,
    done: set[int],
    *,
    fallback: bool = True,
) -> Utterance | None:
    """One self-correction at or after offset `start`: of a slot value not in `done` (indices into
    `utt.slots`, updated) when the pack allows, else of a content word. None when nothing can be
    corrected.

    The word corrected is a noun, name or number when the message has one (see `_noun_like`): people
    misname things, and the distractors a pack offers are things. Only with `fallback` is another content
    word taken when there is none: a first correction must happen, a further one need not.
    """
    lowercase = utt.text == utt.text.lower()
    slots = [i for i, s in enumerate(utt.slots) if s.start >= start and i not in done]
    if ctx.pack is not None:
        for i in rng.sample(slots, len(slots)):
            slot = utt.slots[i]
            surface = utt.text[slot.start : slot.end]
            wrong = _slot_slip(slot, surface, ctx.pack, rng)
            if wrong is None:
                continue
            done.add(i)
            inter = _interregnum(rng, ctx, question=False, lowercase=lowercase)
            return utt.replace(
                slot.start,
                slot.start,
                _join(wrong, inter),
                perturbation=name,
                kind="self_correction",
                intensity=intensity,
            )
    words = _word_spans(utt, start, avoid=name)
    targets = [k for k in range(len(words)) if _noun_like(words, k)]
    if not targets and fallback:
        targets = [k for k, w in enumerate(words) if _is_content(w.text) and k > 0]
    m = model()
    while targets:
        k = rng.choice(targets)
        targets.remove(k)
        target = words[k]
        previous = words[k - 1].text if k > 0 else ""
        wrong = _wrong_phrase(target.text, _pick(rng, m.correction_length), ctx, utt.text, rng, previous)
        if wrong is None:
            continue
        inter = _interregnum(rng, ctx, question=False, lowercase=lowercase)
        repeat = ""
        if k > 0 and rng.random() < m.repeat_previous:
            prev = words[k - 1]
            if prev.text.lower() in STOPWORDS and utt.text[prev.end : target.start] == " ":
                repeat = prev.text + " "
        return utt.replace(
            target.start,
            target.start,
            _join(wrong, inter) + repeat,
            perturbation=name,
            kind="self_correction",
            intensity=intensity,
        )
    return None


def _self_correction(
    utt: Utterance, rng: random.Random, intensity: int, ctx: NoiseContext, name: str
) -> Utterance:
    done: set[int] = set()
    for n in range(intensity):
        changed = _correction_at(utt, rng, intensity, ctx, name, 0, done, fallback=n == 0)
        if changed is None:
            break
        utt = changed
    return utt


@register(
    "filler",
    "Hesitation sounds (um, uh, er...) between words, mix fitted to Disfl-QA (1, 2, 3-4 per message, "
    "more in long messages).",
)
def filler(utt: Utterance, rng: random.Random, intensity: int, ctx: NoiseContext) -> Utterance:
    """Fillers before words outside slot values; intensity is how many (1, 2, 3-4, plus one per 15 words at
    2-3), since a long message hesitates more often."""
    return _fillers(utt, rng, intensity, ctx, "filler")


@register("repetition", 'A word or two said twice in a row ("my my card"; 1, 2, 3 per message).')
def repetition(utt: Utterance, rng: random.Random, intensity: int, ctx: NoiseContext) -> Utterance:
    """Immediate repeats of a word or a bigram; intensity is how many."""
    return _repetitions(utt, rng, intensity, ctx, "repetition")


@register(
    "restart",
    'A false start and an editing phrase before the message ("I lost my no wait, my card was '
    'stolen"; 1 longer at 2, 2 at 3).',
)
def restart(utt: Utterance, rng: random.Random, intensity: int, ctx: NoiseContext) -> Utterance:
    """A false start at the very start of the message (where 44% of human edits begin): the message's own
    opening with a word changed, or the opening of another question from `ctx.distractors`. Intensity 1: one
    false start; 2: one a word longer; 3: two in a row."""
    return _restart(utt, rng, intensity, ctx, "restart")


@register(
    "self_correction",
    'A wrong value, an editing phrase, then the right one ("the 5th, no sorry, the '
    '15th"; 1, 2, 3 corrections).',
)
def self_correction(utt: Utterance, rng: random.Random, intensity: int, ctx: NoiseContext) -> Utterance:
    """A plausible wrong value of the same slot before a gold value (gold stays on the right one); without
    a slot or a pack, a distractor before a content word. Intensity is how many corrections."""
    return _self_correction(utt, rng, intensity, ctx, "self_correction")


@register(
    "disfluency",
    "One disfluency as people write them: restart, correction, filler or repetition, mix "
    "fitted to Disfl-QA (1; 2 and 3 add one and two more repairs).",
)
def disfluency(utt: Utterance, rng: random.Random, intensity: int, ctx: NoiseContext) -> Utterance:
    """The Disfl-QA mix: the type and the number of repair places are drawn from the fitted shares, and
    intensity 2 and 3 add one and two further self-corrections after the first edit."""
    m = model()
    kinds = {k: v for k, v in m.types.items() if k in ("restart", "correction", "filler", "repetition")}
    kind = _pick(rng, kinds)
    extra = _pick(rng, m.regions) - 1 + intensity - 1
    name = "disfluency"
    if kind == "filler":
        return _fillers(utt, rng, 1, ctx, name)
    if kind == "repetition":
        return _repetitions(utt, rng, 1, ctx, name)
    before = len(utt.edits)
    done: set[int] = set()
    if kind == "restart":
        out = _restart_once(utt, rng, intensity, ctx, name)
    else:
        out = _correction_at(utt, rng, intensity, ctx, name, 0, done) or _restart_once(
            utt, rng, intensity, ctx, name
        )
    for _ in range(extra):
        if len(out.edits) == before:
            break
        more = _correction_at(out, rng, intensity, ctx, name, out.edits[-1].end, done, fallback=False)
        if more is None:
            break
        out = more
    return out
