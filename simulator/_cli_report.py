"""`botdrill report`: one self-contained HTML file for a release team (no script, no network). The page is
built in `botdrill.analysis`; this module only reads the options and reports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from botdrill.scenarios import BotdrillError

from ._cli import DbOption, _err, _fail, _need_db, _out, app


@app.command("report")
def report_command(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="HTML file to write; replaced only once it is complete.")
    ],
    db: DbOption = "botdrill.duckdb",
    run_id: Annotated[
        str | None, typer.Option("--run", help="Run to report (default: the latest, not a shrink's).")
    ] = None,
    threshold: Annotated[
        list[str] | None,
        typer.Option(
            "--threshold",
            help="METRIC OP NUMBER that fails when it holds, as in `botdrill gate --fail-if` (repeatable); "
            "it replaces the default on the same metric. Defaults: success_rate<0.8, routing_accuracy<0.9, "
            "escalation_recall<0.95, on_time_rate<0.9, escalation_precision<0.8, over_escalation_rate>0.1, "
            "mean_seconds_to_handoff>120.",
        ),
    ] = None,
    max_dialogues: Annotated[
        int, typer.Option("--max-dialogues", min=0, help="Worst dialogues shown in full.")
    ] = 20,
) -> None:
    """Write a run's report as one HTML file that opens offline: scores against thresholds, brittleness,
    confusion, slots, escalation, the hand-off queue, pass^k, the worst dialogues and coverage.

    The report is written whether or not the thresholds hold (exit 0); `botdrill gate` is the check that
    fails a build.
    """
    from botdrill.analysis._gate import GateError
    from botdrill.analysis._report import write_report

    _need_db(db)
    try:
        report = write_report(db, out, run_id, thresholds=threshold, max_dialogues=max_dialogues)
    except GateError as exc:
        raise _fail(GateError(str(exc).replace("--fail-if", "--threshold", 1))) from None
    except BotdrillError as exc:
        raise _fail(exc) from None
    n = len(report.thresholds)
    verdict = (
        f"all {n} thresholds hold"
        if report.passed
        else f"{len(report.breaches)} of {n} thresholds breached: "
        + ", ".join(b.threshold.text for b in report.breaches)
    )
    _out.print(
        Text(
            f"Wrote the report of run {report.run_id} to {out} ({len(report.html) // 1024} KiB, "
            f"{len(report.dialogues)} dialogues in full); {verdict}."
        ),
        soft_wrap=True,
    )
    if not report.passed:
        _err.print(Text(f"gate would fail: {verdict}"), soft_wrap=True)
