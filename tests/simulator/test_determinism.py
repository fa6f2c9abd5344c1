"""Same seed, same transcripts: whatever the concurrency, the loop or the database file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from botdrill.simulator import RunConfig, run_drill

from ._util import digests, query, transcripts

N = 120
SEED = 11


def _run(tmp_path: Path, name: str, **options: Any) -> tuple[list[tuple[int, int, str, str]], dict[int, str]]:
    db = tmp_path / f"{name}.duckdb"
    config = RunConfig(
        db=str(db), n=options.pop("n", N), seed=options.pop("seed", SEED), run_id="det", **options
    )
    result = run_drill(config)
    assert result.simulated == config.n
    assert result.skipped == 0
    return transcripts(db, "det"), digests(db, "det")


@pytest.fixture(scope="module")
def baseline(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[list[tuple[int, int, str, str]], dict[int, str]]:
    return _run(tmp_path_factory.mktemp("det"), "baseline")


def test_baseline_is_a_real_transcript(
    baseline: tuple[list[tuple[int, int, str, str]], dict[int, str]],
) -> None:
    turns, shas = baseline
    assert sorted(shas) == list(range(N))
    assert {t[0] for t in turns} == set(range(N))
    assert len(turns) > 2 * N
    assert all(text for _, _, speaker, text in turns if speaker == "user")


@pytest.mark.parametrize("concurrency", [1, 7, 256])
def test_same_seed_same_transcripts_whatever_the_concurrency(
    tmp_path: Path, baseline: tuple[list[tuple[int, int, str, str]], dict[int, str]], concurrency: int
) -> None:
    turns, shas = _run(tmp_path, f"c{concurrency}", concurrency=concurrency)
    assert turns == baseline[0]
    assert shas == baseline[1]


def test_plain_loop_gives_the_graph_transcripts(
    tmp_path: Path, baseline: tuple[list[tuple[int, int, str, str]], dict[int, str]]
) -> None:
    turns, shas = _run(tmp_path, "plain", loop="plain")
    assert turns == baseline[0]
    assert shas == baseline[1]


def test_scores_are_deterministic_too(tmp_path: Path) -> None:
    columns = (
        "idx, scenario_id, seed, persona, gold_intent, gold_slots, routed_intent, outcome, end_reason, "
        "escalated, escalation_turn, escalation_source, slot_errors, user_turns, assistant_turns"
    )
    a, b = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    run_drill(RunConfig(db=str(a), n=60, seed=SEED, run_id="x", concurrency=5))
    run_drill(RunConfig(db=str(b), n=60, seed=SEED, run_id="x", concurrency=64, loop="plain"))
    rows_a = query(a, f"select {columns} from dialogues order by idx")
    assert len(rows_a) == 60
    assert rows_a == query(b, f"select {columns} from dialogues order by idx")
    checks = "select dialogue_id, slot, expected, captured, status from slot_checks order by all"
    assert query(a, checks) == query(b, checks)


def test_a_larger_run_starts_with_the_smaller_one(
    tmp_path: Path, baseline: tuple[list[tuple[int, int, str, str]], dict[int, str]]
) -> None:
    turns, shas = _run(tmp_path, "small", n=40, concurrency=3)
    assert shas == {i: s for i, s in baseline[1].items() if i < 40}
    assert turns == [t for t in baseline[0] if t[0] < 40]


def test_another_seed_gives_other_transcripts(
    tmp_path: Path, baseline: tuple[list[tuple[int, int, str, str]], dict[int, str]]
) -> None:
    turns, shas = _run(tmp_path, "other", seed=SEED + 1)
    assert turns != baseline[0]
    differing = sum(shas[i] != baseline[1][i] for i in range(N))
    assert differing > N * 0.8
