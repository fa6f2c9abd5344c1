"""The `botdrill` command line.

Progress goes to stderr and results to stdout, so `botdrill sql ... --format csv > out.csv` stays clean.
Errors that are the user's to fix print one line and exit with status 2; nothing is printed with locals
(they may hold secrets).
"""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from botdrill.scenarios import BotdrillError

if TYPE_CHECKING:
    from ._runner import RunConfig, RunResult

app = typer.Typer(
    name="botdrill",
    help="Fire drills for conversational assistants: simulated users, gold labels, failures in DuckDB.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
# Piped output is not wrapped at 80 columns: tables stay readable in logs and CI.
_out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
_err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 200)

DbOption = Annotated[str, typer.Option("--db", envvar="BOTDRILL_DB", help="DuckDB file.")]

pack_app = typer.Typer(help="Scenario packs: check one before drilling with it.", no_args_is_help=True)
app.add_typer(pack_app, name="pack")


def _fail(exc: BotdrillError) -> typer.Exit:
    _err.print(Text(f"error: {exc}"), style="red", soft_wrap=True)
    return typer.Exit(code=2)


def _need_db(db: str, made_by: str = "botdrill run") -> None:
    """Exit 2 with a message when the database does not exist, before a reader would create an empty one."""
    if not Path(db).exists():
        raise _fail(BotdrillError(f"{db}: no such database; `{made_by}` creates it"))


def _cell(value: Any) -> Text:
    # Text(...) never interprets markup: dialogue text is shown as typed.
    if value is None:
        return Text("")
    if isinstance(value, float):
        return Text(f"{value:.3f}")
    return Text(str(value))


@app.command()
def run(
    pack: Annotated[str, typer.Argument(help="Built-in pack name or pack YAML file.")] = "banking",
    target: Annotated[
        str,
        typer.Option(
            help="'reference' or 'reference-bare' (built in), module:attribute, http:CONFIG.yaml (a JSON "
            "endpoint), rasa:URL (Rasa's REST channel), llm:CONFIG.yaml (an OpenAI-compatible chat model "
            "with a system prompt) or langgraph:URL#ASSISTANT (a deployed LangGraph graph)."
        ),
    ] = "reference",
    db: DbOption = "botdrill.duckdb",
    n: Annotated[
        int, typer.Option("--n", "-n", min=1, help="Scenarios to sample; each runs clean and perturbed.")
    ] = 200,
    perturb: Annotated[
        str,
        typer.Option(
            help="Perturbations run next to each clean dialogue: comma-separated NAME[:0-3], chains as "
            "a+b; 'none', 'all' or 'default'. See: botdrill perturbations."
        ),
    ] = "default",
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same transcripts.")] = 0,
    concurrency: Annotated[int, typer.Option(min=1, help="Dialogues in flight at once.")] = 256,
    run_id: Annotated[str | None, typer.Option(help="Run name; re-using one resumes it.")] = None,
    max_turns: Annotated[int, typer.Option(min=1, help="Assistant turns before a dialogue stops.")] = 12,
    timeout: Annotated[float, typer.Option(help="Seconds allowed per assistant reply.")] = 30.0,
    policy: Annotated[
        list[str] | None,
        typer.Option(
            help="Escalation policy around the assistant: none, critical, standard, cautious, a rule chain "
            "(critical+failures:2+crisis+request+confidence:0.5) or a policy YAML file. Repeat it to run "
            "the same scenarios under each policy and compare them."
        ),
    ] = None,
    complexity: Annotated[
        str,
        typer.Option(
            help="Shares of dialogue shapes: 'default', 'simple', or e.g. "
            "simple:0.6,turn_into:0.2,two_intents:0.1,correction:0.1."
        ),
    ] = "default",
    critical_share: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of scenarios for the critical intents.")
    ] = 0.5,
    intent_quota: Annotated[
        str, typer.Option(help="Explicit intent shares, e.g. report_fraud:0.2,bereavement:0.1.")
    ] = "",
    trials: Annotated[
        int,
        typer.Option(
            min=1, max=100, help="Runs of each scenario and variant, with fresh random streams (for pass^k)."
        ),
    ] = 1,
    fail_if: Annotated[
        list[str] | None,
        typer.Option(
            "--fail-if",
            help="Exit 1 when METRIC OP NUMBER holds for the run, e.g. 'escalation_recall<0.95' or "
            "'brittleness.typo>0.1' (repeatable; see: botdrill gate --help).",
        ),
    ] = None,
    user: Annotated[
        str,
        typer.Option(
            help="Simulated user: 'agenda' (built in, no model) or llm:USER.yaml (an LLM wording the "
            "agenda's turns)."
        ),
    ] = "agenda",
    judge: Annotated[
        str,
        typer.Option(
            help="Who infers intents and hand-offs a bot does not expose: 'rules' or llm:JUDGE.yaml."
        ),
    ] = "rules",
    replay: Annotated[
        str | None,
        typer.Option(
            help="Rerun the stored run RUN_ID with every LLM call answered from its recording (no network) "
            "and compare the transcripts; its options are the stored run's. Exits 1 if any differ."
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Drill an assistant with simulated users and store every dialogue in DuckDB."""
    from pydantic import ValidationError

    from ._runner import RunConfig, new_run_id

    if replay is not None:
        _replay(db, replay, run_id, quiet=quiet)
        return
    policies = policy or ["none"]
    if len(set(policies)) != len(policies):
        raise _fail(BotdrillError(f"--policy names the same policy twice: {', '.join(policies)}"))
    base = run_id or (new_run_id() if len(policies) > 1 else None)
    configs = []
    try:
        for name in policies:
            configs.append(
                RunConfig(
                    pack=pack,
                    target=target,
                    db=db,
                    n=n,
                    perturb=perturb,
                    seed=seed,
                    concurrency=concurrency,
                    run_id=base if len(policies) == 1 else f"{base}-{_slug(name)}",
                    max_turns=max_turns,
                    timeout=timeout,
                    policy=name,
                    complexity=complexity,
                    critical_share=critical_share,
                    intent_quota=intent_quota,
                    trials=trials,
                    user=user,
                    judge=judge,
                )
            )
    except ValidationError as exc:
        problem = exc.errors(include_url=False)[0]
        _err.print(
            Text(f"error: --{str(problem['loc'][0]).replace('_', '-')}: {problem['msg']}"),
            style="red",
            soft_wrap=True,
        )
        raise typer.Exit(code=2) from None
    from botdrill.analysis import parse_threshold
    from botdrill.policies import parse_policy

    from ._runner import quotas_of

    try:  # every policy, quota and threshold is checked before the first run starts
        for config in configs:
            parse_policy(config.policy)
            quotas_of(config)
        thresholds = [parse_threshold(t) for t in fail_if or []]
    except BotdrillError as exc:
        raise _fail(exc) from None
    if db.strip() == ":memory:":
        raise _fail(
            BotdrillError(
                "--db :memory: would discard every dialogue when the command ends; give a file path"
            )
        )
    results = [_drill(config, quiet=quiet) for config in configs]
    if len(results) > 1:
        _compare(results[0].db, [r.run_id for r in results])
    first = results[0]
    if thresholds:
        _gate(first.db, [r.run_id for r in results], thresholds)
    ids = " ".join(r.run_id for r in results)
    _out.print(
        Text(
            f"Run{'s' if len(results) > 1 else ''} {ids} {'are' if len(results) > 1 else 'is'} in "
            f"{first.db}. Next: botdrill sql "
            f"\"select * from failures where run_id = '{first.run_id}' limit 20\""
        ),
        soft_wrap=True,
    )


def _replay(db: str, original: str, run_id: str | None, *, quiet: bool) -> None:
    """`run --replay`: the stored run again, every LLM call from its recording; exit 1 if a transcript
    differs from the original's."""
    from pydantic import ValidationError

    from ._runner import RunConfig
    from ._store import StoreError, connect

    _need_db(db)
    try:
        con = connect(db, read_only=True)
    except StoreError as exc:
        raise _fail(exc) from None
    try:
        row = con.execute("select config from runs where run_id = ?", [original]).fetchone()
    finally:
        con.close()
    if row is None:
        raise _fail(BotdrillError(f"--replay: no run {original!r} in {db} (see: botdrill runs)"))
    stored = {k: v for k, v in json.loads(row[0]).items() if k in RunConfig.model_fields}
    try:
        config = RunConfig.model_validate(
            stored | {"db": db, "run_id": run_id or f"{original}-replay", "llm_cache": "replay"}
        )
    except ValidationError as exc:
        raise _fail(
            BotdrillError(f"--replay: run {original!r} has a config this botdrill cannot read: {exc}")
        ) from None
    result = _drill(config, quiet=quiet)
    con = connect(db, read_only=True)
    try:
        same, total, calls = con.execute(
            "select count(*) filter (where a.transcript_sha256 = b.transcript_sha256), count(*), "
            "coalesce(sum(b.llm_calls), 0) from dialogues a join dialogues b on a.idx = b.idx "
            "where a.run_id = ? and b.run_id = ?",
            [original, result.run_id],
        ).fetchone() or (0, 0, 0)
    finally:
        con.close()
    _out.print(
        Text(
            f"replay {result.run_id}: {same}/{total} transcripts identical to {original}; "
            f"{calls} LLM requests sent"
        ),
        soft_wrap=True,
    )
    if same != total:
        raise typer.Exit(code=1)


def _gate(db: str, run_ids: list[str], thresholds: list[Any]) -> None:
    """Check thresholds on runs: print each breach and exit 1 if there is any (2 on a bad metric)."""
    from botdrill.analysis import check

    try:
        breaches = [b for run_id in run_ids for b in check(db, run_id, thresholds)]
    except BotdrillError as exc:
        raise _fail(exc) from None
    for breach in breaches:
        _err.print(Text(f"gate failed: {breach}"), style="red", soft_wrap=True)
    if breaches:
        raise typer.Exit(code=1)
    _err.print(Text(f"gate passed: {len(thresholds)} threshold(s) on {', '.join(run_ids)}"), soft_wrap=True)


@app.command("gate")
def gate(
    fail_if: Annotated[
        list[str],
        typer.Option("--fail-if", help="METRIC OP NUMBER that fails the gate when it holds (repeatable)."),
    ],
    run_id: Annotated[str | None, typer.Option("--run", help="Run id (default: the latest).")] = None,
    db: DbOption = "botdrill.duckdb",
) -> None:
    """Check thresholds on a stored run; exit 1 when one is breached.

    Metrics: success_rate, escalation_recall, on_time_rate, escalation_precision, over_escalation_rate,
    mean_turns_to_handoff, mean_seconds_to_handoff, routing_accuracy, simulator_faults; per intent
    success_rate.INTENT, escalation_recall.INTENT, routing_accuracy.INTENT; brittleness.PERTURBATION;
    pass^1 to pass^4 (with --trials). A metric the run cannot give breaches too.
    """
    from botdrill.analysis import latest_run, parse_threshold

    _need_db(db)
    try:
        thresholds = [parse_threshold(t) for t in fail_if]
        run = run_id or latest_run(db)
    except BotdrillError as exc:
        raise _fail(exc) from None
    if run is None:
        raise _fail(BotdrillError(f"{db} holds no run yet"))
    _gate(db, [run], thresholds)


@app.command("shrink")
def shrink(
    run_id: Annotated[str | None, typer.Option("--run", help="Run id (default: the latest).")] = None,
    dialogue: Annotated[
        list[str] | None, typer.Option("--dialogue", help="A failing perturbed dialogue id (repeatable).")
    ] = None,
    all_failures: Annotated[
        bool,
        typer.Option(
            "--all-failures",
            help="Every dialogue a perturbation broke (it failed, its clean twin succeeded).",
        ),
    ] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many dialogues.")] = None,
    max_tests: Annotated[int, typer.Option(min=1, help="Re-runs allowed per dialogue.")] = 200,
    db: DbOption = "botdrill.duckdb",
) -> None:
    """Find the fewest edits of failing dialogues that still fail, by re-running them (delta debugging).

    Each minimal dialogue is stored under the run `<run>:shrunk`; the `shrinks` table links it to the
    original.
    """
    from ._shrink import failing_dialogues, shrink_dialogues
    from ._store import Store

    _need_db(db)
    if bool(dialogue) == all_failures:
        raise _fail(BotdrillError("give --dialogue ID (repeatable) or --all-failures"))
    table = Table("dialogue", "outcome", "edits", "minimal", "re-runs", "reproduced", "minimal dialogue")
    try:
        store = Store(db)
    except BotdrillError as exc:
        raise _fail(exc) from None
    try:
        latest = store.con.execute(
            "select run_id from runs where status <> 'shrunk' order by created_at desc limit 1"
        ).fetchone()
        run = run_id or (latest[0] if latest else None)
        if run is None:
            raise BotdrillError(f"{db} holds no run yet")
        ids = list(dialogue or []) if dialogue else failing_dialogues(store, run, limit)
        if limit is not None:
            ids = ids[:limit]
        for result in shrink_dialogues(store, run, ids, max_tests=max_tests):
            table.add_row(
                Text(result.dialogue_id),
                Text(result.outcome),
                str(result.edits_before),
                str(result.edits_after),
                str(result.tests),
                "yes" if result.reproduced else "no",
                Text(result.shrunk_dialogue_id or "(failure did not reproduce)"),
            )
    except BotdrillError as exc:
        raise _fail(exc) from None
    finally:
        store.close()
        del store
    _out.print(table)


def _slug(policy: str) -> str:
    """A run-id suffix for a policy: a file's stem, or the spec with `+` and odd characters as `_`."""
    from pathlib import Path

    if policy.endswith((".yaml", ".yml")):
        policy = Path(policy).stem
    slug = re.sub(r"[^A-Za-z0-9_.:-]", "_", policy) or "policy"
    if len(slug) > 30:  # two long chains must not share a run id
        import hashlib

        slug = slug[:23] + "-" + hashlib.sha256(policy.encode()).hexdigest()[:6]
    return slug


def _drill(config: RunConfig, *, quiet: bool) -> RunResult:
    """One run with a progress bar and its summary table; errors exit with a message."""
    from ._runner import run_drill

    progress = Progress(
        TextColumn(
            f"[bold]drilling[/] {escape(config.policy)}" if config.policy != "none" else "[bold]drilling"
        ),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=_err,
        disable=quiet or not _err.is_terminal,
        transient=False,
    )
    task = progress.add_task("dialogues", total=None)
    try:
        with progress:
            result = run_drill(
                config, on_progress=lambda done, total: progress.update(task, completed=done, total=total)
            )
    except BotdrillError as exc:
        raise _fail(exc) from None
    except KeyboardInterrupt:
        _err.print(
            "interrupted: finished dialogues are stored; run again with the same --run-id to resume",
            soft_wrap=True,
        )
        raise typer.Exit(code=130) from None
    try:
        _summary(result.db, result.run_id)
    except BotdrillError as exc:
        raise _fail(exc) from None
    rate = result.simulated / result.seconds if result.seconds else 0.0
    _err.print(
        Text(
            f"{result.simulated} dialogues simulated, {result.skipped} already stored, "
            f"{result.seconds:.1f} s ({rate:.0f}/s)"
        ),
        soft_wrap=True,
    )
    return result


def _compare(db: str, run_ids: list[str]) -> None:
    """Policies side by side: the `run_scores` view for the runs just made."""
    from botdrill.analysis import run_scores

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:.0%}"

    table = Table(title="escalation policies on the same scenarios", title_justify="left")
    for name in ("policy", "run", "success", "esc. recall", "on time", "precision", "over-esc.", "by policy"):
        table.add_column(name, justify="left" if name in ("policy", "run") else "right")
    for row in run_scores(db, run_ids):
        table.add_row(
            Text(row.policy),
            Text(row.run_id),
            pct(row.success_rate),
            pct(row.escalation_recall),
            pct(row.on_time_rate),
            pct(row.escalation_precision),
            pct(row.over_escalation_rate),
            str(row.policy_handoffs),
        )
    _out.print(table)


@pack_app.command("check")
def pack_check(
    pack: Annotated[str, typer.Argument(help="Built-in pack name or pack YAML file.")] = "banking",
) -> None:
    """Validate a pack and its domain graph; print the problems, or a summary. Exit 1 on an error."""
    from botdrill.policies import DomainGraph
    from botdrill.scenarios import load_pack

    try:
        loaded = load_pack(pack)
    except BotdrillError as exc:
        raise _fail(exc) from None
    graph = DomainGraph.from_pack(loaded)
    problems = graph.problems()
    for problem in problems:
        style = "red" if problem.severity == "error" else "yellow"
        _out.print(
            Text(f"{problem.severity}: {problem.code}: {problem.message}", style=style), soft_wrap=True
        )
    summary = graph.summary()
    edges = summary.get("edges", {})
    _out.print(
        Text(
            f"{loaded.name} {loaded.version}: {summary.get('intents')} intents "
            f"({summary.get('critical_intents')} critical), {summary.get('slots')} slots, "
            f"{summary.get('personas')} personas; "
            + ", ".join(f"{n} {kind}" for kind, n in edges.items() if n)
        ),
        soft_wrap=True,
    )
    if any(p.severity == "error" for p in problems):
        raise typer.Exit(code=1)


@app.command("schema")
def schema() -> None:
    """Print the JSON Schema of scenario packs (for editors: see the first line of a built-in pack)."""
    from botdrill.scenarios import schema_text

    sys.stdout.write(schema_text())


@app.command("perturbations")
def list_perturbations() -> None:
    """List the perturbations `--perturb` accepts, with what each intensity means."""
    from botdrill.agents import perturbations

    from ._variants import DEFAULT_PERTURBATIONS

    table = Table("name", "level", "default", "what it does", show_lines=False)
    for spec in perturbations().values():
        table.add_row(
            _cell(spec.name),
            _cell(spec.level),
            _cell("yes" if spec.name in DEFAULT_PERTURBATIONS else ""),
            _cell(spec.description),
        )
    _out.print(table)


def _summary(db: str, run_id: str) -> None:
    # The CLI is the composition root: the one place in simulator/ that reads analysis/.
    from botdrill.analysis import IntentSummary, intent_summary, llm_usage, run_summary

    def cells(row: IntentSummary) -> list[str | Text]:
        return [
            str(row.dialogues),
            f"{row.success_rate:.0%}",
            "-" if row.routing_accuracy is None else f"{row.routing_accuracy:.0%}",
            "-" if row.escalation_recall is None else f"{row.escalation_recall:.0%}",
            str(row.errors),
        ]

    table = Table(title=f"run {run_id}", title_justify="left")
    table.add_column("intent", no_wrap=True)
    for name in ("critical", "dialogues", "success", "routing", "escalation recall", "errors"):
        table.add_column(name, justify="center" if name == "critical" else "right")
    for row in intent_summary(db, run_id):
        table.add_row(Text(row.intent), "yes" if row.critical else "", *cells(row))
    total = run_summary(db, run_id)
    if total is not None:
        table.add_section()
        table.add_row("all", "", *cells(total))
    _out.print(table)
    usage = llm_usage(db, run_id)
    if usage is not None:
        cost = (
            ""
            if usage.cost_usd is None
            else f", ${usage.cost_usd:.4f} (${usage.cost_per_dialogue:.5f} per dialogue)"
        )
        _out.print(
            Text(
                f"LLM: {usage.calls} requests sent, {usage.cached} answered from the record; "
                f"{usage.prompt_tokens} prompt + {usage.completion_tokens} completion tokens "
                f"({usage.tokens_per_dialogue:.0f} per dialogue){cost}"
            ),
            soft_wrap=True,
        )


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="SQL to run against the database (read-only).")],
    db: DbOption = "botdrill.duckdb",
    format: Annotated[str, typer.Option("--format", "-f", help="table, csv or json.")] = "table",
) -> None:
    """Query the runs with SQL on a read-only connection."""
    import duckdb

    from ._store import StoreError, connect

    if format not in ("table", "csv", "json"):
        raise _fail(BotdrillError(f"--format must be table, csv or json, not {format!r}"))
    _need_db(db)
    try:
        con = connect(db, read_only=True)
    except StoreError as exc:
        raise _fail(exc) from None
    try:
        cursor = con.execute(query)
        names = [d[0] for d in cursor.description] if cursor.description else []
        rows = cursor.fetchall() if names else []
    except duckdb.Error as exc:
        raise _fail(BotdrillError(f"query failed: {exc}")) from None
    finally:
        con.close()
    if format == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(names)
        writer.writerows(rows)
    elif format == "json":
        sys.stdout.write(
            json.dumps(
                [dict(zip(names, r, strict=True)) for r in rows], ensure_ascii=False, default=str, indent=1
            )
            + "\n"
        )
    else:
        table = Table(*names, show_lines=False)
        for row in rows:
            table.add_row(*(_cell(v) for v in row))
        _out.print(table)
        _err.print(f"{len(rows)} row{'s' if len(rows) != 1 else ''}", soft_wrap=True)


@app.command()
def runs(db: DbOption = "botdrill.duckdb") -> None:
    """List the runs in the database with a summary of each."""
    from ._store import StoreError, connect

    _need_db(db)
    try:
        con = connect(db, read_only=True)
    except StoreError as exc:
        raise _fail(exc) from None
    try:
        rows = con.execute("""
            select r.run_id, r.created_at, r.status, r.pack,
                   r.target || coalesce(
                       ' + ' || nullif(json_extract_string(r.config, '$.policy'), 'none'), '') as target,
                   r.seed, r.n_dialogues,
                   count(d.dialogue_id) as stored,
                   avg(case when d.outcome = 'success' then 1.0 else 0.0 end) as success,
                   count(*) filter (where d.expected_escalation = 'must' and d.escalated)::double
                     / nullif(count(*) filter (where d.expected_escalation = 'must'), 0) as recall
            from runs r left join dialogues d using (run_id)
            group by all order by r.created_at""").fetchall()
    finally:
        con.close()
    table = Table(
        "run", "created", "status", "pack", "target", "seed", "stored", "success", "escalation recall"
    )
    for run_id, created, status, pack, target, seed, n, stored, success, recall in rows:
        table.add_row(
            Text(run_id),
            f"{created:%Y-%m-%d %H:%M}",
            status,
            Text(pack),
            Text(target),
            str(seed),
            f"{stored}/{n}",
            "-" if success is None else f"{success:.0%}",
            "-" if recall is None else f"{recall:.0%}",
        )
    _out.print(table)


@app.command()
def capacity(
    db: DbOption = "botdrill.duckdb",
    run_id: Annotated[
        str | None, typer.Option("--run", help="Run whose hand-offs feed the team (default: the latest).")
    ] = None,
    agents: Annotated[int, typer.Option(min=0, help="Human agents on duty for the whole shift.")] = 4,
    arrivals_per_hour: Annotated[
        float, typer.Option(min=0, help="Customers contacting the bot per hour.")
    ] = 120,
    shift: Annotated[str, typer.Option(help="Shift hours, HH:MM-HH:MM.")] = "09:00-17:00",
    surge: Annotated[
        list[str] | None,
        typer.Option(help="INTENT:FACTORx@HH:MM-HH:MM, e.g. report_fraud:10x@13:00-14:00 (repeatable)."),
    ] = None,
    handling_minutes: Annotated[float, typer.Option(min=0.01, help="Mean handling time, normal.")] = 6.0,
    critical_handling_minutes: Annotated[
        float, typer.Option(min=0.01, help="Mean handling time, critical intents.")
    ] = 12.0,
    patience_minutes: Annotated[
        float | None, typer.Option(min=0.01, help="Mean wait before a customer gives up (none: never).")
    ] = 5.0,
    sla_critical: Annotated[
        float, typer.Option(help="Seconds within which a critical hand-off is answered.")
    ] = 60,
    sla_normal: Annotated[
        float, typer.Option(help="Seconds within which another hand-off is answered.")
    ] = 300,
    priority: Annotated[bool, typer.Option(help="Serve critical hand-offs first.")] = True,
    seed: Annotated[int, typer.Option(help="Random seed of the queue simulation.")] = 0,
) -> None:
    """Simulate the human team that receives a run's hand-offs: waits, abandonment, SLA breaches, load."""
    from pydantic import ValidationError

    from botdrill.analysis import latest_run
    from botdrill.policies import CapacityConfig, HandoffProfile, simulate_capacity
    from botdrill.scenarios import load_pack

    from ._runner import new_run_id
    from ._store import Store

    _need_db(db)
    try:
        start, end = (part.strip() for part in shift.split("-"))
        hours = _hours_between(start, end)
        store = Store(db)
    except ValueError:
        raise _fail(BotdrillError(f"--shift: {shift!r} is not HH:MM-HH:MM")) from None
    except BotdrillError as exc:
        raise _fail(exc) from None
    try:
        run = run_id or latest_run(store.con)
        stored = store.get_run(run) if run else None
        if stored is None:
            raise BotdrillError(
                f"{db}: no run {run!r}; `botdrill runs` lists them" if run else f"{db}: no runs yet"
            )
        pack = load_pack(json.loads(stored["config"])["pack"])
        rows = store.con.execute(
            """
            with handoffs as (
                select dialogue_id, min(sim_time) as at from turns where run_id = $run and handoff group by 1)
            select d.gold_intent, bool_or(d.critical), count(*), count(h.at), avg(h.at)
            from dialogues d left join handoffs h using (dialogue_id)
            where d.run_id = $run
              and d.perturbation = (select min(perturbation) filter (where perturbation = 'none')
                                    from dialogues where run_id = $run)
            group by 1 order by 1""",
            {"run": run},
        ).fetchall()
        if not rows:
            raise BotdrillError(f"run {run!r} has no clean dialogues to take hand-off rates from")
        # Shares come from the pack's traffic weights: a drill over-samples critical intents on purpose.
        profile = HandoffProfile.from_rows(rows, weights={i.name: i.weight for i in pack.intents})
        config = CapacityConfig.model_validate(
            {
                "arrivals_per_hour": arrivals_per_hour,
                "shift_hours": hours,
                "shift_start": start,
                "agents": agents,
                "handling_minutes": {"critical": critical_handling_minutes, "normal": handling_minutes},
                "patience_minutes": patience_minutes,
                "critical_priority": priority,
                "sla_seconds_critical": sla_critical,
                "sla_seconds_normal": sla_normal,
                "surges": list(surge or []),
                "seed": seed,
            }
        )
        report = simulate_capacity(config, profile)
        capacity_id = new_run_id().replace("run-", "capacity-", 1)
        store.add_capacity(capacity_id, run, config.model_dump(mode="json"), report.to_rows())
    except ValidationError as exc:
        problem = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in problem["loc"]) or "options"
        reason = str(problem["msg"]).removeprefix("Value error, ")
        raise _fail(BotdrillError(f"capacity: {where}: {reason}")) from None
    except (BotdrillError, ValueError) as exc:
        raise _fail(exc if isinstance(exc, BotdrillError) else BotdrillError(str(exc))) from None
    finally:
        # Closed, and dropped: an error's traceback keeps this frame, and with it the connection, alive.
        store.close()
        del store
    _out.print(
        Text(f"Human team for run {run}: {agents} agents, {shift}, {arrivals_per_hour:g} contacts/hour")
    )
    for line in report.summary_lines():
        _out.print(Text("  " + line), soft_wrap=True)
    _out.print(
        Text(
            f"Stored as {capacity_id} in {db}. Per intent: botdrill sql "
            f"\"select * from capacity where capacity_id = '{capacity_id}'\""
        ),
        soft_wrap=True,
    )


def _hours_between(start: str, end: str) -> float:
    """Hours from HH:MM to HH:MM (a shift that ends before it starts crosses midnight)."""

    def minutes(clock: str) -> int:
        hh, mm = clock.split(":")
        if not (hh.isdigit() and mm.isdigit() and int(hh) < 24 and int(mm) < 60):
            raise ValueError(clock)
        return int(hh) * 60 + int(mm)

    span = (minutes(end) - minutes(start)) % (24 * 60)
    if span == 0:
        raise ValueError("empty shift")
    return span / 60


def main() -> None:
    """Console-script entry point."""
    app(prog_name="botdrill")


# Commands defined in their own modules register themselves on `app` when imported.
from . import _cli_export, _cli_generate, _cli_report  # noqa: E402, F401
