"""Metrics read from the store's views, so the numbers in Python, the CLI and plain SQL always agree."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import duckdb

from botdrill.simulator import connect

from ._stats import bootstrap_ci, mcnemar_exact


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
    """The id of the most recently created run (not counting `<run>:shrunk` runs of minimal dialogues), or
    `None` for an empty database."""
    with _open(db) as con:
        row = con.execute(
            "select run_id from runs where status <> 'shrunk' order by created_at desc, run_id desc limit 1"
        ).fetchone()
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
            "case when bool_or(routing_source <> 'none') "
            "then avg(case when routed_intent = gold_intent then 1.0 else 0.0 end) end, "
            "count(*) filter (where expected_escalation = 'must' and escalated)::double "
            "/ nullif(count(*) filter (where expected_escalation = 'must'), 0), "
            "count(*) filter (where outcome = 'assistant_error') "
            "from scored_dialogues where run_id = ?",
            [run_id],
        ).fetchone()
    if row is None or not row[2]:
        return None
    return IntentSummary(*row)


@dataclass(frozen=True)
class LLMUsage:
    """What a run's LLM calls took (the `llm_usage` view): every dialogue, scored or not."""

    run_id: str
    dialogues: int
    calls: int
    """Requests sent (0 for a replayed run)."""
    cached: int
    """Results served from the record/replay store."""
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    """By the configured price tables; `None` without one."""
    tokens_per_dialogue: float
    cost_per_dialogue: float | None


def llm_usage(db: Database, run_id: str) -> LLMUsage | None:
    """The run's LLM calls, tokens and cost, or `None` when it made no LLM call at all."""
    with _open(db) as con:
        row = con.execute(
            "select run_id, dialogues, calls, cached, prompt_tokens, completion_tokens, cost_usd, "
            "tokens_per_dialogue, cost_per_dialogue from llm_usage where run_id = ?",
            [run_id],
        ).fetchone()
    if row is None or not (row[2] or row[3] or row[4] or row[5]):
        return None
    return LLMUsage(*row)


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


# -- stress test: routing, slots, success, pass^k, brittleness ------------------------------------------
#
# The views below roll a column up to '*' (all its values); `by` picks which columns stay split.

_COLUMNS = {"intent": "gold_intent", "slot": "slot", "persona": "persona", "perturbation": "perturbation"}
_UNROUTED = "(none)"
"""The routed label of a dialogue the assistant never routed (as in the `confusion` view)."""


def _split_by(by: str | Sequence[str], allowed: tuple[str, ...]) -> tuple[str, list[str]]:
    """The SQL condition selecting the rows split by `by` (and rolled up over the rest of `allowed`),
    and the columns to order them by."""
    wanted = {by} if isinstance(by, str) else set(by)
    unknown = wanted - set(allowed)
    if unknown:
        raise ValueError(f"cannot split by {sorted(unknown)}; choose from {list(allowed)}")
    where = " and ".join(f"{_COLUMNS[name]} {'<>' if name in wanted else '='} '*'" for name in allowed)
    order = [
        "perturbation <> 'none', perturbation" if name == "perturbation" else _COLUMNS[name]
        for name in allowed
        if name in wanted
    ]
    return where, order


@dataclass(frozen=True)
class Routing:
    """Routing of one intent under one perturbation in one run (a row of the `routing` view)."""

    intent: str
    """The gold intent, or `"*"` for every intent."""
    perturbation: str
    """`none`, a perturbation, or `"*"` for every variant."""
    dialogues: int
    routed_right: int
    """Dialogues whose last exposed intent was the gold one."""
    unrouted: int
    """Dialogues the assistant never routed (they count as wrong)."""
    accuracy: float | None
    """`routed_right / dialogues`; `None` when the assistant exposes no intents in this run."""


def routing(db: Database, run_id: str, *, by: str | Sequence[str] = ("intent",)) -> list[Routing]:
    """Routing accuracy of `run_id`, split by any of `"intent"` and `"perturbation"` (`by=()`: the run).

    >>> routing("botdrill.duckdb", run, by=("intent", "perturbation"))  # doctest: +SKIP
    """
    where, order = _split_by(by, ("intent", "perturbation"))
    with _open(db) as con:
        rows = con.execute(
            "select gold_intent, perturbation, dialogues, routed_right, unrouted, accuracy from routing "
            f"where run_id = ? and {where} order by {', '.join(order) or 'run_id'}",
            [run_id],
        ).fetchall()
    return [Routing(*row) for row in rows]


@dataclass(frozen=True)
class ConfusionMatrix:
    """Where a run's dialogues were routed: rows are gold intents, columns routed intents, same labels.

    `labels` holds the run's gold intents (sorted), then any other intent the assistant routed to, then
    `(none)` for dialogues it never routed, when there are any. The labels come from the whole run, so the
    matrices of two perturbations of one run line up cell for cell.
    """

    perturbation: str | None
    """The perturbation counted, or `None` for every dialogue of the run."""
    labels: list[str]
    counts: list[list[int]]
    """`counts[i][j]`: dialogues with gold intent `labels[i]` routed to `labels[j]`."""
    rates: list[list[float | None]]
    """`counts` divided by each row's total; `None` across a row with no dialogues (a label that is no
    gold intent, or an intent absent from this perturbation)."""

    def count(self, gold: str, routed: str) -> int:
        """Dialogues of gold intent `gold` routed to `routed` (0 for labels the run never saw)."""
        if gold not in self.labels or routed not in self.labels:
            return 0
        return self.counts[self.labels.index(gold)][self.labels.index(routed)]


def confusion_matrix(db: Database, run_id: str, *, perturbation: str | None = None) -> ConfusionMatrix:
    """The routing confusion matrix of `run_id`, of one perturbation (`"none"` for the clean dialogues)
    or of them all; empty for an unknown run."""
    with _open(db) as con:
        every = con.execute(
            "select gold_intent, routed_intent, dialogues from confusion where run_id = ?", [run_id]
        ).fetchall()
        if perturbation is None:
            cells = every
        else:
            cells = con.execute(
                "select gold_intent, routed_intent, dialogues from confusion_by_perturbation "
                "where run_id = ? and perturbation = ?",
                [run_id, perturbation],
            ).fetchall()
    gold = sorted({g for g, _, _ in every})
    extra = sorted({r for _, r, _ in every} - set(gold) - {_UNROUTED})
    labels = gold + extra + ([_UNROUTED] if any(r == _UNROUTED for _, r, _ in every) else [])
    at = {label: i for i, label in enumerate(labels)}
    counts = [[0] * len(labels) for _ in labels]
    for g, r, n in cells:
        counts[at[g]][at[r]] += n
    rates: list[list[float | None]] = []
    for row in counts:
        total = sum(row)
        rates.append([n / total if total else None for n in row])
    return ConfusionMatrix(perturbation=perturbation, labels=labels, counts=counts, rates=rates)


@dataclass(frozen=True)
class SlotScore:
    """Slot filling of one slot of one intent under one perturbation (a row of the `slot_scores` view)."""

    intent: str
    """The gold intent, or `"*"` for every intent."""
    slot: str
    """The slot, or `"*"` for every slot."""
    perturbation: str
    """`none`, a perturbation, or `"*"` for every variant."""
    gold: int
    """Gold slot values the dialogues carried."""
    exposed: int
    """Those the assistant could be judged on (it exposes slots at all)."""
    correct: int
    wrong: int
    """Captured with another value than the gold one."""
    missing: int
    """Never captured, by an assistant that exposes slots."""
    precision: float | None
    """`correct / (correct + wrong)`: how often a captured value is right; `None` with nothing captured."""
    recall: float | None
    """`correct / exposed`; `None` when nothing was exposed."""
    completeness: float | None
    """`(correct + wrong) / exposed`: the share captured with any value; `None` when nothing was exposed."""


def slot_scores(
    db: Database,
    run_id: str,
    *,
    by_perturbation: bool = False,
    by: str | Sequence[str] = ("intent", "slot"),
) -> list[SlotScore]:
    """Slot precision, recall and completeness of `run_id` per intent and slot.

    Args:
        db: the database.
        run_id: the run.
        by_perturbation: split every row by perturbation as well.
        by: the columns kept split, any of `"intent"`, `"slot"` and `"perturbation"`; the others read
            `"*"` (`by=()` with `by_perturbation=False`: one row for the whole run).
    """
    columns = ({by} if isinstance(by, str) else set(by)) | ({"perturbation"} if by_perturbation else set())
    where, order = _split_by(sorted(columns), ("intent", "slot", "perturbation"))
    with _open(db) as con:
        rows = con.execute(
            "select gold_intent, slot, perturbation, gold, exposed, correct, wrong, missing, precision, "
            f"recall, completeness from slot_scores where run_id = ? and {where} "
            f"order by {', '.join(order) or 'run_id'}",
            [run_id],
        ).fetchall()
    return [SlotScore(*row) for row in rows]


@dataclass(frozen=True)
class SuccessRate:
    """Task success of one intent, persona and perturbation (a row of the `success_rates` view)."""

    intent: str
    """The gold intent, or `"*"` for every intent."""
    persona: str
    """The persona, or `"*"` for every persona."""
    perturbation: str
    """`none`, a perturbation, or `"*"` for every variant."""
    dialogues: int
    successes: int
    rate: float


def success_rates(db: Database, run_id: str, *, by: str | Sequence[str] = ("intent",)) -> list[SuccessRate]:
    """Task success of `run_id`, split by any of `"intent"`, `"persona"` and `"perturbation"`.

    >>> success_rates("botdrill.duckdb", run, by=("persona", "perturbation"))  # doctest: +SKIP
    """
    where, order = _split_by(by, ("intent", "persona", "perturbation"))
    with _open(db) as con:
        rows = con.execute(
            "select gold_intent, persona, perturbation, dialogues, successes, rate from success_rates "
            f"where run_id = ? and {where} order by {', '.join(order) or 'run_id'}",
            [run_id],
        ).fetchall()
    return [SuccessRate(*row) for row in rows]


PassKDimension = Literal["intent", "persona", "perturbation", "all"]


@dataclass(frozen=True)
class PassK:
    """pass^k of a group of tasks, for k = 1..4 (rows of the `pass_k` view).

    A task is one scenario run as one variant; pass^k is the chance that k of its trials, drawn without
    replacement, all succeed (tau-bench's `C(c, k) / C(n, k)`), averaged over the group's tasks.
    """

    dimension: str
    """What the tasks are grouped by: `intent`, `persona`, `perturbation`, or `all`."""
    value: str
    """The group (an intent, a persona, a perturbation), `"*"` for `all`."""
    tasks: int
    """Tasks in the group."""
    trials: int
    """The fewest trials of any task in the group."""
    by_k: dict[int, float | None]
    """pass^k per k; `None` where no task has k trials. Tasks with fewer than k trials are left out of
    pass^k, so pass^k for k above `trials` averages fewer tasks than pass^1 (see the view's `tasks`)."""


def pass_k(db: Database, run_id: str, *, dimension: PassKDimension = "intent") -> list[PassK]:
    """pass^1..pass^4 of `run_id`'s tasks per intent, persona, perturbation, or over them all.

    Runs made with `--trials N` give pass^k up to k = N; without trials each task has one trial and only
    pass^1 (the success rate over tasks) is defined.
    """
    if dimension not in ("intent", "persona", "perturbation", "all"):
        raise ValueError(f"dimension must be intent, persona, perturbation or all, not {dimension!r}")
    with _open(db) as con:
        rows = con.execute(
            "select value, k, tasks, pass_k, trials from pass_k where run_id = ? and dimension = ? "
            "order by value, k",
            [run_id, dimension],
        ).fetchall()
    groups: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        groups.setdefault(row[0], []).append(row)
    return [
        PassK(
            dimension=dimension,
            value=value,
            tasks=next(tasks for _, k, tasks, _, _ in group if k == 1),
            trials=group[0][4],
            by_k={k: p for _, k, _, p, _ in group},
        )
        for value, group in groups.items()
    ]


@dataclass(frozen=True)
class Brittleness:
    """How much a perturbation costs an intent: clean success minus perturbed success over paired
    dialogues (a row of the `brittleness` view, with its uncertainty)."""

    intent: str
    """The gold intent, or `"*"` for the perturbation across intents."""
    perturbation: str
    pairs: int
    """Perturbed dialogues with their clean twin (same scenario, seed and trial)."""
    clean_success_rate: float
    perturbed_success_rate: float
    brittleness: float
    """`clean_success_rate - perturbed_success_rate`: above 0, the perturbation hurts."""
    broke: int
    """Pairs whose clean twin succeeded and perturbed dialogue failed."""
    fixed: int
    """Pairs whose clean twin failed and perturbed dialogue succeeded."""
    ci_low: float
    ci_high: float
    """Paired percentile bootstrap interval of `brittleness` at `confidence`."""
    confidence: float
    p_value: float
    """Exact two-sided McNemar test of `broke` against `fixed` (1.0 when both are 0)."""
    small: bool
    """Fewer pairs than the `min_pairs` asked for: read the figure as a hint, not a measurement."""

    @property
    def display(self) -> str:
        """The estimate with its interval and sample size, flagged when the sample is small:
        `"0.20 [-0.05, 0.45], n=12 (small sample)"`."""
        text = f"{_fmt(self.brittleness)} [{_fmt(self.ci_low)}, {_fmt(self.ci_high)}], n={self.pairs}"
        return f"{text} (small sample)" if self.small else text


def _fmt(x: float) -> str:
    return f"{round(x, 2) + 0.0:.2f}"  # + 0.0 turns a rounded -0.0 into 0.0


def brittleness(
    db: Database,
    run_id: str,
    *,
    n_boot: int = 2000,
    seed: int = 0,
    min_pairs: int = 30,
    confidence: float = 0.95,
) -> list[Brittleness]:
    """Brittleness of every intent under every perturbation of `run_id`, with its uncertainty.

    Each row of the `brittleness` view gains a paired bootstrap interval (the pairs resampled with a
    generator seeded with `seed`, the same for every row, so a row's interval depends only on its pairs
    and the seed), an exact McNemar p-value, and a `small` flag below `min_pairs` pairs. Rows come per
    perturbation, the across-intents row (`intent == "*"`) first.

    >>> for row in brittleness("botdrill.duckdb", run):  # doctest: +SKIP
    ...     print(row.intent, row.perturbation, row.display)
    """
    with _open(db) as con:
        rows = con.execute(
            "select gold_intent, perturbation, pairs, clean_success_rate, perturbed_success_rate, "
            "brittleness, broke, fixed from brittleness where run_id = ? "
            "order by perturbation, gold_intent <> '*', gold_intent",
            [run_id],
        ).fetchall()
        pairs = con.execute(
            "select gold_intent, perturbation, clean_success::INTEGER - perturbed_success::INTEGER "
            "from pairs where run_id = ? order by perturbed_dialogue_id",
            [run_id],
        ).fetchall()
    diffs: dict[tuple[str, str], list[int]] = {}
    for intent, perturbation, diff in pairs:
        diffs.setdefault((intent, perturbation), []).append(diff)
        diffs.setdefault(("*", perturbation), []).append(diff)
    out = []
    for intent, perturbation, n, clean, perturbed, point, broke, fixed in rows:
        low, high = bootstrap_ci(diffs[intent, perturbation], n_boot=n_boot, seed=seed, confidence=confidence)
        out.append(
            Brittleness(
                intent=intent,
                perturbation=perturbation,
                pairs=n,
                clean_success_rate=clean,
                perturbed_success_rate=perturbed,
                brittleness=point,
                broke=broke,
                fixed=fixed,
                ci_low=low,
                ci_high=high,
                confidence=confidence,
                p_value=mcnemar_exact(broke, fixed),
                small=n < min_pairs,
            )
        )
    return out
