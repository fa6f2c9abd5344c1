"""`botdrill export`: a run's transcripts as training data (OpenAI chat JSONL, Hugging Face JSONL, Rasa NLU
YAML, CSV). The logic lives in `botdrill.analysis`; this module only reads the options and reports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from botdrill.scenarios import BotdrillError

from ._cli import DbOption, _err, _fail, _need_db, _out, app

_UNITS = {"openai": "conversations", "hf": "conversations", "rasa": "NLU examples", "csv": "rows"}


@app.command("export")
def export_command(
    format: Annotated[
        str, typer.Option("--format", "-f", help="openai (chat fine-tuning JSONL), hf, rasa or csv.")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="File to write; replaced only once it is complete and valid.")
    ],
    db: DbOption = "botdrill.duckdb",
    run_id: Annotated[str | None, typer.Option("--run", help="Run to export (default: the latest).")] = None,
    intent: Annotated[
        list[str] | None,
        typer.Option("--intent", help="Keep dialogues with this gold intent (repeatable: any of them)."),
    ] = None,
    outcome: Annotated[
        list[str] | None,
        typer.Option("--outcome", help="Keep dialogues with this outcome, e.g. success (repeatable)."),
    ] = None,
    perturbation: Annotated[
        list[str] | None,
        typer.Option(
            "--perturbation", help="Keep dialogues with this perturbation, 'none' for clean (repeatable)."
        ),
    ] = None,
) -> None:
    """Export a run's transcripts with their gold labels as training data."""
    from botdrill.analysis._export import export

    _need_db(db)
    try:
        result = export(
            db,
            out,
            format=format,
            run_id=run_id,
            intents=intent,
            outcomes=outcome,
            perturbations=perturbation,
        )
    except BotdrillError as exc:
        raise _fail(exc) from None
    spans = f", {result.spans} slot spans" if result.format != "openai" else ""
    _out.print(
        Text(
            f"Wrote {result.records} {_UNITS[result.format]} from {result.dialogues} dialogues of run "
            f"{result.run_id} to {result.path} ({result.format}{spans})."
        ),
        soft_wrap=True,
    )
    if result.skipped:
        why = "no assistant reply" if result.format == "openai" else "nothing to export"
        _err.print(
            Text(f"{result.skipped} matching dialogue{'s' if result.skipped != 1 else ''} left out: {why}"),
            soft_wrap=True,
        )
