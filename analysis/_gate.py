"""A release gate over a stored run: thresholds on its metrics, read from the same views as everything else.

A threshold is `METRIC OP NUMBER`, e.g. `escalation_recall<0.95` or `brittleness.typo>0.1`, and is
*breached* when the comparison holds (the expressions say when to fail, as in `--fail-if`). A metric that
cannot be computed for the run (no dialogue needed a hand-off, no typo pairs) breaches too: a gate that
cannot see must not pass.

Metrics:

- run-wide, from the `run_scores` view: `success_rate`, `escalation_recall`, `on_time_rate`,
  `escalation_precision`, `over_escalation_rate`, `mean_turns_to_handoff`, `mean_seconds_to_handoff`;
- `routing_accuracy` (share of dialogues routed to the gold intent), `simulator_faults` (dialogues the
  simulated user spoilt, left out of every other figure);
- per intent: `success_rate.INTENT`, `escalation_recall.INTENT`, `routing_accuracy.INTENT`;
- `brittleness.PERTURBATION` (clean minus perturbed success over the pairs, all intents; the perturbation
  as in the `perturbation` column, e.g. `typo` or `filler+casing`);
- `pass^K` for K = 1..4 (τ-bench's pass^k over all tasks; needs `--trials`).

Example:
    >>> parse_threshold("escalation_recall<0.95")
    Threshold(metric='escalation_recall', op='<', value=0.95, text='escalation_recall<0.95')
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botdrill.scenarios import BotdrillError

from ._metrics import Database, _open

_THRESHOLD = re.compile(
    r"^\s*(?P<metric>[a-z_]+(?:\^[1-4])?(?:\.[A-Za-z0-9_:+\-]+)?)\s*(?P<op><=|>=|==|!=|<|>)\s*"
    r"(?P<value>[-+]?(?:\d+\.?\d*|\.\d+))\s*$"
)
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_RUN_WIDE = (
    "success_rate",
    "escalation_recall",
    "on_time_rate",
    "escalation_precision",
    "over_escalation_rate",
    "mean_turns_to_handoff",
    "mean_seconds_to_handoff",
)
# Per-intent metrics: the view each is read from (both leave out simulator faults) and its aggregate.
_PER_INTENT = {
    "success_rate": ("scored_dialogues", "avg(success::INTEGER)"),
    "escalation_recall": (
        "handoff_flags",
        "(count(*) FILTER (WHERE reached))::DOUBLE / nullif(count(*) FILTER (WHERE due), 0)",
    ),
    "routing_accuracy": (
        "scored_dialogues",
        "CASE WHEN bool_or(routing_source <> 'none')"
        " THEN avg(CASE WHEN routed_intent = gold_intent THEN 1.0 ELSE 0.0 END) END",
    ),
}


class GateError(BotdrillError):
    """A threshold cannot be read, or names a metric botdrill does not have."""

    code = "gate_invalid"


@dataclass(frozen=True)
class Threshold:
    """One `METRIC OP NUMBER` expression: breached when the comparison holds."""

    metric: str
    op: str
    value: float
    text: str


@dataclass(frozen=True)
class Breach:
    """A threshold that held for a run (or could not be computed)."""

    run_id: str
    threshold: Threshold
    actual: float | None
    """The metric's value, or None when the run gives no way to compute it."""

    def __str__(self) -> str:
        t = self.threshold
        if self.actual is None:
            return f"{t.text}: {t.metric} cannot be computed for run {self.run_id!r} (nothing it applies to)"
        return f"{t.text}: {t.metric} = {self.actual:.4g} (run {self.run_id!r})"


def metric_names() -> list[str]:
    """The metric names a threshold can use (`NAME.QUALIFIER` forms shown with a placeholder)."""
    return [
        *_RUN_WIDE,
        "routing_accuracy",
        "simulator_faults",
        *(f"{m}.INTENT" for m in _PER_INTENT),
        "brittleness.PERTURBATION",
        *(f"pass^{k}" for k in range(1, 5)),
    ]


def parse_threshold(text: str) -> Threshold:
    """Read `METRIC OP NUMBER`.

    Raises:
        GateError: the expression is malformed or names an unknown metric.
    """
    match = _THRESHOLD.match(text)
    if not match:
        raise GateError(
            f"--fail-if {text!r}: expected METRIC OP NUMBER with OP one of < <= > >= == !=, "
            "e.g. 'escalation_recall<0.95'"
        )
    metric = match.group("metric")
    base, _, qualifier = metric.partition(".")
    known = (
        (base in _RUN_WIDE and not qualifier)
        or (base in ("routing_accuracy", "simulator_faults") and not qualifier)
        or (base in _PER_INTENT and bool(qualifier))
        or (base == "brittleness" and bool(qualifier))
        or (re.fullmatch(r"pass\^[1-4]", base) is not None and not qualifier)
    )
    if not known:
        raise GateError(f"--fail-if {text!r}: unknown metric {metric!r}; known: {', '.join(metric_names())}")
    return Threshold(metric, match.group("op"), float(match.group("value")), text.strip())


def metric_value(db: Database, run_id: str, metric: str) -> float | None:
    """The value of `metric` for `run_id`, or None when the run has nothing it applies to.

    Raises:
        GateError: the run does not exist, or an intent or perturbation it names does not occur in it.
    """
    base, _, qualifier = metric.partition(".")
    with _open(db) as con:
        if not _one(con, "select count(*) from runs where run_id = ?", [run_id]):
            raise GateError(f"no run {run_id!r} in the database")
        if base in _RUN_WIDE and not qualifier:
            return _one(con, f"select {base} from run_scores where run_id = ?", [run_id])
        if base == "simulator_faults":
            return _one(
                con,
                "select count(*) from dialogues where run_id = ? and simulator_fault is not null",
                [run_id],
            )
        if base == "routing_accuracy" and not qualifier:
            return _one(
                con,
                "select {1} from {0} where run_id = ?".format(*_PER_INTENT["routing_accuracy"]),
                [run_id],
            )
        if base in _PER_INTENT:
            _must_occur(con, run_id, "gold_intent", qualifier, "intent")
            return _one(
                con,
                "select {1} from {0} where run_id = ? and gold_intent = ?".format(*_PER_INTENT[base]),
                [run_id, qualifier],
            )
        if base == "brittleness":
            _must_occur(con, run_id, "perturbation", qualifier, "perturbation")
            return _one(
                con,
                "select brittleness from brittleness "
                "where run_id = ? and gold_intent = '*' and perturbation = ?",
                [run_id, qualifier],
            )
        k = int(base.removeprefix("pass^"))
        return _one(
            con, "select pass_k from pass_k where run_id = ? and dimension = 'all' and k = ?", [run_id, k]
        )


def check(db: Database, run_id: str, thresholds: list[Threshold]) -> list[Breach]:
    """The thresholds `run_id` breaches, in the order given."""
    breaches = []
    for t in thresholds:
        actual = metric_value(db, run_id, t.metric)
        if actual is None or _OPS[t.op](actual, t.value):
            breaches.append(Breach(run_id, t, actual))
    return breaches


def _one(con: Any, sql: str, params: list[Any]) -> float | None:
    row = con.execute(sql, params).fetchone()
    return None if row is None or row[0] is None else float(row[0])


def _must_occur(con: Any, run_id: str, column: str, value: str, what: str) -> None:
    rows = con.execute(
        f"select distinct {column} from dialogues where run_id = ? order by 1", [run_id]
    ).fetchall()
    seen = [r[0] for r in rows]
    if value not in seen:
        raise GateError(f"run {run_id!r} has no {what} {value!r}; it has: {', '.join(seen)}")
