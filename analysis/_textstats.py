"""Text statistics behind the quality gates for synthetic training data.

botdrill generates utterances for rare intents; before a batch becomes training data, a gate asks four
questions of it, and this module answers each with numbers:

- is the batch diverse, or a few sentences reworded?  `distinct_n`, `self_bleu`, `dispersion`,
  `diversity`;
- does it repeat itself, or copy text it must not contain (a held-out test set)?  `dedupe`,
  `overlapping`;
- does it read like the real users it imitates?  `two_sample_auc`, `length_distance`,
  `vocabulary_distance`, `realism`;
- is each utterance plausible language at all?  `NgramLM`, a trigram model trained on real utterances.

Every figure uses one tokenizer (`tokens`), so a "word" means the same thing in all of them. Everything is
deterministic (sampling from seeded generators, hash functions drawn once from a fixed seed), so a gate gives
the same verdict twice for the same batch. Batches of a few thousand texts, checked against tens of
thousands of forbidden ones, take seconds: near duplicates are found with MinHash and LSH banding rather
than by comparing every pair.
"""

from __future__ import annotations

import math
import random
import re
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from botdrill.scenarios import BotdrillError

__all__ = [
    "Diversity",
    "NgramLM",
    "Realism",
    "TextStatsError",
    "dedupe",
    "dispersion",
    "distinct_n",
    "diversity",
    "length_distance",
    "normalise",
    "overlapping",
    "realism",
    "self_bleu",
    "tokens",
    "two_sample_auc",
    "vocabulary_distance",
]


class TextStatsError(BotdrillError):
    """A text statistic was asked for with arguments it cannot honour (an n-gram order below 1, say)."""

    code = "textstats_invalid"


# -- tokens ---------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")
_CURLY = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})


def tokens(text: str) -> list[str]:
    """The lowercase word tokens of `text`: the one tokenizer every statistic here uses.

    Tokens are runs of `[a-z0-9']` after casefolding, digits kept (amounts and card digits are part of what
    users say), with apostrophes kept inside a word (`don't`) but not at its edges, so quoting a word does
    not make a new one. Curly apostrophes, as phones type them, count as straight ones.

    >>> tokens("I can't find my card ending 4321!")
    ['i', "can't", 'find', 'my', 'card', 'ending', '4321']
    """
    return _TOKEN.findall(text.casefold().translate(_CURLY))


def _ngrams(words: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]


def _check_order(n: int) -> None:
    if n < 1:
        raise TextStatsError(f"an n-gram order must be at least 1, not {n}")


# -- diversity ------------------------------------------------------------------------------------------


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct n-grams over all n-grams in the batch (n-grams do not cross texts); 0.0 when there are none.

    The cheapest diversity figure: a batch that reuses its phrases scores low. It falls as batches grow,
    so compare it between batches of similar size.

    >>> distinct_n(["my card is lost", "my card is stolen"], 1)
    0.625
    """
    _check_order(n)
    seen: set[tuple[str, ...]] = set()
    total = 0
    for text in texts:
        grams = _ngrams(tokens(text), n)
        total += len(grams)
        seen.update(grams)
    return len(seen) / total if total else 0.0


@dataclass
class _Top2:
    """The two largest counts of one n-gram over the texts of a batch, and which text holds the largest."""

    first: int = 0
    owner: int = -1
    second: int = 0


def self_bleu(texts: Sequence[str], *, n: int = 4, sample: int = 500, seed: int = 0) -> float:
    """Mean sentence BLEU of each text against all the other texts of the batch; lower is more diverse.

    BLEU here is the geometric mean of the clipped n-gram precisions for orders 1..`n` (uniform weights)
    times the brevity penalty against the closest reference length (ties to the shorter). Short texts
    often share no 3- or 4-gram with anything, which would zero the whole score, so orders 2 and up are
    smoothed by adding one to both the matches and the total: BLEU+1 (Lin and Och, 2004; smoothing 2 in
    Chen and Cherry, 2014). Unigram precision is not smoothed, so a text sharing no word scores 0.

    At most `sample` texts are scored as hypotheses, drawn with `random.Random(seed)`; each is still
    compared with every other text. That stays linear in the batch: clipping needs only the largest count
    of each n-gram among the references, and the largest count among "all texts but this one" is the
    batch's largest, or its second largest when this text holds the largest.

    Returns 0.0 for fewer than two texts (there is nothing to be similar to).

    >>> self_bleu(["i lost my card", "i lost my card"])
    1.0
    """
    _check_order(n)
    if sample < 1:
        raise TextStatsError(f"self-BLEU needs a sample of at least one text, not {sample}")
    if len(texts) < 2:
        return 0.0
    words = [tokens(t) for t in texts]
    counts: list[list[Counter[tuple[str, ...]]]] = [
        [Counter(_ngrams(w, k)) for k in range(1, n + 1)] for w in words
    ]
    top: list[dict[tuple[str, ...], _Top2]] = [{} for _ in range(n)]
    for j, per_order in enumerate(counts):
        for k, grams in enumerate(per_order):
            table = top[k]
            for gram, c in grams.items():
                entry = table.get(gram)
                if entry is None:
                    table[gram] = _Top2(c, j, 0)
                elif c > entry.first:
                    entry.second, entry.first, entry.owner = entry.first, c, j
                elif c > entry.second:
                    entry.second = c
    lengths = Counter(len(w) for w in words)
    hypotheses: Sequence[int] = range(len(texts))
    if len(texts) > sample:
        hypotheses = sorted(random.Random(seed).sample(range(len(texts)), sample))
    total = 0.0
    for i in hypotheses:
        total += _bleu_against_others(i, counts[i], top, lengths, len(words[i]))
    return total / len(hypotheses)


def _bleu_against_others(
    i: int,
    grams: list[Counter[tuple[str, ...]]],
    top: list[dict[tuple[str, ...], _Top2]],
    lengths: Counter[int],
    length: int,
) -> float:
    if length == 0:
        return 0.0
    log_precision = 0.0
    for k, order in enumerate(grams):
        table = top[k]
        matched = 0
        for gram, c in order.items():
            entry = table[gram]
            best = entry.second if entry.owner == i else entry.first
            matched += min(c, best)
        possible = max(length - k, 0)
        if k == 0:
            if matched == 0:
                return 0.0
            log_precision += math.log(matched / possible)
        else:
            log_precision += math.log((matched + 1) / (possible + 1))
    others = lengths.copy()
    others[length] -= 1
    reference = min((r for r, c in others.items() if c > 0), key=lambda r: (abs(r - length), r))
    brevity = 0.0 if length > reference else 1.0 - reference / length
    return math.exp(brevity + log_precision / len(grams))


def dispersion(texts: Sequence[str]) -> float:
    """Mean cosine distance of each text's TF-IDF vector (words and word pairs) to the batch's centroid.

    Unlike distinct-n and self-BLEU, which reward any new wording, this asks whether the batch spreads out
    in content: rephrasing one request many ways stays near the centroid. Vectors and the centroid are
    unit length, so the figure lies in [0, 1]. Texts without a word have no direction and are left out;
    with fewer than two texts left, the dispersion is 0.0.
    """
    kept = [t for t in texts if tokens(t)]
    if len(kept) < 2:
        return 0.0
    vectors: Any = _word_vectorizer().fit_transform(kept)
    centroid = np.asarray(vectors.mean(axis=0)).ravel()
    # Every kept text has a word, and TF-IDF weights are not negative, so the centroid is not zero.
    similarity = np.asarray(vectors @ (centroid / np.linalg.norm(centroid))).ravel()
    return max(0.0, float(np.mean(1.0 - similarity)))


def _word_vectorizer() -> Any:
    return TfidfVectorizer(tokenizer=tokens, token_pattern=None, lowercase=False, ngram_range=(1, 2))


@dataclass(frozen=True)
class Diversity:
    """How varied a batch is, by four measures (`n` texts): see each function for what it rewards."""

    distinct_1: float
    distinct_2: float
    self_bleu: float
    dispersion: float
    n: int


def diversity(texts: Sequence[str], seed: int = 0) -> Diversity:
    """Every diversity figure for one batch; `seed` picks the texts self-BLEU samples."""
    return Diversity(
        distinct_1=distinct_n(texts, 1),
        distinct_2=distinct_n(texts, 2),
        self_bleu=self_bleu(texts, seed=seed),
        dispersion=dispersion(texts),
        n=len(texts),
    )


# -- near duplicates ------------------------------------------------------------------------------------

_PUNCT = re.compile(r"[^\w\s]|_")
_SPACE = re.compile(r"\s+")
_APOSTROPHES = re.compile(r"['\u2019\u2018\u02bc]")


def normalise(text: str) -> str:
    """`text` casefolded, without punctuation, with runs of whitespace made one space.

    Apostrophes are dropped (`can't` and `cant` are the same typing), other punctuation becomes a space
    (`e-mail` and `e mail`). Letters outside ASCII are kept, unlike in `tokens`: two texts differing only
    in an accented letter are different texts.

    >>> normalise("  I lost my CARD!!  Can't find it ")
    'i lost my card cant find it'
    """
    text = _APOSTROPHES.sub("", text.casefold())
    return _SPACE.sub(" ", _PUNCT.sub(" ", text)).strip()


def _shingles(norm: str) -> frozenset[str]:
    """Character 3-grams of a normalised text (the whole text when it is shorter)."""
    if len(norm) < 3:
        return frozenset([norm]) if norm else frozenset()
    return frozenset(map("".join, zip(norm, norm[1:], norm[2:], strict=False)))


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


_HASHES = 128
"""MinHash signature length: each text is summarised by the minima of this many hash functions."""
_MISS = 1e-4
"""Banding is chosen so that a pair exactly at the threshold escapes the candidates at most this often."""
_CHUNK = 1 << 14
"""Shingles hashed per numpy block (128 x this many 64-bit values, 16 MiB, held at once)."""

_rng = np.random.default_rng(0x6B6F7464)
_MULT = _rng.integers(0, 2**64 - 1, size=(_HASHES, 1), dtype=np.uint64, endpoint=True) | np.uint64(1)
_ADD = _rng.integers(0, 2**64 - 1, size=(_HASHES, 1), dtype=np.uint64, endpoint=True)
_BAND_MIX = _rng.integers(0, 2**64 - 1, size=_HASHES, dtype=np.uint64, endpoint=True) | np.uint64(1)
del _rng


def _rows_per_band(threshold: float) -> int:
    """The most rows per band (fewest false candidates) that still finds a pair at `threshold` reliably.

    With b bands of r rows, a pair of Jaccard similarity s shares a band with probability 1 - (1 - s^r)^b.
    """
    for rows in range(_HASHES, 0, -1):
        bands = _HASHES // rows
        if (1.0 - threshold**rows) ** bands <= _MISS:
            return rows
    return 1


class _Index:
    """MinHash signatures and LSH band keys of many texts, computed in bulk with numpy.

    A shingle is hashed once with CRC-32 (a fixed function, so a text's signature does not depend on the
    rest of its batch), then by `_HASHES` multiply-add-shift functions ((a*x + b) mod 2^64) >> 32 drawn once
    from a fixed seed; the signature is their minima over the text's shingles.
    """

    def __init__(self, shingles: Sequence[frozenset[str]], rows: int) -> None:
        self.shingles = shingles
        self.rows = rows
        self.bands = _HASHES // rows
        sizes = np.fromiter(map(len, shingles), dtype=np.int64, count=len(shingles))
        crc = {g: zlib.crc32(g.encode()) for g in frozenset().union(*shingles)}
        values = np.fromiter(
            map(crc.__getitem__, chain.from_iterable(shingles)), dtype=np.uint64, count=int(sizes.sum())
        )
        self.signatures = np.zeros((len(shingles), _HASHES), dtype=np.uint32)
        nonempty = np.flatnonzero(sizes)
        starts = np.concatenate(([0], np.cumsum(sizes[nonempty])[:-1])).astype(np.int64)
        # Hash whole texts in blocks of about _CHUNK shingles.
        lo = 0
        while lo < len(nonempty):
            hi = int(np.searchsorted(starts, starts[lo] + _CHUNK, side="left"))
            hi = max(hi, lo + 1)
            begin = int(starts[lo])
            end = int(starts[hi]) if hi < len(nonempty) else len(values)
            block = _MULT * values[begin:end][None, :]
            block += _ADD
            block >>= np.uint64(32)
            minima = np.minimum.reduceat(block, starts[lo:hi] - begin, axis=1)
            self.signatures[nonempty[lo:hi]] = minima.T.astype(np.uint32)
            lo = hi
        banded = self.signatures[:, : self.bands * rows].astype(np.uint64).reshape(-1, self.bands, rows)
        keys = (banded * _BAND_MIX[: self.bands * rows].reshape(self.bands, rows)).sum(axis=2)
        self.key_array = keys
        self.keys: list[list[int]] = keys.tolist()
        self.nonempty = sizes > 0

    def estimate(self, i: int, others: npt.NDArray[np.int64], other: _Index) -> npt.NDArray[np.float64]:
        """MinHash estimates of the Jaccard similarity of text `i` with texts `others` of `other`."""
        same = other.signatures[others] == self.signatures[i]
        return np.asarray(same.mean(axis=1), dtype=np.float64)


class _Buckets:
    """LSH buckets: per band, band key to the texts filed under it."""

    def __init__(self, bands: int) -> None:
        self.tables: list[dict[int, list[int]]] = [{} for _ in range(bands)]

    def add(self, j: int, keys: list[int]) -> None:
        for table, key in zip(self.tables, keys, strict=True):
            hits = table.get(key)
            if hits is None:
                table[key] = [j]
            else:
                hits.append(j)

    def candidates(self, keys: list[int]) -> set[int]:
        found: set[int] = set()
        for table, key in zip(self.tables, keys, strict=True):
            hits = table.get(key)
            if hits:
                found.update(hits)
        return found


class _FiledBuckets:
    """LSH buckets of a fixed set of texts, grouped in bulk with numpy rather than filed one by one.

    Per band, the texts sorted by band key, and each key's run in that order (start, length).
    """

    def __init__(self, index: _Index) -> None:
        filed = np.flatnonzero(index.nonempty)
        self.orders: list[list[int]] = []
        self.tables: list[dict[int, tuple[int, int]]] = []
        for band in range(index.bands):
            column = index.key_array[filed, band]
            order = np.argsort(column, kind="stable")
            keys, starts, counts = np.unique(column[order], return_index=True, return_counts=True)
            self.orders.append(filed[order].tolist())
            runs = zip(starts.tolist(), counts.tolist(), strict=True)
            self.tables.append(dict(zip(keys.tolist(), runs, strict=True)))

    def candidates(self, keys: list[int]) -> set[int]:
        found: set[int] = set()
        for table, order, key in zip(self.tables, self.orders, keys, strict=True):
            run = table.get(key)
            if run is not None:
                found.update(order[run[0] : run[0] + run[1]])
        return found


def _similar(i: int, index: _Index, candidates: set[int], other: _Index, threshold: float) -> bool:
    """Whether text `i` of `index` reaches `threshold` Jaccard similarity with any candidate of `other`.

    Many candidates are first thinned by their MinHash estimate, keeping any within five standard errors
    (plus two hashes) of the threshold, and tried most similar first, so the exact comparison that decides
    runs on few of them.
    """
    mine = index.shingles[i]
    size = len(mine)
    pool: Iterable[int] = candidates
    if len(candidates) > 16:
        ordered = np.fromiter(candidates, dtype=np.int64, count=len(candidates))
        estimates = index.estimate(i, ordered, other)
        slack = 5.0 * math.sqrt(threshold * (1.0 - threshold) / _HASHES) + 2.0 / _HASHES
        close = np.flatnonzero(estimates >= threshold - slack)
        pool = ordered[close[np.argsort(-estimates[close], kind="stable")]].tolist()
    for j in pool:
        theirs = other.shingles[j]
        small, large = sorted((size, len(theirs)))
        if small >= threshold * large - 1e-9 and _jaccard(mine, theirs) >= threshold:
            return True
    return False


def _check_threshold(threshold: float) -> None:
    if not 0.0 < threshold <= 1.0:
        raise TextStatsError(f"a similarity threshold must be in (0, 1], not {threshold}")


def dedupe(texts: Sequence[str], threshold: float = 0.85) -> list[int]:
    """Indices of the texts to keep, in order: each near duplicate of an earlier kept text is dropped.

    A text is a near duplicate when its normalised form (`normalise`) equals a kept text's, or when the
    Jaccard similarity of their character 3-gram sets is at least `threshold`. The first of a group wins,
    so a batch keeps its order. Candidates come from MinHash with LSH banding and are confirmed by the
    exact Jaccard similarity, so nothing is dropped wrongly; the banding is set so that a pair exactly at
    the threshold escapes it about once in 10,000 (more similar pairs, far less often; equal normalised
    forms, never).

    >>> dedupe(["I lost my card", "i lost my card!!", "my card was stolen"])
    [0, 2]
    """
    _check_threshold(threshold)
    norms = [normalise(t) for t in texts]
    index = _Index([_shingles(n) for n in norms], _rows_per_band(threshold))
    buckets = _Buckets(index.bands)
    seen: set[str] = set()
    keep: list[int] = []
    for i, norm in enumerate(norms):
        if norm in seen:
            continue
        if index.nonempty[i]:
            keys = index.keys[i]
            if _similar(i, index, buckets.candidates(keys), index, threshold):
                continue
            buckets.add(i, keys)
        seen.add(norm)
        keep.append(i)
    return keep


_CONTAINED_MIN = 5
"""A forbidden text this many tokens long or more is also caught inside a longer text."""


def overlapping(texts: Sequence[str], forbidden: Sequence[str], threshold: float = 0.85) -> list[int]:
    """Indices of the texts that copy a forbidden text (a test set, say), in order.

    A text copies a forbidden one when their normalised forms are equal, when the Jaccard similarity of
    their character 3-gram sets is at least `threshold`, or when the normalised text contains the whole
    normalised forbidden text, word-aligned, and that is at least five words long (shorter phrases, like
    "my card", are ordinary language, not copying). Forbidden texts that normalise to nothing forbid
    nothing. Similar pairs are found as in `dedupe`: MinHash and LSH candidates, confirmed exactly.

    >>> overlapping(["I lost my card!", "what is the weather"], ["i lost my card"])
    [0]
    """
    _check_threshold(threshold)
    banned = sorted({n for n in (normalise(f) for f in forbidden) if n})
    exact = set(banned)
    rows = _rows_per_band(threshold)
    theirs = _Index([_shingles(n) for n in banned], rows)
    buckets = _FiledBuckets(theirs)
    openings: defaultdict[tuple[str, ...], list[str]] = defaultdict(list)
    for n in banned:
        words = n.split(" ")
        if len(words) >= _CONTAINED_MIN:
            openings[tuple(words[:_CONTAINED_MIN])].append(f" {n} ")
    norms = [normalise(t) for t in texts]
    ours = _Index([_shingles(n) for n in norms], rows)
    flagged: list[int] = []
    for i, norm in enumerate(norms):
        if (
            norm in exact
            or _contains(norm, openings)
            or (ours.nonempty[i] and _similar(i, ours, buckets.candidates(ours.keys[i]), theirs, threshold))
        ):
            flagged.append(i)
    return flagged


def _contains(norm: str, openings: dict[tuple[str, ...], list[str]]) -> bool:
    """Whether `norm` contains, word-aligned, a forbidden text filed under its first five words."""
    if not openings:
        return False
    words = norm.split(" ")
    padded = f" {norm} "
    for k in range(len(words) - _CONTAINED_MIN + 1):
        found = openings.get(tuple(words[k : k + _CONTAINED_MIN]))
        if found and any(f in padded for f in found):
            return True
    return False


# -- real against synthetic -----------------------------------------------------------------------------


def two_sample_auc(real: Sequence[str], synthetic: Sequence[str], *, folds: int = 5, seed: int = 0) -> float:
    """How well a classifier tells real texts from synthetic ones: ROC AUC, 0.5 when it cannot.

    A classifier two-sample test: TF-IDF features (word 1-2-grams and character 2-4-grams within words,
    each found in at least two texts: a feature of one text only can be memorised, never learnt) and
    logistic regression, scored on out-of-fold probabilities from stratified k-fold cross-validation
    (shuffled with `seed`), so every text is judged by a model that never saw it. Well above 0.5, the
    synthetic text has tells that an intent model trained on it would learn instead of the users' language;
    a little below 0.5 is noise around 0.5. The TF-IDF vocabulary and weights are fitted once on all texts;
    they never see which side a text is on, so no label leaks into the folds. When no feature is shared by
    two texts there is nothing to learn from, and the answer is 0.5.

    With fewer texts on a side than `folds`, the folds drop to the smaller side's count; a side with fewer
    than two texts cannot be cross-validated and gives `nan`.
    """
    if folds < 2:
        raise TextStatsError(f"cross-validation needs at least 2 folds, not {folds}")
    smaller = min(len(real), len(synthetic))
    if smaller < 2:
        return math.nan
    folds = min(folds, smaller)
    pooled = [*real, *synthetic]
    labels = np.array([0] * len(real) + [1] * len(synthetic))
    blocks: list[Any] = []
    for vectorizer in (
        TfidfVectorizer(
            tokenizer=tokens,
            token_pattern=None,
            lowercase=False,
            ngram_range=(1, 2),
            sublinear_tf=True,
            min_df=2,
        ),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True, min_df=2),
    ):
        try:
            blocks.append(vectorizer.fit_transform(pooled))
        except ValueError:  # no feature in two texts: this block has nothing to tell the sides apart by
            continue
    if not blocks:
        return 0.5
    features: Any = sparse.hstack(blocks, format="csr")
    out_of_fold = np.zeros(len(pooled), dtype=np.float64)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(np.zeros(len(pooled)), labels):
        model = LogisticRegression(C=1.0, max_iter=1000)
        model.fit(features[train], labels[train])
        out_of_fold[test] = model.predict_proba(features[test])[:, 1]
    return float(roc_auc_score(labels, out_of_fold))


def length_distance(real: Sequence[str], synthetic: Sequence[str]) -> float:
    """Wasserstein-1 distance between the token-length distributions, over the mean real length.

    The earth mover's distance between the two empirical distributions of text lengths in words: how many
    words, on average, a synthetic text must gain or lose to match the real length profile. Dividing by the
    mean real length makes it scale-free (0.2 means a fifth of a typical real text). It is the area between
    the two empirical CDFs, computed exactly from the sorted lengths.

    `nan` when either side is empty; when real texts are all empty, 0.0 if the synthetic ones are too, else
    `inf`.
    """
    if not real or not synthetic:
        return math.nan
    a = np.sort(np.array([len(tokens(t)) for t in real], dtype=np.float64))
    b = np.sort(np.array([len(tokens(t)) for t in synthetic], dtype=np.float64))
    support = np.unique(np.concatenate((a, b)))
    cdf_a = np.searchsorted(a, support[:-1], side="right") / len(a)
    cdf_b = np.searchsorted(b, support[:-1], side="right") / len(b)
    w1 = float(np.sum(np.abs(cdf_a - cdf_b) * np.diff(support)))
    mean = float(a.mean())
    if mean == 0.0:
        return 0.0 if w1 == 0.0 else math.inf
    return w1 / mean


def vocabulary_distance(real: Sequence[str], synthetic: Sequence[str]) -> float:
    """Jensen-Shannon divergence, base 2, between the two sides' word (unigram) distributions.

    0 when both use words in the same proportions, 1 when they share no word; symmetric and finite even
    when one side has words the other never uses (unlike KL divergence). `nan` when a side has no words.
    """
    p_counts = Counter(w for t in real for w in tokens(t))
    q_counts = Counter(w for t in synthetic for w in tokens(t))
    if not p_counts or not q_counts:
        return math.nan
    vocabulary = sorted(p_counts.keys() | q_counts.keys())
    p = np.array([p_counts[w] for w in vocabulary], dtype=np.float64)
    q = np.array([q_counts[w] for w in vocabulary], dtype=np.float64)
    p /= p.sum()
    q /= q.sum()
    m = (p + q) / 2.0

    def kl(x: npt.NDArray[np.float64]) -> float:
        present = x > 0
        return float(np.sum(x[present] * np.log2(x[present] / m[present])))

    return min(1.0, max(0.0, (kl(p) + kl(q)) / 2.0))


@dataclass(frozen=True)
class Realism:
    """How close synthetic text is to real text, by three measures (0.5, 0, 0 when indistinguishable)."""

    auc: float
    length_distance: float
    vocabulary_distance: float
    n_real: int
    n_synthetic: int


def realism(real: Sequence[str], synthetic: Sequence[str], seed: int = 0) -> Realism:
    """Every real-against-synthetic figure for one pair of samples; `seed` shuffles the AUC's folds."""
    return Realism(
        auc=two_sample_auc(real, synthetic, seed=seed),
        length_distance=length_distance(real, synthetic),
        vocabulary_distance=vocabulary_distance(real, synthetic),
        n_real=len(real),
        n_synthetic=len(synthetic),
    )


# -- naturalness ----------------------------------------------------------------------------------------

_BOS = "<s>"
_EOS = "</s>"
_UNK = "<unk>"


def _discount(counts: Iterable[int]) -> float:
    """Ney's absolute discount n1 / (n1 + 2 n2) from the counts of counts, kept within [0.1, 1]."""
    histogram = Counter(c for c in counts if c <= 2)
    n1, n2 = histogram[1], histogram[2]
    if n1 + 2 * n2 == 0:
        return 0.5
    return min(1.0, max(0.1, n1 / (n1 + 2 * n2)))


@dataclass(frozen=True, eq=False, repr=False)
class NgramLM:
    """A word trigram language model with interpolated Kneser-Ney smoothing: a cheap naturalness score.

    Trained on real user utterances and run over synthetic ones, it says how plausible each synthetic text
    is as something a user would type: word salad, template seams and repeated fillers score low.

    Smoothing is interpolated Kneser-Ney (Chen and Goodman, 1998) with one absolute discount per order,
    estimated as n1 / (n1 + 2 n2) from that order's counts of counts: the trigram level uses raw counts,
    the bigram and unigram levels continuation counts (how many distinct words precede an n-gram), and
    the unigram level is itself interpolated with the uniform distribution over the vocabulary, so every
    word, `</s>` and `<unk>` included, gets some probability. Texts are padded with two `<s>` and one
    `</s>`. Words seen fewer than `min_count` times in training are replaced by `<unk>`, which thereby
    learns how often users say something rare; any word unseen in training is `<unk>` when scoring.

    Build one with `NgramLM.fit(texts)`.
    """

    vocabulary: frozenset[str]
    """The words the model predicts: the training words kept, `<unk>` and `</s>` (never `<s>`)."""
    _trigrams: dict[tuple[str, str, str], int]
    _contexts3: dict[tuple[str, str], tuple[int, int]]
    _bigrams: dict[tuple[str, str], int]
    _contexts2: dict[str, tuple[int, int]]
    _unigrams: dict[str, float]
    _discounts: tuple[float, float, float]

    @classmethod
    def fit(cls, texts: Iterable[str], *, min_count: int = 2) -> NgramLM:
        """Train on `texts` (real utterances); words rarer than `min_count` train `<unk>`.

        Raises:
            TextStatsError: no texts at all, or `min_count` below 1.
        """
        if min_count < 1:
            raise TextStatsError(f"min_count must be at least 1, not {min_count}")
        sentences = [tokens(t) for t in texts]
        if not sentences:
            raise TextStatsError("a language model needs at least one text to train on")
        frequency = Counter(w for s in sentences for w in s)
        known = {w for w, c in frequency.items() if c >= min_count}
        trigrams: Counter[tuple[str, str, str]] = Counter()
        for s in sentences:
            padded = [_BOS, _BOS, *(w if w in known else _UNK for w in s), _EOS]
            trigrams.update(zip(padded, padded[1:], padded[2:], strict=False))

        contexts3: defaultdict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        bigrams: Counter[tuple[str, str]] = Counter()
        for (u, v, w), c in trigrams.items():
            entry = contexts3[u, v]
            entry[0] += c
            entry[1] += 1
            bigrams[v, w] += 1  # one more distinct word precedes (v, w)
        contexts2: defaultdict[str, list[int]] = defaultdict(lambda: [0, 0])
        continuation: Counter[str] = Counter()
        for (v, w), c in bigrams.items():
            entry = contexts2[v]
            entry[0] += c
            entry[1] += 1
            continuation[w] += 1  # one more distinct word precedes w
        vocabulary = frozenset(known | {_UNK, _EOS})
        d1 = _discount(continuation.values())
        total = sum(continuation.values())
        uniform = d1 * len(continuation) / total / len(vocabulary)
        unigrams = {w: max(continuation[w] - d1, 0.0) / total + uniform for w in vocabulary}
        return cls(
            vocabulary=vocabulary,
            _trigrams=dict(trigrams),
            _contexts3={k: (v[0], v[1]) for k, v in contexts3.items()},
            _bigrams=dict(bigrams),
            _contexts2={k: (v[0], v[1]) for k, v in contexts2.items()},
            _unigrams=unigrams,
            _discounts=(d1, _discount(bigrams.values()), _discount(trigrams.values())),
        )

    def __repr__(self) -> str:
        return f"NgramLM({len(self.vocabulary)} words, {len(self._trigrams)} trigrams)"

    def _prob(self, u: str, v: str, w: str) -> float:
        """P(w | u v) with all three words already in the model's vocabulary (or `<s>` as context)."""
        _, d2, d3 = self._discounts
        p = self._unigrams[w]
        seen2 = self._contexts2.get(v)
        if seen2 is not None:
            total, types = seen2
            p = (max(self._bigrams.get((v, w), 0) - d2, 0.0) + d2 * types * p) / total
        seen3 = self._contexts3.get((u, v))
        if seen3 is not None:
            total, types = seen3
            p = (max(self._trigrams.get((u, v, w), 0) - d3, 0.0) + d3 * types * p) / total
        return p

    def _known(self, word: str) -> str:
        return word if word in self.vocabulary else _UNK

    def probability(self, word: str, context: Sequence[str] = ()) -> float:
        """P(`word` | the last two words of `context`), context padded with `<s>` at a text's start.

        `word` and `context` are tokens (`</s>` may be the word); words the model does not know count
        as `<unk>`. Over `vocabulary` the probabilities sum to one for any context.
        """
        last = [_BOS, _BOS, *(w if w == _BOS else self._known(w) for w in context)][-2:]
        return self._prob(last[0], last[1], _EOS if word == _EOS else self._known(word))

    def _logprob(self, words: list[str]) -> float:
        vocabulary = self.vocabulary
        u, v = _BOS, _BOS
        total = 0.0
        for w in [*(w if w in vocabulary else _UNK for w in words), _EOS]:
            total += math.log(self._prob(u, v, w))
            u, v = v, w
        return total

    def logprob(self, text: str) -> float:
        """The natural log of the probability of `text`, its end (`</s>`) included."""
        return self._logprob(tokens(text))

    def score(self, text: str) -> float:
        """Mean log-probability per token, `</s>` counted: higher is more natural; comparable by length."""
        words = tokens(text)
        return self._logprob(words) / (len(words) + 1)

    def scores(self, texts: Iterable[str]) -> list[float]:
        """`score` of each text."""
        return [self.score(t) for t in texts]
