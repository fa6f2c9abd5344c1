"""Judges of an assistant's words, for what a bot does not expose itself: its intent and its hand-offs.

A bot that returns only text says nothing about the intent it routed to or whether it handed the customer
to a person. A judge reads the reply (and the conversation before it) and infers both; every inferred
label is stored with the judge's `name`, so a report can tell a label the bot exposed from one a judge
inferred, and one judge's labels from another's.

Two judges share the `Judge` interface:

- `RuleJudge` (the default, `rules`): hand-offs by `judge_handoff`, intents by the pack's own words. It is
  conservative: it names an intent only when the reply clearly names it, and says `None` rather than guess.
- `LLMJudge` (`llm:CONFIG.yaml`, in `botdrill.agents._llm_judge`): an LLM asked for structured output.

Both are async, so the engine awaits either the same way.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ._disfluency import STOPWORDS
from ._types import Message

if TYPE_CHECKING:
    from botdrill.scenarios import Pack

__all__ = ["Judge", "Judgement", "RuleJudge", "judge_handoff"]

_HANDOFF = re.compile(
    r"\b(?:transfer(?:ring)?|connect(?:ing)?|put(?:ting)?|hand(?:ing)?|pass(?:ing)?)\s+you\s+"
    r"(?:(?:over|through|on)\s+)?(?:to|with)\s+(?:a |an |one of (?:our|my) |our |the |my )?"
    r"(?:member of (?:our |the )?)?(?:\w+\s+){0,2}?"
    r"(?:human|person|agent|advis[oe]r|colleague|specialist|team|representative|operator|staff)",
    re.IGNORECASE,
)

_HANDOFF_LEAD = re.compile(
    r"\b(?:transfer(?:ring)?|connect(?:ing)?|put(?:ting)?|hand(?:ing)?|pass(?:ing)?)\s+you\s+"
    r"(?:(?:over|through|on)\s+)?(?:to|with)\b",
    re.IGNORECASE,
)
"""The verb of a hand-off ("transferring you to"), which says nothing of the intent: "transfer" must not
count for a `transfer_money`. The team named after it ("our fraud team") does count."""


def judge_handoff(text: str) -> bool:
    """Whether the assistant's words say it is handing the conversation to a person.

    Example:
        >>> judge_handoff("I'm transferring you to our fraud team now.")
        True
        >>> judge_handoff("I can transfer money to your savings account.")
        False
    """
    return bool(_HANDOFF.search(text))


@dataclass(frozen=True)
class Judgement:
    """What a judge inferred from one reply, and which judge inferred it.

    `by` is stored next to every inferred label, so labels of different judges (or of a judge and the bot
    itself) are never mixed up in a report.
    """

    intent: str | None
    """The pack intent the reply shows the bot is handling; `None` when the judge cannot tell."""
    handoff: bool
    """Whether the reply hands the conversation to a person."""
    by: str
    """The judge: `rules`, or `llm:<model>`."""


@runtime_checkable
class Judge(Protocol):
    """What the engine asks about a reply that exposes no intent or hand-off flag."""

    name: str
    """Stored as `Judgement.by` with every label this judge infers."""

    async def judge(self, text: str, messages: list[Message]) -> Judgement:
        """Infer the intent and hand-off of `text`, the reply to the conversation `messages`."""
        ...

    async def aclose(self) -> None:
        """Release what the judge holds (connections); a judge is not used after it."""
        ...


# -- the rule judge ----------------------------------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9]+")
_PLACEHOLDER = re.compile(r"\{\w+\}")

PURITY = 0.75
"""Share of the pack's phrases holding a word that must belong to one intent for the word to name it.

The phrases are each intent's name, description, openings and restatements: "balance" is said almost only
about `check_balance`, "check" about several intents, so the first names an intent and the second does not."""

_PHRASE, _HEAD, _KEYWORD = 3, 2, 1
"""Weights of the evidence: the intent's name said as a phrase ("change your PIN" for `change_pin`), the
distinctive last word of its name ("PIN"), and each other distinctive word ("reset")."""

_ENOUGH = _HEAD
"""The least evidence that names an intent: one distinctive word alone ("open") is not enough; two
("branch ... open"), the name's distinctive last word or the whole name are."""


def _stem(word: str) -> str:
    """A crude stem, enough to match "transactions" with "transaction" and "cancelling" with "cancel".

    Packs are a few hundred phrases of everyday English: a real stemmer would be a dependency for little
    gain, and a stem only has to be the same for the pack's words and the bot's.
    """
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    else:
        if len(word) > 3 and word.endswith("e"):
            word = word[:-1]
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiou":
        word = word[:-1]  # "cancell" (from "cancelling") -> "cancel"
    return word


def _terms(text: str) -> list[str]:
    """The stems of the content words of `text`, in order (function words and numbers left out)."""
    text = _PLACEHOLDER.sub(" ", text.replace("\u2019", "'").lower())
    words = (w for w in _WORD.findall(text) if len(w) >= 3 and not w.isdigit())
    return [_stem(w) for w in words if w not in STOPWORDS]


def _contains(terms: list[str], phrase: tuple[str, ...]) -> bool:
    n = len(phrase)
    return any(tuple(terms[i : i + n]) == phrase for i in range(len(terms) - n + 1))


@dataclass(frozen=True)
class _Cues:
    """The words that name one intent, derived from the pack."""

    phrase: tuple[str, ...]
    """Its name's content words, in order ("lost", "stolen", "card")."""
    head: str | None
    """The last word of its name, when distinctive ("balance" of `check_balance`; "card" is not)."""
    keywords: frozenset[str]
    """Other distinctive words of its name and description that its users say ("stolen", "reset")."""

    def evidence(self, terms: list[str], present: set[str]) -> int:
        """How strongly a reply with these terms names the intent (0: not at all)."""
        if self.phrase and _contains(terms, self.phrase):
            return _PHRASE + _KEYWORD * len(self.keywords.difference(self.phrase) & present)
        head = _HEAD if self.head is not None and self.head in present else 0
        return head + _KEYWORD * len(self.keywords & present)


class RuleJudge:
    """The default judge: hand-offs by `judge_handoff`, intents from the pack's own words.

    The intent rule is derived from the pack, not written for one. The words that name an intent are its
    name said as a phrase ("change your PIN" for `change_pin`) and its *distinctive* words: words of its
    name and description that at least `PURITY` of the pack's phrases holding them (names, descriptions,
    openings and restatements) belong to this intent, and, but for the name's last word, that at least two
    of its users' phrases say too ("gently" in a description does not count; nor does "card", said about
    many intents). A
    reply names an intent when its evidence reaches `_ENOUGH` and no other intent's does: a reply that
    names two intents ("your balance, or a bill to pay?") is `None`, as is one that names none ("Which card
    is it?"). The verb of a hand-off ("transferring you to") is not evidence; the team it names ("our fraud
    team") is.

    It never guesses: `None` leaves the intent unknown, which scoring treats apart from a wrong one.

    Example:
        >>> import asyncio
        >>> from botdrill.scenarios import load_pack
        >>> judge = RuleJudge(load_pack("banking"))
        >>> asyncio.run(judge.judge("I've sent a PIN reset link to your app.", []))
        Judgement(intent='change_pin', handoff=False, by='rules')
        >>> print(judge.intent("Could you give me the last four digits of the card?"))
        None
    """

    name = "rules"

    def __init__(self, pack: Pack) -> None:
        self.pack = pack
        self._cues = _cues(pack)

    def intent(self, text: str) -> str | None:
        """The one intent `text` clearly names, or `None` (it names none, or more than one)."""
        terms = _terms(_HANDOFF_LEAD.sub(" ", text))
        present = set(terms)
        named = [name for name, cues in self._cues.items() if cues.evidence(terms, present) >= _ENOUGH]
        return named[0] if len(named) == 1 else None

    async def judge(self, text: str, messages: list[Message]) -> Judgement:
        """Hand-off and intent of `text` by the rules (`messages` is not read: the reply's words decide)."""
        return Judgement(intent=self.intent(text), handoff=judge_handoff(text), by=self.name)

    async def aclose(self) -> None:
        """Nothing to release; here for the `Judge` interface."""


def _cues(pack: Pack) -> dict[str, _Cues]:
    """The words that name each intent of `pack` (see `RuleJudge`)."""
    names = {i.name: tuple(_terms(i.name.replace("_", " "))) for i in pack.intents}
    descriptions = {i.name: set(_terms(i.description)) for i in pack.intents}
    users = {
        i.name: [set(_terms(p)) for p in (*i.openings, *i.vague_openings, *i.restatements)]
        for i in pack.intents
    }
    phrases = {name: [set(names[name]), descriptions[name], *users[name]] for name in names}
    holders = Counter(term for docs in phrases.values() for doc in docs for term in doc)

    def purity(name: str, term: str) -> float:
        return sum(term in doc for doc in phrases[name]) / holders[term]

    cues: dict[str, _Cues] = {}
    for name, words in names.items():
        head = words[-1] if words and purity(name, words[-1]) >= PURITY else None
        keywords = frozenset(
            term
            for term in descriptions[name] | set(words)
            if term != head and purity(name, term) >= PURITY and sum(term in doc for doc in users[name]) >= 2
        )
        cues[name] = _Cues(phrase=words, head=head, keywords=keywords)
    return cues
