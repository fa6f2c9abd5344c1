"""Does botdrill's human noise look like the real thing? Distances and classifier AUCs against real data.

- Disfluencies: botdrill's `disfluency` perturbation rewrites the fluent questions of Disfl-QA (train and
  dev); the disfluency types and editing phrases are compared with the human rewrites of the same
  questions (total variation distance, target <= 0.1), and a character n-gram logistic regression,
  cross-validated with both rewrites of a question in one fold, tries to tell the two apart (ROC AUC,
  target <= 0.65; 0.5 means indistinguishable).
- Typos: botdrill's `typo` generator misspells the words of the Wikipedia misspellings list; the edit types
  (omission, insertion, substitution, transposition, several) are compared with the real misspellings
  (total variation distance, target <= 0.1), and a classifier tries to tell them apart (AUC, reported).

    python -m bench.fidelity [--data DIR] [--seed N] [--json]

The data folder holds `disfl-qa/` and `misspellings/` (default: `$BOTDRILL_DATA`, else `shared/data`
beside the checkout). Takes about a minute on two cores.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from . import _fidelity_disfluency, _fidelity_typos
from ._data import default_data_dir


def _line(name: str, value: float, target: float | None) -> str:
    if target is None:
        return f"  {name:<22} {value:>7.4f}   (no target)"
    verdict = "ok" if value <= target else "ABOVE TARGET"
    return f"  {name:<22} {value:>7.4f}   target <= {target:<5g} ratio {value / target:5.2f}  {verdict}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=None, help="folder holding disfl-qa/ and misspellings/")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the full reports as JSON")
    args = parser.parse_args(argv)
    data = args.data or default_data_dir()
    if not (data / "disfl-qa").is_dir() or not (data / "misspellings").is_dir():
        print(f"fidelity: no disfl-qa/ and misspellings/ under {data}; pass --data", file=sys.stderr)
        return 2
    started = time.perf_counter()
    disfl: dict[str, Any] = _fidelity_disfluency.report(data, args.seed)
    typos: dict[str, Any] = _fidelity_typos.report(data, args.seed)
    if args.json:
        print(json.dumps({"disfluency": disfl, "typos": typos}, indent=2))
        return 0
    print(f"botdrill fidelity against real data (seed {args.seed}, {time.perf_counter() - started:.0f} s)")
    print(f"disfluencies vs Disfl-QA human rewrites ({disfl['n_pairs']} questions)")
    print(_line("tvd_types", disfl["tvd_types"], 0.1))
    print(_line("tvd_editing_terms", disfl["tvd_editing_terms"], 0.1))
    print(_line("auc (char n-grams)", disfl["auc"], 0.65))
    floor = disfl["noise_floor"]
    print(
        f"  human train vs dev:    tvd_types {floor['tvd_types_train_vs_dev']:.4f}, "
        f"tvd_editing_terms {floor['tvd_editing_terms_train_vs_dev']:.4f} (the distances' noise floor)"
    )
    print(f"typos vs Wikipedia misspellings ({typos['n_real']} real, {typos['n']} botdrill)")
    print(_line("tvd_edit_types", typos["tvd_edit_types"], 0.1))
    print(_line("auc (char n-grams)", typos["auc"], None))
    print("  edit types  real:     " + ", ".join(f"{k} {v:.3f}" for k, v in typos["real_edit_types"].items()))
    print(
        "              botdrill: "
        + ", ".join(f"{k} {v:.3f}" for k, v in typos["botdrill_edit_types"].items())
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
