"""Fit botdrill's disfluency model on Disfl-QA and write `agents/data/disfluency.yaml`.

Disfl-QA pairs a fluent question with a disfluent rewrite written by a person. Each pair is typed and
taken apart by `botdrill.agents._disfluency.analyse_pair` (false start or correction, editing phrase,
fillers, words said by mistake), and the counts become the shares the generators draw from. Only those
shares go into the YAML file, never a question from the data set.

    python -m bench.calibrate_disfluency [--data DIR] [--out FILE] [--check]

`--data` is the folder holding `disfl-qa/` (default: `$BOTDRILL_DATA`, else `shared/data` next to the
checkout); `--check` compares a fresh fit with the shipped file instead of writing it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from botdrill.agents._disfluency import NO_INTERREGNUM, STOPWORDS, PairAnalysis, analyse_pair

from ._data import default_data_dir

_ROOT = Path(__file__).resolve().parents[1]
OUT = _ROOT / "agents" / "data" / "disfluency.yaml"
"""Where the fitted model ships."""

_HEADER = """\
# botdrill disfluency model, fitted on Disfl-QA (train + dev; Gupta et al. 2021, CC BY 4.0) by
# `python -m bench.calibrate_disfluency`. Do not edit by hand: re-run the calibration instead.
# Only shares and lengths are stored here; no question from the data set is.
"""
_MIN_COUNT = 3
"""Templates and fillers seen fewer times than this are left out (too rare to be a habit, and a
one-off is closer to a quotation than a statistic)."""
_MIN_HABIT = 50
"""Repairs needed before a phrase gets its own comma rate."""
_INTERJECTION = re.compile(r"o+h+")
_TOLERANCE = 0.02


def disfl_qa_dir(data_dir: Path) -> Path:
    """The Disfl-QA folder under `data_dir` (or `data_dir` itself if it holds the JSON files)."""
    return data_dir if (data_dir / "train.json").is_file() else data_dir / "disfl-qa"


def load_pairs(data_dir: Path, splits: Sequence[str] = ("train", "dev")) -> list[tuple[str, str, str]]:
    """`(id, original, disfluent)` for every non-empty pair of `splits`, in file order.

    Raises:
        FileNotFoundError: the data set is not there.
    """
    folder = disfl_qa_dir(data_dir)
    pairs = []
    for split in splits:
        path = folder / f"{split}.json"
        if not path.is_file():
            raise FileNotFoundError(f"Disfl-QA {split} split not found at {path}")
        data: dict[str, dict[str, str]] = json.loads(path.read_text(encoding="utf-8"))
        for key, entry in data.items():
            original, disfluent = entry.get("original", "").strip(), entry.get("disfluent", "").strip()
            if original and disfluent:
                pairs.append((key, original, disfluent))
    return pairs


def _shares(counts: Mapping[Any, int] | Counter[Any], *, min_count: int = 1) -> dict[Any, float]:
    kept = {k: c for k, c in counts.items() if c >= min_count}
    total = sum(kept.values())
    ordered = sorted(kept.items(), key=lambda kc: (-kc[1], str(kc[0])))
    return {k: round(c / total, 4) for k, c in ordered}


def _lengths(values: Iterable[int], cap: int) -> dict[int, float]:
    counts = Counter(min(v, cap) for v in values if v > 0)
    total = sum(counts.values())
    return {k: round(counts[k] / total, 4) for k in sorted(counts)}


def _rate(flags: Iterable[bool]) -> float:
    values = list(flags)
    return round(sum(values) / len(values), 4) if values else 0.0


def fit(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """The model's parameters from `(original, disfluent)` pairs, as the YAML document stores them."""
    analyses = [analyse_pair(o, d) for o, d in pairs]
    typed = [a for a in analyses if a.type != "none"]
    repairs = [a for a in typed if a.type in ("restart", "correction")]
    restarts = [a for a in repairs if a.type == "restart"]
    corrections = [a for a in repairs if a.type == "correction"]
    with_phrase = [a for a in repairs if a.interregnum]
    fillers: Counter[str] = Counter(f for a in typed for f in a.fillers if not _INTERJECTION.fullmatch(f))
    fillers.update(u for a in repairs for u in a.interregnum.split() if u in ("like", "well"))
    return {
        "source": "Disfl-QA train+dev",
        "pairs": len(analyses),
        "types": _shares(Counter(a.type for a in typed)),
        "regions": _lengths((a.regions for a in repairs), cap=3),
        "interregna": _shares(
            Counter(a.interregnum or NO_INTERREGNUM for a in repairs), min_count=_MIN_COUNT
        ),
        "interregnum_fillers": _shares(
            Counter(f for a in repairs for f in a.interregnum_fillers), min_count=_MIN_COUNT
        ),
        "fillers": _shares(fillers, min_count=_MIN_COUNT),
        "comma_before": _comma_rates(with_phrase, first=True),
        "comma_after": _comma_rates(with_phrase, first=False),
        "restart_length": _lengths((len(a.reparandum) for a in restarts), cap=10),
        "restart_modes": _shares(Counter(a.restart_mode for a in restarts)),
        "restart_first_words": _shares(
            Counter(a.reparandum[0] for a in restarts if a.restart_mode == "swap_first" and a.reparandum),
            min_count=_MIN_COUNT,
        ),
        "lowercase_repair": _rate(a.lowercase_repair for a in restarts if a.lowercase_repair is not None),
        "correction_length": _lengths((len(a.reparandum) for a in corrections), cap=6),
        "repeat_previous": _rate(_repeats_previous(a) for a in corrections),
    }


def _comma_rates(repairs: Sequence[PairAnalysis], *, first: bool) -> dict[str, float]:
    """Comma rates before (after) an interregnum, by its first (last) phrase where that phrase is common
    enough to have its own habit ("sorry," yes, "or," hardly), and overall under "*"."""
    seen: Counter[str] = Counter()
    commas: Counter[str] = Counter()
    for a in repairs:
        unit = a.interregnum_units[0 if first else -1]
        seen[unit] += 1
        commas[unit] += a.comma_before if first else a.comma_after
    rates = {"*": _rate((a.comma_before if first else a.comma_after) for a in repairs)}
    for unit, n in sorted(seen.items(), key=lambda kv: (-kv[1], kv[0])):
        if n >= _MIN_HABIT:
            rates[unit] = round(commas[unit] / n, 4)
    return rates


def _repeats_previous(analysis: PairAnalysis) -> bool:
    """A correction whose repair starts by saying a function word again ("my debit, no, *my* credit")."""
    return len(analysis.repair_prefix) == 1 and analysis.repair_prefix[0] in STOPWORDS


def compare(fresh: Mapping[str, Any], shipped: Mapping[str, Any], tolerance: float = _TOLERANCE) -> list[str]:
    """Where two fitted models differ by more than `tolerance` (share by share); empty when they agree."""
    problems = []
    for key, value in fresh.items():
        other = shipped.get(key)
        if isinstance(value, dict):
            other = other if isinstance(other, dict) else {}
            for k in set(value) | set(other):
                a, b = float(value.get(k, 0.0)), float(other.get(k, 0.0))
                if abs(a - b) > tolerance:
                    problems.append(f"{key}[{k!r}]: fresh {a:.4f}, shipped {b:.4f}")
        elif isinstance(value, float) and abs(value - float(other or 0.0)) > tolerance:
            problems.append(f"{key}: fresh {value:.4f}, shipped {other}")
    return problems


def dump(params: Mapping[str, Any]) -> str:
    """The YAML document, with its header."""
    body: str = yaml.safe_dump(dict(params), sort_keys=False, allow_unicode=True, width=100)
    return _HEADER + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=None, help="folder holding disfl-qa/")
    parser.add_argument("--out", type=Path, default=OUT, help="where to write the model")
    parser.add_argument("--check", action="store_true", help="compare with the shipped model, write nothing")
    args = parser.parse_args(argv)
    data_dir = args.data or default_data_dir()
    try:
        pairs = load_pairs(data_dir)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    params = fit((o, d) for _, o, d in pairs)
    if args.check:
        problems = compare(params, yaml.safe_load(args.out.read_text(encoding="utf-8")))
        for line in problems:
            print(line)
        print("shipped model agrees with a fresh fit" if not problems else f"{len(problems)} differences")
        return 1 if problems else 0
    args.out.write_text(dump(params), encoding="utf-8")
    types = ", ".join(f"{k} {v:.1%}" for k, v in params["types"].items())
    print(f"fitted on {params['pairs']} pairs ({types}); wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
