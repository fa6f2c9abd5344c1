"""What it means: metrics over stored runs, read from the same SQL views people query.

>>> from botdrill.analysis import intent_summary, latest_run  # doctest: +SKIP
>>> for row in intent_summary("botdrill.duckdb", latest_run("botdrill.duckdb")):  # doctest: +SKIP
...     print(row.intent, row.success_rate)

The stress-test figures (routing, slot scores, success rates, pass^k, brittleness) read views whose rolled-up
columns say `'*'`; the statistics behind their uncertainty (`bootstrap_ci`, `mcnemar_exact`, `pass_hat_k`)
are pure functions, exported for checking a figure by hand.
"""

from ._export import ExportError, ExportResult, export
from ._gate import Breach, GateError, Threshold, check, metric_names, metric_value, parse_threshold
from ._metrics import (
    Brittleness,
    ConfusionMatrix,
    EscalationScore,
    IntentSummary,
    LLMUsage,
    PassK,
    Routing,
    RunScores,
    SlotScore,
    SuccessRate,
    brittleness,
    confusion,
    confusion_matrix,
    coverage,
    escalation_scores,
    failures,
    intent_summary,
    latest_run,
    llm_usage,
    pass_k,
    routing,
    run_scores,
    run_summary,
    slot_scores,
    success_rates,
)
from ._report import DEFAULT_THRESHOLDS, Report, ReportError, render_report, write_report
from ._stats import bootstrap_ci, mcnemar_exact, pass_hat_k

__all__ = [
    "DEFAULT_THRESHOLDS",
    "Breach",
    "Brittleness",
    "ConfusionMatrix",
    "EscalationScore",
    "ExportError",
    "ExportResult",
    "GateError",
    "IntentSummary",
    "LLMUsage",
    "PassK",
    "Report",
    "ReportError",
    "Routing",
    "RunScores",
    "SlotScore",
    "SuccessRate",
    "Threshold",
    "bootstrap_ci",
    "brittleness",
    "check",
    "confusion",
    "confusion_matrix",
    "coverage",
    "escalation_scores",
    "export",
    "failures",
    "intent_summary",
    "latest_run",
    "llm_usage",
    "mcnemar_exact",
    "metric_names",
    "metric_value",
    "parse_threshold",
    "pass_hat_k",
    "pass_k",
    "render_report",
    "routing",
    "run_scores",
    "run_summary",
    "slot_scores",
    "success_rates",
    "write_report",
]
