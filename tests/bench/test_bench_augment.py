"""`python -m bench.augment`: the rare-intent protocol is wired as documented (seeds only, no test text
reaches the generator, every condition reported). A small made-up data set stands in for CLINC150 so the
test runs in seconds; the real figures come from running the benchmark itself."""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench import augment  # noqa: E402

DATA = Path(ROOT).parent / "shared" / "data"


def test_eda_makes_ten_variants_of_the_seed_words_only() -> None:
    text = "i need to report fraud on my card"
    variants = augment.eda(text, random.Random(0))
    assert len(variants) == 10
    words = set(text.split())
    for v in variants:
        assert set(v.split()) <= words and v.strip()
    assert len(set(variants)) > 3


def _toy() -> tuple[augment.Pairs, augment.Pairs]:
    rng = random.Random(1)
    train: augment.Pairs = []
    test: augment.Pairs = []
    phrases = {
        "report_fraud": ["fraud on my card", "a charge i did not make", "unauthorized payment"],
        "report_lost_card": ["i lost my card", "my card was stolen", "can't find my card"],
        "balance": ["what is my balance", "how much money do i have", "balance please"],
        "transfer": ["send money to mum", "transfer funds", "move money to savings"],
    }
    leads = ["", "hey ", "please ", "can you help, ", "urgent: ", "so ", "hi, ", "um "]
    for intent, ps in phrases.items():
        for n in range(40):
            text = f"{rng.choice(leads)}{rng.choice(ps)} {n}"
            (test if n % 4 == 0 else train).append((text, intent))
    return train, test


def test_the_protocol_keeps_test_text_and_cut_examples_away_from_the_generator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    train, test = _toy()
    monkeypatch.setitem(augment.LOADERS, "clinc150", lambda data: (train, test))
    monkeypatch.setitem(augment.CRITICAL, "clinc150", ["report_fraud", "report_lost_card"])
    seen: dict[str, Any] = {}
    original = augment.botdrill_data

    def spy(
        dataset: str, seeds: dict[str, list[str]], real_other: Any, held_out: Any, t: Any, *rest: Any
    ) -> Any:
        seen.setdefault("seeds", []).append(seeds)
        seen.setdefault("real", []).append(real_other)
        seen.setdefault("test", []).append(t)
        return original(dataset, seeds, real_other, held_out, t, *rest)

    monkeypatch.setattr(augment, "botdrill_data", spy)
    monkeypatch.setattr(augment, "SPECS", Path(ROOT) / "bench" / "specs")
    result = augment.run_dataset("clinc150", Path("."), [0], [10])
    assert set(result["conditions"]) == {"none", "eda", "botdrill-10-raw", "botdrill-10-gated", "all-real"}
    for seeds in seen["seeds"]:
        assert all(len(texts) == augment.K for texts in seeds.values())
    for real in seen["real"]:
        assert not {i for _, i in real} & {"report_fraud", "report_lost_card"}
    for t in seen["test"]:
        assert t == test  # passed as forbidden: no kept example may copy it
    for rows in result["conditions"].values():
        for row in rows:
            assert 0 <= row["recall"] <= 1 and 0 <= row["other_accuracy"] <= 1
    lines = augment.summary("clinc150", result)
    assert any(line.startswith("| botdrill-10-gated |") for line in lines)
    assert "Target:" in lines[-1]


def test_missing_data_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert augment.main(["--data", str(tmp_path), "--dataset", "hwu64"]) == 2
    assert "no hwu64 under" in capsys.readouterr().err


@pytest.mark.skipif(not (DATA / "hwu64").is_dir(), reason="needs shared/data/hwu64 (HWU64 fold 1)")
def test_the_hwu64_loader_reads_the_authors_fold() -> None:
    train, test = augment.load_hwu(DATA)
    assert len(train) == 9960 and len(test) == 1076
    assert set(augment.CRITICAL["hwu64"]) <= {i for _, i in train}


def test_summarise_reprints_the_tables_of_a_saved_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def row(recall: float, acc: float, **extra: Any) -> dict[str, Any]:
        return {"recall": recall, "other_accuracy": acc, "added": 10, "per_intent": {}} | extra

    saved = {
        "clinc150": {
            "critical": ["a"],
            "k": 5,
            "seeds": [0],
            "conditions": {
                "none": [row(0.4, 0.93)],
                "eda": [row(0.6, 0.93)],
                "botdrill-50-raw": [row(0.8, 0.928, auc=0.9, length_distance=0.1, vocabulary_distance=0.2)],
                "all-real": [row(0.9, 0.93)],
            },
        }
    }
    path = tmp_path / "augment.json"
    path.write_text(__import__("json").dumps(saved), encoding="utf-8")
    assert augment.main(["--summarise", str(path)]) == 0
    out = capsys.readouterr().out
    assert "| botdrill-50-raw | 0.800 |" in out and "+0.67 | 10 | 0.90 | 0.10 | 0.20 |" in out
    assert "Best botdrill condition: botdrill-50-raw at 0.800, -0.20 points: met." in out
