"""`botdrill generate`, `batches`, `review` and `dataset`: training data for rare intents, from the
command line. The work is done in `botdrill.analysis` (gates, batches, review, datasets) and
`botdrill.agents` (expansion methods); this module reads options and reports.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from botdrill.scenarios import BotdrillError

from ._cli import DbOption, _cell, _err, _fail, _need_db, _out, app

batches_app = typer.Typer(help="Generated batches: list, show, diff, roll back.", no_args_is_help=True)
app.add_typer(batches_app, name="batches")
review_app = typer.Typer(
    help="Human review of a batch: rating sheets, agreement, calibration.", no_args_is_help=True
)
app.add_typer(review_app, name="review")
dataset_app = typer.Typer(help="Training sets that mix real and synthetic examples.", no_args_is_help=True)
app.add_typer(dataset_app, name="dataset")

_BUILTIN = "banking"
_DASH = "\u2013"


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return _DASH
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


@app.command("generate")
def generate_command(
    seeds: Annotated[
        Path | None,
        typer.Option(
            "--seeds", help="Real examples, CSV (`text,intent` header) or JSONL; the gates need them."
        ),
    ] = None,
    spec: Annotated[
        str,
        typer.Option(
            "--spec", help="A scenario pack or intent list (YAML); default: the built-in banking pack."
        ),
    ] = _BUILTIN,
    db: DbOption = "botdrill.duckdb",
    intent: Annotated[
        list[str] | None,
        typer.Option("--intent", help="Target intent (repeatable); default: the spec's targets."),
    ] = None,
    per_intent: Annotated[int, typer.Option("--per-intent", min=1, help="Utterances kept per intent.")] = 50,
    dialogues: Annotated[int, typer.Option("--dialogues", min=0, help="Dialogues kept per intent.")] = 5,
    negatives: Annotated[
        int, typer.Option("--negatives", min=0, help="Near-miss negatives per intent.")
    ] = 10,
    methods: Annotated[
        str,
        typer.Option(
            "--methods", help="Comma-separated expansion methods (`botdrill generate --list-methods`)."
        ),
    ] = "pack,seed_templates,lexical,perturb:typo",
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed: the same seed and inputs give the same batch.")
    ] = 0,
    no_gates: Annotated[
        bool, typer.Option("--no-gates", help="Keep every candidate (PII and --forbid still apply).")
    ] = False,
    min_alignment: Annotated[float | None, typer.Option("--min-alignment", min=0, max=1)] = None,
    min_naturalness: Annotated[float | None, typer.Option("--min-naturalness", min=0, max=1)] = None,
    min_coherence: Annotated[float | None, typer.Option("--min-coherence", min=0, max=1)] = None,
    diversity_floor: Annotated[float | None, typer.Option("--diversity-floor", min=0, max=1)] = None,
    real: Annotated[
        Path | None, typer.Option("--real", help="Real examples of the other intents (train the gates).")
    ] = None,
    real_sample: Annotated[
        Path | None,
        typer.Option("--real-sample", help="Real texts of the target intents to compare the batch with."),
    ] = None,
    forbid: Annotated[
        list[Path] | None,
        typer.Option(
            "--forbid", help="Texts never to reproduce, e.g. a test set (repeatable; lines, CSV or JSONL)."
        ),
    ] = None,
    llm: Annotated[
        Path | None, typer.Option("--llm", help="Paraphraser YAML: adds the llm_paraphrase method.")
    ] = None,
    llm_cache: Annotated[
        str,
        typer.Option(
            "--llm-cache", help="record: call the model and record; replay: answer from the record."
        ),
    ] = "record",
    parent: Annotated[str | None, typer.Option("--parent", help="The batch this one revises.")] = None,
    note: Annotated[str, typer.Option("--note", help="Changelog line (default: a summary).")] = "",
    list_methods: Annotated[bool, typer.Option("--list-methods", help="List the methods and exit.")] = False,
) -> None:
    """Generate a batch of annotated training examples for rare intents, score every candidate with the
    quality gates, and store the batch (kept and refused examples, with scores) in the database."""
    from botdrill.agents._augment import load_seeds, load_spec, method_names
    from botdrill.analysis._batches import save_batch
    from botdrill.analysis._generate import (
        GenerateConfig,
        GenerateError,
        Thresholds,
        generate,
        new_batch_id,
        read_texts,
    )

    if list_methods:
        for name in method_names():
            _out.print(Text(name))
        return
    try:
        generation_spec = load_spec(spec)
        names = [i.name for i in generation_spec.intents]
        seed_list = load_seeds(seeds, intents=names) if seeds else []
        if not seed_list and not no_gates:
            raise GenerateError(
                "the quality gates judge candidates against real examples: give --seeds FILE (text,intent), "
                "or --no-gates to keep every candidate"
            )
        base = Thresholds()
        thresholds = base.model_copy(
            update={
                k: v
                for k, v in (
                    ("alignment", min_alignment),
                    ("naturalness", min_naturalness),
                    ("coherence", min_coherence),
                    ("diversity_floor", diversity_floor),
                )
                if v is not None
            }
        )
        method_list = tuple(m.strip() for m in methods.split(",") if m.strip())
        if llm is not None and "llm_paraphrase" not in method_list:
            method_list = (*method_list, "llm_paraphrase")
        if "llm_paraphrase" in method_list and llm is None:
            raise GenerateError("method llm_paraphrase needs --llm PARAPHRASER.yaml")
        if llm_cache not in ("record", "replay"):
            raise GenerateError(f"--llm-cache {llm_cache!r}: one of record, replay")
        config = GenerateConfig(
            intents=tuple(intent or ()),
            per_intent=per_intent,
            dialogues_per_intent=dialogues,
            negatives_per_intent=negatives,
            methods=method_list,
            seed=seed,
            gates=not no_gates,
            thresholds=thresholds,
        )
        forbidden: list[str] = []
        for path in forbid or ():
            forbidden += read_texts(path)
        sample = [s.text for s in load_seeds(real_sample)] if real_sample else None
        batch_id = new_batch_id(generation_spec.name, datetime.now(UTC))
        paraphrases: dict[str, list[str]] | None = None
        variants: list[dict[str, Any]] = []
        if llm is not None:
            paraphrases, variants = _paraphrase(llm, llm_cache, db, batch_id, seed_list, generation_spec)
        batch = generate(
            generation_spec,
            seed_list,
            config,
            real=load_seeds(real) if real else None,
            real_sample=sample,
            forbidden=forbidden,
            paraphrases=paraphrases,
            prompt_variants=variants,
            batch_id=batch_id,
            parent=parent,
            changelog=note,
        )
        save_batch(db, batch)
    except BotdrillError as exc:
        raise _fail(exc) from None
    _print_batch_summary(batch)


def _paraphrase(
    path: Path, mode: str, db: str, batch_id: str, seeds: list[Any], spec: Any
) -> tuple[dict[str, list[str]], list[dict[str, Any]]]:
    """Fetch LLM paraphrases of the seeds, every call recorded in (or replayed from) the database."""
    from botdrill.agents._llm_store import LLMStore
    from botdrill.agents._paraphrase import load_paraphraser
    from botdrill.analysis._generate import GenerateError
    from botdrill.simulator._store import Store

    paraphraser = load_paraphraser(path)
    store = Store(db)
    try:
        llm_store = LLMStore(store.con, run_id=batch_id)
        paraphraser.use_store(llm_store, "replay" if mode == "replay" else "record")

        async def fetch() -> Any:
            try:
                return await paraphraser.paraphrase(seeds, {i.name: i.description for i in spec.intents})
            finally:
                await paraphraser.aclose()

        result = asyncio.run(fetch())
        llm_store.close()
    finally:
        store.close()
    for source, error in sorted(result.failures.items()):
        _err.print(Text(f"paraphrase of {source} failed: {error}"), soft_wrap=True)
    if mode == "replay" and result.failures:
        raise GenerateError(
            f"--llm-cache replay: {len(result.failures)} of {len(seeds)} seeds have no recorded paraphrase "
            "in this database; record them first (--llm-cache record)"
        )
    return result.paraphrases, paraphraser.prompt_variants()


def _print_batch_summary(batch: Any) -> None:
    kept = batch.kept()
    _out.print(
        Text(
            f"Batch {batch.batch_id}: {len(kept)} of {len(batch.examples)} candidates kept "
            f"(config {batch.config_hash[:12]}, seed {batch.config.seed})."
        ),
        soft_wrap=True,
    )
    table = Table("gate", "in", "out", title="Gates")
    for row in batch.gate_counts:
        table.add_row(_cell(row["gate"]), _cell(row["in"]), _cell(row["out"]))
    _out.print(table)
    if batch.realism is not None:
        r = batch.realism
        _out.print(
            Text(
                f"Real against synthetic ({r.n_real} real, {r.n_synthetic} synthetic): two-sample AUC "
                f"{_fmt(r.auc)}, length distance {_fmt(r.length_distance)}, vocabulary JSD "
                f"{_fmt(r.vocabulary_distance)}."
            ),
            soft_wrap=True,
        )
    if batch.pii_replaced:
        _out.print(
            Text("PII replaced: " + ", ".join(f"{k} {v}" for k, v in batch.pii_replaced.items())),
            soft_wrap=True,
        )
    floor = [
        i
        for i, d in batch.diversity.items()
        if i != "*" and d["distinct_2"] < batch.config.thresholds.diversity_floor
    ]
    if floor and batch.config.gates:
        _out.print(Text(f"Below the diversity floor (refused): {', '.join(floor)}"), soft_wrap=True)


# -- batches ------------------------------------------------------------------------------------------


@batches_app.command("list")
def batches_list(db: DbOption = "botdrill.duckdb") -> None:
    """Every batch, newest first; rolled-back ones say so."""
    from botdrill.analysis._batches import list_batches

    _need_db(db, "botdrill generate")
    table = Table("batch", "created", "status", "parent", "methods", "kept", "candidates", "AUC", "changelog")
    for b in list_batches(db):
        table.add_row(
            _cell(b.batch_id),
            _cell(f"{b.created_at:%Y-%m-%d %H:%M}"),
            _cell(b.status),
            _cell(b.parent or _DASH),
            _cell(",".join(b.methods)),
            _cell(b.kept),
            _cell(b.candidates),
            _cell(_fmt(b.realism_auc)),
            _cell(b.changelog),
        )
    _out.print(table)


@batches_app.command("show")
def batches_show(
    batch_id: Annotated[str, typer.Argument(help="Batch id (see: botdrill batches list).")],
    db: DbOption = "botdrill.duckdb",
    as_json: Annotated[bool, typer.Option("--json", help="Print everything stored, as JSON.")] = False,
) -> None:
    """What produced a batch, what its gates did, and how it compares with real text."""
    from botdrill.analysis._batches import batch_details

    _need_db(db, "botdrill generate")
    try:
        info = batch_details(db, batch_id)
    except BotdrillError as exc:
        raise _fail(exc) from None
    if as_json:
        _out.print(Text(json.dumps(info, default=str, indent=2)), soft_wrap=True)
        return
    lines = [
        f"batch {info['batch_id']} ({info['status']}), created {info['created_at']:%Y-%m-%d %H:%M:%S} UTC",
        f"spec {info['spec']} (sha256 {info['spec_sha256'][:12]}), seeds sha256 {info['seeds_sha256'][:12]}",
        f"config hash {info['config_hash'][:12]}, seed {info['seed']}, "
        f"parent {info['parent_batch'] or _DASH}",
        f"generator {info['generator']}",
        f"selection {json.dumps(info['selection'])}",
        f"changelog: {info['changelog']}",
    ]
    if info["prompt_variants"]:
        lines.append("prompt variants: " + ", ".join(v.get("id", "?") for v in info["prompt_variants"]))
    if info["status"] != "active":
        lines.append(
            f"rolled back {info['rolled_back_at']:%Y-%m-%d %H:%M}: {info['rollback_reason'] or '(no reason)'}"
        )
    for line in lines:
        _out.print(Text(line), soft_wrap=True)
    gates = Table("gate", "in", "out", title="Gates")
    for row in info["gate_counts"]:
        gates.add_row(_cell(row["gate"]), _cell(row["in"]), _cell(row["out"]))
    _out.print(gates)
    intents = Table("intent", "kind", "kept", "candidates", "distinct-2", "self-BLEU", title="Per intent")
    for row in info["per_intent"]:
        d = info["diversity"].get(row["intent"], {}) if row["kind"] == "utterance" else {}
        intents.add_row(
            _cell(row["intent"]),
            _cell(row["kind"]),
            _cell(row["kept"]),
            _cell(row["candidates"]),
            _cell(_fmt(d.get("distinct_2"))),
            _cell(_fmt(d.get("self_bleu"))),
        )
    _out.print(intents)
    _out.print(
        Text(
            f"real against synthetic: AUC {_fmt(info['realism_auc'])}, length distance "
            f"{_fmt(info['length_distance'])}, vocabulary JSD {_fmt(info['vocabulary_distance'])} "
            f"({info['realism_n_real'] or 0} real texts); PII replaced {json.dumps(info['pii_replaced'])}"
        ),
        soft_wrap=True,
    )


@batches_app.command("diff")
def batches_diff(
    a: Annotated[str, typer.Argument(help="First batch.")],
    b: Annotated[str, typer.Argument(help="Second batch.")],
    db: DbOption = "botdrill.duckdb",
) -> None:
    """What differs between two batches: settings, gate counts, kept examples per intent, texts."""
    from botdrill.analysis._batches import diff_batches

    _need_db(db, "botdrill generate")
    try:
        d = diff_batches(db, a, b)
    except BotdrillError as exc:
        raise _fail(exc) from None
    settings = Table("setting", a, b, title="Settings that differ")
    for key, (va, vb) in d.settings.items():
        settings.add_row(_cell(key), _cell(json.dumps(va)), _cell(json.dumps(vb)))
    _out.print(settings)
    gates = Table("gate", a, b, title="Out of each gate")
    for gate, ga, gb in d.gates:
        gates.add_row(_cell(gate), _cell(_fmt(ga)), _cell(_fmt(gb)))
    _out.print(gates)
    intents = Table("intent", a, b, title="Kept per intent")
    for name, na, nb in d.intents:
        intents.add_row(_cell(name), _cell(na), _cell(nb))
    _out.print(intents)
    _out.print(
        Text(
            f"kept texts: {d.shared} shared, {d.only_a} only in {a}, {d.only_b} only in {b}; "
            f"AUC {_fmt(d.realism_auc[0])} -> {_fmt(d.realism_auc[1])}"
        ),
        soft_wrap=True,
    )


@batches_app.command("rollback")
def batches_rollback(
    batch_id: Annotated[str, typer.Argument(help="Batch to take out of use.")],
    db: DbOption = "botdrill.duckdb",
    reason: Annotated[str, typer.Option("--reason", help="Why, for the record.")] = "",
) -> None:
    """Take a batch out of every export and dataset build; its rows stay in the database."""
    from botdrill.analysis._batches import rollback_batch

    _need_db(db, "botdrill generate")
    try:
        n = rollback_batch(db, batch_id, reason=reason)
    except BotdrillError as exc:
        raise _fail(exc) from None
    _out.print(
        Text(f"Rolled back {batch_id}: {n} kept examples are out of exports and datasets (not deleted).")
    )


# -- review ---------------------------------------------------------------------------------------------


@review_app.command("export")
def review_export(
    batch_id: Annotated[str, typer.Argument(help="Batch to review.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="CSV rating sheet to write.")],
    db: DbOption = "botdrill.duckdb",
    n: Annotated[int, typer.Option("--n", min=1, help="Examples on the sheet.")] = 100,
    refused: Annotated[
        float,
        typer.Option("--refused", min=0, max=1, help="Share of the sheet drawn from refused candidates."),
    ] = 0.3,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Write a rating sheet: a seeded sample of kept and refused examples, one empty column per dimension.

    Refused candidates are on the sheet on purpose: calibrating a gate needs verdicts on both sides of it.
    """
    from botdrill.analysis._review_store import export_sheet

    _need_db(db, "botdrill generate")
    try:
        written = export_sheet(db, batch_id, out, n=n, refused_share=refused, seed=seed)
    except BotdrillError as exc:
        raise _fail(exc) from None
    _out.print(Text(f"Wrote {written} examples of {batch_id} to {out}."))


@review_app.command("import")
def review_import(
    batch_id: Annotated[str, typer.Argument(help="Batch the sheets rate.")],
    sheets: Annotated[
        list[Path], typer.Argument(help="Filled sheets, one per rater (the file name is the rater).")
    ],
    db: DbOption = "botdrill.duckdb",
) -> None:
    """Store the ratings of several raters and their agreement (Krippendorff's alpha per dimension)."""
    from botdrill.analysis._review_store import import_ratings

    _need_db(db, "botdrill generate")
    try:
        stored, agreements = import_ratings(db, batch_id, sheets)
    except BotdrillError as exc:
        raise _fail(exc) from None
    _out.print(Text(f"Stored {stored} ratings from {len(sheets)} sheets."))
    table = Table("dimension", "alpha", "level", "units", "raters", "ratings", title="Agreement")
    for a in agreements:
        table.add_row(
            _cell(a.dimension),
            _cell(_fmt(a.alpha)),
            _cell(a.level),
            _cell(a.units),
            _cell(a.raters),
            _cell(a.ratings),
        )
    _out.print(table)


@review_app.command("calibrate")
def review_calibrate(
    batch_id: Annotated[str, typer.Argument(help="Rated batch.")],
    db: DbOption = "botdrill.duckdb",
    gate: Annotated[
        list[str] | None,
        typer.Option("--gate", help="Gate score to calibrate (repeatable); default: all four."),
    ] = None,
    dimension: Annotated[str, typer.Option("--dimension", help="The raters' verdict to match.")] = "usable",
) -> None:
    """Set each gate's threshold where it best agrees with the raters (balanced accuracy), and store it."""
    from botdrill.analysis._review_store import calibrate_batch

    _need_db(db, "botdrill generate")
    try:
        results = calibrate_batch(db, batch_id, gates=gate or None, dimension=dimension)
    except BotdrillError as exc:
        raise _fail(exc) from None
    table = Table("gate", "threshold", "was", "balanced acc.", "n", "kept good/bad", "dropped good/bad")
    for c in results:
        table.add_row(
            _cell(c.gate),
            _cell(_fmt(c.threshold)),
            _cell(_fmt(c.previous_threshold)),
            _cell(_fmt(c.balanced_accuracy)),
            _cell(c.n),
            _cell(f"{c.kept_good}/{c.kept_bad}"),
            _cell(f"{c.dropped_good}/{c.dropped_bad}"),
        )
    _out.print(table)
    flags = " ".join(
        f"--min-{c.gate.replace('_', '-')} {c.threshold:.3f}" for c in results if c.gate != "slot_coverage"
    )
    _out.print(
        Text(f"Use them in the next batch: botdrill generate ... {flags} --parent {batch_id}"), soft_wrap=True
    )


# -- datasets -------------------------------------------------------------------------------------------


@dataset_app.command("build")
def dataset_build(
    real: Annotated[Path, typer.Option("--real", help="Real examples (text,intent CSV or JSONL).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for train, validation and manifest.")],
    db: DbOption = "botdrill.duckdb",
    format: Annotated[str, typer.Option("--format", help="openai, hf, rasa or csv.")] = "csv",
    ratio: Annotated[
        float,
        typer.Option("--ratio", min=0, help="Synthetic examples per real training example, per intent."),
    ] = 1.0,
    batch: Annotated[
        list[str] | None, typer.Option("--batch", help="Batches to draw from (default: all active).")
    ] = None,
    val_fraction: Annotated[float, typer.Option("--val-fraction", min=0, max=0.9)] = 0.2,
    seeds: Annotated[
        Path | None, typer.Option("--seeds", help="The seed file the batches were made from (leak guard).")
    ] = None,
    no_negatives: Annotated[
        bool, typer.Option("--no-negatives", help="Leave near-miss negatives out.")
    ] = False,
    max_synthetic: Annotated[int | None, typer.Option("--max-synthetic", min=0)] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Mix real and synthetic examples, stratified by intent, with a validation split of real data only."""
    from botdrill.analysis._dataset import build_dataset

    _need_db(db, "botdrill generate")
    try:
        result = build_dataset(
            db,
            real,
            out,
            format=format,
            ratio=ratio,
            batches=tuple(batch or ()),
            val_fraction=val_fraction,
            include_negatives=not no_negatives,
            seed=seed,
            max_synthetic_per_intent=max_synthetic,
            seeds=seeds,
        )
    except BotdrillError as exc:
        raise _fail(exc) from None
    _out.print(Text(f"Wrote {out}: {result}"), soft_wrap=True)
