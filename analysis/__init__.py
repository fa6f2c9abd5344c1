"""What it means: metrics over stored runs, read from the same SQL views people query.

>>> from botdrill.analysis import intent_summary, latest_run  # doctest: +SKIP
>>> for row in intent_summary("botdrill.duckdb", latest_run("botdrill.duckdb")):  # doctest: +SKIP
...     print(row.intent, row.success_rate)
"""

from ._metrics import (
    EscalationScore,
    IntentSummary,
    RunScores,
    confusion,
    coverage,
    escalation_scores,
    failures,
    intent_summary,
    latest_run,
    run_scores,
    run_summary,
)

__all__ = [
    "EscalationScore",
    "IntentSummary",
    "RunScores",
    "confusion",
    "coverage",
    "escalation_scores",
    "failures",
    "intent_summary",
    "latest_run",
    "run_scores",
    "run_summary",
]
