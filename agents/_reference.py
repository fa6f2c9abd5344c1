"""The reference assistant: the embedded default target, a small but real banking bot.

It is built the way many production bots are: an intent classifier (TF-IDF features and logistic
regression, trained at start-up on the bot's own example utterances), a rule-based slot filler, a
form-filling dialogue manager and an escalation policy (critical intents, repeated low confidence, repeated
failure, explicit requests for a person). Its training phrases were written independently of the simulated
users' templates, so it is right or wrong on its merits, with the weaknesses such bots have: gaps in its
training phrases, a gazetteer that misses merchants, numbers written in words it cannot read, confusable
intents.

It serves a whole cohort of dialogues in one call (`respond_batch`), so the classifier runs once per turn
for every live dialogue instead of once per message (scikit-learn's per-call overhead dominates short
texts).

Built with `escalation=False` it is the "bare" bot (`reference-bare`): the same classifier, slot filler and
forms with no escalation rules of its own, so it never hands off. It is what an escalation policy from
`botdrill.policies` is wrapped around, to compare policies on one bot whose only difference is the policy.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, make_pipeline

from ._data import load_data
from ._slotfill import extract
from ._types import Message, Reply

_HUMAN = re.compile(
    r"\b(human|real person|a person|an agent|(?:the |an? )?(?:advisor|adviser|operator|representative)|"
    r"someone real|actual person|speak to someone|talk to someone|member of staff)\b",
    re.IGNORECASE,
)
_AFFIRM = re.compile(
    r"^\W*(yes|yeah|yep|yup|correct|that'?s (?:right|correct)|right|sure|ok(?:ay)?|"
    r"please do|go ahead|absolutely|spot on|exactly)\b",
    re.IGNORECASE,
)
_NEGATE = re.compile(r"\b(no|nope|not quite|wrong|incorrect|actually|not right)\b", re.IGNORECASE)
_OUT_OF_SCOPE = "out_of_scope"


@dataclass
class _Thread:
    """What the bot remembers about one conversation."""

    rng: random.Random
    intent: str | None = None
    slots: dict[str, str] = field(default_factory=dict)
    awaiting: str | None = None  # a slot name, "confirm", or None
    asks: dict[str, int] = field(default_factory=dict)
    low_confidence: int = 0
    done: bool = False
    seen: int = 0  # user messages processed


class ReferenceAssistant:
    """The built-in banking bot (see the module docstring).

    Every reply exposes `confidence`, the classifier's probability for the intent it guessed, when the
    message was routed (a new request); it is `None` when the message was read as a slot value, an answer
    to a confirmation or a request for a person, where the guess decided nothing.

    Args:
        escalation: `False` gives the bare bot: an explicit request for a person is politely declined,
            critical intents are served to completion once their details are collected, and low confidence
            and repeated re-asks keep it trying. Its `name` is then `reference-bare`.

    Example:
        >>> bot = ReferenceAssistant()
        >>> reply = bot.respond_batch([("t1", [{"role": "user", "content": "my card was stolen"}])])[0]
        >>> reply.intent, reply.handoff
        ('lost_or_stolen_card', False)
    """

    name = "reference"
    modelled_latency = True
    """Its real latency is an artefact of batching, so the simulated clock models a typical bot's."""

    def __init__(self, *, escalation: bool = True) -> None:
        self._escalation = escalation
        if not escalation:
            self.name = "reference-bare"
        self._config: dict[str, Any] = load_data("reference_dialogue.yaml")
        training: dict[str, list[str]] = load_data("reference_training.yaml")["intents"]
        texts = [t for examples in training.values() for t in examples]
        labels = [intent for intent, examples in training.items() for _ in examples]
        self._model = make_pipeline(
            FeatureUnion(
                [
                    ("words", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True)),
                    (
                        "chars",
                        TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 4), sublinear_tf=True, min_df=2),
                    ),
                ]
            ),
            LogisticRegression(C=8.0, max_iter=2000),
        )
        self._model.fit(texts, labels)
        self._classes: list[str] = [str(c) for c in self._model.classes_]
        self._threads: dict[str, _Thread] = {}
        self._run_prefix = ""

    @cached_property
    def intents(self) -> list[str]:
        """The intents the bot can route to (besides out of scope)."""
        return [c for c in self._classes if c != _OUT_OF_SCOPE]

    def classify(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        """Top intent and its probability for each text, in one classifier call."""
        if not texts:
            return []
        probs = self._model.predict_proba(list(texts))
        best = np.argmax(probs, axis=1)
        return [(self._classes[j], float(probs[i, j])) for i, j in enumerate(best)]

    async def respond(self, messages: list[Message], *, thread_id: str) -> Reply:
        """Answer one conversation (the async single-dialogue interface every assistant has)."""
        return self.respond_batch([(thread_id, messages)])[0]

    def respond_batch(self, requests: Sequence[tuple[str, list[Message]]]) -> list[Reply]:
        """Answer many conversations at once: `(thread_id, messages)` in, one reply each out."""
        texts = [messages[-1]["content"] for _, messages in requests]
        routed = self.classify(texts)
        return [
            self._turn(thread_id, messages, text, guess)
            for (thread_id, messages), text, guess in zip(requests, texts, routed, strict=True)
        ]

    def bind_run(self, run_id: str) -> None:
        """Seed the bot's wording by the dialogue's place in the run, not by the run's name.

        Thread ids start with the run id; without this, the same scenario run twice under two names (two
        escalation policies, say) would meet differently worded replies, and a comparison would measure
        the wording as well as the policy."""
        self._run_prefix = f"{run_id}-"

    def forget(self, thread_id: str) -> None:
        """Drop what the bot remembers of a finished conversation."""
        self._threads.pop(thread_id, None)

    # -- the dialogue manager -------------------------------------------------------------------

    def _thread(self, thread_id: str, messages: list[Message]) -> _Thread:
        users = sum(1 for m in messages if m["role"] == "user")
        state = self._threads.get(thread_id)
        if state is None or users <= state.seen:  # a new conversation under a reused id starts afresh
            key = thread_id.removeprefix(self._run_prefix)
            state = _Thread(rng=random.Random(f"reference:{key}"))
            self._threads[thread_id] = state
        state.seen = users
        return state

    def _turn(self, thread_id: str, messages: list[Message], text: str, guess: tuple[str, float]) -> Reply:
        return self._decide(self._thread(thread_id, messages), text, guess)

    def _reply(
        self, state: _Thread, text: str, *, handoff: bool = False, confidence: float | None = None
    ) -> Reply:
        return Reply(
            text=text, intent=state.intent, slots=dict(state.slots), handoff=handoff, confidence=confidence
        )

    def _decide(self, state: _Thread, text: str, guess: tuple[str, float]) -> Reply:
        cfg = self._config
        if _HUMAN.search(text):
            if not self._escalation:
                return self._reply(state, cfg["handoff_declined"])
            return self._reply(state, cfg["handoff"]["explicit_request"], handoff=True)
        intent, confidence = guess
        confident = confidence >= cfg["confidence_threshold"]
        escalate = cfg["escalate_intents"]
        # A confident new critical intent overrides whatever the bot was doing.
        switch = (
            confidence >= cfg["switch_threshold"]
            and intent in escalate
            and intent != state.intent
            and state.awaiting != "confirm"
        )
        if state.intent is None or state.done or switch:
            if not confident:
                state.low_confidence += 1
                if self._escalation and state.low_confidence >= cfg["low_confidence_handoff_after"]:
                    return self._reply(
                        state, cfg["handoff"]["low_confidence"], handoff=True, confidence=confidence
                    )
                return self._reply(state, state.rng.choice(cfg["not_understood"]), confidence=confidence)
            if intent == _OUT_OF_SCOPE:
                if state.done:
                    return self._reply(state, cfg["goodbye"], confidence=confidence)
                return self._reply(state, cfg["out_of_scope"], confidence=confidence)
            if intent != state.intent:
                state.intent, state.slots, state.awaiting, state.done = intent, {}, None, False
                state.asks.clear()
            state.low_confidence = 0
            self._fill(state, text, awaited=None)
            return self._next(state, confidence=confidence)
        if state.awaiting == "confirm":
            if _AFFIRM.search(text) and not _NEGATE.search(text):
                return self._complete(state)
            changed = self._fill(state, text, awaited=None, overwrite=True)
            state.awaiting = None
            if not changed:
                return self._reply(state, cfg["reconfirm_missing"])
            return self._next(state)  # confirms the corrected summary again
        self._fill(state, text, awaited=state.awaiting)
        return self._next(state)

    def _needed(self, intent: str) -> list[str]:
        cfg = self._config
        if intent in cfg["escalate_intents"]:
            return list(cfg["escalate_intents"][intent])
        return list(cfg["required_slots"].get(intent, []))

    def _fill(self, state: _Thread, text: str, *, awaited: str | None, overwrite: bool = False) -> bool:
        assert state.intent is not None
        changed = False
        for slot in self._needed(state.intent):
            if slot in state.slots and not overwrite:
                continue
            value = extract(slot, text, awaited=slot == awaited, gazetteer=self._config["gazetteer"])
            if value is not None and state.slots.get(slot) != value:
                state.slots[slot] = value
                changed = True
        return changed

    def _next(self, state: _Thread, *, confidence: float | None = None) -> Reply:
        cfg = self._config
        assert state.intent is not None
        missing = [s for s in self._needed(state.intent) if s not in state.slots]
        if missing:
            slot = missing[0]
            state.asks[slot] = state.asks.get(slot, 0) + 1
            if self._escalation and state.asks[slot] > cfg["reask_handoff_after"]:
                return self._reply(
                    state, cfg["handoff"]["repeated_failure"], handoff=True, confidence=confidence
                )
            state.awaiting = slot
            return self._reply(state, state.rng.choice(cfg["prompts"][slot]), confidence=confidence)
        if state.intent in cfg["escalate_intents"]:
            if not self._escalation:  # the bare bot serves a critical intent itself, without a summary
                return self._complete(state, confidence=confidence)
            state.awaiting = None
            return self._reply(
                state, cfg["handoff"]["critical"][state.intent], handoff=True, confidence=confidence
            )
        if state.slots and state.awaiting != "confirm":
            state.awaiting = "confirm"
            summary = self._summary(state)
            return self._reply(state, cfg["confirm"].format_map({"summary": summary}), confidence=confidence)
        return self._complete(state, confidence=confidence)

    def _summary(self, state: _Thread) -> str:
        names = {
            "card_last4": "the card ending {}",
            "amount": "an amount of {}",
            "merchant": "a payment to {}",
            "date": "on {}",
            "payee": "to {}",
            "biller": "the bill with {}",
            "postcode": "postcode {}",
            "branch": "the {} branch",
        }
        return ", ".join(names.get(slot, slot + " {}").format(value) for slot, value in state.slots.items())

    def _complete(self, state: _Thread, *, confidence: float | None = None) -> Reply:
        assert state.intent is not None
        state.awaiting = None
        state.done = True
        critical = state.intent in self._config["escalate_intents"]  # reached by the bare bot only
        templates = self._config["completed_without_handoff" if critical else "completed"]
        template: str = templates[state.intent]
        text = re.sub(r"\{(\w+)\}", lambda m: state.slots.get(m.group(1), "your account"), template)
        return self._reply(state, text, confidence=confidence)
