"""The DuckDB store: batches land whole or not at all, versions are checked, one process at a time."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from botdrill.agents import Edit, GoldSlot
from botdrill.scenarios import BotdrillError, Goal, Pack, pack_digest, sample_scenario
from botdrill.simulator import (
    SCHEMA_VERSION,
    RunConfig,
    RunMismatchError,
    Store,
    StoreError,
    TurnRecord,
    connect,
    run_drill,
    score,
)
from botdrill.simulator._engine import Finished
from botdrill.simulator._variants import CLEAN, Job, parse_variants

from ._util import invoke, one_line, query

FRAUD = Goal(
    intent="report_fraud",
    slots={"amount": "45.50", "merchant": "Tesco", "date": "2026-03-15"},
    escalation="must",
    escalation_within=3,
    critical=True,
)


def finished(pack: Pack, index: int, *, run_id: str = "s") -> Finished:
    """A scored report_fraud dialogue with three gold slots, two captured."""
    scenario = sample_scenario(pack, 1, index).model_copy(update={"goal": FRAUD})
    text = "fraud: £45.50 at Tesco yesterday"
    turns = [
        TurnRecord(
            turn_idx=0,
            speaker="user",
            text=text,
            sim_time=3.0,
            gold_intent="report_fraud",
            gold_acts=["inform_intent", "inform"],
            gold_slots=[
                GoldSlot(slot="amount", value="45.50", start=7, end=13),
                GoldSlot(slot="merchant", value="Tesco", start=17, end=22),
                GoldSlot(slot="date", value="2026-03-15", start=23, end=32),
            ],
        ),
        TurnRecord(
            turn_idx=1,
            speaker="assistant",
            text="Passing you to our fraud team.",
            sim_time=4.5,
            intent="report_fraud",
            slots={"amount": "45.50", "merchant": "tesco"},
            handoff=True,
            handoff_source="exposed",
            latency_ms=12.5,
        ),
    ]
    record, checks = score(
        pack=pack,
        run_id=run_id,
        job=Job(scenario, CLEAN, index),
        turns=turns,
        end_reason="handoff",
        error=None,
        user_requested_human=False,
    )
    return record, turns, checks


def counts(con: duckdb.DuckDBPyConnection) -> tuple[int, int, int]:
    row = con.execute(
        "select (select count(*) from dialogues), (select count(*) from turns), "
        "(select count(*) from slot_checks)"
    ).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "s.duckdb", flush_every=1000, flush_seconds=3600)
    try:
        yield s
    finally:
        s.con.close()


def test_a_new_store_has_the_schema(store: Store) -> None:
    assert store.con.execute("select version from schema_version").fetchall() == [(SCHEMA_VERSION,)]
    names = {r[0] for r in store.con.execute("select table_name from information_schema.tables").fetchall()}
    assert {
        "schema_version",
        "runs",
        "dialogues",
        "turns",
        "slot_checks",
        "failures",
        "confusion",
        "intent_summary",
        "edits",
        "pairs",
        "batches",
        "examples",
        "ratings",
        "agreement",
        "calibrations",
        "active_examples",
        "gate_rejections",
    } <= names


def test_reopening_keeps_one_schema_row(tmp_path: Path) -> None:
    for _ in range(3):
        Store(tmp_path / "s.duckdb").close()
    assert query(tmp_path / "s.duckdb", "select version from schema_version") == [(SCHEMA_VERSION,)]


def test_in_memory_store() -> None:
    s = Store(":memory:")
    try:
        assert s.con.execute("select max(version) from schema_version").fetchone() == (SCHEMA_VERSION,)
    finally:
        s.close()


def test_dialogues_are_buffered_then_written_together(store: Store, pack: Pack) -> None:
    for i in range(3):
        store.add(finished(pack, i))
    assert counts(store.con) == (0, 0, 0)
    assert store.written == 0
    store.flush()
    assert counts(store.con) == (3, 6, 9)
    assert store.written == 3
    store.flush()  # nothing pending: a no-op
    assert counts(store.con) == (3, 6, 9)


def test_add_flushes_when_the_buffer_is_full(tmp_path: Path, pack: Pack) -> None:
    s = Store(tmp_path / "s.duckdb", flush_every=2, flush_seconds=3600)
    try:
        s.add(finished(pack, 0))
        assert counts(s.con) == (0, 0, 0)
        s.add(finished(pack, 1))
        assert counts(s.con) == (2, 4, 6)
        s.add(finished(pack, 2))
        assert s.written == 2
    finally:
        s.close()  # close flushes the rest
    assert query(tmp_path / "s.duckdb", "select count(*) from dialogues") == [(3,)]


def test_add_flushes_when_the_buffer_is_old(tmp_path: Path, pack: Pack) -> None:
    s = Store(tmp_path / "s.duckdb", flush_every=1000, flush_seconds=0)
    try:
        s.add(finished(pack, 0))
        assert counts(s.con) == (1, 2, 3)
    finally:
        s.close()


def test_rows_round_trip(store: Store, pack: Pack) -> None:
    record, turns, checks = finished(pack, 7)
    store.add((record, turns, checks))
    store.flush()
    row = store.con.execute(
        "select dialogue_id, idx, gold_slots, critical, escalated, escalation_turn, "
        "escalation_source, outcome, end_reason, sim_seconds, transcript_sha256, seed "
        "from dialogues"
    ).fetchone()
    assert row == (
        "s-000007-none",
        7,
        {"amount": "45.50", "merchant": "Tesco", "date": "2026-03-15"},
        True,
        True,
        1,
        "exposed",
        "success",
        "handoff",
        4.5,
        record.transcript_sha256,
        record.seed,
    )
    user, bot = store.con.execute(
        "select speaker, text, gold_intent, gold_acts, gold_slots, intent, slots, "
        "handoff, handoff_source, latency_ms, error_type from turns "
        "order by turn_idx"
    ).fetchall()
    assert user == (
        "user",
        turns[0].text,
        "report_fraud",
        ["inform_intent", "inform"],
        [
            {"slot": "amount", "value": "45.50", "start": 7, "end": 13},
            {"slot": "merchant", "value": "Tesco", "start": 17, "end": 22},
            {"slot": "date", "value": "2026-03-15", "start": 23, "end": 32},
        ],
        None,
        None,
        None,
        None,
        None,
        None,
    )
    assert bot == (
        "assistant",
        turns[1].text,
        None,
        None,
        None,
        "report_fraud",
        {"amount": "45.50", "merchant": "tesco"},
        True,
        "exposed",
        12.5,
        None,
    )
    assert store.con.execute(
        "select slot, expected, captured, captured_normalized, status from slot_checks order by slot"
    ).fetchall() == [
        ("amount", "45.50", "45.50", "45.50", "correct"),
        ("date", "2026-03-15", None, None, "missing"),
        ("merchant", "Tesco", "tesco", "Tesco", "correct"),
    ]
    # The gold span is the value, in SQL too.
    assert store.con.execute(
        "select substr(text, s.start + 1, s.end - s.start) from "
        "(select text, unnest(gold_slots) as s from turns)"
    ).fetchall() == [("£45.50",), ("Tesco",), ("yesterday",)]


def test_pair_columns_fragments_and_edits_round_trip(store: Store, pack: Pack) -> None:
    record, turns, checks = finished(pack, 7)
    scenario = sample_scenario(pack, 1, 7).model_copy(update={"goal": FRAUD})
    _, variant = parse_variants("typo:3")
    typo = Edit(
        perturbation="typo", kind="typo.keyboard", start=0, end=5, before="fraud", after="frsud", intensity=3
    )
    amount, merchant, date = turns[0].gold_slots or []
    # The clean turn "fraud: £45.50 at Tesco yesterday", with a typo, sent as two fragments.
    first = turns[0].model_copy(
        update={"text": "frsud: £45.50", "part": 0, "parts": 2, "edits": [typo], "gold_slots": [amount]}
    )
    second = turns[0].model_copy(
        update={
            "turn_idx": 1,
            "text": "at Tesco yesterday",
            "sim_time": 3.5,
            "part": 1,
            "parts": 2,
            "edits": [],
            "gold_slots": [
                merchant.model_copy(update={"start": 3, "end": 8}),
                date.model_copy(update={"start": 9, "end": 18}),
            ],
        }
    )
    bot = turns[1].model_copy(update={"turn_idx": 2})
    perturbed, checks = score(
        pack=pack,
        run_id="s",
        job=Job(scenario, variant, 7 * 2 + 1),
        turns=[first, second, bot],
        end_reason="handoff",
        error=None,
        user_requested_human=False,
    )
    store.add((record, turns, finished(pack, 7)[2]))
    store.add((perturbed, [first, second, bot], checks))
    store.flush()
    assert store.con.execute(
        "select dialogue_id, idx, pair_id, perturbation, intensity, variant, success, outcome "
        "from dialogues order by idx"
    ).fetchall() == [
        ("s-000007-none", 7, "s-000007", "none", 0, "none", True, "success"),
        ("s-000007-typo3", 15, "s-000007", "typo", 3, "typo:3", True, "success"),
    ]
    assert store.con.execute(
        "select turn_idx, speaker, part, parts from turns "
        "where dialogue_id = 's-000007-typo3' order by turn_idx"
    ).fetchall() == [(0, "user", 0, 2), (1, "user", 1, 2), (2, "assistant", None, None)]
    assert store.con.execute(
        'select dialogue_id, turn_idx, edit_idx, perturbation, kind, start, "end", before, after, intensity '
        "from edits"
    ).fetchall() == [("s-000007-typo3", 0, 0, "typo", "typo.keyboard", 0, 5, "fraud", "frsud", 3)]
    assert store.con.execute(
        "select substr(text, s.start + 1, s.end - s.start) from (select turn_idx, text, unnest(gold_slots) "
        "as s from turns where dialogue_id = 's-000007-typo3') order by turn_idx, s.start"
    ).fetchall() == [("£45.50",), ("Tesco",), ("yesterday",)]
    # The pairs view puts the perturbed dialogue next to its clean twin.
    assert store.con.execute(
        "select pair_id, perturbation, intensity, clean_dialogue_id, perturbed_dialogue_id, "
        "clean_success, perturbed_success from pairs"
    ).fetchall() == [("s-000007", "typo", 3, "s-000007-none", "s-000007-typo3", True, True)]


def _with_duplicate_turn(item: Finished) -> Finished:
    record, turns, checks = item
    return record, [*turns, turns[-1].model_copy()], checks


def _with_duplicate_check(item: Finished) -> Finished:
    record, turns, checks = item
    return record, turns, [*checks, checks[0].model_copy()]


@pytest.mark.parametrize("spoil", [_with_duplicate_turn, _with_duplicate_check], ids=["turns", "slot_checks"])
def test_a_failing_flush_writes_nothing_of_its_batch(store: Store, pack: Pack, spoil: object) -> None:
    store.add(finished(pack, 0))
    store.flush()
    assert counts(store.con) == (1, 2, 3)
    store.add(finished(pack, 1))
    store.add(spoil(finished(pack, 2)))  # type: ignore[operator]
    store.add(finished(pack, 3))
    with pytest.raises(duckdb.ConstraintException):
        store.flush()
    # Dialogue 1, 2 and 3 were in one transaction: none of their rows is there.
    assert counts(store.con) == (1, 2, 3)
    assert store.con.execute("select dialogue_id from dialogues").fetchall() == [("s-000000-none",)]
    assert store.written == 1
    # The connection is usable again, and the next batch lands.
    store.add(finished(pack, 4))
    store.flush()
    assert counts(store.con) == (2, 4, 6)
    assert store.written == 2


def test_a_dialogue_stored_twice_fails_its_whole_batch(store: Store, pack: Pack) -> None:
    store.add(finished(pack, 0))
    store.flush()
    store.add(finished(pack, 1))
    store.add(finished(pack, 0))  # already there
    with pytest.raises(duckdb.ConstraintException):
        store.flush()
    assert counts(store.con) == (1, 2, 3)


def test_runs_are_started_resumed_and_ended(store: Store) -> None:
    run = {
        "run_id": "r",
        "pack": "banking",
        "pack_version": "1.0",
        "pack_sha256": "x" * 64,
        "target": "t:f",
        "seed": 1,
        "n_dialogues": 10,
        "max_turns": 12,
        "concurrency": 4,
        "config": {"a": [1, 2]},
        "versions": {"duckdb": duckdb.__version__},
    }
    assert store.get_run("r") is None
    store.start_run(run)
    got = store.get_run("r")
    assert got is not None
    assert (got["status"], got["n_dialogues"], got["finished_at"]) == ("running", 10, None)
    store.end_run("r", "finished")
    got = store.get_run("r")
    assert got is not None and got["status"] == "finished" and got["finished_at"] is not None
    store.start_run(run | {"n_dialogues": 20, "seed": 99})
    got = store.get_run("r")
    assert got is not None
    assert (got["status"], got["n_dialogues"], got["finished_at"], got["seed"]) == ("running", 20, None, 1)
    assert store.con.execute("select count(*) from runs").fetchone() == (1,)
    assert store.finished_indexes("r") == set()


def test_finished_indexes_are_per_run(store: Store, pack: Pack) -> None:
    store.add(finished(pack, 3, run_id="a"))
    store.add(finished(pack, 5, run_id="a"))
    store.add(finished(pack, 4, run_id="b"))
    store.flush()
    assert store.finished_indexes("a") == {3, 5}
    assert store.finished_indexes("b") == {4}
    assert store.finished_indexes("c") == set()


# The schema botdrill wrote before paired runs (version 1), as its store created it.
V1_DDL = """
CREATE TABLE schema_version (
    version INTEGER NOT NULL,
    botdrill_version VARCHAR NOT NULL,
    applied_at TIMESTAMP NOT NULL
);
CREATE TABLE runs (
    run_id VARCHAR PRIMARY KEY,
    created_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    status VARCHAR NOT NULL,
    pack VARCHAR NOT NULL,
    pack_version VARCHAR NOT NULL,
    pack_sha256 VARCHAR NOT NULL,
    target VARCHAR NOT NULL,
    seed BIGINT NOT NULL,
    n_dialogues INTEGER NOT NULL,
    max_turns INTEGER NOT NULL,
    concurrency INTEGER NOT NULL,
    config JSON NOT NULL,
    versions JSON NOT NULL
);
CREATE TABLE dialogues (
    run_id VARCHAR NOT NULL,
    dialogue_id VARCHAR PRIMARY KEY,
    idx INTEGER NOT NULL,
    scenario_id VARCHAR NOT NULL,
    seed BIGINT NOT NULL,
    persona VARCHAR NOT NULL,
    gold_intent VARCHAR NOT NULL,
    critical BOOLEAN NOT NULL,
    gold_slots MAP(VARCHAR, VARCHAR) NOT NULL,
    routed_intent VARCHAR,
    routing_source VARCHAR NOT NULL,
    misrouted BOOLEAN NOT NULL,
    expected_escalation VARCHAR NOT NULL,
    escalation_within INTEGER,
    escalated BOOLEAN NOT NULL,
    escalation_turn INTEGER,
    escalation_source VARCHAR,
    user_requested_human BOOLEAN NOT NULL,
    outcome VARCHAR NOT NULL,
    end_reason VARCHAR NOT NULL,
    user_turns INTEGER NOT NULL,
    assistant_turns INTEGER NOT NULL,
    slot_errors INTEGER NOT NULL,
    error_type VARCHAR,
    error_message VARCHAR,
    sim_seconds DOUBLE NOT NULL,
    transcript_sha256 VARCHAR NOT NULL
);
CREATE TABLE turns (
    run_id VARCHAR NOT NULL,
    dialogue_id VARCHAR NOT NULL,
    turn_idx INTEGER NOT NULL,
    speaker VARCHAR NOT NULL,
    text VARCHAR NOT NULL,
    sim_time DOUBLE NOT NULL,
    gold_intent VARCHAR,
    gold_acts VARCHAR[],
    gold_slots STRUCT(slot VARCHAR, value VARCHAR, "start" INTEGER, "end" INTEGER)[],
    intent VARCHAR,
    slots MAP(VARCHAR, VARCHAR),
    handoff BOOLEAN,
    handoff_source VARCHAR,
    raw JSON,
    latency_ms DOUBLE,
    error_type VARCHAR,
    PRIMARY KEY (dialogue_id, turn_idx)
);
CREATE TABLE slot_checks (
    run_id VARCHAR NOT NULL,
    dialogue_id VARCHAR NOT NULL,
    slot VARCHAR NOT NULL,
    expected VARCHAR NOT NULL,
    captured VARCHAR,
    captured_normalized VARCHAR,
    status VARCHAR NOT NULL,
    PRIMARY KEY (dialogue_id, slot)
);
CREATE VIEW failures AS
SELECT d.run_id, d.dialogue_id, d.gold_intent, d.routed_intent, d.outcome, d.critical, d.persona,
       d.expected_escalation, d.escalated, d.escalation_turn, d.escalation_within, d.slot_errors,
       d.end_reason, d.error_type, d.error_message, d.user_turns, d.assistant_turns
FROM dialogues d
WHERE d.outcome NOT IN ('success', 'handed_off_on_request');
CREATE VIEW confusion AS
SELECT run_id, gold_intent, coalesce(routed_intent, '(none)') AS routed_intent, count(*) AS dialogues
FROM dialogues
GROUP BY run_id, gold_intent, coalesce(routed_intent, '(none)');
CREATE VIEW intent_summary AS
WITH exposing AS (
    SELECT run_id, bool_or(routing_source = 'exposed') AS exposes FROM dialogues GROUP BY run_id
)
SELECT d.run_id, d.gold_intent, bool_or(d.critical) AS critical, count(*) AS dialogues,
       avg(CASE WHEN d.outcome = 'success' THEN 1.0 ELSE 0.0 END) AS success_rate,
       CASE WHEN bool_or(e.exposes)
            THEN avg(CASE WHEN d.routed_intent = d.gold_intent THEN 1.0 ELSE 0.0 END) END
           AS routing_accuracy,
       count(*) FILTER (WHERE expected_escalation = 'must') AS must_escalate,
       count(*) FILTER (WHERE expected_escalation = 'must' AND escalated) AS escalated_when_must,
       (count(*) FILTER (WHERE expected_escalation = 'must' AND escalated))::DOUBLE
           / nullif(count(*) FILTER (WHERE expected_escalation = 'must'), 0) AS escalation_recall,
       count(*) FILTER (WHERE outcome = 'assistant_error') AS errors
FROM dialogues d JOIN exposing e USING (run_id)
GROUP BY d.run_id, d.gold_intent;
INSERT INTO schema_version VALUES (1, '0.1.0', now());
INSERT INTO runs VALUES ('old', now(), now(), 'finished', 'banking', '1.0', 'x', 'reference', 3, 2, 12, 256,
    '{"n": 2}', '{}');
INSERT INTO dialogues VALUES
    ('old', 'old-000000', 0, 's000000', 1, 'p', 'check_balance', false, MAP {}, 'check_balance', 'exposed',
     false, 'never', NULL, false, NULL, NULL, false, 'success', 'user_done', 2, 1, 0, NULL, NULL, 6.5, 'a'),
    ('old', 'old-000001', 1, 's000001', 2, 'p', 'freeze_card', false, MAP {'card_last4': '4410'},
     'freeze_card', 'exposed', false, 'never', NULL, false, NULL, NULL, false, 'slot_error', 'user_done',
     2, 1, 1, NULL, NULL, 7.0, 'b');
INSERT INTO turns VALUES
    ('old', 'old-000000', 0, 'user', 'balance?', 2.0, 'check_balance', ['inform_intent'], [], NULL, NULL,
     NULL, NULL, NULL, NULL, NULL),
    ('old', 'old-000000', 1, 'assistant', 'It is 3.', 4.0, NULL, NULL, NULL, 'check_balance', NULL, false,
     NULL, NULL, 3.0, NULL),
    ('old', 'old-000000', 2, 'user', 'bye', 6.5, 'check_balance', ['goodbye'], [], NULL, NULL, NULL, NULL,
     NULL, NULL, NULL);
"""


def test_a_version_1_file_is_migrated_on_open(tmp_path: Path, pack: Pack) -> None:
    db = tmp_path / "v1.duckdb"
    con = duckdb.connect(str(db))
    con.execute(V1_DDL)
    # The run's provenance as version 1 stored it (its config had no `perturb`: every run was clean).
    v1_config = {
        "pack": "banking",
        "target": "reference",
        "n": 2,
        "seed": 3,
        "concurrency": 256,
        "max_turns": 12,
        "timeout": 30.0,
        "critical_share": 0.5,
        "run_id": "old",
        "loop": "graph",
    }
    con.execute(
        "update runs set pack_sha256 = ?, config = ?", [pack_digest("banking"), json.dumps(v1_config)]
    )
    con.close()
    old_rows = query(db, "select * from dialogues order by idx")

    Store(db).close()
    assert query(db, "select version from schema_version") == [(SCHEMA_VERSION,)]
    columns = {
        (table, column)
        for table, column in query(
            db, "select table_name, column_name from information_schema.columns where table_schema = 'main'"
        )
    }
    for column in ("pair_id", "perturbation", "intensity", "variant", "success"):
        assert ("dialogues", column) in columns, column
    assert {("turns", "part"), ("turns", "parts"), ("edits", "perturbation")} <= columns
    # The old dialogues were all clean: each is its own pair, and success is the outcome's.
    assert query(
        db,
        "select dialogue_id, pair_id, perturbation, intensity, variant, success from dialogues order by idx",
    ) == [
        ("old-000000", "old-000000", "none", 0, "none", True),
        ("old-000001", "old-000001", "none", 0, "none", False),
    ]
    # Version 3: they were simple dialogues, judged on their intent's rule, with no policy around the bot.
    assert query(
        db,
        "select trial, complexity, walk, escalation_trigger, escalation_deadline, escalated_by, policy "
        "from dialogues order by idx",
    ) == [
        (0, "simple", ["check_balance"], None, None, None, "none"),
        (0, "simple", ["freeze_card"], None, None, None, "none"),
    ]
    # Nothing else of them changed.
    assert (
        query(
            db,
            "select * exclude (pair_id, perturbation, intensity, variant, success, trial, complexity, walk, "
            "escalation_trigger, escalation_deadline, escalated_by, policy, simulator_fault, llm_calls, "
            "llm_cached, llm_prompt_tokens, llm_completion_tokens, llm_cost_usd) "
            "from dialogues order by idx",
        )
        == old_rows
    )
    # Version 4: no LLM was called; intents were the bot's own.
    assert query(db, "select sum(llm_calls), sum(llm_prompt_tokens), count(llm_cost_usd) from dialogues") == [
        (0, 0, 0)
    ]
    assert query(db, "select count(*) from turns where intent is not null and intent_source is null") == [
        (0,)
    ]
    assert query(db, "select count(*), count(part), count(parts) from turns") == [(3, 0, 0)]
    assert query(db, "select count(*) from failures where run_id = 'old'") == [(1,)]
    assert query(db, "select pair_id, perturbation from failures") == [("old-000001", "none")]
    assert query(db, "select count(*) from pairs") == [(0,)]
    assert query(db, "select gold_intent, dialogues, success_rate from intent_summary order by all") == [
        ("check_balance", 1, 1.0),
        ("freeze_card", 1, 0.0),
    ]
    # Opened again, it is a current file like any other: one schema row, nothing migrated twice.
    Store(db).close()
    assert query(db, "select version from schema_version") == [(SCHEMA_VERSION,)]

    # The old run resumes as the clean, simple run it was, and only as that...
    with pytest.raises(RunMismatchError, match="perturb"):
        run_drill(RunConfig(db=str(db), n=2, seed=3, run_id="old", complexity="simple"))
    with pytest.raises(RunMismatchError, match="complexity"):
        run_drill(RunConfig(db=str(db), n=2, seed=3, run_id="old", perturb="none"))
    again = run_drill(RunConfig(db=str(db), n=2, seed=3, run_id="old", perturb="none", complexity="simple"))
    assert (again.simulated, again.skipped) == (0, 2)
    # ...but cannot grow: its scenarios came from the sampler before quotas.
    with pytest.raises(RunMismatchError, match="earlier sampler"):
        run_drill(RunConfig(db=str(db), n=3, seed=3, run_id="old", perturb="none", complexity="simple"))

    # New runs, paired or not, are written into it beside the old one.
    run_drill(RunConfig(db=str(db), n=2, seed=1, run_id="new", perturb="typo"))
    s = Store(db)
    try:
        s.add(finished(pack, 9, run_id="direct"))
    finally:
        s.close()
    assert dict(query(db, "select run_id, count(*) from dialogues group by all")) == {
        "old": 2,
        "new": 4,
        "direct": 1,
    }
    assert query(db, "select count(*) from pairs where run_id = 'new'") == [(2,)]
    assert query(db, "select count(*) from dialogues where pair_id is null or success is null") == [(0,)]
    assert query(
        db, "select count(*) from turns where run_id = 'new' and speaker = 'user' and part is null"
    ) == [(0,)]


# What version 5 added: the training-data tables and the views over them.
V5_TABLES = ("batches", "examples", "ratings", "agreement", "calibrations")
V5_VIEWS = ("active_examples", "gate_rejections")


def test_a_version_4_file_is_migrated_on_open(tmp_path: Path, pack: Pack) -> None:
    # A version 4 file is a current one without the training-data tables and views.
    db = tmp_path / "v4.duckdb"
    s = Store(db)
    try:
        for i in range(2):
            s.add(finished(pack, i, run_id="old"))
    finally:
        s.close()
    con = duckdb.connect(str(db))
    for view in V5_VIEWS:
        con.execute(f"DROP VIEW {view}")
    for table in V5_TABLES:
        con.execute(f"DROP TABLE {table}")
    con.execute("UPDATE schema_version SET version = 4")
    con.close()
    objects = "select table_name from information_schema.tables where table_schema = 'main'"
    assert not {name for (name,) in query(db, objects)} & {*V5_TABLES, *V5_VIEWS}
    old = {
        table: query(db, f"select * from {table} order by all")
        for table in ("schema_version", "dialogues", "turns", "slot_checks")
    }
    assert len(old["dialogues"]) == 2
    old_failures = query(db, "select * from failures order by all")

    Store(db).close()
    assert query(db, "select version from schema_version") == [(SCHEMA_VERSION,)]
    # The new tables and views are there, and empty: a version 4 file has no batch.
    assert {name for (name,) in query(db, objects)} >= {*V5_TABLES, *V5_VIEWS}
    for name in (*V5_TABLES, *V5_VIEWS):
        assert query(db, f"select count(*) from {name}") == [(0,)], name
    # Their columns are a new file's, in the same order.
    fresh = Store(":memory:")
    try:
        for name in (*V5_TABLES, *V5_VIEWS):
            columns = (
                "select column_name, data_type, is_nullable from information_schema.columns "
                f"where table_name = '{name}' order by ordinal_position"
            )
            assert query(db, columns) == fresh.con.execute(columns).fetchall(), name
    finally:
        fresh.close()
    # The old rows are untouched, the schema row included (only its version moved on).
    for table, rows in old.items():
        now = query(db, f"select * from {table} order by all")
        if table == "schema_version":
            assert [row[1:] for row in now] == [row[1:] for row in rows]
        else:
            assert now == rows, table
    assert query(db, "select * from failures order by all") == old_failures
    # Opened again, nothing is migrated twice, and the file takes new dialogues.
    s = Store(db)
    try:
        s.add(finished(pack, 2, run_id="old"))
    finally:
        s.close()
    assert query(db, "select version from schema_version") == [(SCHEMA_VERSION,)]
    assert query(db, "select count(*) from dialogues") == [(3,)]


def test_a_newer_schema_version_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    Store(db).close()
    con = duckdb.connect(str(db))
    con.execute("update schema_version set version = 99")
    con.close()
    with pytest.raises(StoreError) as info:
        Store(db)
    message = str(info.value)
    assert str(db) in message
    assert "schema version 99" in message
    assert info.value.code == "store_unusable"
    assert isinstance(info.value, BotdrillError)
    del info
    gc.collect()  # see test_a_refused_store_does_not_keep_the_file_open
    assert query(db, "select version from schema_version") == [(99,)]  # untouched
    # ... and a run into it fails before it writes anything.
    with pytest.raises(StoreError):
        run_drill(RunConfig(db=str(db), n=5, run_id="no"))
    gc.collect()
    assert query(db, "select count(*) from runs") == [(0,)]


def test_a_refused_store_does_not_keep_the_file_open(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    Store(db).close()
    con = duckdb.connect(str(db))
    con.execute("update schema_version set version = 99")
    con.close()
    with pytest.raises(StoreError) as info:
        Store(db)
    assert "schema version 99" in str(info.value)  # the error is still referenced, as a REPL would keep it
    assert query(db, "select version from schema_version") == [(99,)]


def test_a_file_that_is_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    db.write_text("this is not a duckdb file\n" * 100)
    with pytest.raises(StoreError) as info:
        Store(db)
    assert str(db) in str(info.value)


@pytest.fixture
def locked_db(tmp_path: Path) -> Iterator[Path]:
    """A database file held open by another process for as long as the test runs."""
    db = tmp_path / "locked.duckdb"
    Store(db).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
            "print('ready', flush=True); time.sleep(60)",
            str(db),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        yield db
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout:
            holder.stdout.close()


@pytest.mark.slow
def test_a_database_held_by_another_process_is_a_clear_store_error(locked_db: Path) -> None:
    with pytest.raises(StoreError) as info:
        Store(locked_db)
    message = str(info.value)
    assert str(locked_db) in message
    assert "in use by another" in message
    with pytest.raises(StoreError, match="in use by another"):
        connect(locked_db, read_only=True)
    with pytest.raises(StoreError, match="in use by another"):
        run_drill(RunConfig(db=str(locked_db), n=5, run_id="blocked"))
    proc = invoke("sql", "--db", str(locked_db), "select 1")
    assert proc.exit_code == 2
    assert "in use by another" in one_line(proc.stderr)
