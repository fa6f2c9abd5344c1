"""End to end: `botdrill run` into a fresh database, the database checked with SQL, then `sql` and `runs`."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from botdrill.scenarios import Pack, normalize_value, pack_digest
from botdrill.simulator import SCHEMA_VERSION, Outcome
from botdrill.simulator._records import TurnRecord
from botdrill.simulator._scoring import transcript_digest
from botdrill.simulator._variants import DEFAULT_PERTURBATIONS

from ._util import invoke, one_line, query, run_cli, stored_transcripts, transcript_problems

pytestmark = pytest.mark.slow

SCORED = "(select * from dialogues where simulator_fault is null)"
"""The dialogues the assistant is scored on (the views leave out simulated-user faults)."""
N = 150
OUTCOMES = {o.value for o in Outcome}
END_REASONS = {"user_done", "user_gave_up", "user_abandoned", "handoff", "max_turns", "assistant_error"}


@pytest.fixture(scope="module")
def e2e(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One CLI run of 150 dialogues, shared by the tests of this module (they only read it)."""
    folder = tmp_path_factory.mktemp("e2e")
    db = folder / "tmp" / "x.duckdb"
    db.parent.mkdir()
    proc = run_cli(
        "run",
        "-n",
        str(N),
        "--seed",
        "3",
        "--db",
        str(db),
        "--run-id",
        "e2e",
        "--perturb",
        "none",
        cwd=folder,
    )
    assert proc.returncode == 0, proc.stderr
    return db, proc


def test_run_exits_zero_and_says_where_the_run_is(e2e: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    db, proc = e2e
    assert db.is_file()
    out = one_line(proc.stdout)
    assert "Run e2e is in" in out
    assert str(db) in out
    assert f"{N} dialogues simulated, 0 already stored" in one_line(proc.stderr)


def test_runs_row_records_provenance(e2e: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    db, _ = e2e
    rows = query(
        db,
        "select run_id, status, seed, pack, pack_version, pack_sha256, target, n_dialogues, "
        "max_turns, concurrency, finished_at is not null, finished_at >= created_at, "
        "config::varchar, versions::varchar from runs",
    )
    assert len(rows) == 1
    (
        run_id,
        status,
        seed,
        pack,
        pack_version,
        sha,
        target,
        n,
        max_turns,
        concurrency,
        has_end,
        ordered,
        config,
        versions,
    ) = rows[0]
    assert (run_id, status, seed, pack, target, n, max_turns, concurrency) == (
        "e2e",
        "finished",
        3,
        "banking",
        "reference",
        N,
        12,
        256,
    )
    assert pack_version == "1.0"
    assert sha == pack_digest("banking")
    assert has_end and ordered
    versions_json = json.loads(versions)
    for dist in ("langgraph", "duckdb", "python", "botdrill", "pydantic"):
        assert versions_json.get(dist), dist
    assert versions_json["duckdb"] == duckdb.__version__
    config_json = json.loads(config)
    assert config_json["n"] == N
    assert config_json["seed"] == 3
    assert config_json["run_id"] == "e2e"
    assert config_json["pack"] == "banking"
    assert config_json["loop"] == "graph"
    assert "db" not in config_json


def test_schema_version_is_five(e2e: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    db, _ = e2e
    assert SCHEMA_VERSION == 5
    assert query(db, "select version from schema_version") == [(5,)]


def test_dialogues_are_all_there_with_stable_ids(e2e: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    db, _ = e2e
    rows = query(db, "select idx, dialogue_id, run_id, scenario_id from dialogues order by idx")
    assert len(rows) == N
    assert [r[0] for r in rows] == list(range(N))
    assert all(r[1] == f"e2e-{r[0]:06d}-none" and r[2] == "e2e" and r[3] == f"s{r[0]:06d}" for r in rows)


def test_outcomes_and_end_reasons_are_from_the_documented_sets(
    e2e: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    db, _ = e2e
    outcomes = {r[0] for r in query(db, "select distinct outcome from dialogues")}
    reasons = {r[0] for r in query(db, "select distinct end_reason from dialogues")}
    assert outcomes <= OUTCOMES
    assert reasons <= END_REASONS
    assert "success" in outcomes
    # The built-in bot is imperfect on purpose: a drill of 150 dialogues finds failures.
    assert outcomes - {"success", "handed_off_on_request"}
    # The reference bot never errors.
    assert query(
        db,
        "select count(*) from dialogues where outcome = 'assistant_error' "
        "or error_type is not null or end_reason = 'assistant_error'",
    ) == [(0,)]


def test_dialogue_columns_agree_with_the_pack(
    e2e: tuple[Path, subprocess.CompletedProcess[str]], pack: Pack
) -> None:
    db, _ = e2e
    rows = query(
        db,
        "select gold_intent, critical, expected_escalation, escalation_within, gold_slots, "
        "persona, routed_intent, routing_source, misrouted, escalated, escalation_turn, "
        "escalation_source, assistant_turns, user_turns, end_reason, escalation_trigger, "
        "escalation_deadline, walk, complexity from dialogues",
    )
    personas = {p.id for p in pack.personas}
    for (
        intent,
        critical,
        expected,
        within,
        slots,
        persona,
        routed,
        routing_source,
        misrouted,
        escalated,
        esc_turn,
        esc_source,
        bot_turns,
        user_turns,
        end_reason,
        trigger,
        deadline,
        walk,
        complexity,
    ) in rows:
        spec = pack.intent(intent)
        assert critical == spec.critical
        assert intent in walk
        if trigger in ("request", "failure", "crisis"):  # a trigger makes a hand-off due for any intent
            assert expected == "must" and deadline is not None
        elif trigger == "intent":
            assert expected == spec.escalation.expected == "must"
            assert deadline is not None and deadline >= spec.escalation.within_turns
        elif complexity == "turn_into" and end_reason == "handoff" and bot_turns == 1:
            # handed over before the user turned to its goal: judged on what it had asked for
            assert expected == pack.intent(walk[0]).escalation.expected
        else:
            assert expected == spec.escalation.expected
        assert within == spec.escalation.within_turns
        assert set(slots) == set(spec.slots)
        assert persona in personas
        assert routing_source == ("exposed" if routed is not None else "none")
        if complexity != "turn_into" or bot_turns > 1:
            assert misrouted == (routed is not None and routed != intent)
        assert escalated == (esc_turn is not None)
        if escalated:
            assert 1 <= esc_turn <= bot_turns
            assert esc_source in ("exposed", "judged")
        else:
            assert esc_source is None
        assert user_turns >= 1
        # Every user message is answered, but the goodbye or give-up that ends a dialogue, and a message
        # the user had already sent when the assistant ended it (a nudge, in a clean run).
        if end_reason in ("handoff", "max_turns", "assistant_error"):
            assert user_turns - 1 <= bot_turns <= user_turns
        else:
            assert bot_turns == user_turns - (end_reason in ("user_done", "user_gave_up"))


def test_critical_intents_are_drilled(e2e: tuple[Path, subprocess.CompletedProcess[str]], pack: Pack) -> None:
    db, _ = e2e
    critical = {i.name for i in pack.intents if i.critical}
    drilled = {r[0] for r in query(db, "select distinct gold_intent from dialogues where critical")}
    assert drilled
    assert drilled <= critical
    # critical_share=0.5 by default: about half the dialogues, whatever their share of traffic.
    (count,) = query(db, "select count(*) from dialogues where critical")[0]
    assert 0.3 * N < count < 0.7 * N
    # A hand-off due for an everyday intent comes from a trigger, never from the intent's own rule.
    assert query(
        db,
        "select count(*) from dialogues where expected_escalation = 'must' and not critical "
        "and escalation_trigger not in ('request', 'failure', 'crisis')",
    ) == [(0,)]


def test_every_dialogue_has_its_whole_transcript(e2e: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    db, _ = e2e
    bad = query(
        db,
        """
        select d.dialogue_id, d.user_turns, d.assistant_turns, count(t.turn_idx), min(t.turn_idx),
               max(t.turn_idx), count(*) filter (where t.speaker = 'user'),
               count(*) filter (where t.speaker = 'assistant')
        from dialogues d left join turns t using (dialogue_id)
        group by all
        having count(t.turn_idx) = 0
            or count(t.turn_idx) != d.user_turns + d.assistant_turns
            or min(t.turn_idx) != 0 or max(t.turn_idx) != count(t.turn_idx) - 1
            or count(*) filter (where t.speaker = 'user') != d.user_turns
            or count(*) filter (where t.speaker = 'assistant') != d.assistant_turns""",
    )
    assert bad == []
    # The user speaks first; the transcript is in the order of simulated time; the assistant answers the
    # user's messages in order, each after it was sent (see transcript_problems).
    dialogues = stored_transcripts(db, "e2e")
    assert len(dialogues) == N
    assert {d: p for d, (end, turns) in dialogues.items() if (p := transcript_problems(turns, end))} == {}
    # A clean run sends every turn whole; the only user message that is not answered before the user's
    # next is a nudge, sent when the modelled latency outlasted the user's patience (at most once each).
    assert query(db, "select count(*) from turns where speaker = 'user' and (part, parts) != (0, 1)") == [
        (0,)
    ]
    assert query(
        db,
        """
        select count(*) from (
            select dialogue_id, speaker, gold_acts,
                   lag(speaker) over (partition by dialogue_id order by turn_idx) as before
            from turns)
        where speaker = 'user' and before = 'user' and gold_acts != ['nudge']""",
    ) == [(0,)]
    assert query(
        db,
        "select count(*) from (select dialogue_id from turns where gold_acts = ['nudge'] group by all "
        "having count(*) > 1)",
    ) == [(0,)]
    # No turn without its dialogue.
    assert query(db, "select count(*) from turns t anti join dialogues d using (dialogue_id)") == [(0,)]
    assert query(db, "select count(*) from turns where run_id != 'e2e'") == [(0,)]


def test_transcript_digests_match_the_stored_turns(
    e2e: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    db, _ = e2e
    turns: dict[str, list[TurnRecord]] = {}
    for dialogue_id, turn_idx, speaker, text, sim_time in query(
        db, "select dialogue_id, turn_idx, speaker, text, sim_time from turns order by dialogue_id, turn_idx"
    ):
        turns.setdefault(dialogue_id, []).append(
            TurnRecord(turn_idx=turn_idx, speaker=speaker, text=text, sim_time=sim_time)
        )
    stored = dict(query(db, "select dialogue_id, transcript_sha256 from dialogues"))
    assert stored.keys() == turns.keys()
    assert {k: transcript_digest(v) for k, v in turns.items()} == stored
    assert len(set(stored.values())) > N // 2  # transcripts differ from dialogue to dialogue


def test_simulated_clock_moves_forward(e2e: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    db, _ = e2e
    assert query(
        db,
        """
        select count(*) from (
            select sim_time < lag(sim_time) over (partition by dialogue_id order by turn_idx) as back
            from turns) where back""",
    ) == [(0,)]
    assert query(db, "select count(*) from turns where sim_time <= 0") == [(0,)]
    assert query(
        db,
        "select count(*) from dialogues d where sim_seconds != "
        "(select max(sim_time) from turns t where t.dialogue_id = d.dialogue_id)",
    ) == [(0,)]


def test_user_turns_carry_gold_labels(e2e: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    db, _ = e2e
    assert query(
        db,
        "select count(*) from turns where speaker = 'user' and "
        "(gold_intent is null or gold_slots is null or gold_acts is null or len(gold_acts) = 0)",
    ) == [(0,)]
    assert query(
        db,
        "select count(*) from turns t join dialogues d using (dialogue_id) "
        "where t.speaker = 'user' and not list_contains(d.walk, t.gold_intent)",
    ) == [(0,)]
    assert query(
        db,
        "select count(*) from turns where speaker = 'assistant' and "
        "(gold_intent is not null or gold_slots is not null or gold_acts is not null)",
    ) == [(0,)]
    assert query(
        db,
        "select count(*) from turns where speaker = 'user' and "
        "(intent is not null or handoff is not null or latency_ms is not null)",
    ) == [(0,)]
    # Assistant turns: the reference bot exposes what it routed to and whether it handed off.
    assert query(
        db,
        "select count(*) from turns where speaker = 'assistant' and (handoff is null or latency_ms is null)",
    ) == [(0,)]
    assert query(
        db, "select count(*) from turns where speaker = 'assistant' and handoff and handoff_source is null"
    ) == [(0,)]


def test_gold_slot_spans_point_at_the_value(
    e2e: tuple[Path, subprocess.CompletedProcess[str]], pack: Pack
) -> None:
    db, _ = e2e
    spans = query(
        db,
        """
        select t.dialogue_id, t.text, s.slot, s.value, s."start", s."end",
               substr(t.text, s."start" + 1, s."end" - s."start") as said, d.gold_slots
        from (select dialogue_id, turn_idx, text, unnest(gold_slots) as s from turns where speaker = 'user') t
        join dialogues d using (dialogue_id)""",
    )
    assert len(spans) > N // 2  # users say slot values
    for dialogue_id, text, slot, value, start, end, said, gold in spans:
        assert 0 <= start < end <= len(text), (dialogue_id, text, start, end)
        assert said, (dialogue_id, text)
        assert said == text[start:end]
        assert said.strip() == said
        assert gold[slot] == value, (dialogue_id, slot)
        # The span says the gold value: normalising it gives the canonical value back.
        assert normalize_value(pack.slot(slot), said, pack) == value, (dialogue_id, said, value)


def test_slot_checks_cover_every_gold_slot(e2e: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    db, _ = e2e
    assert query(db, "select count(*) from slot_checks") == query(
        db, "select sum(cardinality(gold_slots)) from dialogues"
    )
    assert query(db, "select count(*) from slot_checks")[0][0] > 0
    assert query(
        db,
        "select count(*) from slot_checks c join dialogues d using (dialogue_id) "
        "where d.gold_slots[c.slot] is null or d.gold_slots[c.slot] != c.expected",
    ) == [(0,)]
    statuses = {r[0] for r in query(db, "select distinct status from slot_checks")}
    assert statuses <= {"correct", "wrong", "missing", "not_exposed"}
    assert "correct" in statuses
    assert query(
        db,
        "select count(*) from slot_checks where (status = 'correct') != "
        "coalesce(captured_normalized = expected, false)",
    ) == [(0,)]
    assert query(
        db,
        "select count(*) from slot_checks where (status = 'missing') != "
        "(captured is null and status != 'not_exposed')",
    ) == [(0,)]
    # slot_errors on the dialogue counts its wrong and missing checks.
    assert query(
        db,
        """
        select count(*) from dialogues d where slot_errors != (
            select count(*) from slot_checks c
            where c.dialogue_id = d.dialogue_id and c.status in ('wrong', 'missing'))""",
    ) == [(0,)]


def test_failures_view_agrees_with_dialogues(e2e: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    db, _ = e2e
    (failures,) = query(db, "select count(*) from failures")[0]
    (expected,) = query(
        db,
        f"select count(*) from {SCORED} where outcome not in ('success', 'handed_off_on_request')",
    )[0]
    assert failures == expected > 0
    assert query(
        db, "select count(*) from failures where outcome in ('success', 'handed_off_on_request')"
    ) == [(0,)]
    assert (
        query(
            db,
            "select dialogue_id from failures except "
            f"select dialogue_id from {SCORED} where outcome not in "
            "('success', 'handed_off_on_request')",
        )
        == []
    )


def test_confusion_view_agrees_with_dialogues(e2e: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    db, _ = e2e
    confusion = query(
        db, "select gold_intent, routed_intent, dialogues from confusion where run_id = 'e2e' order by all"
    )
    direct = query(
        db,
        "select gold_intent, coalesce(routed_intent, '(none)'), count(*) "
        f"from {SCORED} group by all order by all",
    )
    assert confusion == direct
    (spoilt,) = query(db, "select count(*) from dialogues where simulator_fault is not null")[0]
    assert sum(r[2] for r in confusion) == N - spoilt
    # Diagonal vs off-diagonal agrees with the misrouted flag.
    off = sum(r[2] for r in confusion if r[1] not in (r[0], "(none)"))
    assert query(db, f"select count(*) from {SCORED} where misrouted") == [(off,)]


def test_intent_summary_view_agrees_with_dialogues(
    e2e: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    db, _ = e2e
    rows = query(db, "select gold_intent, dialogues, success_rate from intent_summary where run_id = 'e2e'")
    counts = Counter(
        dict(
            query(
                db,
                f"select gold_intent, count(*) from {SCORED} group by all",
            )
        )
    )
    assert {r[0]: r[1] for r in rows} == dict(counts)
    for intent, n, rate in rows:
        (successes,) = query(
            db,
            f"select count(*) from {SCORED} where gold_intent = ? and outcome = 'success'",
            [intent],
        )[0]
        assert rate == pytest.approx(successes / n)


def test_a_default_run_drills_every_scenario_clean_and_perturbed(tmp_path: Path) -> None:
    db = tmp_path / "paired.duckdb"
    result = invoke("run", "-n", "4", "--seed", "3", "--db", str(db), "--run-id", "pp", "--quiet")
    assert result.exit_code == 0, result.stderr
    names = ("none", *DEFAULT_PERTURBATIONS)
    total = 4 * len(names)
    assert f"{total} dialogues simulated, 0 already stored" in one_line(result.stderr)
    assert query(db, "select n_dialogues, config->>'perturb', status from runs") == [
        (total, "default", "finished")
    ]
    assert query(
        db, "select idx, dialogue_id, pair_id, perturbation, intensity, variant from dialogues order by idx"
    ) == [
        (
            i * len(names) + v,
            f"pp-{i:06d}-{name if name == 'none' else name + '2'}",
            f"pp-{i:06d}",
            name,
            0 if name == "none" else 2,
            "none" if name == "none" else f"{name}:2",
        )
        for i in range(4)
        for v, name in enumerate(names)
    ]
    # A pair's dialogues share the scenario: persona, goal and seed.
    assert query(
        db,
        "select count(*) from (select pair_id from dialogues group by all having count(distinct "
        "(scenario_id, seed, persona, gold_intent, gold_slots::varchar)) != 1)",
    ) == [(0,)]
    assert query(
        db,
        "select count(*), count(*) filter (where clean_dialogue_id = pair_id || '-none'), "
        "count(distinct perturbation) from pairs",
    ) == [(total - 4, total - 4, len(DEFAULT_PERTURBATIONS))]
    # Every text perturbation left edits, on user messages of its own dialogues only, each span saying what
    # the edit put there.
    edited = {r[0] for r in query(db, "select distinct perturbation from edits")}
    assert edited >= set(DEFAULT_PERTURBATIONS) - {"barge_in"}
    assert query(
        db,
        """
        select count(*) from edits e
        join turns t using (dialogue_id, turn_idx) join dialogues d using (dialogue_id)
        where t.speaker != 'user'
           or (d.perturbation != e.perturbation
               and not (e.perturbation = 'correction' and d.complexity = 'correction'))
           or e."end" > length(t.text) or substr(t.text, e.start + 1, e."end" - e.start) != e.after""",
    ) == [(0,)]
    dialogues = stored_transcripts(db, "pp")
    assert len(dialogues) == total
    assert {d: p for d, (end, turns) in dialogues.items() if (p := transcript_problems(turns, end))} == {}
    assert query(db, "select count(*) from turns where speaker = 'user' and parts > 1") != [(0,)]
    proc = invoke("runs", "--db", str(db))
    assert proc.exit_code == 0, proc.stderr
    assert f"{total}/{total}" in proc.stdout


# -- botdrill sql / runs -----------------------------------------------------------------------------


def test_sql_csv_output_parses(e2e: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    db, _ = e2e
    proc = run_cli("sql", "--db", str(db), "select count(*) as n from dialogues", "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.reader(io.StringIO(proc.stdout)))
    assert rows == [["n"], [str(N)]]


def test_sql_json_output_parses(e2e: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    db, _ = e2e
    proc = invoke(
        "sql",
        "--db",
        str(db),
        "select outcome, count(*) as n from dialogues group by outcome order by outcome",
        "--format",
        "json",
    )
    assert proc.exit_code == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert isinstance(data, list)
    assert sum(row["n"] for row in data) == N
    assert {row["outcome"] for row in data} <= OUTCOMES
    direct = query(db, "select outcome, count(*) from dialogues group by outcome order by outcome")
    assert [(row["outcome"], row["n"]) for row in data] == direct


def test_sql_on_a_missing_database_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "nope.duckdb"
    proc = invoke("sql", "--db", str(missing), "select 1")
    assert proc.exit_code == 2
    message = one_line(proc.stderr)
    assert str(missing) in message
    assert "no such database" in message
    assert "Traceback" not in proc.stderr
    assert not missing.exists()  # reading does not create a database


def test_sql_invalid_query_and_format_exit_2(e2e: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    db, _ = e2e
    proc = invoke("sql", "--db", str(db), "select no_such_column from dialogues")
    assert proc.exit_code == 2
    assert "query failed" in one_line(proc.stderr)
    assert "no_such_column" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = invoke("sql", "--db", str(db), "select 1", "--format", "xml")
    assert proc.exit_code == 2
    assert "--format" in proc.stderr


def test_sql_connection_is_read_only(e2e: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    db, _ = e2e
    before = query(db, "select count(*), count(distinct run_id) from dialogues")
    for statement in (
        "insert into dialogues select * replace ('x-' || dialogue_id as dialogue_id) from dialogues",
        "delete from dialogues",
        "create table t as select 1",
    ):
        proc = invoke("sql", "--db", str(db), statement)
        assert proc.exit_code == 2, statement
        assert "read-only" in one_line(proc.stderr), statement
    assert "read-only" in one_line(proc.stderr)
    assert query(db, "select count(*), count(distinct run_id) from dialogues") == before == [(N, 1)]


def test_runs_lists_the_run(e2e: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    db, _ = e2e
    proc = invoke("runs", "--db", str(db))
    assert proc.exit_code == 0, proc.stderr
    line = next(line for line in proc.stdout.splitlines() if "e2e" in line)
    assert "finished" in line
    assert "banking" in line
    assert f"{N}/{N}" in line
    # BOTDRILL_DB names the database when --db is not given.
    proc = invoke("runs", env={"BOTDRILL_DB": str(db)})
    assert proc.exit_code == 0, proc.stderr
    assert f"{N}/{N}" in proc.stdout


def test_runs_on_a_missing_database_exits_2(tmp_path: Path) -> None:
    proc = invoke("runs", "--db", str(tmp_path / "none.duckdb"))
    assert proc.exit_code == 2
    assert "no such database" in one_line(proc.stderr)


def test_reusing_the_run_id_with_another_seed_exits_2(
    e2e: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    db, _ = e2e
    result = invoke(
        "run", "-n", str(N), "--seed", "4", "--db", str(db), "--run-id", "e2e", "--perturb", "none"
    )
    assert result.exit_code == 2
    message = one_line(result.stderr)
    assert "e2e" in message and "seed" in message
    assert query(db, "select status, seed, count(*) over () from runs") == [("finished", 3, 1)]
    assert query(db, "select count(*) from dialogues") == [(N,)]
