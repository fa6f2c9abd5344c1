"""Same seed, same transcripts: whatever the concurrency, the loop or the database file."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from botdrill.agents import Message, Reply
from botdrill.simulator import RunConfig, run_drill
from botdrill.simulator._variants import DEFAULT_PERTURBATIONS, parse_variants

from ._util import digests, query, stored_transcripts, transcript_problems, transcripts

N = 120
SEED = 11
PAIRED_N = 16
"""Scenarios of the paired runs: each runs clean and once per default perturbation."""
VARIANTS = 1 + len(DEFAULT_PERTURBATIONS)

Run = tuple[list[tuple[int, int, str, str]], dict[int, str]]


def _run(tmp_path: Path, name: str, **options: Any) -> Run:
    db = tmp_path / f"{name}.duckdb"
    config = RunConfig(
        db=str(db),
        n=options.pop("n", N),
        seed=options.pop("seed", SEED),
        run_id="det",
        perturb=options.pop("perturb", "none"),
        **options,
    )
    result = run_drill(config)
    assert result.simulated == config.n * len(parse_variants(config.perturb))
    assert result.skipped == 0
    problems = {
        d: p
        for d, (end, turns) in stored_transcripts(db, "det").items()
        if (p := transcript_problems(turns, end))
    }
    assert problems == {}
    return transcripts(db, "det"), digests(db, "det")


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """A clean run: N dialogues, no perturbations."""
    return _run(tmp_path_factory.mktemp("det"), "baseline")


@pytest.fixture(scope="module")
def paired(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """A paired run with the default perturbations: PAIRED_N scenarios x VARIANTS dialogues."""
    return _run(tmp_path_factory.mktemp("det"), "paired", n=PAIRED_N, perturb="default")


def test_baseline_is_a_real_transcript(baseline: Run) -> None:
    turns, shas = baseline
    assert sorted(shas) == list(range(N))
    assert {t[0] for t in turns} == set(range(N))
    assert len(turns) > 2 * N
    assert all(text for _, _, speaker, text in turns if speaker == "user")


def test_a_paired_run_holds_every_variant_of_every_scenario(paired: Run) -> None:
    turns, shas = paired
    assert sorted(shas) == list(range(PAIRED_N * VARIANTS))
    assert {t[0] for t in turns} == set(shas)
    assert len(set(shas.values())) > PAIRED_N * VARIANTS // 2
    # Some users sent two messages without a reply between (fragments, barge-ins): determinism is checked
    # on dialogues that do not alternate too.
    assert any(a[0] == b[0] and a[2] == b[2] == "user" for a, b in pairwise(turns))


@pytest.mark.parametrize("concurrency", [1, 7, 256])
def test_same_seed_same_transcripts_whatever_the_concurrency(
    tmp_path: Path, baseline: Run, concurrency: int
) -> None:
    turns, shas = _run(tmp_path, f"c{concurrency}", concurrency=concurrency)
    assert turns == baseline[0]
    assert shas == baseline[1]


def test_plain_loop_gives_the_graph_transcripts(tmp_path: Path, baseline: Run) -> None:
    turns, shas = _run(tmp_path, "plain", loop="plain")
    assert turns == baseline[0]
    assert shas == baseline[1]


@pytest.mark.parametrize(("concurrency", "loop"), [(1, "graph"), (5, "plain")])
def test_a_paired_run_is_deterministic_whatever_the_concurrency_and_the_loop(
    tmp_path: Path, paired: Run, concurrency: int, loop: str
) -> None:
    turns, shas = _run(
        tmp_path, f"p{concurrency}", n=PAIRED_N, perturb="default", concurrency=concurrency, loop=loop
    )
    assert turns == paired[0]
    assert shas == paired[1]


def test_clean_twins_of_a_paired_run_are_the_clean_run(tmp_path: Path, baseline: Run, paired: Run) -> None:
    # Clean twins sit at idx = scenario x VARIANTS; a clean-only run has scenario i at idx i.
    twins = {idx // VARIANTS: sha for idx, sha in paired[1].items() if idx % VARIANTS == 0}
    assert twins == {i: sha for i, sha in baseline[1].items() if i < PAIRED_N}
    twin_turns = [(i // VARIANTS, *rest) for i, *rest in paired[0] if i % VARIANTS == 0]
    assert twin_turns == [t for t in baseline[0] if t[0] < PAIRED_N]
    # ... whichever perturbations run beside them; and a variant does not depend on its siblings either.
    db = tmp_path / "other.duckdb"
    run_drill(RunConfig(db=str(db), n=PAIRED_N, seed=SEED, run_id="det", perturb="typo,abandon:3,barge_in:3"))
    ids = dict(query(db, "select idx, dialogue_id from dialogues"))
    other = digests(db, "det")
    assert {idx // 4: sha for idx, sha in other.items() if idx % 4 == 0} == twins
    typo = {idx // 4: sha for idx, sha in other.items() if ids[idx].endswith("-typo2")}
    position = 1 + DEFAULT_PERTURBATIONS.index("typo")
    assert typo == {idx // VARIANTS: sha for idx, sha in paired[1].items() if idx % VARIANTS == position}
    assert len(typo) == PAIRED_N


def test_scores_are_deterministic_too(tmp_path: Path) -> None:
    columns = (
        "idx, dialogue_id, pair_id, perturbation, intensity, variant, scenario_id, seed, persona, "
        "gold_intent, gold_slots, routed_intent, outcome, success, end_reason, escalated, escalation_turn, "
        "escalation_source, slot_errors, user_turns, assistant_turns, sim_seconds, transcript_sha256"
    )
    a, b = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    run_drill(RunConfig(db=str(a), n=10, seed=SEED, run_id="x", concurrency=5))
    run_drill(RunConfig(db=str(b), n=10, seed=SEED, run_id="x", concurrency=64, loop="plain"))
    rows_a = query(a, f"select {columns} from dialogues order by idx")
    assert len(rows_a) == 10 * VARIANTS
    assert rows_a == query(b, f"select {columns} from dialogues order by idx")
    checks = "select dialogue_id, slot, expected, captured, status from slot_checks order by all"
    assert query(a, checks) == query(b, checks)
    turns = (
        "select dialogue_id, turn_idx, sim_time, gold_acts, gold_slots, part, parts from turns order by all"
    )
    assert query(a, turns) == query(b, turns)
    edits = "select * from edits order by all"
    assert query(a, edits) == query(b, edits)
    assert len(query(a, edits)) > 10


def test_a_larger_run_starts_with_the_smaller_one(tmp_path: Path, baseline: Run, paired: Run) -> None:
    turns, shas = _run(tmp_path, "small", n=40, concurrency=3)
    assert shas == {i: s for i, s in baseline[1].items() if i < 40}
    assert turns == [t for t in baseline[0] if t[0] < 40]
    turns, shas = _run(tmp_path, "small-paired", n=PAIRED_N // 3, perturb="default", concurrency=3)
    assert shas == {i: s for i, s in paired[1].items() if i < PAIRED_N // 3 * VARIANTS}
    assert turns == [t for t in paired[0] if t[0] < PAIRED_N // 3 * VARIANTS]


def test_another_seed_gives_other_transcripts(tmp_path: Path, baseline: Run) -> None:
    turns, shas = _run(tmp_path, "other", seed=SEED + 1)
    assert turns != baseline[0]
    differing = sum(shas[i] != baseline[1][i] for i in range(N))
    assert differing > N * 0.8


class EchoBot:
    """Answers by counting its own turns, the same in every thread, with the built-in bot's modelled latency.

    With `barge_in:3` the user runs out of patience at once on every wait, so an interjection is composed
    on every turn; the reply overtakes many of them, which are then never sent.
    """

    name = "echo"
    modelled_latency = True

    def respond_batch(self, requests: Sequence[tuple[str, list[Message]]]) -> list[Reply]:
        script = [
            "What is this about?",
            "Could you give me the last four digits of the card?",
            "Anything else?",
        ]
        return [
            Reply(text=script[min(sum(m["role"] == "assistant" for m in messages), 2)])
            for _, messages in requests
        ]

    def forget(self, thread_id: str) -> None:
        pass


@pytest.fixture(scope="module")
def quiet_pairs(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, bool, bool]]:
    """(pair_id, same transcript, same user texts) for each barge_in:3 pair whose user never barged in."""
    db = tmp_path_factory.mktemp("barge") / "b.duckdb"
    result = run_drill(
        RunConfig(db=str(db), n=20, seed=1, run_id="b", perturb="barge_in:3"), assistant=EchoBot()
    )
    assert result.simulated == 40
    return query(
        db,
        """
        select p.pair_id, c.transcript_sha256 = d.transcript_sha256,
               (select list(text order by turn_idx) from turns t
                where t.dialogue_id = p.clean_dialogue_id and t.speaker = 'user')
             = (select list(text order by turn_idx) from turns t
                where t.dialogue_id = p.perturbed_dialogue_id and t.speaker = 'user')
        from pairs p join dialogues c on c.dialogue_id = p.clean_dialogue_id
        join dialogues d on d.dialogue_id = p.perturbed_dialogue_id
        where not exists (select 1 from edits e where e.dialogue_id = p.perturbed_dialogue_id)
        order by p.pair_id""",
    )


def test_some_impatient_users_never_get_to_barge_in(quiet_pairs: list[tuple[str, bool, bool]]) -> None:
    assert len(quiet_pairs) >= 3


def test_an_interjection_that_was_never_sent_leaves_the_twin_as_it_was(
    quiet_pairs: list[tuple[str, bool, bool]],
) -> None:
    # The bot answers the same words the same way, so nothing should tell such a pair's dialogues apart.
    assert [pair for pair, same, _ in quiet_pairs if not same] == []
    assert all(same_user_texts for _, _, same_user_texts in quiet_pairs)


def test_transcripts_do_not_depend_on_the_run_name(tmp_path: Path) -> None:
    a, b = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    run_drill(RunConfig(db=str(a), n=25, seed=6, run_id="first-name", perturb="typo"))
    run_drill(RunConfig(db=str(b), n=25, seed=6, run_id="another", perturb="typo"))
    sql = "select idx, transcript_sha256 from dialogues order by idx"
    assert query(a, sql) == query(b, sql)
