"""The DuckDB store: batches land whole or not at all, versions are checked, one process at a time."""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from botdrill.agents import GoldSlot
from botdrill.scenarios import BotdrillError, Goal, Pack, sample_scenario
from botdrill.simulator import (
    SCHEMA_VERSION,
    RunConfig,
    Store,
    StoreError,
    TurnRecord,
    connect,
    run_drill,
    score,
)
from botdrill.simulator._engine import Finished

from ._util import invoke, one_line, query


def finished(pack: Pack, index: int, *, run_id: str = "s") -> Finished:
    """A scored report_fraud dialogue with three gold slots, two captured."""
    goal = Goal(
        intent="report_fraud",
        slots={"amount": "45.50", "merchant": "Tesco", "date": "2026-03-15"},
        escalation="must",
        escalation_within=3,
        critical=True,
    )
    scenario = sample_scenario(pack, 1, index).model_copy(update={"goal": goal})
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
        scenario=scenario,
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
    } <= names


def test_reopening_keeps_one_schema_row(tmp_path: Path) -> None:
    for _ in range(3):
        Store(tmp_path / "s.duckdb").close()
    assert query(tmp_path / "s.duckdb", "select version from schema_version") == [(1,)]


def test_in_memory_store() -> None:
    s = Store(":memory:")
    try:
        assert s.con.execute("select max(version) from schema_version").fetchone() == (1,)
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
        "s-000007",
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
    assert store.con.execute("select dialogue_id from dialogues").fetchall() == [("s-000000",)]
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


def test_a_newer_schema_version_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    Store(db).close()
    con = duckdb.connect(str(db))
    con.execute("update schema_version set version = 2")
    con.close()
    with pytest.raises(StoreError) as info:
        Store(db)
    message = str(info.value)
    assert str(db) in message
    assert "schema version 2" in message
    assert info.value.code == "store_unusable"
    assert isinstance(info.value, BotdrillError)
    del info
    gc.collect()  # see test_a_refused_store_does_not_keep_the_file_open
    assert query(db, "select version from schema_version") == [(2,)]  # untouched
    # ... and a run into it fails before it writes anything.
    with pytest.raises(StoreError):
        run_drill(RunConfig(db=str(db), n=5, run_id="no"))
    gc.collect()
    assert query(db, "select count(*) from runs") == [(0,)]


def test_a_refused_store_does_not_keep_the_file_open(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    Store(db).close()
    con = duckdb.connect(str(db))
    con.execute("update schema_version set version = 2")
    con.close()
    with pytest.raises(StoreError) as info:
        Store(db)
    assert "schema version 2" in str(info.value)  # the error is still referenced, as a REPL would keep it
    assert query(db, "select version from schema_version") == [(2,)]


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
