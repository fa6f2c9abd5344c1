"""How close botdrill's misspellings come to real ones (the typo part of `bench/fidelity.py`).

For every real `(word, misspelling)` pair of `misspellings/wikipedia.dat`, botdrill misspells the same
word once (`misspell`, seeded, desktop channel: the real list was typed on keyboards). Two figures:

- `tvd_edit_types`: total variation distance between the edit-type mix of botdrill's misspellings and
  the real one (omission, insertion, substitution, transposition, multi). Target: at most 0.1.
- `auc`: how well a character n-gram logistic regression tells botdrill's misspellings from the real
  ones, cross-validated in 5 folds grouped by word (0.5: indistinguishable). No target; lower is better.

`listed_share` and `exact_match_share` say how much of botdrill's output came from its own list of
misspellings and how much is letter for letter a real one: both lower the AUC honestly, since the same
misspelling on both sides cannot be told apart.

    python -m bench._fidelity_typos [--data DIR] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from botdrill.agents._typos import EDIT_TYPES, edit_type, misspell, read_misspellings

_WORD = re.compile(r"[A-Za-z][A-Za-z']*")
SOURCE = Path("misspellings") / "wikipedia.dat"


def _shares(types: Iterable[str | None]) -> dict[str, float]:
    counts = Counter(types)
    total = sum(counts[t] for t in EDIT_TYPES)
    return {t: round(counts[t] / total, 4) for t in EDIT_TYPES}


def report(data_dir: Path, seed: int) -> dict[str, Any]:
    """The typo fidelity figures (prints nothing).

    Args:
        data_dir: the data folder, holding `misspellings/wikipedia.dat`.
        seed: seeds botdrill's misspellings; the cross-validation folds do not depend on it.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_score
    from sklearn.pipeline import make_pipeline

    real = [(c, w) for c, w in read_misspellings(data_dir / SOURCE) if edit_type(c, w) is not None]
    rng = random.Random(seed)
    ours: list[tuple[str, str, bool]] = []
    for correct, _ in real:
        # Entries of several words ("a lot" -> "alot") have no counterpart in a per-word perturbation.
        made = misspell(correct, rng, channel="desktop_chat") if _WORD.fullmatch(correct) else None
        if made is not None:
            ours.append((correct, made.wrong, made.listed))

    real_mix = _shares(edit_type(c, w) for c, w in real)
    our_mix = _shares(edit_type(c, w) for c, w, _ in ours)
    tvd = 0.5 * sum(abs(real_mix[t] - our_mix[t]) for t in EDIT_TYPES)

    texts = [w for _, w in real] + [w for _, w, _ in ours]
    labels = [0] * len(real) + [1] * len(ours)
    groups = [c.lower() for c, _ in real] + [c.lower() for c, _, _ in ours]
    model = make_pipeline(
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4)), LogisticRegression(max_iter=2000)
    )
    aucs = cross_val_score(model, texts, labels, groups=groups, cv=GroupKFold(n_splits=5), scoring="roc_auc")

    real_set = {(c.lower(), w.lower()) for c, w in real}
    return {
        "tvd_edit_types": round(tvd, 4),
        "real_edit_types": real_mix,
        "botdrill_edit_types": our_mix,
        "n": len(ours),
        "n_real": len(real),
        "auc": round(float(aucs.mean()), 4),
        "auc_folds": [round(float(a), 4) for a in aucs],
        "auc_features": "char_wb 2-4 tf-idf + logistic regression, 5-fold GroupKFold by word",
        "listed_share": round(sum(listed for _, _, listed in ours) / len(ours), 4),
        "exact_match_share": round(
            sum((c.lower(), w.lower()) in real_set for c, w, _ in ours) / len(ours), 4
        ),
        "channel": "desktop_chat",
        "seed": seed,
    }


def main() -> None:
    from bench._data import default_data_dir

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=None, help="folder holding misspellings/wikipedia.dat")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(json.dumps(report(args.data or default_data_dir(), args.seed), indent=2))


if __name__ == "__main__":
    main()
