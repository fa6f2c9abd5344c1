"""A batch of training examples for rare intents: expand the seeds, score every candidate, keep the good.

The expansion methods live in `botdrill.agents` (they make words); this module decides which words are
worth training on, because synthetic data only pays when it is filtered (generations drift into
neighbouring intents, repeat themselves, or read like templates). Every candidate is scored and stored,
kept or not, with the first gate that refused it, so a team can see what each gate costs and calibrate it
against human ratings.

The gates, in order (a candidate is refused by the first it fails; every score is computed regardless):

1. `alignment`: a reference classifier (TF-IDF word and character n-grams, logistic regression with
   balanced class weights) trained on the real seeds and, when given, the other intents' real data;
   the score is 1 / the rank of the gold intent among the classifier's choices (1.0 when it is first).
   Negatives are held to the same test against their own label.
2. `slot_coverage`: the share of gold slots whose span still says its value.
3. `coherence`: the share of structural checks passed (no unfilled placeholder, no word doubled by
   accident, no doubled request frame, no dangling last word, a length within the real texts' range;
   for dialogues also turns that alternate and keep one intent).
4. `naturalness`: a word-trigram language model trained on the real texts scores the candidate, as the
   share of real texts (scored by a model that did not see them, 5-fold) that it matches or beats.
5. `near_duplicate`, `seed_copy`, `forbidden`: a near copy of a kept candidate, of a seed, or of a text
   the user said must never be reproduced (a test set, say). `forbidden` applies with gates off too.
6. `quota`: more candidates passed than the batch wants for the intent; the surplus is not kept.
7. `diversity_floor`: the kept examples of an intent are less varied (distinct bigrams) than the
   floor: the intent's examples are all refused, and the batch says so.

PII is scrubbed before any gate (card numbers, IBANs, phones, e-mails, national ids), with one set of
surrogates per example or dialogue, and counted.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import secrets
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from botdrill.agents._augment import (
    Candidate,
    DialogueTurn,
    Expander,
    GenerationSpec,
    Seed,
    load_seeds,
    load_spec,
)
from botdrill.agents._types import GoldSlot
from botdrill.scenarios import BotdrillError

from ._pii import Surrogates, scrub
from ._textstats import Diversity, NgramLM, Realism, dedupe, diversity, overlapping, realism, tokens

GATES = (
    "alignment",
    "slot_coverage",
    "coherence",
    "naturalness",
    "near_duplicate",
    "seed_copy",
    "forbidden",
    "quota",
    "diversity_floor",
)
DEFAULT_METHODS = ("pack", "seed_templates", "lexical", "perturb:typo")


class GenerateError(BotdrillError):
    """A batch cannot be generated from these inputs; the message says which input and why."""

    code = "generate_input"


class Thresholds(BaseModel):
    """Selection criteria: the least score each gate accepts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alignment: float = Field(default=0.1, ge=0, le=1)
    """1 / rank of the gold intent under the reference classifier (0.1: among its ten likeliest). Low on
    purpose: a classifier trained on five seeds ranks the new phrasings that teach the most below the
    neighbours it knows well, so a strict threshold keeps only what the seeds already say."""
    slot_coverage: float = Field(default=1.0, ge=0, le=1)
    coherence: float = Field(default=1.0, ge=0, le=1)
    naturalness: float = Field(default=0.02, ge=0, le=1)
    """Share of real texts the candidate matches or beats under the language model."""
    near_duplicate: float = Field(default=0.85, gt=0, le=1)
    """Character-shingle Jaccard similarity at which two texts count as one."""
    diversity_floor: float = Field(default=0.25, ge=0, le=1)
    """Least distinct-2 (distinct word bigrams / bigrams) of an intent's kept examples."""


class GenerateConfig(BaseModel):
    """Everything that decides a batch's content; its hash is the batch's config hash."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    intents: tuple[str, ...] = ()
    """Target intents; empty: every intent the spec marks as a target that has seeds or templates."""
    per_intent: int = Field(default=50, ge=1, le=100_000)
    dialogues_per_intent: int = Field(default=5, ge=0, le=10_000)
    negatives_per_intent: int = Field(default=10, ge=0, le=10_000)
    methods: tuple[str, ...] = DEFAULT_METHODS
    seed: int = 0
    transform_rate: float = Field(default=0.5, ge=0, le=1)
    oversample: float = Field(default=3.0, ge=1, le=50)
    """Candidates made per example wanted, when the gates are on (they refuse some)."""
    gates: bool = True
    thresholds: Thresholds = Thresholds()


@dataclass
class Example:
    """One candidate with its scores and the verdict of the gates."""

    example_id: str
    candidate: Candidate
    alignment: float = math.nan
    predicted: str | None = None
    slot_coverage: float = math.nan
    coherence: float = math.nan
    coherence_issues: tuple[str, ...] = ()
    naturalness: float = math.nan
    rejected_by: str | None = None
    near_duplicate_of: str | None = None
    pii_replaced: int = 0

    @property
    def kept(self) -> bool:
        return self.rejected_by is None


@dataclass
class Batch:
    """A generated batch: its examples (kept and refused), what produced it, and what the gates did."""

    batch_id: str
    created_at: datetime
    config: GenerateConfig
    config_hash: str
    spec_name: str
    generator: str
    prompt_variants: list[dict[str, Any]]
    examples: list[Example]
    gate_counts: list[dict[str, Any]]
    diversity: dict[str, dict[str, float]]
    realism: Realism | None
    pii_replaced: dict[str, int]
    parent: str | None = None
    changelog: str = ""
    inputs: dict[str, Any] = field(default_factory=dict)

    @property
    def spec_sha256(self) -> str:
        return str(self.inputs["spec"])

    @property
    def seeds_sha256(self) -> str:
        return str(self.inputs["seeds"])

    def kept(self, kind: str | None = None) -> list[Example]:
        """The examples every gate accepted (of one kind, when given)."""
        return [e for e in self.examples if e.kept and (kind is None or e.candidate.kind == kind)]


# -- inputs --------------------------------------------------------------------------------------------


def read_texts(path: str | Path) -> list[str]:
    """Texts that must never be reproduced: one per line, or the `text` column of a CSV or JSONL file."""
    file = Path(path)
    if not file.is_file():
        raise GenerateError(f"{file.name}: no such file")
    if file.suffix.lower() in (".csv", ".jsonl", ".ndjson"):
        return [s.text for s in load_seeds(file)]
    return [line.strip() for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]


def _digest(items: Sequence[Any]) -> str:
    return hashlib.sha256(json.dumps(items, sort_keys=True, default=str).encode()).hexdigest()


# -- the gates ------------------------------------------------------------------------------------------


class _Reference:
    """The intent-alignment judge: trained on real text only, balanced so five seeds count."""

    def __init__(self, texts: Sequence[str], labels: Sequence[str], seed: int) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline, make_union

        self._model: Any = None
        if len(set(labels)) < 2:
            return
        features = make_union(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True, min_df=2),
        )
        model = make_pipeline(
            features, LogisticRegression(C=10, class_weight="balanced", max_iter=2000, random_state=seed)
        )
        model.fit(list(texts), list(labels))
        self._model = model

    def score(self, texts: Sequence[str], gold: Sequence[str]) -> list[tuple[float, str | None]]:
        if self._model is None or not texts:
            return [(math.nan, None)] * len(texts)
        classes = list(self._model.classes_)
        index = {c: i for i, c in enumerate(classes)}
        probs = self._model.predict_proba(list(texts))
        out: list[tuple[float, str | None]] = []
        for row, label in zip(probs, gold, strict=True):
            top = int(np.argmax(row))
            if label not in index:
                out.append((math.nan, str(classes[top])))
                continue
            rank = 1 + int(np.sum(row > row[index[label]]))
            out.append((1.0 / rank, str(classes[top])))
        return out


class _Naturalness:
    """LM scores as the share of held-out real texts a candidate matches or beats."""

    def __init__(self, real: Sequence[str], folds: int = 5) -> None:
        self.model = NgramLM.fit(real) if real else None
        reference: list[float] = []
        if len(real) >= folds * 2:
            for k in range(folds):
                train = [t for i, t in enumerate(real) if i % folds != k]
                held = [t for i, t in enumerate(real) if i % folds == k]
                reference += NgramLM.fit(train).scores(held)
        elif self.model is not None:
            reference = self.model.scores(real)
        self.reference = np.sort(np.asarray(reference, dtype=float))

    def score(self, texts: Sequence[str]) -> list[float]:
        if self.model is None or not len(self.reference):
            return [math.nan] * len(texts)
        raw = np.asarray(self.model.scores(list(texts)), dtype=float)
        beaten = np.searchsorted(self.reference, raw, side="right")
        return [float(b) / len(self.reference) for b in beaten]


_JUDGES: dict[str, tuple[_Reference, _Naturalness]] = {}


def _judges(texts: Sequence[str], labels: Sequence[str], seed: int) -> tuple[_Reference, _Naturalness]:
    """The reference classifier and language model for this real data, trained once per process: batches
    drawn from the same real data (several sizes, or a parent and its revision) share them."""
    key = _digest([list(texts), list(labels), seed])
    if key not in _JUDGES:
        _JUDGES.clear()  # one entry: the models of a large data set are not small
        _JUDGES[key] = (_Reference(texts, labels, seed), _Naturalness(texts))
    return _JUDGES[key]


_DANGLING = frozenset(
    {
        "to",
        "a",
        "an",
        "the",
        "my",
        "for",
        "of",
        "and",
        "or",
        "with",
        "on",
        "at",
        "in",
        "from",
        "your",
        "is",
        "are",
    }
)
_PLACEHOLDER = re.compile(r"\{[a-z_]+\}")


def _coherence(candidate: Candidate, frames: Sequence[str], length_range: tuple[int, int]) -> tuple[str, ...]:
    """The structural checks a candidate fails (empty when it passes them all)."""
    issues: list[str] = []
    repeated_on_purpose = {e.after.strip().casefold() for e in candidate.edits if e.kind == "repetition"}
    texts = [t.text for t in candidate.turns if t.speaker == "user"] if candidate.turns else [candidate.text]
    for text in texts:
        words = tokens(text)
        if _PLACEHOLDER.search(text):
            issues.append("unfilled_placeholder")
        doubled = [a for a, b in pairwise(words) if a == b and a not in repeated_on_purpose]
        if doubled:
            issues.append("doubled_word")
        low = " ".join(words)
        if any(low.startswith(f"{a} {b}") for a in frames for b in frames):
            issues.append("doubled_frame")
        if words and words[-1] in _DANGLING:
            issues.append("dangling_end")
        lo, hi = length_range
        if not lo <= len(words) <= hi:
            issues.append("length")
    if candidate.turns:
        speakers = [t.speaker for t in candidate.turns]
        if any(a == b for a, b in pairwise(speakers)) or speakers[-1] != "assistant":
            issues.append("turn_order")
        if len({t.intent for t in candidate.turns if t.speaker == "user"}) != 1:
            issues.append("intent_changes")
    return tuple(dict.fromkeys(issues))


_CHECKS = 5
"""Checks per utterance: placeholder, doubled word, doubled frame, dangling end, length."""
_DIALOGUE_CHECKS = 2
"""And per dialogue: turn order, one intent."""


def _slot_coverage(candidate: Candidate) -> float:
    pairs: list[tuple[str, GoldSlot]] = []
    if candidate.turns:
        pairs = [(t.text, s) for t in candidate.turns for s in t.slots]
    else:
        pairs = [(candidate.text, s) for s in candidate.slots]
    if not pairs:
        return 1.0
    good = sum(1 for text, s in pairs if text[s.start : s.end].casefold() == s.value.casefold())
    return good / len(pairs)


# -- PII -------------------------------------------------------------------------------------------------


def _scrub_turn(
    text: str, slots: tuple[GoldSlot, ...], surrogates: Surrogates, tally: Counter[str]
) -> tuple[str, tuple[GoldSlot, ...], int]:
    result = scrub(text, surrogates, [(s.start, s.end) for s in slots])
    tally.update(result.replaced)
    moved = tuple(
        s.model_copy(update={"start": a, "end": b}) for s, (a, b) in zip(slots, result.spans, strict=True)
    )
    return result.text, moved, sum(result.replaced.values())


def _scrubbed(candidate: Candidate, key: str, tally: Counter[str]) -> tuple[Candidate, int]:
    """The candidate with its PII replaced (one set of surrogates for all its turns), and the count."""
    surrogates = Surrogates(key)
    if not candidate.turns:
        text, slots, count = _scrub_turn(candidate.text, candidate.slots, surrogates, tally)
        if not count:
            return candidate, 0
        return replace(candidate, text=text, slots=slots, edits=()), count
    turns: list[DialogueTurn] = []
    total = 0
    for turn in candidate.turns:
        text, slots, count = _scrub_turn(turn.text, turn.slots, surrogates, tally)
        total += count
        turns.append(replace(turn, text=text, slots=slots))
    if not total:
        return candidate, 0
    first = next(t for t in turns if t.speaker == "user")
    return replace(candidate, text=first.text, slots=first.slots, turns=tuple(turns), edits=()), total


# -- the batch -------------------------------------------------------------------------------------------


def new_batch_id(spec_name: str, now: datetime) -> str:
    """A readable, unique batch id: the spec's name, the UTC time, and four random hex digits."""
    return f"{spec_name}-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def generate(
    spec: GenerationSpec | str | Path,
    seeds: Sequence[Seed] | str | Path,
    config: GenerateConfig | None = None,
    *,
    real: Sequence[Seed] | str | Path | None = None,
    real_sample: Sequence[str] | None = None,
    forbidden: Sequence[str] = (),
    paraphrases: Mapping[str, Sequence[str]] | None = None,
    prompt_variants: Sequence[dict[str, Any]] = (),
    batch_id: str | None = None,
    parent: str | None = None,
    changelog: str = "",
) -> Batch:
    """Generate one batch: candidates per target intent, scored and filtered (see the module docstring).

    Args:
        spec: a `GenerationSpec`, or the path of a pack or intent list.
        seeds: the real examples, or the path of a `text,intent` CSV/JSONL file.
        real: real examples of other intents (never the targets' test data): they train the reference
            classifier and the language model with the seeds.
        real_sample: real texts of the target intents to compare the batch with (two-sample AUC, length
            and vocabulary distances); the seeds of the targets when not given.
        forbidden: texts that must never be reproduced; a near copy is refused even with the gates off.
        paraphrases: seed source -> LLM paraphrases, for the `llm_paraphrase` method.

    Raises:
        GenerateError: a target intent unknown to the spec, or with neither seeds nor templates.
    """
    config = config or GenerateConfig()
    if not isinstance(spec, GenerationSpec):
        spec = load_spec(spec)
    names = [i.name for i in spec.intents]
    if not isinstance(seeds, Sequence) or isinstance(seeds, str):
        seeds = load_seeds(seeds, intents=names)
    seeds = list(seeds)
    real_seeds: list[Seed] = []
    if real is not None:
        real_seeds = (
            list(real) if isinstance(real, Sequence) and not isinstance(real, str) else load_seeds(real)
        )
    with_seeds = {s.intent for s in seeds}
    targets = list(config.intents) or [
        i.name for i in spec.intents if i.target and (i.templates or i.name in with_seeds)
    ]
    for intent in targets:
        if intent not in names:
            raise GenerateError(f"target intent {intent!r} is not in the spec ({', '.join(names)})")
        entry = spec.intent(intent)
        if not entry.templates and intent not in with_seeds and not paraphrases:
            raise GenerateError(f"target intent {intent!r} has neither seeds nor templates to expand")
    if not targets:
        raise GenerateError("no target intents: name them, or mark some `target: true` in the spec")

    now = datetime.now(UTC)
    batch_id = batch_id or new_batch_id(spec.name, now)
    inputs = {
        "spec": spec.digest(),
        "seeds": _digest([(s.text, s.intent) for s in seeds]),
        "real": _digest([(s.text, s.intent) for s in real_seeds]),
        "forbidden": _digest(sorted(forbidden)),
        "paraphrases": _digest(sorted((k, list(v)) for k, v in (paraphrases or {}).items())),
    }
    config_hash = _digest([config.model_dump(mode="json"), inputs])
    expander = Expander(
        spec,
        seeds,
        config.methods,
        seed=config.seed,
        transform_rate=config.transform_rate,
        paraphrases=paraphrases,
    )
    factor = config.oversample if config.gates else 1.0
    candidates: list[Candidate] = []
    for intent in targets:
        candidates += expander.candidates(intent, math.ceil(config.per_intent * factor))
        if config.dialogues_per_intent:
            candidates += expander.dialogues(intent, math.ceil(config.dialogues_per_intent * factor))
        if config.negatives_per_intent:
            candidates += expander.negatives(intent, math.ceil(config.negatives_per_intent * factor))

    pii: Counter[str] = Counter()
    examples: list[Example] = []
    for n, cand in enumerate(candidates):
        example_id = f"{batch_id}-{n:06d}"
        # surrogates keyed by the config, not the batch id: the same inputs give the same text
        cand, count = _scrubbed(cand, f"{config_hash}:{n}", pii)
        examples.append(Example(example_id=example_id, candidate=cand, pii_replaced=count))

    real_texts = [s.text for s in seeds] + [s.text for s in real_seeds]
    real_labels = [s.intent for s in seeds] + [s.intent for s in real_seeds]
    counts: list[dict[str, Any]] = [{"gate": "generated", "in": len(examples), "out": len(examples)}]
    _score(examples, real_texts, real_labels, expander, config)
    thresholds = config.thresholds
    live = examples
    if config.gates:
        for gate, least in (
            ("alignment", thresholds.alignment),
            ("slot_coverage", thresholds.slot_coverage),
            ("coherence", thresholds.coherence),
            ("naturalness", thresholds.naturalness),
        ):
            # NaN (no reference to judge by) fails too
            live = _refuse(
                live, gate, [i for i, e in enumerate(live) if not getattr(e, gate) >= least], counts
            )
        kept = set(dedupe([e.candidate.user_text for e in live], threshold=thresholds.near_duplicate))
        live = _refuse(live, "near_duplicate", [i for i in range(len(live)) if i not in kept], counts)
        live = _refuse(live, "seed_copy", _copies(live, [s.text for s in seeds], thresholds), counts)
    live = _refuse(live, "forbidden", _copies(live, forbidden, thresholds), counts)
    live = _refuse(live, "quota", _surplus(live, config), counts)
    div = _diversity(live, targets, seed=config.seed)
    floor = thresholds.diversity_floor if config.gates else None
    poor = {i for i, d in div.items() if floor is not None and d["distinct_2"] < floor}
    live = _refuse(
        live,
        "diversity_floor",
        [i for i, e in enumerate(live) if e.candidate.intent in poor and e.candidate.kind != "negative"],
        counts,
    )
    if live:
        div["*"] = _figures(diversity([e.candidate.user_text for e in live], seed=config.seed))

    kept_utterances = [e.candidate.text for e in examples if e.kept and e.candidate.kind == "utterance"]
    sample = list(real_sample) if real_sample is not None else [s.text for s in seeds if s.intent in targets]
    rl = realism(sample, kept_utterances, seed=config.seed) if sample and kept_utterances else None
    from botdrill.simulator import __version__

    return Batch(
        batch_id=batch_id,
        created_at=now,
        config=config,
        config_hash=config_hash,
        spec_name=spec.name,
        generator=f"botdrill {__version__}: {', '.join(config.methods)}",
        prompt_variants=list(prompt_variants),
        examples=examples,
        gate_counts=counts,
        diversity=div,
        realism=rl,
        pii_replaced=dict(sorted(pii.items())),
        parent=parent,
        changelog=changelog,
        inputs=inputs | {"targets": targets, "n_seeds": len(seeds), "n_real": len(real_seeds)},
    )


def _score(
    examples: list[Example],
    real_texts: Sequence[str],
    real_labels: Sequence[str],
    expander: Expander,
    config: GenerateConfig,
) -> None:
    """Every gate score of every example, computed even with the gates off (they are stored)."""
    reference, natural = _judges(real_texts, real_labels, config.seed)
    lengths = sorted(len(tokens(t)) for t in real_texts) or [1, 30]
    lo = max(1, math.floor(lengths[len(lengths) // 100] * 0.5))
    hi = math.ceil(lengths[min(len(lengths) - 1, len(lengths) * 99 // 100)] * 1.5)
    texts = [e.candidate.user_text for e in examples]
    for e, (alignment, predicted), nat in zip(
        examples,
        reference.score(texts, [e.candidate.intent for e in examples]),
        natural.score(texts),
        strict=True,
    ):
        e.alignment, e.predicted, e.naturalness = alignment, predicted, nat
        e.slot_coverage = _slot_coverage(e.candidate)
        e.coherence_issues = _coherence(e.candidate, expander._frames, (lo, hi))
        checks = _CHECKS + (_DIALOGUE_CHECKS if e.candidate.turns else 0)
        e.coherence = 1.0 - len(e.coherence_issues) / checks


def _refuse(
    live: list[Example], gate: str, flagged: Iterable[int], counts: list[dict[str, Any]]
) -> list[Example]:
    """Mark the flagged examples (indexes into `live`) as refused by `gate`, count what went in and out."""
    for i in flagged:
        live[i].rejected_by = gate
    kept = [e for e in live if e.kept]
    counts.append({"gate": gate, "in": len(live), "out": len(kept)})
    return kept


def _copies(live: list[Example], texts: Sequence[str], thresholds: Thresholds) -> list[int]:
    """The examples that are near copies of any of `texts`."""
    if not texts:
        return []
    return overlapping(
        [e.candidate.user_text for e in live], list(texts), threshold=thresholds.near_duplicate
    )


def _surplus(live: list[Example], config: GenerateConfig) -> list[int]:
    """The examples beyond the batch's quota for their intent and kind, in candidate order."""
    wanted = {
        "utterance": config.per_intent,
        "dialogue": config.dialogues_per_intent,
        "negative": config.negatives_per_intent,
    }
    taken: Counter[tuple[str, str]] = Counter()
    surplus = []
    for i, e in enumerate(live):
        c = e.candidate
        # negatives are counted against the rare intent they sit next to
        owner = str(c.meta.get("near", c.intent)) if c.kind == "negative" else c.intent
        if taken[owner, c.kind] >= wanted[c.kind]:
            surplus.append(i)
        else:
            taken[owner, c.kind] += 1
    return surplus


def _figures(d: Diversity) -> dict[str, float]:
    return {k: float(v) for k, v in asdict(d).items()}


def _diversity(live: list[Example], targets: Sequence[str], *, seed: int) -> dict[str, dict[str, float]]:
    """Diversity of each target intent's utterances."""
    out: dict[str, dict[str, float]] = {}
    for intent in targets:
        group = [
            e.candidate.text for e in live if e.candidate.kind == "utterance" and e.candidate.intent == intent
        ]
        if group:
            out[intent] = _figures(diversity(group, seed=seed))
    return out
