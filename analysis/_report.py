"""The HTML report of one run: one self-contained file that a release team reads, offline.

`render_report` reads a run through the same views and functions as the rest of `botdrill.analysis` and
returns one HTML page: inline CSS, charts drawn here as inline SVG, no script, and no external font, image
or stylesheet, so the file opens from a mail attachment or a CI artifact with no network. Sections:

1. the run: id, pack, target, policy, seed, dialogues, dates, versions, simulator faults left out;
2. headline scores against thresholds, as pass/fail badges, and the results per intent;
3. brittleness, intent x perturbation, as a heatmap (small samples hatched, with n), and the
   across-intent row with its bootstrap interval and McNemar p;
4. the routing confusion matrix, gold x routed, shaded by row share, with counts;
5. slot errors per slot: precision, recall, completeness, wrong and missing values;
6. escalation timeliness per critical intent, and per trigger (on time, late, missed);
7. the human team's queue, from the run's latest `botdrill capacity` simulation, when it has one;
8. pass^k curves per intent, k = 1..4, for a run with `--trials` above 1;
9. the worst dialogues (critical-intent failures first, then shrunk ones, then the broken pairs of the
   most brittle cells): whole transcripts, each perturbation edit marked, and the shrunk version beside
   the original with the edits it kept;
10. coverage: quota cells filled per level, domain-graph edges walked per kind.

Thresholds use the gate's syntax (see `botdrill.analysis._gate`): an expression says when to FAIL, and a
metric the run cannot give fails too, as with `botdrill gate`. The defaults (`DEFAULT_THRESHOLDS`):

- `success_rate<0.8`: fewer than 80% of the scored dialogues succeed;
- `routing_accuracy<0.9`: fewer than 90% are routed to their gold intent;
- `escalation_recall<0.95`: more than 5% of the dialogues that needed a person never reached one;
- `on_time_rate<0.9`: fewer than 90% of those reached one by their deadline;
- `escalation_precision<0.8`: more than 20% of hand-offs were not due, allowed or asked for;
- `over_escalation_rate>0.1`: more than 10% of never-escalate dialogues were handed over unasked;
- `mean_seconds_to_handoff>120`: hand-offs take more than two simulated minutes on average.

A threshold given for a metric replaces that metric's default (give two to bound it on both sides);
thresholds on other metrics (`success_rate.report_fraud<0.9`, `brittleness.typo>0.1`, `pass^2<0.5`) are
added to the list under the headline.

Every value read from the database (dialogue text, intent, persona and slot names, versions, anything) is
escaped with `html.escape(value, quote=True)` before it reaches the page, in text, attribute values and
SVG alike, and nothing from the database is placed in a script or style context: markup is built with
`_el`, which escapes every child and attribute value that is not already `_Markup` made here.
Numbers shown also travel in `data-key`/`data-value` attributes (the exact value, `repr` of the float), so
a test or a script can check the page against the Python API.
"""

from __future__ import annotations

import html
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import duckdb

from botdrill.scenarios import BotdrillError

from ._gate import Breach, Threshold, check, metric_value, parse_threshold
from ._metrics import (
    Brittleness,
    Database,
    _open,
    brittleness,
    confusion_matrix,
    escalation_scores,
    intent_summary,
    pass_k,
    slot_scores,
)

DEFAULT_THRESHOLDS: tuple[str, ...] = (
    "success_rate<0.8",
    "routing_accuracy<0.9",
    "escalation_recall<0.95",
    "on_time_rate<0.9",
    "escalation_precision<0.8",
    "over_escalation_rate>0.1",
    "mean_seconds_to_handoff>120",
)
"""The thresholds a report is checked against unless one is given for the same metric (see module doc)."""

MIN_PAIRS = 30
"""Brittleness cells with fewer pairs are marked as small samples (hatched)."""

_HEADLINE: tuple[tuple[str, str, str], ...] = (
    ("success_rate", "Task success", "pct"),
    ("routing_accuracy", "Routing accuracy", "pct"),
    ("escalation_recall", "Escalation recall", "pct"),
    ("on_time_rate", "On-time hand-offs", "pct"),
    ("escalation_precision", "Escalation precision", "pct"),
    ("over_escalation_rate", "Over-escalation", "pct"),
    ("mean_seconds_to_handoff", "Mean time to hand-off", "seconds"),
    ("mean_turns_to_handoff", "Mean turns to hand-off", "turns"),
)
_SEVERITY = (
    "missed_escalation",
    "late_escalation",
    "misrouted",
    "over_escalation",
    "slot_error",
    "assistant_error",
    "user_gave_up",
    "max_turns",
)
_EDGE_KINDS = ("opens", "turns_into", "switches_to", "needs", "escalates", "may_escalate", "resolves")
_LEVELS = ("intent", "intent_complexity", "intent_persona", "intent_perturbation")
_PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#393b79",
    "#ad494a",
    "#637939",
    "#8c6d31",
    "#7b4173",
    "#3182bd",
    "#e6550d",
    "#31a354",
    "#756bb1",
    "#636363",
)


class ReportError(BotdrillError):
    """A report cannot be made: no such run, no run at all, or not a botdrill database."""

    code = "report_invalid"


@dataclass(frozen=True)
class Report:
    """A rendered report and what it found."""

    run_id: str
    html: str
    thresholds: list[Threshold]
    """The thresholds checked: the defaults not overridden, then those given."""
    breaches: list[Breach]
    """The thresholds the run breaches (or cannot compute), in the order of `thresholds`."""
    dialogues: list[str]
    """The ids of the dialogues shown in full, in the order shown."""

    @property
    def passed(self) -> bool:
        """Whether no threshold was breached."""
        return not self.breaches


# -- markup: everything not built here is escaped ---------------------------------------------------------


class _Markup(str):
    """HTML made by this module: inserted as is. Any other `str` is escaped."""

    __slots__ = ()


def _esc(value: object) -> _Markup:
    if isinstance(value, _Markup):
        return value
    return _Markup(html.escape(str(value), quote=True))


def _cat(children: Iterable[object]) -> _Markup:
    out: list[str] = []
    for child in children:
        if child is None or child is False:
            continue
        if isinstance(child, str):
            out.append(_esc(child))
        elif isinstance(child, Iterable):
            out.append(_cat(child))
        else:
            out.append(_esc(child))
    return _Markup("".join(out))


def _attrs(attrs: dict[str, object]) -> str:
    parts = []
    for key, value in attrs.items():
        if value is None or value is False:
            continue
        name = key.rstrip("_").replace("_", "-")
        if value is True:
            parts.append(f" {name}")
        else:
            parts.append(f' {name}="{html.escape(str(value), quote=True)}"')
    return "".join(parts)


def _el(tag: str, *children: object, **attrs: object) -> _Markup:
    """`<tag attrs>children</tag>`: attribute values always escaped, children unless `_Markup`."""
    return _Markup(f"<{tag}{_attrs(attrs)}>{_cat(children)}</{tag}>")


def _void(tag: str, **attrs: object) -> _Markup:
    """An HTML void element (`<br>`, `<meta>`)."""
    return _Markup(f"<{tag}{_attrs(attrs)}>")


def _leaf(tag: str, **attrs: object) -> _Markup:
    """An empty SVG element (`<rect ... />`)."""
    return _Markup(f"<{tag}{_attrs(attrs)}/>")


# -- numbers and colours ----------------------------------------------------------------------------------

_DASH = "\u2013"
_TIMES = "\u00d7"
_MINUS = "\u2212"


def _pct(x: float | None, digits: int = 1) -> str:
    return _DASH if x is None else f"{x * 100:.{digits}f}%"


def _num(x: float | None, digits: int = 2) -> str:
    return _DASH if x is None else f"{round(x, digits) + 0.0:.{digits}f}"


def _signed(x: float) -> str:
    return f"{round(x, 2) + 0.0:+.2f}"


def _secs(x: float | None) -> str:
    return _DASH if x is None else f"{x:.1f} s"


def _fmt(x: float | None, kind: str) -> str:
    if kind == "pct":
        return _pct(x)
    if kind == "seconds":
        return _secs(x)
    return _num(x)


def _dv(x: object) -> str:
    """The exact value for a `data-value` attribute."""
    if x is None:
        return ""
    if isinstance(x, bool):
        return str(int(x))
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        return repr(x)
    return str(x)


def _td(text: object, key: str | None = None, value: object = None, *, cls: str = "num") -> _Markup:
    if key is None:
        return _el("td", text, class_=cls)
    return _el("td", text, class_=cls, data_key=key, data_value=_dv(value))


def _rgb(c: tuple[int, int, int]) -> str:
    return f"#{c[0]:02x}{c[1]:02x}{c[2]:02x}"


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    t = max(0.0, min(1.0, t))
    return (round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t), round(a[2] + (b[2] - a[2]) * t))


_WHITE = (247, 247, 247)
_RED = (178, 24, 43)
_BLUE = (33, 102, 172)
_GREEN = (26, 127, 55)
_GREY = (190, 190, 190)
_BRITTLE_LIMIT = 0.5


def _diverging(value: float) -> tuple[tuple[int, int, int], float]:
    """Colour of a brittleness value (blue below 0, red above, saturated at +-0.5) and its strength."""
    t = max(-1.0, min(1.0, value / _BRITTLE_LIMIT))
    return (_mix(_WHITE, _RED, t) if t >= 0 else _mix(_WHITE, _BLUE, -t)), abs(t)


def _short(text: str, n: int = 30) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _text_width(text: str, size: float = 12) -> float:
    """A rough width of `text` in pixels at `size` (for laying out SVG labels)."""
    return len(text) * size * 0.6


def _svg(width: float, height: float, *children: object, label: str) -> _Markup:
    return _el(
        "svg",
        *children,
        xmlns="http://www.w3.org/2000/svg",
        width=f"{width:.0f}",
        height=f"{height:.0f}",
        viewBox=f"0 0 {width:.0f} {height:.0f}",
        role="img",
        aria_label=label,
        class_="chart",
    )


def _bar(share: float | None, colour: str = "#0969da", width: int = 90) -> _Markup:
    """A small horizontal bar for a share in [0, 1]."""
    if share is None:
        return _Markup("")
    w = max(0.0, min(1.0, share)) * width
    return _svg(
        width,
        10,
        _leaf("rect", x=0, y=0, width=width, height=10, fill="#eaeef2", rx=2),
        _leaf("rect", x=0, y=0, width=f"{w:.1f}", height=10, fill=colour, rx=2),
        label=f"{share * 100:.0f}%",
    )


def _badge(passed: bool | None, text: str | None = None) -> _Markup:
    if passed is None:
        return _el("span", text or "no threshold", class_="badge none")
    return _el(
        "span", text or ("PASS" if passed else "FAIL"), class_="badge " + ("pass" if passed else "fail")
    )


# -- reading the run -------------------------------------------------------------------------------------


def _rows(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | dict[str, Any] = ()
) -> list[dict[str, Any]]:
    cursor = con.execute(sql, params if isinstance(params, dict) else list(params))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _resolve_run(con: duckdb.DuckDBPyConnection, run_id: str | None) -> dict[str, Any]:
    try:
        if run_id is None:
            latest = con.execute(
                "select run_id from runs where status <> 'shrunk' "
                "order by created_at desc, run_id desc limit 1"
            ).fetchone()
            if latest is None:
                raise ReportError("the database holds no run yet; `botdrill run` makes one")
            run_id = str(latest[0])
        found = _rows(con, "select * from runs where run_id = ?", [run_id])
    except duckdb.CatalogException:
        raise ReportError("not a botdrill database (it has no runs table)") from None
    if not found:
        raise ReportError(f"no run {run_id!r} in the database; `botdrill runs` lists them")
    return found[0]


def _thresholds(given: Sequence[str | Threshold] | None) -> list[Threshold]:
    parsed = [t if isinstance(t, Threshold) else parse_threshold(t) for t in given or ()]
    named = {t.metric for t in parsed}
    defaults = [parse_threshold(t) for t in DEFAULT_THRESHOLDS]
    return [t for t in defaults if t.metric not in named] + parsed


def _json(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


# -- sections ----------------------------------------------------------------------------------------------


def _section(anchor: str, title: str, *body: object) -> _Markup:
    return _el("section", _el("h2", title), *body, id=anchor)


def _note(*text: object) -> _Markup:
    return _el("p", *text, class_="note")


def _thead(*text: object, num: Iterable[object] = (), after: Iterable[object] = ()) -> _Markup:
    """A table head: `text` columns, then right-aligned `num` columns, then `after` columns."""
    return _el(
        "thead",
        _el(
            "tr",
            *(_el("th", h) for h in text),
            *(_el("th", h, class_="num") for h in num),
            *(_el("th", h) for h in after),
        ),
    )


def _header(con: duckdb.DuckDBPyConnection, run: dict[str, Any], report_passed: bool) -> _Markup:
    run_id = run["run_id"]
    config = _json(run["config"])
    config = config if isinstance(config, dict) else {}
    counts = con.execute(
        "select count(*), count(*) filter (where simulator_fault is null), coalesce(max(trial) + 1, 0), "
        "list(distinct perturbation order by perturbation) from dialogues where run_id = ?",
        [run_id],
    ).fetchone()
    stored, scored, trials, perturbations = counts if counts else (0, 0, 0, [])
    faults = con.execute(
        "select simulator_fault, count(*) from simulator_faults where run_id = ? "
        "group by 1 order by 2 desc, 1",
        [run_id],
    ).fetchall()
    versions = _json(run["versions"])
    if isinstance(versions, dict):
        version_text: object = [
            _el("span", _el("b", str(k)), " ", str(v), class_="ver") for k, v in sorted(versions.items())
        ]
    else:
        version_text = str(versions)
    n_faults = sum(n for _, n in faults)
    fault_text: object = (
        [
            _el(
                "b",
                f"{n_faults} dialogue{'s' if n_faults != 1 else ''}",
                data_key="faults",
                data_value=n_faults,
            ),
            " left out of every score: ",
            ", ".join(f"{reason} ({n})" for reason, n in faults),
        ]
        if faults
        else _el("span", "none", data_key="faults", data_value=0)
    )
    pert = [p for p in (perturbations or []) if p != "none"]

    def item(term: str, *value: object) -> _Markup:
        return _Markup(_el("dt", term) + _el("dd", *value))

    created = run.get("created_at")
    finished = run.get("finished_at")
    return _el(
        "header",
        _el(
            "div",
            _el("h1", "botdrill report: run ", _el("code", run_id)),
            _badge(report_passed, "GATE PASSED" if report_passed else "GATE FAILED"),
            class_="title",
        ),
        _el(
            "dl",
            item(
                "pack",
                str(run["pack"]),
                " ",
                _el("span", f"v{run['pack_version']}", class_="muted"),
                " ",
                _el("code", str(run["pack_sha256"])[:12], title=str(run["pack_sha256"])),
            ),
            item("target", _el("code", str(run["target"]))),
            item("policy", _el("code", str(config.get("policy", "none")))),
            item("seed", str(run["seed"])),
            item(
                "dialogues",
                _el("b", str(scored), data_key="run:scored", data_value=scored),
                f" scored of {stored} stored ({run['n_dialogues']} planned); ",
                f"{trials} trial{'s' if trials != 1 else ''} per task; perturbations: ",
                ", ".join(pert) if pert else "none",
            ),
            item("status", str(run["status"])),
            item(
                "date",
                f"{created:%Y-%m-%d %H:%M:%S}" if created is not None else _DASH,
                f" → {finished:%Y-%m-%d %H:%M:%S}" if finished is not None else " (not finished)",
            ),
            item(
                "max turns",
                str(run["max_turns"]),
                _el("span", f" · concurrency {run['concurrency']}", class_="muted"),
            ),
            item("simulator faults", fault_text),
            item("versions", _el("span", version_text, class_="versions")),
            class_="meta",
        ),
        class_="top",
    )


def _toc(entries: list[tuple[str, str]]) -> _Markup:
    return _el(
        "nav", _el("ol", [_el("li", _el("a", title, href=f"#{a}")) for a, title in entries]), class_="toc"
    )


def _headline(
    con: duckdb.DuckDBPyConnection, run_id: str, thresholds: list[Threshold], breaches: list[Breach]
) -> _Markup:
    breached = {id(b.threshold) for b in breaches}
    values = {metric: metric_value(con, run_id, metric) for metric, _, _ in _HEADLINE}
    by_metric: dict[str, list[Threshold]] = {}
    for t in thresholds:
        by_metric.setdefault(t.metric, []).append(t)
    cards = []
    for metric, label, kind in _HEADLINE:
        value = values[metric]
        mine = by_metric.get(metric, [])
        passed = None if not mine else not any(id(t) in breached for t in mine)
        cards.append(
            _el(
                "div",
                _el("div", label, class_="label"),
                _el(
                    "div",
                    _fmt(value, kind),
                    class_="value",
                    data_key=f"headline:{metric}",
                    data_value=_dv(value),
                ),
                _el(
                    "div",
                    [
                        _el("span", _el("code", t.text), " ", _badge(id(t) not in breached), class_="thr")
                        for t in mine
                    ]
                    or _badge(None),
                    class_="thresholds",
                ),
                _el("div", "cannot be computed: nothing in the run it applies to", class_="why")
                if value is None
                else None,
                class_="card " + ("none" if passed is None else "pass" if passed else "fail"),
            )
        )
    headline = {m for m, _, _ in _HEADLINE}
    others = [t for t in thresholds if t.metric not in headline]
    other_rows = []
    for t in others:
        value = next((b.actual for b in breaches if b.threshold is t), None)
        if id(t) not in breached:
            value = metric_value(con, run_id, t.metric)
        other_rows.append(
            _el(
                "tr",
                _el("td", _el("code", t.text), class_="txt"),
                _td(
                    _num(value, 3) if value is not None else "cannot be computed",
                    f"threshold:{t.text}",
                    value,
                ),
                _el("td", _badge(id(t) not in breached)),
            )
        )
    n_breached = len(breaches)
    verdict = (
        _el("div", f"Gate passed: all {len(thresholds)} thresholds hold.", class_="verdict pass")
        if not breaches
        else _el(
            "div",
            f"Gate failed: {n_breached} of {len(thresholds)} thresholds breached: ",
            ", ".join(b.threshold.text for b in breaches),
            class_="verdict fail",
        )
    )
    intents = intent_summary(con, run_id)
    intent_table = _el(
        "table",
        _thead("intent", "", num=("dialogues", "success", "routing", "escalation recall", "errors")),
        _el(
            "tbody",
            [
                _el(
                    "tr",
                    _el("td", row.intent, class_="txt"),
                    _el("td", _el("span", "critical", class_="badge crit") if row.critical else ""),
                    _td(row.dialogues, f"intent:{row.intent}:dialogues", row.dialogues),
                    _td(_pct(row.success_rate), f"intent:{row.intent}:success_rate", row.success_rate),
                    _td(
                        _pct(row.routing_accuracy),
                        f"intent:{row.intent}:routing_accuracy",
                        row.routing_accuracy,
                    ),
                    _td(
                        _pct(row.escalation_recall),
                        f"intent:{row.intent}:escalation_recall",
                        row.escalation_recall,
                    ),
                    _td(row.errors, f"intent:{row.intent}:errors", row.errors),
                )
                for row in intents
            ],
        ),
    )
    return _section(
        "headline",
        "Headline scores",
        verdict,
        _el("div", cards, class_="cards"),
        _note(
            "A threshold says when to fail (as in ",
            _el("code", "botdrill gate --fail-if"),
            "); a metric the run cannot compute fails too. Time to hand-off is simulated time from the "
            "first message. Simulator faults are left out of every figure.",
        ),
        _el(
            "table",
            _thead("other threshold", num=("value",), after=("",)),
            _el("tbody", other_rows),
            class_="others",
        )
        if other_rows
        else None,
        _el("h3", "Per intent"),
        intent_table if intents else _note("No scored dialogues."),
    )


def _hatch(pattern_id: str) -> _Markup:
    return _el(
        "pattern",
        _leaf("rect", width=6, height=6, fill="#ffffff", fill_opacity="0.35"),
        _leaf("line", x1=0, y1=0, x2=0, y2=6, stroke="#555", stroke_width="1.2", stroke_opacity="0.55"),
        id=pattern_id,
        patternUnits="userSpaceOnUse",
        width=6,
        height=6,
        patternTransform="rotate(45)",
    )


def _brittleness_section(rows: list[Brittleness], intent_order: list[str]) -> _Markup:
    if not rows:
        return _section(
            "brittleness",
            "Brittleness",
            _note(
                "This run has no perturbed dialogues with a clean twin: run with ",
                _el("code", "--perturb"),
                ".",
            ),
        )
    by = {(r.intent, r.perturbation): r for r in rows}
    perts = sorted({r.perturbation for r in rows})
    present = {r.intent for r in rows if r.intent != "*"}
    intents = [i for i in intent_order if i in present] + sorted(present - set(intent_order))
    labels = ["*", *intents]
    names = {"*": "all intents", **{i: _short(i) for i in intents}}
    cw = max(96.0, max(_text_width(p, 12) for p in perts) + 16)
    ch = 40.0
    left = min(260.0, max(_text_width(n, 12) for n in names.values()) + 20)
    top = 28.0
    gap = 8.0
    width = max(
        left + cw * len(perts) + 20,
        left + 264 + _text_width(f"fewer than {MIN_PAIRS} pairs: a hint, not a measurement", 11) + 10,
    )
    grid_h = ch * len(labels) + gap
    legend_y = top + grid_h + 22
    height = legend_y + 44
    parts: list[object] = [
        _el(
            "defs",
            _hatch("hatch-b"),
            _el(
                "linearGradient",
                _leaf("stop", offset="0%", stop_color=_rgb(_BLUE)),
                _leaf("stop", offset="50%", stop_color=_rgb(_WHITE)),
                _leaf("stop", offset="100%", stop_color=_rgb(_RED)),
                id="grad-b",
            ),
        )
    ]
    for j, p in enumerate(perts):
        parts.append(
            _el(
                "text",
                _short(p, 24),
                _el("title", p),
                x=f"{left + cw * j + cw / 2:.1f}",
                y=f"{top - 10:.1f}",
                text_anchor="middle",
                class_="collabel",
            )
        )
    for i, intent in enumerate(labels):
        y = top + ch * i + (gap if i else 0)
        parts.append(
            _el(
                "text",
                names[intent],
                _el("title", "every intent" if intent == "*" else intent),
                x=f"{left - 8:.1f}",
                y=f"{y + ch / 2 + 4:.1f}",
                text_anchor="end",
                class_="rowlabel" + (" strong" if intent == "*" else ""),
            )
        )
        for j, p in enumerate(perts):
            x = left + cw * j
            r = by.get((intent, p))
            if r is None:
                parts.append(
                    _leaf(
                        "rect",
                        x=f"{x:.1f}",
                        y=f"{y:.1f}",
                        width=f"{cw - 2:.1f}",
                        height=f"{ch - 2:.1f}",
                        fill="#ffffff",
                        stroke="#eaeef2",
                    )
                )
                continue
            colour, strength = _diverging(r.brittleness)
            if r.small:
                colour = _mix(colour, _GREY, 0.45)
            ink = "#ffffff" if strength > 0.6 and not r.small else "#1f2328"
            title = (
                f"{intent if intent != '*' else 'all intents'} {_TIMES} {p}: {r.display}; "
                f"McNemar p = {r.p_value:.3g}; "
                f"clean {r.clean_success_rate:.0%} → perturbed {r.perturbed_success_rate:.0%}; "
                f"broke {r.broke}, fixed {r.fixed}"
            )
            cell: list[object] = [
                _el("title", title),
                _leaf(
                    "rect",
                    x=f"{x:.1f}",
                    y=f"{y:.1f}",
                    width=f"{cw - 2:.1f}",
                    height=f"{ch - 2:.1f}",
                    fill=_rgb(colour),
                    rx=2,
                ),
            ]
            if r.small:
                cell.append(
                    _leaf(
                        "rect",
                        x=f"{x:.1f}",
                        y=f"{y:.1f}",
                        width=f"{cw - 2:.1f}",
                        height=f"{ch - 2:.1f}",
                        fill="url(#hatch-b)",
                        rx=2,
                    )
                )
            cell.append(
                _el(
                    "text",
                    _signed(r.brittleness),
                    x=f"{x + cw / 2 - 1:.1f}",
                    y=f"{y + 16:.1f}",
                    text_anchor="middle",
                    fill=ink,
                    class_="cellvalue",
                )
            )
            cell.append(
                _el(
                    "text",
                    f"n={r.pairs}" + (" (small)" if r.small else ""),
                    x=f"{x + cw / 2 - 1:.1f}",
                    y=f"{y + 30:.1f}",
                    text_anchor="middle",
                    fill=ink,
                    class_="cellnote" + (" small" if r.small else ""),
                )
            )
            parts.append(
                _el(
                    "g",
                    cell,
                    data_key=f"brittleness:{intent}:{p}",
                    data_value=_dv(r.brittleness),
                    data_pairs=r.pairs,
                    data_small="1" if r.small else "0",
                )
            )
    # legend: the colour scale and the small-sample hatch
    lx = left
    parts += [
        _leaf(
            "rect",
            x=f"{lx:.1f}",
            y=f"{legend_y:.1f}",
            width=200,
            height=10,
            fill="url(#grad-b)",
            stroke="#ccc",
        ),
        _el(
            "text",
            f"{_MINUS}{_BRITTLE_LIMIT:.1f} or less",
            x=f"{lx:.1f}",
            y=f"{legend_y + 24:.1f}",
            class_="legend",
        ),
        _el(
            "text", "0", x=f"{lx + 100:.1f}", y=f"{legend_y + 24:.1f}", text_anchor="middle", class_="legend"
        ),
        _el(
            "text",
            f"+{_BRITTLE_LIMIT:.1f} or more",
            x=f"{lx + 200:.1f}",
            y=f"{legend_y + 24:.1f}",
            text_anchor="end",
            class_="legend",
        ),
        _leaf(
            "rect",
            x=f"{lx + 230:.1f}",
            y=f"{legend_y - 2:.1f}",
            width=28,
            height=14,
            fill=_rgb(_mix(_WHITE, _GREY, 0.45)),
        ),
        _leaf(
            "rect", x=f"{lx + 230:.1f}", y=f"{legend_y - 2:.1f}", width=28, height=14, fill="url(#hatch-b)"
        ),
        _el(
            "text",
            f"fewer than {MIN_PAIRS} pairs: a hint, not a measurement",
            x=f"{lx + 264:.1f}",
            y=f"{legend_y + 9:.1f}",
            class_="legend",
        ),
    ]
    svg = _svg(width, height, parts, label="brittleness heatmap, intent by perturbation")
    across = [r for r in rows if r.intent == "*"]
    table = _el(
        "table",
        _thead(
            "perturbation (all intents)",
            num=(
                "pairs",
                "clean success",
                "perturbed success",
                "brittleness",
                f"{across[0].confidence:.0%} CI" if across else "CI",
                "broke",
                "fixed",
                "McNemar p",
            ),
            after=("",),
        ),
        _el(
            "tbody",
            [
                _el(
                    "tr",
                    _el("td", r.perturbation, class_="txt"),
                    _td(r.pairs, f"brittleness-pairs:*:{r.perturbation}", r.pairs),
                    _td(
                        _pct(r.clean_success_rate),
                        f"brittleness-clean:*:{r.perturbation}",
                        r.clean_success_rate,
                    ),
                    _td(
                        _pct(r.perturbed_success_rate),
                        f"brittleness-perturbed:*:{r.perturbation}",
                        r.perturbed_success_rate,
                    ),
                    _td(
                        _el("b", _signed(r.brittleness)), f"brittleness-row:*:{r.perturbation}", r.brittleness
                    ),
                    _el(
                        "td",
                        f"[{_signed(r.ci_low)}, {_signed(r.ci_high)}]",
                        class_="num",
                        data_key=f"brittleness-ci:*:{r.perturbation}",
                        data_low=_dv(r.ci_low),
                        data_high=_dv(r.ci_high),
                    ),
                    _td(r.broke, f"brittleness-broke:*:{r.perturbation}", r.broke),
                    _td(r.fixed, f"brittleness-fixed:*:{r.perturbation}", r.fixed),
                    _td(f"{r.p_value:.3g}", f"brittleness-p:*:{r.perturbation}", r.p_value),
                    _el(
                        "td",
                        _el("span", "significant", class_="badge fail")
                        if r.p_value < 0.05 and r.brittleness > 0
                        else None,
                        " " if r.small else None,
                        _el("span", "small sample", class_="badge warn") if r.small else None,
                    ),
                )
                for r in across
            ],
        ),
    )
    return _section(
        "brittleness",
        f"Brittleness: intent {_TIMES} perturbation",
        _note(
            "Each cell is clean success minus perturbed success over the pairs (the same scenario, seed and "
            "trial, clean and perturbed): above 0 the perturbation hurts. Hover a cell for its interval and "
            f"McNemar p. Hatched grey cells have fewer than {MIN_PAIRS} pairs."
        ),
        _el("div", svg, class_="scroll"),
        _el("h3", "Across intents"),
        table,
        _note(
            "Interval: paired percentile bootstrap (2000 resamples, seed 0). p: exact two-sided McNemar test "
            "of broke against fixed."
        ),
    )


def _confusion_section(con: duckdb.DuckDBPyConnection, run_id: str) -> _Markup:
    cm = confusion_matrix(con, run_id)
    if not cm.labels:
        return _section("confusion", "Routing confusion matrix", _note("No scored dialogues."))
    rows = [i for i, label in enumerate(cm.labels) if sum(cm.counts[i])]
    cols = list(range(len(cm.labels)))
    names = [_short(label, 28) for label in cm.labels]
    cell = 30.0
    left = min(240.0, max(_text_width(names[i], 12) for i in rows) + 20)
    longest = max(_text_width(n, 11) for n in names)
    top = min(220.0, longest * 0.72 + 24)
    width = left + cell * len(cols) + 70 + longest * 0.72
    height = top + cell * len(rows) + 30
    parts: list[object] = []
    for jj, j in enumerate(cols):
        x = left + cell * jj + cell / 2
        parts.append(
            _el(
                "text",
                names[j],
                _el("title", cm.labels[j]),
                x=f"{x:.1f}",
                y=f"{top - 8:.1f}",
                transform=f"rotate(-45 {x:.1f} {top - 8:.1f})",
                class_="collabel small",
            )
        )
    parts.append(
        _el(
            "text",
            "n",
            x=f"{left + cell * len(cols) + 24:.1f}",
            y=f"{top - 8:.1f}",
            text_anchor="middle",
            class_="collabel small",
        )
    )
    for ii, i in enumerate(rows):
        y = top + cell * ii
        total = sum(cm.counts[i])
        parts.append(
            _el(
                "text",
                names[i],
                _el("title", cm.labels[i]),
                x=f"{left - 8:.1f}",
                y=f"{y + cell / 2 + 4:.1f}",
                text_anchor="end",
                class_="rowlabel",
            )
        )
        for jj, j in enumerate(cols):
            x = left + cell * jj
            n = cm.counts[i][j]
            rate = cm.rates[i][j] or 0.0
            shade = _mix(_WHITE, _GREEN if i == j else _RED, 0.15 + 0.85 * rate)
            fill = _rgb(shade) if n else "#fbfbfc"
            ink = "#ffffff" if n and rate > 0.55 else "#1f2328"
            g: list[object] = [
                _el("title", f"{cm.labels[i]} → {cm.labels[j]}: {n} of {total} ({rate:.0%})"),
                _leaf(
                    "rect",
                    x=f"{x:.1f}",
                    y=f"{y:.1f}",
                    width=f"{cell - 1:.1f}",
                    height=f"{cell - 1:.1f}",
                    fill=fill,
                    stroke="#d0d7de" if i == j else "#eef1f4",
                ),
            ]
            if n:
                g.append(
                    _el(
                        "text",
                        str(n),
                        x=f"{x + cell / 2 - 0.5:.1f}",
                        y=f"{y + cell / 2 + 4:.1f}",
                        text_anchor="middle",
                        fill=ink,
                        class_="cellcount",
                    )
                )
            parts.append(
                _el(
                    "g",
                    g,
                    data_key=f"confusion:{cm.labels[i]}:{cm.labels[j]}",
                    data_value=n,
                    data_rate=_dv(cm.rates[i][j]),
                )
            )
        parts.append(
            _el(
                "text",
                str(total),
                x=f"{left + cell * len(cols) + 24:.1f}",
                y=f"{y + cell / 2 + 4:.1f}",
                text_anchor="middle",
                class_="cellcount",
            )
        )
    parts.append(
        _el(
            "text",
            "rows: gold intent · columns: routed intent",
            x=f"{left:.1f}",
            y=f"{top + cell * len(rows) + 20:.1f}",
            class_="legend",
        )
    )
    svg = _svg(width, height, parts, label="routing confusion matrix, gold by routed intent")
    exposes = metric_value(con, run_id, "routing_accuracy") is not None
    return _section(
        "confusion",
        "Routing confusion matrix",
        _note(
            "Counts of dialogues per gold intent (row) and the intent the assistant routed to (column); "
            "shading "
            "is the row's share: green on the diagonal (routed right), red off it. ",
            _el("code", "(none)"),
            ": the assistant never routed the dialogue (it counts as wrong).",
            "" if exposes else " This assistant exposes no intents: routing cannot be judged.",
        ),
        _el("div", svg, class_="scroll"),
    )


def _slots_section(con: duckdb.DuckDBPyConnection, run_id: str) -> _Markup:
    per_slot = slot_scores(con, run_id, by="slot")
    total = slot_scores(con, run_id, by=())
    if not per_slot:
        return _section("slots", "Slot errors", _note("No dialogue of this run carried gold slot values."))

    def row(s: Any, name: str, key: str, strong: bool = False) -> _Markup:
        return _el(
            "tr",
            _el("td", _el("b", name) if strong else name, class_="txt"),
            *(_td(getattr(s, f), f"slot:{key}:{f}", getattr(s, f)) for f in ("gold", "exposed", "correct")),
            _td(_el("span", s.wrong, class_="bad" if s.wrong else ""), f"slot:{key}:wrong", s.wrong),
            _td(_el("span", s.missing, class_="bad" if s.missing else ""), f"slot:{key}:missing", s.missing),
            *(
                _td(_pct(getattr(s, f)), f"slot:{key}:{f}", getattr(s, f))
                for f in ("precision", "recall", "completeness")
            ),
            _el("td", _bar(s.recall)),
            class_="total" if strong else None,
        )

    body = [row(s, s.slot, s.slot) for s in per_slot] + [row(t, "all slots", "*", True) for t in total]
    exposed = sum(s.exposed for s in total)
    return _section(
        "slots",
        "Slot errors",
        _el(
            "table",
            _thead(
                "slot",
                num=(
                    "gold values",
                    "judged",
                    "correct",
                    "wrong",
                    "missing",
                    "precision",
                    "recall",
                    "completeness",
                ),
                after=("recall",),
            ),
            _el("tbody", body),
        ),
        _note(
            "Precision: captured values that were right; recall: gold values captured right; "
            "completeness: gold "
            "values captured at all. Wrong: captured with another value; missing: never captured.",
            "" if exposed else " This assistant exposes no slots: none could be judged.",
        ),
    )


def _escalation_section(con: duckdb.DuckDBPyConnection, run_id: str) -> _Markup:
    per_intent = _per_critical_intent(con, run_id)
    scores = escalation_scores(con, run_id)
    perts = sorted({s.perturbation for s in scores}, key=lambda p: (p != "none", p))
    by = {(s.intent, s.perturbation): s for s in scores}
    head = _Markup(
        _el(
            "tr",
            _el("th", "critical intent", rowspan=2),
            *(
                _el("th", h, class_="num", rowspan=2)
                for h in ("needed a person", "recall", "on time", "mean turns", "mean time")
            ),
            _el("th", "recall by variant", colspan=len(perts), class_="group") if perts else None,
        )
        + _el("tr", *(_el("th", p, class_="num") for p in perts))
    )
    body = []
    for r in per_intent:
        key = r["intent"]
        body.append(
            _el(
                "tr",
                _el("td", key, class_="txt"),
                _td(r["must_escalate"], f"escalation:{key}:must_escalate", r["must_escalate"]),
                _td(
                    _pct(r["escalation_recall"]),
                    f"escalation:{key}:escalation_recall",
                    r["escalation_recall"],
                ),
                _td(_pct(r["on_time_rate"]), f"escalation:{key}:on_time_rate", r["on_time_rate"]),
                _td(
                    _num(r["mean_turns_to_handoff"], 1),
                    f"escalation:{key}:mean_turns_to_handoff",
                    r["mean_turns_to_handoff"],
                ),
                _td(
                    _secs(r["mean_seconds_to_handoff"]),
                    f"escalation:{key}:mean_seconds_to_handoff",
                    r["mean_seconds_to_handoff"],
                ),
                *(
                    _td(
                        _pct(s.escalation_recall) if s else _DASH,
                        f"escalation:{key}:{p}:escalation_recall",
                        s.escalation_recall if s else None,
                    )
                    for p in perts
                    for s in [by.get((key, p))]
                ),
            )
        )
    triggers = _rows(
        con,
        "select trigger, sum(dialogues)::bigint as dialogues, sum(on_time)::bigint as on_time, "
        "sum(late)::bigint as late, sum(missed)::bigint as missed from escalation_triggers "
        "where run_id = ? group by trigger order by sum(dialogues) desc, trigger",
        [run_id],
    )
    trigger_rows = []
    for t in triggers:
        name = str(t["trigger"]) if t["trigger"] is not None else "(none)"
        n = t["dialogues"] or 0
        rate = t["on_time"] / n if n else None
        trigger_rows.append(
            _el(
                "tr",
                _el("td", name, class_="txt"),
                _td(n, f"trigger:{name}:dialogues", n),
                _td(t["on_time"], f"trigger:{name}:on_time", t["on_time"]),
                _td(t["late"], f"trigger:{name}:late", t["late"]),
                _td(t["missed"], f"trigger:{name}:missed", t["missed"]),
                _td(_pct(rate), f"trigger:{name}:on_time_rate", rate),
                _el("td", _stack(t["on_time"], t["late"], t["missed"])),
            )
        )
    return _section(
        "escalation",
        "Escalation timeliness",
        _el("h3", "Per critical intent"),
        _el("div", _el("table", _el("thead", head), _el("tbody", body)), class_="scroll")
        if body
        else _note("No dialogue of a critical intent was scored."),
        _note(
            "Needed a person: dialogues that called for a hand-off (the intent's rule or a trigger). Recall: "
            "those that reached a person; on time: by their deadline. Mean turns: assistant turns to the "
            "hand-off; mean time: simulated seconds from the first message, over the dialogues handed over."
        ),
        _el("h3", "Per trigger"),
        _el(
            "table",
            _thead("trigger", num=("dialogues", "on time", "late", "missed", "on-time rate"), after=("",)),
            _el("tbody", trigger_rows),
        )
        if trigger_rows
        else _note("No dialogue of this run needed a person."),
        _note(
            _el("span", "■", class_="k-ok"),
            " on time ",
            _el("span", "■", class_="k-late"),
            " late ",
            _el("span", "■", class_="k-miss"),
            " missed",
        )
        if trigger_rows
        else None,
    )


def _per_critical_intent(con: duckdb.DuckDBPyConnection, run_id: str) -> list[dict[str, Any]]:
    """Escalation figures per critical intent over every variant, from the flags `escalation_scores` reads."""
    return _rows(
        con,
        """
        select gold_intent as intent, count(*) as dialogues,
               count(*) filter (where due) as must_escalate,
               (count(*) filter (where reached))::double / nullif(count(*) filter (where due), 0)
                   as escalation_recall,
               (count(*) filter (where on_time))::double / nullif(count(*) filter (where due), 0)
                   as on_time_rate,
               avg(escalation_turn) filter (where escalated) as mean_turns_to_handoff,
               avg(seconds_to_handoff) as mean_seconds_to_handoff
        from handoff_flags
        where run_id = $run
        group by gold_intent having bool_or(critical)
        order by gold_intent
        """,
        {"run": run_id},
    )


def _stack(on_time: int, late: int, missed: int, width: int = 220) -> _Markup:
    total = on_time + late + missed
    if not total:
        return _Markup("")
    parts: list[object] = []
    x = 0.0
    for n, colour in ((on_time, "#2da44e"), (late, "#d4a72c"), (missed, "#cf222e")):
        w = width * n / total
        if w > 0:
            parts.append(_leaf("rect", x=f"{x:.1f}", y=0, width=f"{w:.1f}", height=12, fill=colour))
        x += w
    return _svg(width, 12, parts, label=f"{on_time} on time, {late} late, {missed} missed")


def _capacity_section(con: duckdb.DuckDBPyConnection, run_id: str) -> _Markup:
    ids = con.execute(
        "select capacity_id, max(created_at) from capacity where run_id = ? "
        "group by 1 order by 2 desc, 1 desc",
        [run_id],
    ).fetchall()
    if not ids:
        return _section(
            "capacity",
            "Hand-off queue",
            _note(
                "No capacity simulation for this run: ",
                _el("code", f"botdrill capacity --run {run_id}"),
                " simulates the human team that receives its hand-offs.",
            ),
        )
    capacity_id = ids[0][0]
    rows = _rows(con, "select * from capacity where capacity_id = ? and run_id = ?", [capacity_id, run_id])
    order = {"all": 0, "critical": 1, "normal": 2}
    rows.sort(key=lambda r: (order.get(str(r["scope"]), 3), str(r["scope"])))
    config = _json(rows[0]["config"]) if rows else {}
    config = config if isinstance(config, dict) else {}
    settings: list[object] = []
    for key, label in (
        ("agents", "agents"),
        ("arrivals_per_hour", "contacts/hour"),
        ("shift_start", "shift from"),
        ("shift_hours", "hours"),
        ("patience_minutes", "patience (min)"),
        ("sla_seconds_critical", "SLA critical (s)"),
        ("sla_seconds_normal", "SLA normal (s)"),
        ("critical_priority", "critical first"),
        ("surges", "surges"),
        ("seed", "seed"),
    ):
        if key in config:
            value = config[key]
            if isinstance(value, bool):
                text = "yes" if value else "no"
            elif value is None or value == []:
                text = "none"
            else:
                text = value if isinstance(value, str) else json.dumps(value)
            settings.append(_el("span", _el("b", label), " ", text, class_="ver"))

    def cells(r: dict[str, Any]) -> list[object]:
        scope = str(r["scope"])
        k = f"capacity:{scope}"
        return [
            _el("td", _el("b", scope) if scope in order else scope, class_="txt"),
            _td(r["contacts"], f"{k}:contacts", r["contacts"]),
            _td(r["handed_off"], f"{k}:handed_off", r["handed_off"]),
            _td(r["served"], f"{k}:served", r["served"]),
            _td(
                f"{r['abandoned']} ({_pct(r['abandonment_rate'])})",
                f"{k}:abandonment_rate",
                r["abandonment_rate"],
            ),
            _td(r["unanswered"], f"{k}:unanswered", r["unanswered"]),
            _td(_secs(r["wait_mean_s"]), f"{k}:wait_mean_s", r["wait_mean_s"]),
            _td(_secs(r["wait_p50_s"]), f"{k}:wait_p50_s", r["wait_p50_s"]),
            _td(_secs(r["wait_p90_s"]), f"{k}:wait_p90_s", r["wait_p90_s"]),
            _td(_secs(r["wait_p99_s"]), f"{k}:wait_p99_s", r["wait_p99_s"]),
            _td(
                f"{r['sla_breaches']} ({_pct(r['sla_breach_rate'])})", f"{k}:sla_breaches", r["sla_breaches"]
            ),
            _td(
                _pct(r["utilisation"]) if r["utilisation"] is not None else "",
                f"{k}:utilisation",
                r["utilisation"],
            ),
        ]

    main = [r for r in rows if str(r["scope"]) in order]
    per_intent = [r for r in rows if str(r["scope"]) not in order]
    head = _thead(
        "scope",
        num=(
            "contacts",
            "handed off",
            "served",
            "gave up",
            "unanswered",
            "wait mean",
            "p50",
            "p90",
            "p99",
            "SLA breaches",
            "utilisation",
        ),
    )
    utilisation = next((r["utilisation"] for r in main if r["scope"] == "all"), None)
    return _section(
        "capacity",
        "Hand-off queue",
        _note(
            "The human team that receives this run's hand-offs, simulated by ",
            _el("code", "botdrill capacity"),
            f" ({capacity_id}",
            f"; {len(ids) - 1} earlier simulation{'s' if len(ids) != 2 else ''} not shown"
            if len(ids) > 1
            else "",
            "): ",
            settings,
        ),
        _el("p", "Agent utilisation ", _el("b", _pct(utilisation)), " ", _bar(utilisation, "#8250df", 160))
        if utilisation is not None
        else None,
        _el("table", head, _el("tbody", [_el("tr", cells(r)) for r in main]), class_="wide"),
        _el(
            "details",
            _el("summary", f"Per intent ({len(per_intent)} scopes)"),
            _el("table", head, _el("tbody", [_el("tr", cells(r)) for r in per_intent]), class_="wide"),
        )
        if per_intent
        else None,
    )


def _pass_k_section(con: duckdb.DuckDBPyConnection, run_id: str, trials: int) -> _Markup:
    if trials < 2:
        return _section(
            "passk",
            "pass^k",
            _note(
                "This run has one trial per task, so only pass^1 (the success rate) is defined: run with ",
                _el("code", "--trials N"),
                " (N of 2 or more) to see how reliably each intent succeeds k times in a row.",
            ),
        )
    rows = pass_k(con, run_id, dimension="intent")
    overall = pass_k(con, run_id, dimension="all")
    ks = (1, 2, 3, 4)
    lw, pw, ph, top = 50.0, 520.0, 260.0, 16.0
    legend_x = lw + pw + 30
    names = [r.value for r in rows]
    legend_w = max([_text_width(_short(n, 32), 12) for n in names] + [90.0]) + 40
    width = legend_x + legend_w
    height = max(top + ph + 50, top + 18 * (len(rows) + 2) + 10)

    def xy(k: int, p: float) -> tuple[float, float]:
        return lw + (k - 1) * pw / 3, top + (1 - p) * ph

    parts: list[object] = []
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        _, y = xy(1, tick)
        parts.append(
            _leaf("line", x1=f"{lw:.1f}", y1=f"{y:.1f}", x2=f"{lw + pw:.1f}", y2=f"{y:.1f}", stroke="#eaeef2")
        )
        parts.append(
            _el(
                "text", f"{tick:.2f}", x=f"{lw - 6:.1f}", y=f"{y + 4:.1f}", text_anchor="end", class_="legend"
            )
        )
    for k in ks:
        x, _ = xy(k, 0)
        parts.append(
            _leaf(
                "line", x1=f"{x:.1f}", y1=f"{top:.1f}", x2=f"{x:.1f}", y2=f"{top + ph:.1f}", stroke="#eaeef2"
            )
        )
        parts.append(
            _el(
                "text",
                f"k={k}",
                x=f"{x:.1f}",
                y=f"{top + ph + 18:.1f}",
                text_anchor="middle",
                class_="legend",
            )
        )
    parts.append(
        _el(
            "text",
            "pass^k: chance that k trials of a task all succeed",
            x=f"{lw:.1f}",
            y=f"{top + ph + 38:.1f}",
            class_="legend",
        )
    )

    def line(
        values: dict[int, float | None], colour: str, dash: str | None, width_px: float, name: str, key: str
    ) -> list[object]:
        pts = [(k, v) for k in ks if (v := values.get(k)) is not None]
        out: list[object] = []
        if len(pts) > 1:
            out.append(
                _leaf(
                    "polyline",
                    points=" ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(k, v) for k, v in pts)),
                    fill="none",
                    stroke=colour,
                    stroke_width=width_px,
                    stroke_dasharray=dash,
                )
            )
        for k, v in pts:
            x, y = xy(k, v)
            out.append(
                _el(
                    "circle",
                    _el("title", f"{name}: pass^{k} = {v:.3f}"),
                    cx=f"{x:.1f}",
                    cy=f"{y:.1f}",
                    r=3.5 if width_px > 2 else 2.8,
                    fill=colour,
                    data_key=f"pass_k:{key}:{k}",
                    data_value=_dv(v),
                )
            )
        return out

    legend: list[object] = []
    for i, r in enumerate(rows):
        colour = _PALETTE[i % len(_PALETTE)]
        dash = None if i < len(_PALETTE) else "5 3"
        parts += line(r.by_k, colour, dash, 1.6, r.value, r.value)
        y = top + 18 * i + 6
        legend.append(
            _leaf(
                "line",
                x1=f"{legend_x:.1f}",
                y1=f"{y:.1f}",
                x2=f"{legend_x + 22:.1f}",
                y2=f"{y:.1f}",
                stroke=colour,
                stroke_width=2.5,
                stroke_dasharray=dash,
            )
        )
        legend.append(
            _el(
                "text",
                _short(r.value, 32),
                _el("title", r.value),
                x=f"{legend_x + 28:.1f}",
                y=f"{y + 4:.1f}",
                class_="legend",
            )
        )
    for r in overall:
        parts += line(r.by_k, "#1f2328", None, 3.2, "all tasks", "*")
        y = top + 18 * len(rows) + 12
        legend.append(
            _leaf(
                "line",
                x1=f"{legend_x:.1f}",
                y1=f"{y:.1f}",
                x2=f"{legend_x + 22:.1f}",
                y2=f"{y:.1f}",
                stroke="#1f2328",
                stroke_width=3.2,
            )
        )
        legend.append(
            _el("text", "all tasks", x=f"{legend_x + 28:.1f}", y=f"{y + 4:.1f}", class_="legend strong")
        )
    svg = _svg(width, height, parts, legend, label="pass^k per intent, k from 1 to 4")
    table_rows = [
        _el(
            "tr",
            _el("td", name, class_="txt"),
            _td(r.tasks),
            _td(r.trials),
            *(_td(_num(r.by_k.get(k), 3)) for k in ks),
            class_="total" if name == "all tasks" else None,
        )
        for r, name in [*((r, r.value) for r in rows), *((r, "all tasks") for r in overall)]
    ]
    return _section(
        "passk",
        "pass^k: reliability over repeated trials",
        _note(
            f"Each task (a scenario under one variant) ran up to {trials} times. pass^k is \u03c4-bench's "
            "estimate of the chance that k trials drawn from a task's trials all succeed, averaged over "
            "tasks; a point is "
            "missing where no task has k trials."
        ),
        _el("div", svg, class_="scroll"),
        _el(
            "details",
            _el("summary", "Values"),
            _el(
                "table",
                _thead("intent", num=("tasks", "min trials", *(f"pass^{k}" for k in ks))),
                _el("tbody", table_rows),
            ),
        ),
    )


# -- the worst dialogues ---------------------------------------------------------------------------------


def _select_worst(
    con: duckdb.DuckDBPyConnection, run_id: str, britt: list[Brittleness], limit: int
) -> list[tuple[str, list[str]]]:
    """The dialogues to show in full, each with why, at most `limit`.

    First the failures of critical intents (up to half the places), taken in turn from each critical
    intent and one per scenario, shrunk ones and the worst outcomes (missed escalation first) and clean
    ones first; then the dialogues shrunk to their fewest edits (up to a quarter); then one perturbed
    dialogue whose clean twin succeeded from each brittle cell, the most brittle first and a new scenario
    where there is one; then the remaining critical failures, then more from the brittle cells.
    """
    if limit <= 0:
        return []
    shrinks = {
        str(d): (o, before, after)
        for d, o, before, after in con.execute(
            "select dialogue_id, outcome, edits_before, edits_after from shrinks where run_id = ?", [run_id]
        ).fetchall()
    }
    scenario = {
        str(d): str(s)
        for d, s in con.execute(
            "select dialogue_id, scenario_id from scored_dialogues where run_id = ?", [run_id]
        ).fetchall()
    }
    severity = {o: i for i, o in enumerate(_SEVERITY)}
    critical = [
        (str(d), str(o), str(i), str(p))
        for d, o, i, p in con.execute(
            "select dialogue_id, outcome, gold_intent, perturbation from failures "
            "where run_id = ? and critical",
            [run_id],
        ).fetchall()
    ]
    critical.sort(
        key=lambda r: (r[0] not in shrinks, severity.get(r[1], len(severity)), r[3] != "none", r[0])
    )
    cells = sorted(
        (r for r in britt if r.intent != "*" and r.brittleness > 0),
        key=lambda r: (-r.brittleness, -r.pairs, r.intent, r.perturbation),
    )
    broke: dict[tuple[str, str], list[str]] = {}
    for intent, pert, d in con.execute(
        "select gold_intent, perturbation, perturbed_dialogue_id from pairs "
        "where run_id = ? and clean_success and not perturbed_success order by perturbed_dialogue_id",
        [run_id],
    ).fetchall():
        broke.setdefault((str(intent), str(pert)), []).append(str(d))
    for ids in broke.values():
        ids.sort(key=lambda d: (d not in shrinks, d))
    picked: dict[str, list[str]] = {}
    seen: set[str] = set()

    def add(d: str) -> None:
        if d not in picked and len(picked) < limit:
            picked[d] = []
            seen.add(scenario.get(d, d))

    by_intent: dict[str, list[str]] = {}
    for d, _, intent, _ in critical:
        by_intent.setdefault(intent, []).append(d)
    quota = max(1, limit // 2)
    while len(picked) < quota:  # in turn from each critical intent, a new scenario each time
        took = False
        for ids in by_intent.values():
            fresh = next((d for d in ids if scenario.get(d, d) not in seen), None)
            if fresh is not None and len(picked) < quota:
                add(fresh)
                took = True
        if not took:
            break
    for d in sorted(shrinks, key=lambda d: (shrinks[d][2], d)):
        if d in scenario and sum(p in shrinks for p in picked) < max(1, limit // 4):
            add(d)
    queues = [list(broke.get((r.intent, r.perturbation), [])) for r in cells]
    for queue in queues:  # one dialogue per brittle cell, the most brittle first
        if queue:
            fresh = next((d for d in queue if scenario.get(d, d) not in seen), queue[0])
            queue.remove(fresh)
            add(fresh)
    for d, *_ in critical:
        add(d)
    while len(picked) < limit and any(queues):
        for queue in queues:
            if queue:
                add(queue.pop(0))
    outcome = {d: o for d, o, _, _ in critical}
    cell_of = {d: r for r in cells for d in broke.get((r.intent, r.perturbation), [])}
    for d, reasons in picked.items():
        if d in outcome:
            reasons.append(f"critical intent failed: {outcome[d]}")
        if d in shrinks:
            o, before, after = shrinks[d]
            reasons.append(f"shrunk: {after} of {before} edits still give {o}")
        if d in cell_of:
            r = cell_of[d]
            reasons.append(
                f"brittle cell {r.intent} {_TIMES} {r.perturbation}: {_signed(r.brittleness)} "
                f"(n={r.pairs}); the clean twin succeeded"
            )
    return list(picked.items())


def _turns(con: duckdb.DuckDBPyConnection, dialogue_id: str) -> list[dict[str, Any]]:
    return _rows(
        con,
        "select turn_idx, speaker, text, sim_time, gold_acts, part, parts, intent, handoff, handoff_source, "
        "escalated_by, error_type from turns where dialogue_id = ? order by turn_idx",
        [dialogue_id],
    )


def _edits(con: duckdb.DuckDBPyConnection, dialogue_id: str) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    for e in _rows(
        con,
        'select turn_idx, edit_idx, perturbation, kind, "start", "end", before, after from edits '
        "where dialogue_id = ? order by turn_idx, edit_idx",
        [dialogue_id],
    ):
        out.setdefault(int(e["turn_idx"]), []).append(e)
    return out


def _edit_title(e: dict[str, Any]) -> str:
    before, after, kind = str(e["before"]), str(e["after"]), str(e["kind"])
    if kind == "break":
        what = "sent as a separate message here"
    elif before and after:
        what = f"“{before}” → “{after}”"
    elif after:
        what = f"inserted “{after}”"
    elif before:
        what = f"deleted “{before}”"
    else:
        what = "no visible change"
    return f"{e['perturbation']} ({kind}): {what}"


def _highlight(text: str, edits: list[dict[str, Any]]) -> _Markup:
    """`text` escaped, each edit's span in a `<mark>` titled with its perturbation; a deletion or a message
    break, which has no span left in the text, as a small marker at its place."""
    n = len(text)
    spans: list[tuple[int, int, dict[str, Any]]] = []
    points: dict[int, list[dict[str, Any]]] = {}
    for e in edits:
        start = max(0, min(int(e["start"]), n))
        end = max(start, min(int(e["end"]), n))
        if start == end:
            points.setdefault(start, []).append(e)
        else:
            spans.append((start, end, e))
    bounds = sorted({0, n, *points, *(s for s, _, _ in spans), *(t for _, t, _ in spans)})
    out: list[object] = []

    def marker(at: int) -> None:
        for e in points.get(at, []):
            glyph = "✂" if e["kind"] == "break" else "‸"
            out.append(
                _el(
                    "mark",
                    glyph,
                    class_="edit zero",
                    title=_edit_title(e),
                    data_perturbation=e["perturbation"],
                )
            )

    for a, b in pairwise(bounds):
        marker(a)
        piece = text[a:b]
        covering = [e for s, t, e in spans if s <= a and b <= t]
        if covering:
            out.append(
                _el(
                    "mark",
                    piece,
                    class_="edit",
                    title="; ".join(_edit_title(e) for e in covering),
                    data_perturbation=" ".join(dict.fromkeys(str(e["perturbation"]) for e in covering)),
                )
            )
        else:
            out.append(piece)
    marker(n)
    return _cat(out)


def _transcript(turns: list[dict[str, Any]], edits: dict[int, list[dict[str, Any]]]) -> _Markup:
    rows = []
    for t in turns:
        speaker = str(t["speaker"])
        notes: list[object] = []
        if speaker == "user":
            if (t["parts"] or 1) > 1:
                notes.append(f"part {int(t['part']) + 1} of {t['parts']}")
            if t["gold_acts"]:
                notes.append(" ".join(str(a) for a in t["gold_acts"]))
        else:
            if t["intent"]:
                notes.append(f"→ {t['intent']}")
            if t["handoff"]:
                notes.append(
                    _el(
                        "span",
                        "hand-off"
                        + (f" by {t['escalated_by']}" if t["escalated_by"] else "")
                        + (f" ({t['handoff_source']})" if t["handoff_source"] else ""),
                        class_="badge info",
                    )
                )
            if t["error_type"]:
                notes.append(_el("span", f"error: {t['error_type']}", class_="badge fail"))
        text = str(t["text"] or "")
        body: object = (
            _highlight(text, edits.get(int(t["turn_idx"]), []))
            if text
            else _el("span", "(left without a word)" if speaker == "user" else "(no reply)", class_="muted")
        )
        rows.append(
            _el(
                "div",
                _el(
                    "div",
                    speaker,
                    _el("span", f"{float(t['sim_time']):.1f} s", class_="time"),
                    class_=f"who {speaker}",
                ),
                _el(
                    "div",
                    _el("div", body, class_="text"),
                    _el(
                        "div",
                        [[_Markup(" · ") if i else None, n] for i, n in enumerate(notes)],
                        class_="note",
                    )
                    if notes
                    else None,
                ),
                class_=f"turn {speaker}",
            )
        )
    return _el("div", rows, class_="transcript")


def _edit_list(edits: dict[int, list[dict[str, Any]]]) -> _Markup:
    flat = [e for turn in sorted(edits) for e in edits[turn]]
    if not flat:
        return _note("No edit kept: the failure needs none of the perturbation's edits.")
    return _el(
        "table",
        _thead(num=("turn",), after=("perturbation", "kind", "change")),
        _el(
            "tbody",
            [
                _el(
                    "tr",
                    _td(e["turn_idx"]),
                    _el("td", e["perturbation"], class_="txt"),
                    _el("td", e["kind"], class_="txt"),
                    _el("td", _edit_title(e).split(": ", 1)[-1], class_="txt"),
                )
                for e in flat
            ],
        ),
        class_="edits",
    )


def _outcome_class(outcome: str, success: bool) -> str:
    if success:
        return "pass"
    return "info" if outcome == "handed_off_on_request" else "fail"


def _dialogue_block(
    con: duckdb.DuckDBPyConnection, number: int, dialogue_id: str, reasons: list[str]
) -> _Markup:
    found = _rows(con, "select * from dialogues where dialogue_id = ?", [dialogue_id])
    if not found:
        return _Markup("")
    d = found[0]
    edits = _edits(con, dialogue_id)
    n_edits = sum(len(v) for v in edits.values())
    original = _transcript(_turns(con, dialogue_id), edits)
    shrink = _rows(con, "select * from shrinks where dialogue_id = ?", [dialogue_id])
    escalation = str(d["expected_escalation"])
    if escalation == "must":
        due = (
            f"needed a person ({d['escalation_trigger'] or 'intent'}) within {d['escalation_deadline']} turns"
            if d["escalation_deadline"] is not None
            else f"needed a person ({d['escalation_trigger'] or 'intent'})"
        )
    else:
        due = f"escalation {escalation}"
    handed = f"handed over at turn {d['escalation_turn']}" if d["escalated"] else "not handed over"
    facts: list[object] = [
        _el(
            "span",
            "gold ",
            _el("b", d["gold_intent"]),
            " → routed ",
            _el("b", d["routed_intent"] or "(none)"),
        ),
        _el("span", "persona ", d["persona"]),
        _el("span", "shape ", d["complexity"]),
        _el(
            "span",
            "perturbation ",
            _el("b", d["perturbation"]),
            f" ({n_edits} edit{'s' if n_edits != 1 else ''})",
        ),
        _el("span", f"{due}; {handed}"),
        _el(
            "span",
            f"ended by {d['end_reason']} after {d['user_turns']} user / "
            f"{d['assistant_turns']} assistant turns",
        ),
    ]
    if d["slot_errors"]:
        facts.append(_el("span", f"{d['slot_errors']} slot error{'s' if d['slot_errors'] != 1 else ''}"))
    if d["error_message"]:
        facts.append(_el("span", f"{d['error_type']}: {d['error_message']}", class_="bad"))
    panes: list[object] = [_el("div", _el("h4", "As run"), original, class_="pane")]
    if shrink:
        s = shrink[0]
        shrunk_id = s["shrunk_dialogue_id"]
        kept = _json(s["kept"])
        head = _el(
            "h4",
            "Shrunk: ",
            f"{s['edits_after']} of {s['edits_before']} edits kept, {s['tests']} re-runs",
            "" if s["reproduced"] else " (the original did not replay exactly)",
        )
        if shrunk_id is not None and _rows(con, "select 1 from dialogues where dialogue_id = ?", [shrunk_id]):
            shrunk_edits = _edits(con, str(shrunk_id))
            sd = _rows(con, "select outcome from dialogues where dialogue_id = ?", [shrunk_id])[0]
            panes.append(
                _el(
                    "div",
                    head,
                    _el(
                        "p",
                        _el("code", shrunk_id),
                        " · outcome ",
                        _el("b", sd["outcome"]),
                        " · kept edits (user turn, attempt): ",
                        ", ".join(f"({u[0]}, {u[1]})" for u in kept)
                        if isinstance(kept, list) and kept
                        else "none",
                        class_="note",
                    ),
                    _transcript(_turns(con, str(shrunk_id)), shrunk_edits),
                    _el("h4", "Kept edits"),
                    _edit_list(shrunk_edits),
                    class_="pane shrunk",
                )
            )
        else:
            panes.append(
                _el(
                    "div",
                    head,
                    _note("The failure did not reproduce on re-running, so there is no shrunk version."),
                    class_="pane shrunk",
                )
            )
    twin: _Markup | None = None
    if d["perturbation"] != "none":
        clean = con.execute(
            "select dialogue_id, outcome from dialogues where pair_id = ? and perturbation = 'none' "
            "and run_id = ?",
            [d["pair_id"], d["run_id"]],
        ).fetchone()
        if clean is not None:
            twin = _el(
                "details",
                _el("summary", "Clean twin ", _el("code", clean[0]), ": ", _el("b", clean[1])),
                _transcript(_turns(con, str(clean[0])), _edits(con, str(clean[0]))),
            )
    return _el(
        "article",
        _el(
            "h3",
            f"{number}. ",
            _el("code", dialogue_id),
            " ",
            _el(
                "span", d["outcome"], class_="badge " + _outcome_class(str(d["outcome"]), bool(d["success"]))
            ),
            " ",
            _el("span", "critical", class_="badge crit") if d["critical"] else None,
        ),
        _el("ul", [_el("li", r) for r in reasons], class_="reasons") if reasons else None,
        _el("p", [[_Markup(" · ") if i else None, f] for i, f in enumerate(facts)], class_="facts"),
        _el("div", panes, class_="panes" + (" two" if len(panes) > 1 else "")),
        twin,
        class_="dialogue",
        id=f"dialogue-{number}",
    )


def _worst_section(
    con: duckdb.DuckDBPyConnection, picked: list[tuple[str, list[str]]], limit: int
) -> _Markup:
    if not picked:
        return _section("dialogues", "The worst dialogues", _note("No failing dialogue to show."))
    index = _el(
        "ol",
        [
            _el("li", _el("a", d, href=f"#dialogue-{i}"), " ", _el("span", "; ".join(r), class_="muted"))
            for i, (d, r) in enumerate(picked, 1)
        ],
        class_="index",
    )
    return _section(
        "dialogues",
        "The worst dialogues",
        _note(
            f"Up to {limit}: failures of critical intents first, then dialogues shrunk to their fewest "
            "edits, then perturbed dialogues from the most brittle cells whose clean twin succeeded. "
            "Marked text is a "
            "perturbation's edit (hover for what changed); ‸ marks a deletion, ✂ a message break."
        ),
        index,
        [_dialogue_block(con, i, d, r) for i, (d, r) in enumerate(picked, 1)],
    )


def _coverage_section(con: duckdb.DuckDBPyConnection, run_id: str) -> _Markup:
    levels = _rows(
        con,
        "select level, count(*) as cells, count(*) filter (where filled) as filled, "
        "sum(planned)::bigint as planned, sum(dialogues)::bigint as dialogues from coverage "
        "where run_id = ? and level <> 'edge' group by level",
        [run_id],
    )
    edges = _rows(
        con,
        "select edge_kind, count(*) as edges, count(*) filter (where filled) as walked, "
        "sum(dialogues)::bigint as dialogues from coverage where run_id = ? and level = 'edge' "
        "group by edge_kind",
        [run_id],
    )
    if not levels and not edges:
        return _section(
            "coverage", "Coverage", _note("No coverage rows: they are written when a run finishes.")
        )
    levels.sort(
        key=lambda r: (_LEVELS.index(r["level"]) if r["level"] in _LEVELS else len(_LEVELS), str(r["level"]))
    )
    edges.sort(
        key=lambda r: (
            _EDGE_KINDS.index(r["edge_kind"]) if r["edge_kind"] in _EDGE_KINDS else len(_EDGE_KINDS),
            str(r["edge_kind"]),
        )
    )
    unfilled = _rows(
        con,
        "select level, intent, complexity, persona, perturbation, target, planned, dialogues from coverage "
        "where run_id = ? and level <> 'edge' and not filled "
        "order by level, intent, complexity, persona, perturbation",
        [run_id],
    )
    unwalked = _rows(
        con,
        "select edge_kind, edge_source, edge_target from coverage "
        "where run_id = ? and level = 'edge' and not filled "
        "order by edge_kind, edge_source, edge_target",
        [run_id],
    )
    level_rows = [
        _el(
            "tr",
            _el("td", r["level"], class_="txt"),
            _td(r["cells"], f"coverage:{r['level']}:cells", r["cells"]),
            _td(r["filled"], f"coverage:{r['level']}:filled", r["filled"]),
            _td(_pct(r["filled"] / r["cells"] if r["cells"] else None)),
            _td(r["planned"] if r["planned"] is not None else _DASH),
            _td(r["dialogues"]),
            _el("td", _bar(r["filled"] / r["cells"] if r["cells"] else None, "#2da44e")),
        )
        for r in levels
    ]
    edge_rows = [
        _el(
            "tr",
            _el("td", r["edge_kind"], class_="txt"),
            _td(r["edges"], f"edges:{r['edge_kind']}:edges", r["edges"]),
            _td(r["walked"], f"edges:{r['edge_kind']}:walked", r["walked"]),
            _td(_pct(r["walked"] / r["edges"] if r["edges"] else None)),
            _td(r["dialogues"]),
            _el("td", _bar(r["walked"] / r["edges"] if r["edges"] else None, "#0969da")),
        )
        for r in edges
    ]

    def cell_name(r: dict[str, Any]) -> str:
        return " · ".join(
            str(r[k]) for k in ("intent", "complexity", "persona", "perturbation") if r[k] is not None
        )

    return _section(
        "coverage",
        "Coverage",
        _el("h3", "Quota cells filled"),
        _el(
            "table",
            _thead("level", num=("cells", "filled", "share", "planned", "dialogues"), after=("",)),
            _el("tbody", level_rows),
        )
        if level_rows
        else _note("No quota cells."),
        _el(
            "details",
            _el("summary", f"{len(unfilled)} cells not filled"),
            _el(
                "table",
                _thead("level", "cell", num=("target", "planned", "dialogues")),
                _el(
                    "tbody",
                    [
                        _el(
                            "tr",
                            _el("td", r["level"], class_="txt"),
                            _el("td", cell_name(r), class_="txt"),
                            _td(_num(r["target"])),
                            _td(r["planned"]),
                            _td(r["dialogues"]),
                        )
                        for r in unfilled
                    ],
                ),
            ),
        )
        if unfilled
        else None,
        _el("h3", "Domain-graph edges walked"),
        _el(
            "table",
            _thead("edge kind", num=("edges", "walked", "share", "dialogues"), after=("",)),
            _el("tbody", edge_rows),
        )
        if edge_rows
        else _note("No edges."),
        _el(
            "details",
            _el("summary", f"{len(unwalked)} edges never walked"),
            _el(
                "ul",
                [
                    _el("li", _el("b", r["edge_kind"]), " ", r["edge_source"], " → ", r["edge_target"])
                    for r in unwalked
                ],
                class_="columns",
            ),
        )
        if unwalked
        else None,
        _note(
            "A quota cell is filled when every scenario the plan gave it is stored; an edge is walked "
            "when at "
            "least one dialogue took it."
        ),
    )


# -- the page --------------------------------------------------------------------------------------------

_CSS = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --soft: #f6f8fa; --pass: #1a7f37; --fail: #cf222e; }
* { box-sizing: border-box; }
html { background: #ffffff; }
body { margin: 0; color: var(--fg); background: #ffffff;
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1360px; margin: 0 auto; padding: 20px 32px 64px; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace;
       font-size: 12.5px;
       background: var(--soft); padding: 0 4px; border-radius: 4px; }
header.top .title { display: flex; align-items: center; gap: 16px; flex-wrap: wrap; }
h1 { font-size: 24px; margin: 0 0 10px; }
h1 code { font-size: 22px; }
h2 { font-size: 19px; margin: 0 0 10px; padding-bottom: 6px; border-bottom: 2px solid var(--line); }
h3 { font-size: 15px; margin: 18px 0 8px; }
h4 { font-size: 13px; margin: 4px 0 6px; color: var(--muted); text-transform: uppercase;
     letter-spacing: .03em; }
section { margin: 30px 0; }
.meta { display: grid; grid-template-columns: max-content 1fr; gap: 3px 18px; margin: 8px 0 0; }
.meta dt { color: var(--muted); }
.meta dd { margin: 0; }
.versions .ver, .ver { display: inline-block; margin-right: 12px; white-space: nowrap; }
.ver b { font-weight: 600; color: var(--muted); }
nav.toc { margin: 18px 0 0; padding: 8px 14px; background: var(--soft); border-radius: 8px; }
nav.toc ol { margin: 0; padding: 0; list-style: none; display: flex; flex-wrap: wrap; gap: 4px 20px;
             counter-reset: toc; }
nav.toc li { counter-increment: toc; }
nav.toc li::before { content: counter(toc) ". "; color: var(--muted); }
a { color: #0969da; text-decoration: none; }
a:hover { text-decoration: underline; }
table { border-collapse: collapse; font-size: 13px; margin: 4px 0 8px; }
th, td { padding: 4px 10px; border-bottom: 1px solid #eaeef2; text-align: left; vertical-align: middle; }
th { background: var(--soft); font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.txt { overflow-wrap: break-word; }
th.group { text-align: center; border-bottom: 1px solid var(--line); }
tr.total td { border-top: 2px solid var(--line); font-weight: 600; }
.bad { color: var(--fail); font-weight: 600; }
.note { color: var(--muted); font-size: 12.5px; margin: 6px 0 10px; max-width: 1100px; }
.muted { color: var(--muted); }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 11.5px; font-weight: 700;
         color: #ffffff; white-space: nowrap; vertical-align: middle; letter-spacing: .02em; }
.badge.pass { background: var(--pass); }
.badge.fail { background: var(--fail); }
.badge.none { background: #8c959f; }
.badge.crit { background: #8250df; }
.badge.info { background: #0969da; }
.badge.warn { background: #9a6700; }
.verdict { padding: 10px 14px; border-radius: 8px; font-weight: 600; margin: 8px 0 14px; }
.verdict.pass { background: #dafbe1; color: #116329; }
.verdict.fail { background: #ffebe9; color: #a40e26; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(290px, 1fr)); gap: 12px; }
.card { border: 1px solid var(--line); border-left: 6px solid #8c959f; border-radius: 8px;
        padding: 10px 14px; }
.card.pass { border-left-color: var(--pass); }
.card.fail { border-left-color: var(--fail); background: #fff8f7; }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .value { font-size: 28px; font-weight: 650; margin: 2px 0 4px; font-variant-numeric: tabular-nums; }
.card .thr { display: inline-block; margin-right: 8px; }
.card .why { color: var(--muted); font-size: 11.5px; margin-top: 4px; }
.scroll { overflow-x: auto; }
svg.chart { max-width: 100%; height: auto; }
svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; font-size: 12px; }
svg text.collabel { font-weight: 600; }
svg text.collabel.small { font-size: 11px; font-weight: 500; }
svg text.rowlabel.strong, svg text.legend.strong { font-weight: 700; }
svg text.cellvalue { font-size: 13px; font-weight: 650; }
svg text.cellnote { font-size: 10px; }
svg text.cellnote.small { font-style: italic; }
svg text.cellcount { font-size: 11px; }
svg text.legend { font-size: 11px; fill: #59636e; }
.k-ok { color: #2da44e; } .k-late { color: #d4a72c; } .k-miss { color: #cf222e; }
ol.index { font-size: 13px; columns: 2; column-gap: 32px; }
ol.index li { break-inside: avoid; margin-bottom: 2px; }
article.dialogue { border: 1px solid var(--line); border-radius: 8px; padding: 10px 16px 12px; margin: 16px 0;
                   break-inside: avoid; }
article.dialogue h3 { margin: 4px 0 6px; }
ul.reasons { margin: 0 0 6px; padding-left: 18px; color: #6e4b00; font-size: 13px; }
p.facts { font-size: 12.5px; color: var(--muted); margin: 4px 0 10px; }
.panes.two { display: grid; grid-template-columns: 1fr 1fr; gap: 18px; }
.pane.shrunk { border-left: 3px solid #8250df; padding-left: 14px; }
.transcript { font-size: 13px; }
.turn { display: grid; grid-template-columns: 92px 1fr; gap: 10px; padding: 4px 0;
        border-bottom: 1px dashed #eaeef2; }
.turn .who { font-weight: 600; font-size: 12px; }
.turn .who.user { color: #0969da; }
.turn .who.assistant { color: #8250df; }
.turn .time { display: block; font-weight: 400; color: var(--muted); font-size: 11px; }
.turn.assistant .text { color: #30363d; }
.turn .text { white-space: pre-wrap; overflow-wrap: anywhere; }
.turn .note { margin: 2px 0 0; font-size: 11.5px; }
mark.edit { background: #fff0a8; border-bottom: 2px solid #d4a72c; border-radius: 2px; padding: 0 1px;
            color: inherit; }
mark.edit.zero { background: transparent; border: 0; color: #cf222e; font-weight: 700; padding: 0;
                 font-size: 11px; }
table.edits { font-size: 12px; }
details { margin: 8px 0; }
details summary { cursor: pointer; color: #0969da; font-size: 13px; }
ul.columns { columns: 3; font-size: 12.5px; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; border-top: 1px solid var(--line);
         padding-top: 8px; }
@media print {
  main { max-width: none; padding: 0; }
  details { display: block; }
  .cards { grid-template-columns: repeat(4, 1fr); }
  section { break-inside: avoid-page; }
}
"""


def render_report(
    db: Database,
    run_id: str | None = None,
    *,
    thresholds: Sequence[str | Threshold] | None = None,
    max_dialogues: int = 20,
) -> Report:
    """The HTML report of `run_id` (default: the latest run that is not a shrink's), see module doc.

    Args:
        db: the database file or an open connection.
        run_id: the run.
        thresholds: gate expressions (`escalation_recall<0.95`); each replaces the default on its metric.
        max_dialogues: at most this many dialogues shown in full.

    Raises:
        ReportError: no such run, no run at all, or not a botdrill database.
        GateError: a threshold is malformed, or names an intent or perturbation the run does not have.
    """
    from botdrill.simulator import __version__

    checked = _thresholds(thresholds)
    with _open(db) as con:
        run = _resolve_run(con, run_id)
        rid = str(run["run_id"])
        breaches = check(con, rid, checked)
        row = con.execute(
            "select coalesce(max(trial) + 1, 0) from dialogues where run_id = ?", [rid]
        ).fetchone()
        trials = int(row[0]) if row else 0
        britt = brittleness(con, rid, min_pairs=MIN_PAIRS)
        intent_order = [r.intent for r in intent_summary(con, rid)]
        picked = _select_worst(con, rid, britt, max_dialogues)
        entries = [
            ("headline", "Headline scores"),
            ("brittleness", "Brittleness"),
            ("confusion", "Confusion matrix"),
            ("slots", "Slot errors"),
            ("escalation", "Escalation timeliness"),
            ("capacity", "Hand-off queue"),
            ("passk", "pass^k"),
            ("dialogues", "Worst dialogues"),
            ("coverage", "Coverage"),
        ]
        body = [
            _header(con, run, not breaches),
            _toc(entries),
            _headline(con, rid, checked, breaches),
            _brittleness_section(britt, intent_order),
            _confusion_section(con, rid),
            _slots_section(con, rid),
            _escalation_section(con, rid),
            _capacity_section(con, rid),
            _pass_k_section(con, rid, trials),
            _worst_section(con, picked, max_dialogues),
            _coverage_section(con, rid),
        ]
    page = _Markup(
        "<!DOCTYPE html>\n"
        + _el(
            "html",
            _el(
                "head",
                _void("meta", charset="utf-8"),
                _void("meta", name="viewport", content="width=device-width, initial-scale=1"),
                _void("meta", name="generator", content=f"botdrill {__version__}"),
                _el("title", f"botdrill report: {rid}"),
                _el("style", _Markup(_CSS)),
            ),
            _el(
                "body",
                _el(
                    "main",
                    body,
                    _el(
                        "footer",
                        f"botdrill {__version__} · report of run ",
                        _el("code", rid),
                        " · every figure is read from the store's views; query them with ",
                        _el("code", "botdrill sql"),
                        ".",
                    ),
                ),
            ),
            lang="en",
        )
        + "\n"
    )
    return Report(
        run_id=rid, html=str(page), thresholds=checked, breaches=breaches, dialogues=[d for d, _ in picked]
    )


def write_report(
    db: Database,
    out: str | Path,
    run_id: str | None = None,
    *,
    thresholds: Sequence[str | Threshold] | None = None,
    max_dialogues: int = 20,
) -> Report:
    """Render the report of `run_id` and write it to `out`, replaced only once it is complete.

    Raises:
        ReportError: as `render_report`, or the file cannot be written.
        GateError: as `render_report`.
    """
    report = render_report(db, run_id, thresholds=thresholds, max_dialogues=max_dialogues)
    path = Path(out)
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".tmp", dir=path.parent if str(path.parent) else "."
        )
    except OSError as exc:
        raise ReportError(f"{path}: cannot write the report: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(report.html)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # as an ordinary new file (mkstemp makes it private)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ReportError(f"{path}: cannot write the report: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return report
