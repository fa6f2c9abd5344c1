"""What it means: metrics over stored runs, read from the same SQL views people query.

>>> from botdrill.analysis import intent_summary, latest_run  # doctest: +SKIP
>>> for row in intent_summary("botdrill.duckdb", latest_run("botdrill.duckdb")):  # doctest: +SKIP
...     print(row.intent, row.success_rate)

The stress-test figures (routing, slot scores, success rates, pass^k, brittleness) read views whose rolled-up
columns say `'*'`; the statistics behind their uncertainty (`bootstrap_ci`, `mcnemar_exact`, `pass_hat_k`)
are pure functions, exported for checking a figure by hand.
"""

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from ._batches import (
        BatchDiff,
        BatchError,
        BatchInfo,
        batch_details,
        diff_batches,
        list_batches,
        rollback_batch,
        save_batch,
    )
    from ._dataset import DatasetError, DatasetResult, build_dataset
    from ._generate import Batch, Example, GenerateConfig, GenerateError, Thresholds, generate
    from ._pii import PIIMatch, Scrubbed, Surrogates, find_pii, scrub
    from ._review import (
        Agreement,
        Calibration,
        Rating,
        ReviewError,
        agreement,
        calibrate,
        krippendorff_alpha,
        read_ratings,
        write_rating_sheet,
    )
    from ._review_store import calibrate_batch, export_sheet, import_ratings
    from ._textstats import Diversity, NgramLM, Realism, dedupe, diversity, overlapping, realism

# Training data (generation, gates, batches, review, datasets) brings scikit-learn and the expansion
# methods; it is imported on first use so reading runs stays light.
_LAZY = {
    "Batch": "_generate",
    "Example": "_generate",
    "GenerateConfig": "_generate",
    "GenerateError": "_generate",
    "Thresholds": "_generate",
    "generate": "_generate",
    "BatchDiff": "_batches",
    "BatchError": "_batches",
    "BatchInfo": "_batches",
    "batch_details": "_batches",
    "diff_batches": "_batches",
    "list_batches": "_batches",
    "rollback_batch": "_batches",
    "save_batch": "_batches",
    "DatasetError": "_dataset",
    "DatasetResult": "_dataset",
    "build_dataset": "_dataset",
    "Agreement": "_review",
    "Calibration": "_review",
    "Rating": "_review",
    "ReviewError": "_review",
    "agreement": "_review",
    "calibrate": "_review",
    "krippendorff_alpha": "_review",
    "read_ratings": "_review",
    "write_rating_sheet": "_review",
    "calibrate_batch": "_review_store",
    "export_sheet": "_review_store",
    "import_ratings": "_review_store",
    "PIIMatch": "_pii",
    "Scrubbed": "_pii",
    "Surrogates": "_pii",
    "find_pii": "_pii",
    "scrub": "_pii",
    "Diversity": "_textstats",
    "NgramLM": "_textstats",
    "Realism": "_textstats",
    "dedupe": "_textstats",
    "diversity": "_textstats",
    "overlapping": "_textstats",
    "realism": "_textstats",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{module}"), name)


__all__ = [
    "DEFAULT_THRESHOLDS",
    "Agreement",
    "Batch",
    "BatchDiff",
    "BatchError",
    "BatchInfo",
    "Breach",
    "Brittleness",
    "Calibration",
    "ConfusionMatrix",
    "DatasetError",
    "DatasetResult",
    "Diversity",
    "EscalationScore",
    "Example",
    "ExportError",
    "ExportResult",
    "GateError",
    "GenerateConfig",
    "GenerateError",
    "IntentSummary",
    "LLMUsage",
    "NgramLM",
    "PIIMatch",
    "PassK",
    "Rating",
    "Realism",
    "Report",
    "ReportError",
    "ReviewError",
    "Routing",
    "RunScores",
    "Scrubbed",
    "SlotScore",
    "SuccessRate",
    "Surrogates",
    "Threshold",
    "Thresholds",
    "agreement",
    "batch_details",
    "bootstrap_ci",
    "brittleness",
    "build_dataset",
    "calibrate",
    "calibrate_batch",
    "check",
    "confusion",
    "confusion_matrix",
    "coverage",
    "dedupe",
    "diff_batches",
    "diversity",
    "escalation_scores",
    "export",
    "export_sheet",
    "failures",
    "find_pii",
    "generate",
    "import_ratings",
    "intent_summary",
    "krippendorff_alpha",
    "latest_run",
    "list_batches",
    "llm_usage",
    "mcnemar_exact",
    "metric_names",
    "metric_value",
    "overlapping",
    "parse_threshold",
    "pass_hat_k",
    "pass_k",
    "read_ratings",
    "realism",
    "render_report",
    "rollback_batch",
    "routing",
    "run_scores",
    "run_summary",
    "save_batch",
    "scrub",
    "slot_scores",
    "success_rates",
    "write_rating_sheet",
    "write_report",
]
