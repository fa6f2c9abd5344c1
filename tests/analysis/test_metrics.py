"""The analysis API reads the same views as SQL: check it against the raw dialogues table."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from botdrill.analysis import IntentSummary, confusion, failures, intent_summary, latest_run, llm_usage
from botdrill.simulator import RunConfig, run_drill


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("analysis") / "runs.duckdb"
    run_drill(RunConfig(db=str(path), n=120, seed=11, run_id="first", perturb="none"))
    run_drill(RunConfig(db=str(path), n=40, seed=12, run_id="second", perturb="none"))
    return path


def _scored(db: Path, run_id: str, planned: int) -> int:
    """How many of the run's planned dialogues are scored: all were stored, less those the simulated user
    spoilt (`simulator_fault` set), which every view leaves out."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        row = con.execute(
            "select count(*), count(*) filter (where simulator_fault is not null) from dialogues "
            "where run_id = ?",
            [run_id],
        ).fetchone()
    finally:
        con.close()
    assert row is not None and row[0] == planned
    return planned - int(row[1])


def test_latest_run_is_the_newest(db: Path) -> None:
    assert latest_run(db) == "second"


def test_latest_run_of_an_empty_database(tmp_path: Path) -> None:
    from botdrill.simulator import Store

    Store(tmp_path / "empty.duckdb").close()
    assert latest_run(tmp_path / "empty.duckdb") is None


def test_intent_summary_matches_the_dialogues(db: Path) -> None:
    rows = intent_summary(db, "first")
    assert all(isinstance(r, IntentSummary) for r in rows)
    assert sum(r.dialogues for r in rows) == _scored(db, "first", 120)
    # Critical intents come first.
    flags = [r.critical for r in rows]
    assert flags == sorted(flags, reverse=True)
    con = duckdb.connect(str(db), read_only=True)
    try:
        for row in rows:
            n, success, must, reached = con.execute(
                "select count(*), count(*) filter (where outcome = 'success'), "
                "count(*) filter (where expected_escalation = 'must'), "
                "count(*) filter (where expected_escalation = 'must' and escalated) "
                "from (select * from dialogues where simulator_fault is null) "
                "where run_id = 'first' and gold_intent = ?",
                [row.intent],
            ).fetchone()
            assert row.dialogues == n
            assert row.success_rate == pytest.approx(success / n)
            if must:
                assert row.escalation_recall == pytest.approx(reached / must)
            else:
                assert row.escalation_recall is None
    finally:
        con.close()


def test_confusion_counts_every_dialogue_once(db: Path) -> None:
    matrix = confusion(db, "first")
    assert sum(matrix.values()) == _scored(db, "first", 120)
    rows = intent_summary(db, "first")
    for row in rows:
        assert sum(n for (gold, _), n in matrix.items() if gold == row.intent) == row.dialogues
        correct = matrix.get((row.intent, row.intent), 0)
        # Routing accuracy is the diagonal's share: a dialogue the bot never routed counts as wrong.
        assert row.routing_accuracy == pytest.approx(correct / row.dialogues)


def test_failures_filter_and_limit(db: Path) -> None:
    every = failures(db, "first")
    assert every, "the reference bot is expected to fail some dialogues"
    assert all(f["outcome"] not in ("success", "handed_off_on_request") for f in every)
    assert all(f["run_id"] == "first" for f in every)
    outcome = every[0]["outcome"]
    only = failures(db, "first", outcome=outcome)
    assert only and all(f["outcome"] == outcome for f in only)
    assert len(failures(db, "first", limit=2)) == min(2, len(every))


def test_public_api_is_pinned() -> None:
    import botdrill.analysis as analysis

    assert sorted(analysis.__all__) == [
        "Agreement",
        "Batch",
        "BatchDiff",
        "BatchError",
        "BatchInfo",
        "Breach",
        "Brittleness",
        "Calibration",
        "ConfusionMatrix",
        "DEFAULT_THRESHOLDS",
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
    assert all(hasattr(analysis, name) for name in analysis.__all__)


def test_routing_accuracy_is_unknown_for_a_bot_whose_words_name_no_intent(tmp_path: Path) -> None:
    from botdrill.agents._adapters import as_assistant

    def words_only(messages: list[dict[str, str]]) -> str:
        return "I'm transferring you to a colleague now."

    db = tmp_path / "words.duckdb"
    run_drill(
        RunConfig(db=str(db), n=30, seed=3, run_id="w", perturb="none"), assistant=as_assistant(words_only)
    )
    rows = intent_summary(db, "w")
    assert rows and all(r.routing_accuracy is None for r in rows)
    assert all(r.escalation_recall in (None, 1.0) for r in rows)
    assert llm_usage(db, "w") is None  # no model was called


def test_routing_accuracy_counts_the_judges_readings_of_the_words(tmp_path: Path) -> None:
    from botdrill.agents._adapters import as_assistant

    def words_only(messages: list[dict[str, str]]) -> str:
        return "I'm transferring you to our fraud team now."

    db = tmp_path / "words.duckdb"
    run_drill(
        RunConfig(db=str(db), n=30, seed=3, run_id="w", perturb="none"), assistant=as_assistant(words_only)
    )
    rows = {r.intent: r for r in intent_summary(db, "w")}
    assert rows["report_fraud"].routing_accuracy == 1.0
    assert all(r.routing_accuracy == 0.0 for name, r in rows.items() if name != "report_fraud")


def test_run_summary_adds_up_the_intents(db: Path) -> None:
    from botdrill.analysis import run_summary

    rows = intent_summary(db, "first")
    total = run_summary(db, "first")
    n = _scored(db, "first", 120)
    assert total is not None and total.intent == "*"
    assert total.dialogues == sum(r.dialogues for r in rows) == n
    assert total.success_rate == pytest.approx(sum(r.success_rate * r.dialogues for r in rows) / n)
    assert total.routing_accuracy == pytest.approx(
        sum((r.routing_accuracy or 0) * r.dialogues for r in rows) / n
    )
    assert total.errors == sum(r.errors for r in rows)
    assert run_summary(db, "no-such-run") is None
