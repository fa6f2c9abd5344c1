"""Metrics read from the store's views, so the numbers in Python, the CLI and plain SQL always agree."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from botdrill.simulator import connect


@dataclass(frozen=True)
class IntentSummary:
    """One intent's results in one run (a row of the `intent_summary` view)."""

    intent: str
    critical: bool
    dialogues: int
    success_rate: float
    """Share of dialogues with outcome `success`."""
    routing_accuracy: float | None
    """Share of dialogues routed to the gold intent (never routed counts as wrong); `None` when the
    assistant exposes no intents in this run."""
    escalation_recall: float | None
    """Share of must-escalate dialogues that reached a person; `None` when there were none."""
    errors: int
    """Dialogues in which the assistant failed."""


Database = str | Path | duckdb.DuckDBPyConnection


@contextmanager
def _open(db: Database) -> Iterator[duckdb.DuckDBPyConnection]:
    if isinstance(db, duckdb.DuckDBPyConnection):
        yield db
        return
    con = connect(db, read_only=True)
    try:
        yield con
    finally:
        con.close()


def _dicts(db: Database, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    """Rows of a query as dicts keyed by column name."""
    with _open(db) as con:
        cursor = con.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def latest_run(db: Database) -> str | None:
    """The id of the most recently created run, or `None` for an empty database."""
    with _open(db) as con:
        row = con.execute("select run_id from runs order by created_at desc, run_id desc limit 1").fetchone()
    return row[0] if row else None


def intent_summary(db: Database, run_id: str) -> list[IntentSummary]:
    """Per-intent results of `run_id`, critical intents first."""
    with _open(db) as con:
        rows = con.execute(
            "select gold_intent, critical, dialogues, success_rate, routing_accuracy, escalation_recall, "
            "errors "
            "from intent_summary where run_id = ? order by critical desc, gold_intent",
            [run_id],
        ).fetchall()
    return [IntentSummary(*row) for row in rows]


def run_summary(db: Database, run_id: str) -> IntentSummary | None:
    """The same figures as `intent_summary` over the whole run (`intent` is `"*"`), or `None` if empty."""
    with _open(db) as con:
        row = con.execute(
            "select '*', bool_or(critical), count(*), "
            "avg(case when outcome = 'success' then 1.0 else 0.0 end), "
            "case when bool_or(routing_source = 'exposed') "
            "then avg(case when routed_intent = gold_intent then 1.0 else 0.0 end) end, "
            "count(*) filter (where expected_escalation = 'must' and escalated)::double "
            "/ nullif(count(*) filter (where expected_escalation = 'must'), 0), "
            "count(*) filter (where outcome = 'assistant_error') "
            "from dialogues where run_id = ?",
            [run_id],
        ).fetchone()
    if row is None or not row[2]:
        return None
    return IntentSummary(*row)


def confusion(db: Database, run_id: str) -> dict[tuple[str, str], int]:
    """Dialogue counts per (gold intent, routed intent); `(none)` where the bot never routed."""
    with _open(db) as con:
        rows = con.execute(
            "select gold_intent, routed_intent, dialogues from confusion where run_id = ?", [run_id]
        ).fetchall()
    return {(gold, routed): n for gold, routed, n in rows}


def failures(
    db: Database, run_id: str, *, outcome: str | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """Rows of the `failures` view for `run_id`, optionally of one outcome."""
    sql = "select * from failures where run_id = ?"
    params: list[Any] = [run_id]
    if outcome is not None:
        sql += " and outcome = ?"
        params.append(outcome)
    sql += " order by dialogue_id"
    if limit is not None:
        sql += f" limit {int(limit)}"
    return _dicts(db, sql, params)


@dataclass(frozen=True)
class EscalationScore:
    """Escalation scores of one intent under one perturbation in one run (a row of `escalation_scores`)."""

    intent: str
    critical: bool
    perturbation: str
    dialogues: int
    must_escalate: int
    escalation_recall: float | None
    """Share of must-escalate dialogues that reached a person; `None` when there were none."""
    on_time_rate: float | None
    """Share of must-escalate dialogues handed over within the pack's turn limit."""
    escalated: int
    escalation_precision: float | None
    """Share of hand-offs that were right: the intent must or may escalate, or the user asked."""
    over_escalation_rate: float | None
    """Share of never-escalate dialogues, the user not asking, that were handed over anyway."""
    mean_turns_to_handoff: float | None
    mean_seconds_to_handoff: float | None
    """Simulated seconds from the first message to the hand-off."""
    p90_seconds_to_handoff: float | None


def escalation_scores(db: Database, run_id: str) -> list[EscalationScore]:
    """Escalation scores of `run_id` per intent and perturbation, critical intents first."""
    with _open(db) as con:
        rows = con.execute(
            "select gold_intent, critical, perturbation, dialogues, must_escalate, escalation_recall, "
            "on_time_rate, escalated, escalation_precision, over_escalation_rate, mean_turns_to_handoff, "
            "mean_seconds_to_handoff, p90_seconds_to_handoff from escalation_scores where run_id = ? "
            "order by critical desc, gold_intent, perturbation",
            [run_id],
        ).fetchall()
    return [EscalationScore(*row) for row in rows]


@dataclass(frozen=True)
class RunScores:
    """One run's headline figures with its escalation policy (a row of the `run_scores` view)."""

    run_id: str
    policy: str
    target: str
    seed: int
    pack: str
    dialogues: int
    success_rate: float
    escalation_recall: float | None
    """Share of dialogues that called for a hand-off (intent or trigger) and got one."""
    on_time_rate: float | None
    """Share of those handed over by their deadline."""
    escalation_precision: float | None
    """Share of hand-offs that were due, allowed, or asked for."""
    over_escalation_rate: float | None
    """Share of never-escalate dialogues, the user not asking, handed over anyway."""
    policy_handoffs: int
    """Hand-offs made by the policy rather than the assistant itself."""
    mean_turns_to_handoff: float | None
    mean_seconds_to_handoff: float | None


def run_scores(db: Database, run_ids: list[str]) -> list[RunScores]:
    """Headline figures of `run_ids`, in the order given (to compare policies or bots side by side)."""
    with _open(db) as con:
        rows = con.execute(
            "select run_id, policy, target, seed, pack, dialogues, success_rate, escalation_recall, "
            "on_time_rate, escalation_precision, over_escalation_rate, policy_handoffs, "
            "mean_turns_to_handoff, mean_seconds_to_handoff from run_scores where list_contains(?, run_id)",
            [run_ids],
        ).fetchall()
    by_id = {row[0]: RunScores(*row) for row in rows}
    return [by_id[r] for r in run_ids if r in by_id]


def coverage(db: Database, run_id: str, *, level: str | None = None) -> list[dict[str, Any]]:
    """Rows of the `coverage` table for `run_id` (one `level` only, if given)."""
    sql = "select * from coverage where run_id = ?"
    params: list[Any] = [run_id]
    if level is not None:
        sql += " and level = ?"
        params.append(level)
    sql += " order by level, intent, complexity, persona, perturbation, edge_kind, edge_source, edge_target"
    return _dicts(db, sql, params)
