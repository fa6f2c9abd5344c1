"""Does botdrill's training data help a real classifier on real test data? The rare-intent protocol.

Ten critical intents of a real intent data set are cut to k = 5 real training examples (drawn with each
of the sampling seeds); every other intent keeps all its training data. A TF-IDF word (1-2) + character
(2-5, within word boundaries) n-gram logistic regression (C = 10) is trained on that, with or without
augmentation, and scored on the data set's official test split: macro recall over the ten, and accuracy
on the other intents (has the augmentation made the rest worse?).

Conditions:

- `none`: the five seeds only.
- `eda`: an EDA-style baseline (random swap, deletion and insertion of the seed's own words; 10 per seed).
- `botdrill-N`: `botdrill.analysis.generate` at N utterances per intent, with the gates (`-gated`) and
  without (`-raw`), from the benchmark's intent list (`bench/specs/<dataset>.yaml`, written from the
  intent names, never from the data) and the five seeds; the other intents' real training data trains
  the gates. Kept utterances, the user turns of kept dialogues and the near-miss negatives are added.
- `all-real`: every real training example: the ceiling.

The generator sees no test text: the test split is passed as `forbidden` so not even a near copy could
be kept by chance, and the seeds are the only real text of the ten intents it is given. The real
training examples of the ten that were cut away are used for one thing only: the real-against-synthetic
figures (two-sample AUC, length and vocabulary distances) of each batch.

    python -m bench.augment [--data DIR] [--dataset clinc150|hwu64 ...] [--seeds 0,1,2,3,4]
                            [--sizes 20,50,100] [--json FILE]
    python -m bench.augment --summarise FILE    # the tables again, from a --json file

Target (CLINC150): botdrill closes at least half of the gap between EDA and all real data, while accuracy
on the other intents drops by at most 0.5 points. Each classifier fit takes about 35 s on CLINC150 on one
core; the whole protocol about 35 minutes there (fewer `--seeds` for a quick look).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._data import default_data_dir

K = 5
SPECS = Path(__file__).resolve().parent / "specs"

CRITICAL = {
    "clinc150": [
        "report_fraud",
        "report_lost_card",
        "freeze_account",
        "account_blocked",
        "card_declined",
        "damaged_card",
        "pin_change",
        "replacement_card_duration",
        "new_card",
        "transactions",
    ],
    "hwu64": [
        "alarm_remove",
        "alarm_set",
        "calendar_remove",
        "calendar_set",
        "email_sendemail",
        "iot_cleaning",
        "iot_hue_lightoff",
        "lists_remove",
        "takeaway_order",
        "transport_ticket",
    ],
}

Pairs = list[tuple[str, str]]


def load_clinc(data: Path) -> tuple[Pairs, Pairs]:
    raw = json.loads((data / "clinc150" / "data_full.json").read_text(encoding="utf-8"))
    return [(t, i) for t, i in raw["train"]], [(t, i) for t, i in raw["test"]]


def load_hwu(data: Path) -> tuple[Pairs, Pairs]:
    def read(folder: Path) -> Pairs:
        out: Pairs = []
        for file in sorted(folder.glob("*.csv")):
            with file.open(encoding="utf-8", newline="") as fh:
                for row in csv.DictReader(fh, delimiter=";"):
                    text = (row.get("answer_from_anno") or "").strip()
                    if text:
                        out.append((text, f"{row['scenario']}_{row['intent']}"))
        return out

    return read(data / "hwu64" / "kfold1_train"), read(data / "hwu64" / "kfold1_test")


LOADERS: dict[str, Callable[[Path], tuple[Pairs, Pairs]]] = {"clinc150": load_clinc, "hwu64": load_hwu}


def classifier() -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    return make_pipeline(
        make_union(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2),
        ),
        LogisticRegression(C=10, max_iter=1000),
    )


@dataclass
class Score:
    recall: float
    other_accuracy: float
    per_intent: dict[str, float]
    added: int
    seconds: float


def evaluate(train: Pairs, test: Pairs, critical: Sequence[str], added: int) -> Score:
    started = time.perf_counter()
    model = classifier()
    model.fit([t for t, _ in train], [i for _, i in train])
    predicted = model.predict([t for t, _ in test])
    per: dict[str, float] = {}
    for intent in critical:
        hits = [p == intent for (_, gold), p in zip(test, predicted, strict=True) if gold == intent]
        per[intent] = sum(hits) / len(hits)
    others = [p == gold for (_, gold), p in zip(test, predicted, strict=True) if gold not in critical]
    return Score(
        recall=statistics.fmean(per.values()),
        other_accuracy=sum(others) / len(others),
        per_intent=per,
        added=added,
        seconds=time.perf_counter() - started,
    )


def eda(text: str, rng: random.Random, n: int = 10) -> list[str]:
    """EDA-style variants: random swap, deletion (p = 0.1) and insertion of one of the text's own words."""
    words = text.split()
    out: list[str] = []
    for j in range(n):
        w = list(words)
        op = j % 3
        if op == 0 and len(w) >= 2:
            for _ in range(max(1, len(w) // 10)):
                a, b = rng.randrange(len(w)), rng.randrange(len(w))
                w[a], w[b] = w[b], w[a]
        elif op == 1 and len(w) >= 2:
            kept = [x for x in w if rng.random() > 0.1]
            w = kept or [rng.choice(w)]
        else:
            for _ in range(max(1, len(w) // 10)):
                w.insert(rng.randrange(len(w) + 1), rng.choice(words))
        out.append(" ".join(w))
    return out


def botdrill_data(
    dataset: str,
    seeds: dict[str, list[str]],
    real_other: Pairs,
    held_out: list[str],
    test: Pairs,
    size: int,
    gates: bool,
    sampling_seed: int,
) -> tuple[Pairs, dict[str, Any]]:
    from botdrill.agents._augment import Seed
    from botdrill.analysis._generate import GenerateConfig, generate

    seed_list = [Seed(t, i, f"seeds:{i}:{n}") for i, texts in seeds.items() for n, t in enumerate(texts)]
    real = [Seed(t, i, f"real:{n}") for n, (t, i) in enumerate(real_other)]
    started = time.perf_counter()
    batch = generate(
        SPECS / f"{dataset}.yaml",
        seed_list,
        GenerateConfig(per_intent=size, seed=sampling_seed, gates=gates),
        real=real,
        real_sample=held_out,
        forbidden=[t for t, _ in test],
        batch_id=f"bench-{dataset}-{sampling_seed}-{size}-{'gated' if gates else 'raw'}",
    )
    pairs: Pairs = []
    for e in batch.kept():
        c = e.candidate
        if c.turns:
            pairs += [(t.text, c.intent) for t in c.turns if t.speaker == "user"]
        else:
            pairs.append((c.text, c.intent))
    r = batch.realism
    info = {
        "generate_seconds": round(time.perf_counter() - started, 1),
        "kept": len(batch.kept()),
        "candidates": len(batch.examples),
        "gates": batch.gate_counts,
        "auc": r.auc if r else None,
        "length_distance": r.length_distance if r else None,
        "vocabulary_distance": r.vocabulary_distance if r else None,
        "distinct_2": batch.diversity.get("*", {}).get("distinct_2"),
    }
    return pairs, info


def run_dataset(
    dataset: str, data: Path, sampling_seeds: Sequence[int], sizes: Sequence[int]
) -> dict[str, Any]:
    train, test = LOADERS[dataset](data)
    critical = CRITICAL[dataset]
    other = [(t, i) for t, i in train if i not in critical]
    results: dict[str, list[dict[str, Any]]] = {}

    def record(condition: str, score: Score, extra: dict[str, Any] | None = None) -> None:
        row = {
            "recall": score.recall,
            "other_accuracy": score.other_accuracy,
            "added": score.added,
            "fit_seconds": round(score.seconds, 1),
            "per_intent": score.per_intent,
        } | (extra or {})
        results.setdefault(condition, []).append(row)
        auc = f", AUC {extra['auc']:.2f}" if extra and extra.get("auc") is not None else ""
        print(
            f"  {dataset} {condition:<22} recall {score.recall:.3f}  other acc {score.other_accuracy:.4f}  "
            f"(+{score.added} examples{auc})",
            flush=True,
        )

    for s in sampling_seeds:
        rng = random.Random(s)
        seeds = {c: rng.sample(sorted(t for t, i in train if i == c), K) for c in critical}
        held_out = [t for t, i in train if i in critical and t not in set(seeds[i])]
        base = other + [(t, c) for c, texts in seeds.items() for t in texts]
        print(f"{dataset}, sampling seed {s}:", flush=True)
        record("none", evaluate(base, test, critical, 0))
        eda_rng = random.Random(f"eda:{s}")
        extra_eda = [(v, c) for c, texts in seeds.items() for t in texts for v in eda(t, eda_rng)]
        record("eda", evaluate(base + extra_eda, test, critical, len(extra_eda)))
        for size in sizes:
            for gates in (False, True):
                pairs, info = botdrill_data(dataset, seeds, other, held_out, test, size, gates, s)
                name = f"botdrill-{size}-{'gated' if gates else 'raw'}"
                record(name, evaluate(base + pairs, test, critical, len(pairs)), info)
    print(f"{dataset}, all real data:", flush=True)
    record("all-real", evaluate(train, test, critical, 0))
    return {"critical": critical, "k": K, "seeds": list(sampling_seeds), "conditions": results}


def summary(dataset: str, result: dict[str, Any]) -> list[str]:
    cond = result["conditions"]
    mean = {c: statistics.fmean(r["recall"] for r in rows) for c, rows in cond.items()}
    acc = {c: statistics.fmean(r["other_accuracy"] for r in rows) for c, rows in cond.items()}
    sd = {
        c: statistics.stdev([r["recall"] for r in rows]) if len(rows) > 1 else 0.0 for c, rows in cond.items()
    }
    eda_r, ceiling = mean["eda"], mean["all-real"]
    target = eda_r + (ceiling - eda_r) / 2
    lines = [
        f"## {dataset}: k = {result['k']}, {len(result['seeds'])} sampling seeds, 10 critical intents",
        "",
        "| condition | macro recall (10) | sd | other-intent accuracy | \u0394 other vs none (points) "
        "| gap closed | added | AUC | length dist. | vocab. JSD |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]

    def avg(rows: list[dict[str, Any]], key: str, digits: int = 2) -> str:
        values = [r[key] for r in rows if r.get(key) is not None]
        return f"{statistics.fmean(values):.{digits}f}" if values else "\u2013"

    for c, rows in cond.items():
        closed = (mean[c] - eda_r) / (ceiling - eda_r) if ceiling != eda_r else float("nan")
        lines.append(
            f"| {c} | {mean[c]:.3f} | {sd[c]:.3f} | {acc[c]:.4f} | {100 * (acc[c] - acc['none']):+.2f} | "
            f"{closed:+.2f} | {avg(rows, 'added', 0)} | {avg(rows, 'auc')} | "
            f"{avg(rows, 'length_distance')} | {avg(rows, 'vocabulary_distance')} |"
        )
    best = max((c for c in cond if c.startswith("botdrill")), key=lambda c: mean[c])
    ok = mean[best] >= target and 100 * (acc[best] - acc["none"]) >= -0.5
    lines += [
        "",
        f"Target: recall >= {target:.3f} (half the gap from EDA {eda_r:.3f} to all real {ceiling:.3f}) with "
        f"other-intent accuracy down at most 0.5 points. Best botdrill condition: {best} at "
        f"{mean[best]:.3f}, "
        f"{100 * (acc[best] - acc['none']):+.2f} points: {'met' if ok else 'NOT met'}.",
    ]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.augment", description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="Folder with clinc150/ and hwu64/.")
    parser.add_argument("--dataset", action="append", choices=sorted(LOADERS), help="Default: both.")
    parser.add_argument("--seeds", default="0,1,2,3,4", help="Sampling seeds (comma-separated).")
    parser.add_argument("--sizes", default="20,50,100", help="botdrill utterances per intent.")
    parser.add_argument("--json", type=Path, default=None, help="Write every figure to this file.")
    parser.add_argument(
        "--summarise", type=Path, default=None, help="Print the tables of a --json file written earlier."
    )
    args = parser.parse_args(argv)
    if args.summarise:
        saved = json.loads(args.summarise.read_text(encoding="utf-8"))
        for dataset, result in saved.items():
            print("\n".join(summary(dataset, result)) + "\n")
        return 0
    data = args.data or default_data_dir()
    datasets = args.dataset or ["clinc150", "hwu64"]
    missing = [d for d in datasets if not (data / d).is_dir()]
    if missing:
        print(f"no {', '.join(missing)} under {data}: pass --data or set BOTDRILL_DATA", file=sys.stderr)
        return 2
    seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
    sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    out: dict[str, Any] = {}
    for dataset in datasets:
        out[dataset] = run_dataset(dataset, data, seeds, sizes)
        for line in summary(dataset, out[dataset]):
            print(line)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
