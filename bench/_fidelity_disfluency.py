"""Fidelity of botdrill's disfluencies: do they look like the ones people write?

Each fluent question of Disfl-QA (train + dev) is rewritten by botdrill's `disfluency` perturbation at
intensity 1, with no pack and with distractors (words, short phrases and openings) taken from three other
questions drawn at random, as the engine takes them from the pack. The rewrites are then set beside the
human rewrites of the same questions:

- `tvd_types`: total variation distance between the shares of disfluency types (restart, correction, ...),
  both sides typed by the same rule, `analyse_pair`.
- `tvd_editing_terms`: the same for the editing phrases of the first repair, as a whole ("or rather",
  "no I mean", none); phrases under 1% of the human repairs are pooled as "(other)".
- `tvd_editing_phrases`: the same phrase by phrase ("no", "sorry", "make that"...), a finer view.
- `auc`: ROC AUC of a character n-gram logistic regression telling botdrill's rewrites from the humans',
  5-fold cross-validated with both rewrites of a question in the same fold, so it cannot learn the
  questions. 0.5 means indistinguishable. Its strongest n-grams on each side say what gives botdrill away.

The train-vs-dev distances of the human rewrites are reported too: the noise floor of the distances.

    python -m bench._fidelity_disfluency [--data DIR] [--seed N]
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from botdrill.agents._disfluency import (
    DISFLUENCY_TYPES,
    QUESTION_WORDS,
    STOPWORDS,
    PairAnalysis,
    analyse_pair,
)
from botdrill.agents._perturb import NoiseContext, Utterance, get_perturbation

from ._data import default_data_dir
from .calibrate_disfluency import load_pairs

_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'.-]*[A-Za-z0-9]|[A-Za-z0-9]")
_OTHERS = 3
"""Other questions each rewrite may borrow distractors from."""
_POOLED = 0.01
"""Editing terms under this share of the human repairs are pooled."""
_TOP = 12


def distractors_from(questions: Iterable[str], rng: random.Random) -> tuple[str, ...]:
    """What a user might say by mistake, taken from other questions: content words, phrases of up to six
    words that start and end on a content word, and the question's opening (for a false start)."""
    out: list[str] = []
    for question in questions:
        words = _WORD.findall(question)
        content = [i for i, w in enumerate(words) if w.lower() not in STOPWORDS]
        phrases = [
            " ".join(words[i : j + 1])
            for i in content
            for j in content
            if 0 < j - i < 6 and words[i].lower() not in QUESTION_WORDS
        ]
        out += [words[i] for i in content if words[i].lower() not in QUESTION_WORDS]
        out += rng.sample(phrases, min(len(phrases), 6))
        if words and words[0].lower() in QUESTION_WORDS:
            out.append(" ".join(words[:10]))
    return tuple(out)


def rewrite_all(originals: Sequence[str], seed: int) -> list[str]:
    """Every question rewritten by `disfluency` at intensity 1, each with its own seeded stream."""
    spec = get_perturbation("disfluency")
    rewrites = []
    for i, original in enumerate(originals):
        rng = random.Random(f"disfluency-fidelity:{seed}:{i}")
        others = [originals[j + (j >= i)] for j in rng.sample(range(len(originals) - 1), _OTHERS)]
        ctx = NoiseContext(pack=None, distractors=distractors_from(others, rng))
        rewrites.append(spec(Utterance(text=original, intent="question"), rng, 1, ctx).text)
    return rewrites


def _distribution(labels: Iterable[str]) -> dict[str, float]:
    counts = Counter(labels)
    total = sum(counts.values()) or 1
    return {k: c / total for k, c in counts.most_common()}


def tvd(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    """Total variation distance between two distributions over labels."""
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in set(p) | set(q))


def _terms(analyses: Iterable[PairAnalysis]) -> list[str]:
    return [a.editing_term or "(none)" for a in analyses if a.type in ("restart", "correction")]


def _phrases(analyses: Iterable[PairAnalysis]) -> list[str]:
    out: list[str] = []
    for a in analyses:
        if a.type in ("restart", "correction"):
            out += list(a.editing_phrases) or ["(none)"]
    return out


def _pooled(dist: Mapping[str, float], keep: set[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for label, share in dist.items():
        key = label if label in keep else "(other)"
        out[key] = out.get(key, 0.0) + share
    return out


def _term_tvd(human: Sequence[PairAnalysis], ours: Sequence[PairAnalysis]) -> float:
    h = _distribution(_terms(human))
    keep = {k for k, v in h.items() if v >= _POOLED}
    return tvd(_pooled(h, keep), _pooled(_distribution(_terms(ours)), keep))


def _auc(human: Sequence[str], ours: Sequence[str]) -> tuple[float, list[float], dict[str, list[str]]]:
    """Cross-validated AUC of a char n-gram classifier, per-fold AUCs, and its strongest n-grams."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold
    from sklearn.pipeline import make_pipeline

    texts = [*human, *ours]
    y = np.array([0] * len(human) + [1] * len(ours))
    groups = np.array([*range(len(human)), *range(len(ours))])

    def classifier() -> Any:
        return make_pipeline(
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4)), LogisticRegression(max_iter=2000)
        )

    scores = np.zeros(len(texts))
    folds = []
    for train, test in GroupKFold(n_splits=5).split(texts, y, groups):
        model = classifier().fit([texts[i] for i in train], y[train])
        scores[test] = model.predict_proba([texts[i] for i in test])[:, 1]
        folds.append(round(float(roc_auc_score(y[test], scores[test])), 4))
    full = classifier().fit(texts, y)
    names = full[0].get_feature_names_out()
    coef = full[-1].coef_[0]
    order = np.argsort(coef)
    top = {
        "botdrill": [repr(str(names[i])) for i in order[::-1][:_TOP]],
        "human": [repr(str(names[i])) for i in order[:_TOP]],
    }
    return round(float(roc_auc_score(y, scores)), 4), folds, top


def report(data_dir: Path, seed: int) -> dict[str, Any]:
    """The fidelity figures of `disfluency` against Disfl-QA (see the module docstring).

    Args:
        data_dir: the folder holding `disfl-qa/` (or the Disfl-QA folder itself).
        seed: seeds the distractors and the rewrites.

    Raises:
        FileNotFoundError: the data set is not there.
    """
    pairs = load_pairs(data_dir)
    originals = [o for _, o, _ in pairs]
    humans = [d for _, _, d in pairs]
    ours = rewrite_all(originals, seed)
    human_a = [analyse_pair(o, d) for o, d in zip(originals, humans, strict=True)]
    ours_a = [analyse_pair(o, d) for o, d in zip(originals, ours, strict=True)]
    types_h = _distribution(a.type for a in human_a)
    types_o = _distribution(a.type for a in ours_a)
    n_train = len(load_pairs(data_dir, splits=("train",)))
    train, dev = human_a[:n_train], human_a[n_train:]
    auc, folds, top = _auc(humans, ours)
    return {
        "n_pairs": len(pairs),
        "n_examples": 2 * len(pairs),
        "seed": seed,
        "tvd_types": round(tvd(types_h, types_o), 4),
        "tvd_editing_terms": round(_term_tvd(human_a, ours_a), 4),
        "tvd_editing_phrases": round(
            tvd(_distribution(_phrases(human_a)), _distribution(_phrases(ours_a))), 4
        ),
        "auc": auc,
        "auc_folds": folds,
        "types": {
            "human": {t: round(types_h.get(t, 0.0), 4) for t in DISFLUENCY_TYPES},
            "botdrill": {t: round(types_o.get(t, 0.0), 4) for t in DISFLUENCY_TYPES},
        },
        "noise_floor": {
            "tvd_types_train_vs_dev": round(
                tvd(_distribution(a.type for a in train), _distribution(a.type for a in dev)), 4
            ),
            "tvd_editing_terms_train_vs_dev": round(_term_tvd(train, dev), 4),
        },
        "top_ngrams": top,
        "targets": {"tvd_types": 0.1, "auc": 0.65},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=None, help="folder holding disfl-qa/")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(json.dumps(report(args.data or default_data_dir(), args.seed), indent=2))


if __name__ == "__main__":
    main()
