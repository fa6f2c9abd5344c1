"""The coverage table: quota cells against the stratified plan, and domain-graph edges the run walked."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from botdrill.analysis import coverage
from botdrill.policies import DomainGraph
from botdrill.scenarios import Pack, Quotas, Sampler
from botdrill.simulator import RunConfig, run_drill

from ._util import query

N = 120


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("coverage") / "c.duckdb"
    run_drill(RunConfig(db=str(path), n=N, seed=4, run_id="c", perturb="typo,topic_switch:2"))
    return path


def test_every_quota_cell_is_filled_and_close_to_its_target(db: Path, pack: Pack) -> None:
    rows = coverage(db, "c")
    cells = [r for r in rows if r["level"] != "edge"]
    assert {r["level"] for r in cells} == {
        "intent",
        "intent_complexity",
        "intent_persona",
        "intent_perturbation",
    }
    assert all(r["filled"] and r["dialogues"] == r["planned"] for r in cells)
    # The plan stays within about one scenario of every quota.
    assert max(abs(r["planned"] - r["target"]) for r in cells) < 1.5
    intents = [r for r in cells if r["level"] == "intent"]
    assert sum(r["dialogues"] for r in intents) == N
    assert {r["intent"] for r in intents} == {i.name for i in pack.intents}
    per_variant = [r for r in cells if r["level"] == "intent_perturbation"]
    assert {r["perturbation"] for r in per_variant} == {"none", "typo:2", "topic_switch:2"}


def test_cells_agree_with_a_recount_of_the_dialogues(db: Path, pack: Pack) -> None:
    recount = Counter(
        query(
            db, "select gold_intent, complexity from dialogues where run_id = 'c' and perturbation = 'none'"
        )
    )
    for row in coverage(db, "c", level="intent_complexity"):
        assert row["dialogues"] == recount[(row["intent"], row["complexity"])]
    # And with the sampler's own plan.
    plan = Counter((i, c.value) for i, c, _, _ in Sampler(pack, 4, Quotas()).planned(N))
    assert plan == recount


def test_edges_are_the_domain_graph_s_and_count_dialogues_that_walked_them(db: Path, pack: Pack) -> None:
    graph = DomainGraph.from_pack(pack)
    edges = coverage(db, "c", level="edge")
    kinds = Counter(r["edge_kind"] for r in edges)
    for kind in ("opens", "turns_into", "switches_to", "needs", "escalates", "resolves"):
        assert kinds[kind] == len(graph.edges_of(kind)), kind
    walked = {(r["edge_kind"], r["edge_source"], r["edge_target"]): r["dialogues"] for r in edges}
    # A recount of the turn_into dialogues that did turn.
    turned = query(
        db,
        """select walk[1], walk[2], count(*) from dialogues d where run_id = 'c' and complexity = 'turn_into'
           and exists (select 1 from turns t where t.dialogue_id = d.dialogue_id and t.speaker = 'user'
                       and t.gold_intent = d.walk[2]) group by all""",
    )
    assert turned
    for source, target, n in turned:
        assert walked[("turns_into", source, target)] == n
    # Topic switches ran, and land on switches_to edges.
    assert sum(n for (kind, _, _), n in walked.items() if kind == "switches_to") > 0
    assert all(r["filled"] == (r["dialogues"] > 0) for r in edges)
    # Every critical intent was handed over at least once by the reference bot.
    assert all(walked[("escalates", i.name, "handoff")] > 0 for i in pack.intents if i.critical)


def test_a_resumed_run_rewrites_its_coverage(tmp_path: Path) -> None:
    path = tmp_path / "r.duckdb"
    run_drill(RunConfig(db=str(path), n=10, seed=2, run_id="r", perturb="none"))
    first = query(path, "select sum(dialogues) from coverage where run_id = 'r' and level = 'intent'")
    run_drill(RunConfig(db=str(path), n=25, seed=2, run_id="r", perturb="none"))
    assert first == [(10,)]
    assert query(
        path, "select sum(dialogues), count(*) from coverage where run_id = 'r' and level = 'intent'"
    ) == [(25, 15)]
