"""The text statistics behind the synthetic-data quality gates, on hand-worked examples and brute force."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from botdrill.analysis._textstats import (
    Diversity,
    NgramLM,
    Realism,
    TextStatsError,
    dedupe,
    dispersion,
    distinct_n,
    diversity,
    length_distance,
    normalise,
    overlapping,
    realism,
    self_bleu,
    tokens,
    two_sample_auc,
    vocabulary_distance,
)
from botdrill.scenarios import BotdrillError

_OPENERS = ["i", "i think i", "so i", "my partner", "we", "honestly i"]
_VERBS = ["lost", "can't find", "misplaced", "had stolen", "need to replace", "want to freeze"]
_OBJECTS = ["my card", "my debit card", "the credit card", "my new card", "my visa card"]
_ENDINGS = ["", "yesterday", "this morning", "at the shop", "last night", "please help", "what do i do"]


def _banking(n: int, seed: int) -> list[str]:
    """Utterances about a lost card, as one simulated user population would type them."""
    rng = random.Random(seed)
    return [
        " ".join(
            w
            for w in (rng.choice(_OPENERS), rng.choice(_VERBS), rng.choice(_OBJECTS), rng.choice(_ENDINGS))
            if w
        )
        for _ in range(n)
    ]


def _weather(n: int, seed: int) -> list[str]:
    """Texts from a quite different population: nothing a banking user would say."""
    rng = random.Random(seed)
    places = ["paris", "leeds", "the coast", "glasgow", "town", "the mountains"]
    days = ["tomorrow", "on saturday", "this weekend", "tonight", "next week"]
    asks = ["will it rain in", "how hot is it in", "is it sunny in", "should i pack a coat for"]
    return [f"{rng.choice(asks)} {rng.choice(places)} {rng.choice(days)}" for _ in range(n)]


# -- tokens ---------------------------------------------------------------------------------------------


def test_tokens_lowercase_words_digits_and_inner_apostrophes() -> None:
    assert tokens("I CAN'T find my card ending 4321!") == [
        "i",
        "can't",
        "find",
        "my",
        "card",
        "ending",
        "4321",
    ]
    assert tokens("\u2018quoted\u2019 don\u2019t") == ["quoted", "don't"]
    assert tokens("?!") == []


def test_errors_are_botdrill_errors() -> None:
    assert issubclass(TextStatsError, BotdrillError)
    with pytest.raises(TextStatsError):
        distinct_n(["a b"], 0)
    with pytest.raises(TextStatsError):
        self_bleu(["a b", "a c"], sample=0)
    with pytest.raises(TextStatsError):
        dedupe(["a"], threshold=0.0)
    with pytest.raises(TextStatsError):
        overlapping(["a"], ["a"], threshold=1.5)
    with pytest.raises(TextStatsError):
        two_sample_auc(["a", "b"], ["c", "d"], folds=1)


# -- diversity ------------------------------------------------------------------------------------------


def test_distinct_n_by_hand() -> None:
    assert distinct_n(["a b a b"], 1) == 0.5  # a, b of a b a b
    assert distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)  # (a b), (b a) of (a b), (b a), (a b)
    assert distinct_n(["my card is lost", "my card is stolen"], 1) == 5 / 8
    assert distinct_n(["my card", "card is"], 2) == 1.0  # n-grams do not run across texts
    assert distinct_n(["one", ""], 2) == 0.0
    assert distinct_n([], 1) == 0.0


def _bleu(hypothesis: list[str], references: list[list[str]], n: int = 4) -> float:
    """Sentence BLEU with add-one smoothing above unigrams, written out the slow way."""
    if not hypothesis:
        return 0.0
    log_precision = 0.0
    for k in range(1, n + 1):
        grams = Counter(tuple(hypothesis[i : i + k]) for i in range(len(hypothesis) - k + 1))
        best: Counter[tuple[str, ...]] = Counter()
        for reference in references:
            for gram, c in Counter(
                tuple(reference[i : i + k]) for i in range(len(reference) - k + 1)
            ).items():
                best[gram] = max(best[gram], c)
        matched = sum(min(c, best[g]) for g, c in grams.items())
        possible = max(len(hypothesis) - k + 1, 0)
        if k == 1:
            if matched == 0:
                return 0.0
            log_precision += math.log(matched / possible)
        else:
            log_precision += math.log((matched + 1) / (possible + 1))
    closest = min((len(r) for r in references), key=lambda r: (abs(r - len(hypothesis)), r))
    brevity = 1.0 if len(hypothesis) > closest else math.exp(1 - closest / len(hypothesis))
    return brevity * math.exp(log_precision / n)


def test_self_bleu_identical_batch_is_one_and_diverse_batch_lower() -> None:
    assert self_bleu(["i lost my card at the shop"] * 5) == pytest.approx(1.0)
    varied = [
        "i lost my card at the shop",
        "what is the balance on my savings account",
        "send fifty pounds to my landlord",
        "why was i charged twice for one coffee",
        "can i speak to a real person please",
    ]
    assert self_bleu(varied) < 0.3
    assert self_bleu(["only one text"]) == 0.0
    assert self_bleu([]) == 0.0


def test_self_bleu_matches_brute_force_against_all_other_texts() -> None:
    # "card card card" holds the largest count of (card,): the others must be clipped by the second largest.
    texts = [*_banking(40, 3), "card card card", "card", "my card card", ""]
    words = [tokens(t) for t in texts]
    expected = sum(_bleu(w, words[:i] + words[i + 1 :]) for i, w in enumerate(words)) / len(words)
    assert self_bleu(texts) == pytest.approx(expected)
    assert self_bleu(texts, n=2) == pytest.approx(
        sum(_bleu(w, words[:i] + words[i + 1 :], 2) for i, w in enumerate(words)) / len(words)
    )


def test_self_bleu_sample_is_deterministic() -> None:
    texts = _banking(60, 4)
    assert self_bleu(texts, sample=10, seed=1) == self_bleu(texts, sample=10, seed=1)
    assert 0.0 < self_bleu(texts, sample=10, seed=1) <= 1.0


def test_dispersion() -> None:
    assert dispersion(["i lost my card"] * 4) == pytest.approx(0.0, abs=1e-12)
    assert dispersion(["i lost my card"]) == 0.0
    assert dispersion(["i lost my card", "", "!!"]) == 0.0  # one text with words
    spread = dispersion(["i lost my card", "what is my balance", "book a branch appointment"])
    close = dispersion(["i lost my card", "i lost my card today", "i lost my debit card"])
    assert 0.0 < close < spread <= 1.0


def test_diversity_gathers_the_figures() -> None:
    texts = _banking(30, 5)
    result = diversity(texts, seed=2)
    assert result == Diversity(
        distinct_1=distinct_n(texts, 1),
        distinct_2=distinct_n(texts, 2),
        self_bleu=self_bleu(texts, seed=2),
        dispersion=dispersion(texts),
        n=30,
    )


# -- near duplicates ------------------------------------------------------------------------------------


def test_normalise() -> None:
    assert normalise("  I lost my CARD!!  Can't   find it ") == "i lost my card cant find it"
    assert normalise("e-mail_address") == "e mail address"
    assert normalise("...") == ""


def test_dedupe_keeps_first_and_drops_near_duplicates() -> None:
    texts = [
        "I lost my card",
        "i lost my card!!",  # same normalised form
        "where is my nearest branch",
        "I lost my cards",  # one letter more
        "I lost my card.",
        "my card was stolen",
        "Where is my nearest branch?",
        "",
        "...",  # normalises to the empty text, like the one before
    ]
    assert dedupe(texts) == [0, 2, 5, 7]
    assert dedupe(texts, threshold=1.0) == [0, 2, 3, 5, 7]
    assert dedupe([]) == []


def _grams(text: str) -> set[str]:
    s = normalise(text)
    return {s[i : i + 3] for i in range(len(s) - 2)} if len(s) >= 3 else ({s} if s else set())


def _jaccard(x: set[str], y: set[str]) -> float:
    return len(x & y) / len(x | y) if x and y else 0.0


def _noisy(n: int, seed: int) -> list[str]:
    """Banking utterances with a few letters typed wrong, so similarities spread over the whole range."""
    rng = random.Random(seed)
    out = []
    for text in _banking(n, seed):
        chars = list(text)
        for _ in range(rng.randint(0, 3)):
            chars[rng.randrange(len(chars))] = rng.choice("aeiost ")
        out.append("".join(chars))
    return out


@pytest.mark.parametrize("threshold", [0.6, 0.85, 0.95])
def test_dedupe_and_overlapping_agree_with_all_pairs(threshold: float) -> None:
    texts = _noisy(200, 6)
    norms, grams = [normalise(t) for t in texts], [_grams(t) for t in texts]
    keep: list[int] = []
    for i in range(len(texts)):
        if not any(norms[i] == norms[j] or _jaccard(grams[i], grams[j]) >= threshold for j in keep):
            keep.append(i)
    assert dedupe(texts, threshold) == keep

    forbidden = _noisy(300, 7)
    banned = [(normalise(f), _grams(f)) for f in forbidden]
    flagged = [
        i
        for i in range(len(texts))
        if any(
            norms[i] == f
            or _jaccard(grams[i], g) >= threshold
            or (len(f.split()) >= 5 and f" {f} " in f" {norms[i]} ")
            for f, g in banned
        )
    ]
    assert overlapping(texts, forbidden, threshold) == flagged


def test_overlapping_flags_copies_near_copies_and_containing_texts() -> None:
    forbidden = ["I lost my card yesterday at the station", "What's my balance?", "..."]
    texts = [
        "i lost my card yesterday at the station",  # 0: the forbidden text itself
        "I lost my card yesterday at the stations!",  # 1: a near copy
        "hello, I lost my card yesterday at the station. Can you help?",  # 2: contains it whole
        "whats my balance",  # 3: same normalised form
        "so what's my balance today then",  # 4: contains a forbidden text of three words only
        "book me a flight to paris",  # 5: unrelated
        "I lost my card",  # 6: part of a forbidden text, not a copy
        "",  # 7: an empty forbidden text forbids nothing
        "i lost my card yesterday at the stationery shop",  # 8: not word-aligned, and not similar enough
    ]
    assert overlapping(texts, forbidden) == [0, 1, 2, 3]
    assert overlapping(texts, []) == []
    assert overlapping([], forbidden) == []


# -- real against synthetic -----------------------------------------------------------------------------


def test_two_sample_auc_near_half_for_one_population_and_high_for_two() -> None:
    same = two_sample_auc(_banking(120, 1), _banking(120, 2))
    assert 0.3 <= same <= 0.7
    different = two_sample_auc(_banking(60, 1), _weather(60, 2))
    assert different > 0.9


def test_two_sample_auc_small_samples() -> None:
    assert math.isnan(two_sample_auc(["i lost my card"], _banking(10, 1)))
    assert math.isnan(two_sample_auc([], []))
    # Two texts a side: the folds drop to two.
    assert 0.0 <= two_sample_auc(_banking(2, 1), _weather(3, 2)) <= 1.0
    # Nothing shared by two texts: nothing to learn.
    assert two_sample_auc(["a", "b"], ["c", "d"]) == 0.5


def test_length_distance() -> None:
    real = ["i lost my card", "where is the branch", "hi"]
    assert length_distance(real, list(reversed(real))) == 0.0
    assert length_distance(["a b", "c d"], ["a b c d", "e f g h"]) == 1.0  # W1 = 2 words, mean real 2
    # W1 between {1, 3} and {2, 2} is 1 word; the mean real length is 2.
    assert length_distance(["a", "a b c"], ["a b", "c d"]) == 0.5
    assert length_distance(real, ["i lost my card yesterday at the shop near the station"]) > 1.0
    assert math.isnan(length_distance([], real))
    assert length_distance(["!"], ["?"]) == 0.0
    assert length_distance(["!"], ["a"]) == math.inf


def test_vocabulary_distance() -> None:
    real = ["i lost my card", "my card is gone"]
    assert vocabulary_distance(real, list(reversed(real))) == pytest.approx(0.0, abs=1e-12)
    assert vocabulary_distance(real, ["will it rain tomorrow"]) == pytest.approx(1.0)
    # P = (a 1/2, b 1/2), Q = (a 1/2, c 1/2): JSD = 1/2 bit.
    assert vocabulary_distance(["a b"], ["a c"]) == pytest.approx(0.5)
    assert math.isnan(vocabulary_distance(["!!"], real))


def test_realism_gathers_the_figures() -> None:
    real, synthetic = _banking(20, 1), _weather(20, 2)
    assert realism(real, synthetic, seed=3) == Realism(
        auc=two_sample_auc(real, synthetic, seed=3),
        length_distance=length_distance(real, synthetic),
        vocabulary_distance=vocabulary_distance(real, synthetic),
        n_real=20,
        n_synthetic=20,
    )


# -- naturalness ----------------------------------------------------------------------------------------

_CORPUS = [
    "i lost my card",
    "i lost my card yesterday",
    "my card was stolen",
    "my card was stolen yesterday",
    "i lost my wallet",
    "someone stole my card",
    "where is my card",
    "i think i lost my card",
    "my new card has not arrived",
    "my card has not arrived",
    "zebra",  # seen once: trains <unk>
]


@pytest.mark.parametrize(
    "context",
    [
        [],  # the start of a text
        ["i"],
        ["i", "lost"],  # a seen trigram context
        ["my", "card"],
        ["card", "was"],
        ["lost", "card"],  # an unseen pair of seen words
        ["qwerty", "card"],  # an unknown word in the context
        ["my", "zebra"],  # a training word rarer than min_count
        ["qwerty", "asdf"],
    ],
)
def test_lm_next_word_probabilities_sum_to_one(context: list[str]) -> None:
    lm = NgramLM.fit(_CORPUS)
    assert {"</s>", "<unk>", "card", "my"} <= lm.vocabulary
    assert "zebra" not in lm.vocabulary and "<s>" not in lm.vocabulary
    probabilities = [lm.probability(w, context) for w in lm.vocabulary]
    assert all(p > 0.0 for p in probabilities)
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-9)


def test_lm_logprob_is_the_sum_of_next_word_log_probabilities() -> None:
    lm = NgramLM.fit(_CORPUS)
    words = ["i", "lost", "my", "qwerty"]
    expected = sum(math.log(lm.probability(w, words[:k])) for k, w in enumerate([*words, "</s>"]))
    assert lm.logprob("I lost my QWERTY!") == pytest.approx(expected)
    assert lm.score("I lost my QWERTY!") == pytest.approx(expected / 5)
    assert lm.scores(["I lost my QWERTY!", ""]) == [lm.score("I lost my QWERTY!"), lm.score("")]


def test_lm_prefers_fluent_text_to_shuffled_words() -> None:
    lm = NgramLM.fit(_banking(400, 8))
    rng = random.Random(0)
    for sentence in _banking(20, 9):
        words = sentence.split()
        shuffled = words[:]
        while shuffled == words:
            rng.shuffle(shuffled)
        assert lm.score(sentence) > lm.score(" ".join(shuffled)), sentence


def test_lm_unknown_words_and_empty_texts() -> None:
    lm = NgramLM.fit(_CORPUS)
    for text in ["xyzzy plugh", "", "!!!", "my card was qwerty"]:
        assert math.isfinite(lm.score(text))
        assert lm.score(text) < 0.0
    assert lm.score("my card was stolen") > lm.score("my card was xyzzy")


def test_lm_fit_rejects_nothing_to_learn() -> None:
    with pytest.raises(TextStatsError):
        NgramLM.fit([])
    with pytest.raises(TextStatsError):
        NgramLM.fit(["a"], min_count=0)
    lm = NgramLM.fit(["", "!"])  # texts without words still teach where texts end
    assert lm.vocabulary == frozenset({"</s>", "<unk>"})
    assert lm.probability("</s>") + lm.probability("anything") == pytest.approx(1.0)
