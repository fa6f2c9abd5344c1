"""The HTML report: every section for a run with perturbations, trials, a shrink and a capacity simulation;
its numbers equal the Python API's; everything from the database is escaped; the file is self-contained and
well formed; and, where Chromium is installed, it renders to a screenshot that is not blank."""

from __future__ import annotations

import html
import importlib
import json
import re
import shutil
import sys
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
import pytest

from botdrill.analysis import (
    brittleness,
    check,
    confusion_matrix,
    coverage,
    escalation_scores,
    intent_summary,
    metric_value,
    parse_threshold,
    pass_k,
    run_scores,
    slot_scores,
)
from botdrill.analysis._report import (
    DEFAULT_THRESHOLDS,
    MIN_PAIRS,
    ReportError,
    _highlight,
    render_report,
    write_report,
)
from botdrill.policies import CapacityConfig, HandoffProfile, simulate_capacity
from botdrill.scenarios import load_pack
from botdrill.simulator import RunConfig, run_drill
from botdrill.simulator._shrink import failing_dialogues, shrink_dialogue
from botdrill.simulator._store import Store

RUN = "rep"
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
BREAKOUT = '" onmouseover="alert(1)'


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run with two perturbations and two trials, one shrunk failure and one capacity simulation, plus a
    clean single-trial run with nothing else."""
    path = tmp_path_factory.mktemp("report") / "report.duckdb"
    run_drill(RunConfig(db=str(path), n=16, seed=7, run_id=RUN, perturb="typo:3,filler:3", trials=2))
    run_drill(RunConfig(db=str(path), n=6, seed=8, run_id="plain", perturb="none"))
    store = Store(path)
    try:
        for dialogue in failing_dialogues(store, RUN, limit=4):  # the first that reproduces
            if shrink_dialogue(store, RUN, dialogue, max_tests=40).shrunk_dialogue_id:
                break
        else:
            raise AssertionError("no failing dialogue shrank")
        config = CapacityConfig(arrivals_per_hour=90, shift_hours=4, agents=2, patience_minutes=5, seed=1)
        report = simulate_capacity(config, HandoffProfile.from_pack(load_pack("banking")))
        store.add_capacity("capacity-test", RUN, config.model_dump(mode="json"), report.to_rows())
    finally:
        store.close()
    return path


@pytest.fixture(scope="module")
def page(db: Path) -> str:
    return render_report(db, RUN).html


class _Page(HTMLParser):
    """A strict reading of the page: tags nest and close, and what it holds (keyed numbers, marks, text)."""

    VOID = frozenset({"meta", "br", "hr", "img", "input", "link", "wbr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: set[str] = set()
        self.attributes: list[tuple[str, str, str]] = []
        self.keys: dict[str, dict[str, str]] = {}
        self.duplicates: list[str] = []
        self.marks: list[tuple[dict[str, str], str]] = []
        self.text: list[str] = []
        self.ids: list[str] = []
        self._mark: list[Any] | None = None

    def _start(self, tag: str, attrs: list[tuple[str, str | None]]) -> dict[str, str]:
        self.tags.add(tag)
        values = {k: v or "" for k, v in attrs}
        for k, v in values.items():
            self.attributes.append((tag, k, v))
        if "data-key" in values:
            if values["data-key"] in self.keys:
                self.duplicates.append(values["data-key"])
            self.keys[values["data-key"]] = values
        if "id" in values:
            self.ids.append(values["id"])
        return values

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = self._start(tag, attrs)
        if tag == "mark":
            self._mark = [values, ""]
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'} at {self.getpos()}")
            return
        self.stack.pop()
        if tag == "mark" and self._mark is not None:
            self.marks.append((self._mark[0], self._mark[1]))
            self._mark = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._mark is not None:
            self._mark[1] += data

    def value(self, key: str) -> str:
        return self.keys[key]["data-value"]


def _parse(text: str) -> _Page:
    parser = _Page()
    parser.feed(text)
    parser.close()
    assert not parser.errors, parser.errors[:5]
    assert parser.stack == [], f"unclosed: {parser.stack}"
    return parser


def _sql(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def _v(x: Any) -> str:
    """A value as the page writes it into `data-value`."""
    if x is None:
        return ""
    if isinstance(x, bool):
        return str(int(x))
    return repr(x) if isinstance(x, float) else str(x)


# -- structure ----------------------------------------------------------------------------------------------


def test_every_section_is_there(page: str, db: Path) -> None:
    parsed = _parse(page)
    for anchor in (
        "headline",
        "brittleness",
        "confusion",
        "slots",
        "escalation",
        "capacity",
        "passk",
        "dialogues",
        "coverage",
    ):
        assert anchor in parsed.ids, anchor
    assert "header" in parsed.tags and "svg" in parsed.tags
    text = " ".join(" ".join(parsed.text).split())
    # 1. header
    ((faults,),) = _sql(
        db, "select count(*) from dialogues where run_id = ? and simulator_fault is not null", RUN
    )
    assert parsed.value("faults") == str(faults)
    assert "botdrill report: run" in text and "perturbations: filler, typo" in text and "2 trials" in text
    # 2. headline with a badge per default threshold
    for t in DEFAULT_THRESHOLDS:
        assert t in text
    assert "Gate passed" in text or "Gate failed" in text
    # 3. heatmap with small cells marked; 4. confusion; 7. capacity; 8. pass^k curves
    assert any(k.startswith("brittleness:*:") for k in parsed.keys)
    assert any(v.get("data-small") == "1" for k, v in parsed.keys.items() if k.startswith("brittleness:"))
    assert "url(#hatch-b)" in page and f"fewer than {MIN_PAIRS} pairs" in text
    assert any(k.startswith("confusion:") for k in parsed.keys)
    assert "capacity:all:wait_p90_s" in parsed.keys and "capacity-test" in text
    assert "polyline" in parsed.tags and "pass_k:*:2" in parsed.keys
    assert "--trials N" not in text
    # 9. worst dialogues: transcripts with marked edits and a shrunk version beside its original
    assert 0 < text.count("As run") <= 20
    assert "Kept edits" in text and 'class="pane shrunk"' in page
    assert parsed.marks and all(m[0].get("title") for m in parsed.marks)
    perturbations = {"typo", "filler"}
    assert {m[0]["data-perturbation"] for m in parsed.marks} & perturbations
    assert all(m[0]["title"].split(" ")[0] in perturbations | {"correction"} for m in parsed.marks)
    # 10. coverage
    assert "coverage:intent:cells" in parsed.keys and "edges:opens:walked" in parsed.keys


def test_the_worst_dialogues_start_with_critical_failures_and_include_the_shrunk(db: Path) -> None:
    report = render_report(db, RUN)
    critical = {r[0] for r in _sql(db, "select dialogue_id from failures where run_id = ? and critical", RUN)}
    shrunk = {r[0] for r in _sql(db, "select dialogue_id from shrinks where run_id = ?", RUN)}
    assert 0 < len(report.dialogues) <= 20 and len(set(report.dialogues)) == len(report.dialogues)
    if critical:
        assert report.dialogues[0] in critical
    assert shrunk & set(report.dialogues)
    assert len(render_report(db, RUN, max_dialogues=3).dialogues) == 3


def test_a_run_without_trials_perturbations_or_capacity_says_what_to_run(db: Path) -> None:
    parsed = _parse(render_report(db, "plain").html)
    text = " ".join(" ".join(parsed.text).split())
    assert "run with --trials N" in text
    assert "no perturbed dialogues" in text and "--perturb" in text
    assert "No capacity simulation for this run: botdrill capacity --run plain" in text
    assert not any(k.startswith(("brittleness:", "capacity:", "pass_k:")) for k in parsed.keys)


def test_the_default_run_is_the_latest_that_is_not_a_shrink(db: Path) -> None:
    # `plain` was made after `rep`, and `rep:shrunk` after both.
    assert render_report(db).run_id == "plain"


def test_an_unknown_run_is_an_error(db: Path) -> None:
    with pytest.raises(ReportError, match="no run 'nope'"):
        render_report(db, "nope")


# -- numbers ------------------------------------------------------------------------------------------------


def test_headline_and_per_intent_numbers_are_the_api_values(page: str, db: Path) -> None:
    parsed = _parse(page)
    (scores,) = run_scores(db, [RUN])
    for metric in (
        "success_rate",
        "escalation_recall",
        "on_time_rate",
        "escalation_precision",
        "over_escalation_rate",
        "mean_seconds_to_handoff",
        "mean_turns_to_handoff",
    ):
        assert parsed.value(f"headline:{metric}") == _v(getattr(scores, metric)), metric
    assert parsed.value("headline:routing_accuracy") == _v(metric_value(db, RUN, "routing_accuracy"))
    ((scored,),) = _sql(db, "select count(*) from scored_dialogues where run_id = ?", RUN)
    assert parsed.value("run:scored") == str(scored) == str(scores.dialogues)
    for row in intent_summary(db, RUN):
        for field in ("dialogues", "success_rate", "routing_accuracy", "escalation_recall", "errors"):
            assert parsed.value(f"intent:{row.intent}:{field}") == _v(getattr(row, field))


def test_brittleness_and_confusion_numbers_are_the_api_values(page: str, db: Path) -> None:
    parsed = _parse(page)
    rows = brittleness(db, RUN, min_pairs=MIN_PAIRS)
    assert rows
    for r in rows:
        cell = parsed.keys[f"brittleness:{r.intent}:{r.perturbation}"]
        assert cell["data-value"] == _v(r.brittleness)
        assert cell["data-pairs"] == str(r.pairs) and cell["data-small"] == ("1" if r.small else "0")
        if r.intent == "*":
            p = r.perturbation
            ci = parsed.keys[f"brittleness-ci:*:{p}"]
            assert (ci["data-low"], ci["data-high"]) == (_v(r.ci_low), _v(r.ci_high))
            assert parsed.value(f"brittleness-p:*:{p}") == _v(r.p_value)
            assert parsed.value(f"brittleness-broke:*:{p}") == str(r.broke)
            assert parsed.value(f"brittleness-fixed:*:{p}") == str(r.fixed)
    cm = confusion_matrix(db, RUN)
    shown = 0
    for i, gold in enumerate(cm.labels):
        if not sum(cm.counts[i]):
            continue
        for j, routed in enumerate(cm.labels):
            key = f"confusion:{gold}:{routed}"
            assert parsed.value(key) == str(cm.counts[i][j])
            assert parsed.keys[key]["data-rate"] == _v(cm.rates[i][j])
            shown += cm.counts[i][j]
    assert shown == sum(map(sum, cm.counts))


def test_slot_escalation_queue_pass_k_and_coverage_numbers_are_the_api_values(page: str, db: Path) -> None:
    parsed = _parse(page)
    for s in [*slot_scores(db, RUN, by="slot"), *slot_scores(db, RUN, by=())]:
        for field in (
            "gold",
            "exposed",
            "correct",
            "wrong",
            "missing",
            "precision",
            "recall",
            "completeness",
        ):
            assert parsed.value(f"slot:{s.slot}:{field}") == _v(getattr(s, field))
    scores = [s for s in escalation_scores(db, RUN) if s.critical]
    assert scores
    for s in scores:
        assert parsed.value(f"escalation:{s.intent}:{s.perturbation}:escalation_recall") == _v(
            s.escalation_recall
        )
    for intent in {s.intent for s in scores}:
        mine = [s for s in scores if s.intent == intent]
        must = sum(s.must_escalate for s in mine)
        assert parsed.value(f"escalation:{intent}:must_escalate") == str(must)
        if must:
            recall = sum((s.escalation_recall or 0) * s.must_escalate for s in mine) / must
            on_time = sum((s.on_time_rate or 0) * s.must_escalate for s in mine) / must
            assert float(parsed.value(f"escalation:{intent}:escalation_recall")) == pytest.approx(recall)
            assert float(parsed.value(f"escalation:{intent}:on_time_rate")) == pytest.approx(on_time)
    con = duckdb.connect(str(db), read_only=True)
    try:
        triggers = con.execute(
            "select escalation_trigger, count(*), count(*) filter (where escalated and escalation_turn <= "
            "escalation_deadline), "
            "count(*) filter (where escalated and escalation_turn > escalation_deadline), "
            "count(*) filter (where not escalated) from dialogues "
            "where run_id = ? and simulator_fault is null "
            "and expected_escalation = 'must' group by 1",
            [RUN],
        ).fetchall()
        capacity = con.execute(
            "select scope, contacts, wait_mean_s, wait_p50_s, wait_p90_s, wait_p99_s, abandonment_rate, "
            "sla_breaches, utilisation from capacity where run_id = ?",
            [RUN],
        ).fetchall()
    finally:
        con.close()
    assert triggers
    for trigger, n, on_time, late, missed in triggers:
        assert [
            parsed.value(f"trigger:{trigger}:{f}") for f in ("dialogues", "on_time", "late", "missed")
        ] == [str(n), str(on_time), str(late), str(missed)]
    assert {r[0] for r in capacity} >= {"all", "critical", "normal"}
    names = (
        "contacts",
        "wait_mean_s",
        "wait_p50_s",
        "wait_p90_s",
        "wait_p99_s",
        "abandonment_rate",
        "sla_breaches",
        "utilisation",
    )
    for scope, *values in capacity:
        for name, value in zip(names, values, strict=True):
            assert parsed.value(f"capacity:{scope}:{name}") == _v(value), (scope, name)
    for p in [*pass_k(db, RUN, dimension="intent"), *pass_k(db, RUN, dimension="all")]:
        key = "*" if p.dimension == "all" else p.value
        for k, value in p.by_k.items():
            if value is None:
                assert f"pass_k:{key}:{k}" not in parsed.keys
            else:
                assert parsed.value(f"pass_k:{key}:{k}") == _v(value)
    rows = coverage(db, RUN)
    for level in {r["level"] for r in rows} - {"edge"}:
        cells = [r for r in rows if r["level"] == level]
        assert parsed.value(f"coverage:{level}:cells") == str(len(cells))
        assert parsed.value(f"coverage:{level}:filled") == str(sum(r["filled"] for r in cells))
    for kind in {r["edge_kind"] for r in rows if r["level"] == "edge"}:
        edges = [r for r in rows if r["level"] == "edge" and r["edge_kind"] == kind]
        assert parsed.value(f"edges:{kind}:edges") == str(len(edges))
        assert parsed.value(f"edges:{kind}:walked") == str(sum(r["filled"] for r in edges))


def test_every_number_has_one_key(page: str) -> None:
    assert _parse(page).duplicates == []


# -- thresholds ---------------------------------------------------------------------------------------------


def test_thresholds_replace_the_default_on_their_metric_and_add_the_rest(db: Path) -> None:
    report = render_report(
        db, RUN, thresholds=["success_rate<0.01", "success_rate>0.99", "brittleness.typo>1", "pass^2<0.0"]
    )
    texts = [t.text for t in report.thresholds]
    assert "success_rate<0.8" not in texts
    assert texts[-4:] == ["success_rate<0.01", "success_rate>0.99", "brittleness.typo>1", "pass^2<0.0"]
    assert [t for t in DEFAULT_THRESHOLDS if not t.startswith("success_rate")] == texts[:-4]
    expected = check(db, RUN, [parse_threshold(t) for t in texts])
    assert [b.threshold.text for b in report.breaches] == [b.threshold.text for b in expected]
    assert report.passed == (not expected)
    parsed = _parse(report.html)
    assert parsed.value("threshold:brittleness.typo>1") == _v(metric_value(db, RUN, "brittleness.typo"))
    text = " ".join(parsed.text)
    assert "success_rate<0.01" in text and "pass^2<0.0" in text


def test_a_bad_threshold_is_an_error(db: Path) -> None:
    from botdrill.analysis import GateError

    with pytest.raises(GateError):
        render_report(db, RUN, thresholds=["nonsense"])
    with pytest.raises(GateError, match="no intent"):
        render_report(db, RUN, thresholds=["success_rate.no_such_intent<0.5"])


# -- safety -------------------------------------------------------------------------------------------------


def test_the_page_is_self_contained_and_has_no_script(page: str) -> None:
    lowered = page.lower()
    assert "<script" not in lowered and "javascript:" not in lowered
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", lowered)
    assert "<link" not in lowered and "@import" not in lowered and "url(http" not in lowered
    assert "http://" not in lowered.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in lowered
    parsed = _parse(page)
    assert (
        not {"script", "img", "iframe", "object", "embed", "link", "image", "use", "foreignobject"}
        & parsed.tags
    )
    assert not [a for a in parsed.attributes if a[1].startswith("on")]
    assert {a[2] for a in parsed.attributes if a[1] == "href"} <= {f"#{i}" for i in parsed.ids}


@pytest.fixture(scope="module")
def hostile(db: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A copy of the database with markup in user turns (inside edit spans), names, versions and scopes;
    returns it with the dialogue the markup was put in."""
    path = tmp_path_factory.mktemp("hostile") / "hostile.duckdb"
    shutil.copy(db, path)
    shown = render_report(db, RUN).dialogues
    con = duckdb.connect(str(path))
    try:
        (target, shrunk) = con.execute(
            "select dialogue_id, shrunk_dialogue_id from shrinks "
            "where run_id = ? and shrunk_dialogue_id is not "
            "null order by dialogue_id limit 1",
            [RUN],
        ).fetchone() or ("", "")
        assert target in shown
        text = f"Hi {SCRIPT} and {IMG} bye"
        for dialogue in (target, shrunk):
            (turn,) = con.execute(
                "select min(turn_idx) from turns where dialogue_id = ? and speaker = 'user'", [dialogue]
            ).fetchone() or (0,)
            con.execute(
                "update turns set text = ? where dialogue_id = ? and turn_idx = ?", [text, dialogue, turn]
            )
            con.execute("delete from edits where dialogue_id = ? and turn_idx = ?", [dialogue, turn])
            start = text.index(SCRIPT)
            con.execute(
                "insert into edits values (?, ?, ?, 0, 'typo', 'typo.keyboard', ?, ?, ?, ?, 3), "
                "(?, ?, ?, 1, ?, 'filler', ?, ?, '', ?, 3)",
                [
                    RUN,
                    dialogue,
                    turn,
                    start,
                    start + len(SCRIPT),
                    IMG + BREAKOUT,
                    SCRIPT,
                    RUN,
                    dialogue,
                    turn,
                    IMG,
                    text.index(IMG),
                    text.index(IMG) + len(IMG),
                    IMG,
                ],
            )
        con.execute("update dialogues set persona = ? where dialogue_id = ?", [IMG + BREAKOUT, target])
        (intent,) = con.execute(
            "select gold_intent from dialogues where dialogue_id = ?", [target]
        ).fetchone() or ("",)
        con.execute("update dialogues set gold_intent = ? where gold_intent = ?", [SCRIPT, intent])
        con.execute("update dialogues set routed_intent = ? where routed_intent = ?", [SCRIPT, intent])
        con.execute("update turns set intent = ? where intent = ?", [IMG, intent])
        con.execute("update slot_checks set slot = ? where slot = (select min(slot) from slot_checks)", [IMG])
        con.execute(
            "update runs set target = ?, pack = ?, versions = ? where run_id = ?",
            [SCRIPT, IMG, json.dumps({IMG: SCRIPT + BREAKOUT}), RUN],
        )
        con.execute(
            "update capacity set scope = ? "
            "where scope = (select min(scope) from capacity where scope like 'intent:%')",
            ["intent:" + SCRIPT],
        )
        con.execute("update capacity set config = ?", [json.dumps({"agents": 2, "surges": [SCRIPT]})])
        con.execute(
            "update coverage set edge_source = ? where level = 'edge' and not filled and run_id = ?",
            [IMG, RUN],
        )
        con.execute("update coverage set intent = ? where intent = ?", [SCRIPT, intent])
        con.execute(
            "update dialogues set simulator_fault = ? where dialogue_id = "
            "(select min(dialogue_id) from dialogues where run_id = ? and dialogue_id <> ?)",
            [IMG, RUN, target],
        )
    finally:
        con.close()
    return path, target


def test_markup_from_the_database_is_shown_as_text(hostile: tuple[Path, str]) -> None:
    path, target = hostile
    report = render_report(path, RUN)
    assert target in report.dialogues
    page = report.html
    lowered = page.lower()
    assert "<script" not in lowered and "<img" not in lowered and 'onmouseover="' not in lowered
    assert html.escape(SCRIPT, quote=True) in page and html.escape(IMG, quote=True) in page
    assert html.escape(BREAKOUT, quote=True) in page
    parsed = _parse(page)
    assert not {"script", "img"} & parsed.tags
    assert not [a for a in parsed.attributes if a[1].startswith("on")]
    text = "".join(parsed.text)
    assert f"Hi {SCRIPT} and {IMG} bye" in text  # the turn reads as typed
    assert SCRIPT in text and IMG in text
    # inside the highlighted edit spans: the text of the mark, and its title attribute, as typed
    marked = [(attrs, body) for attrs, body in parsed.marks if body in (SCRIPT, IMG)]
    assert {body for _, body in marked} == {SCRIPT, IMG}
    assert any(IMG + BREAKOUT in attrs["title"] for attrs, _ in marked)
    assert any(attrs["data-perturbation"] == IMG for attrs, _ in marked)
    # in SVG labels and data attributes too (the heatmap's and the confusion matrix's intent names)
    assert any(k.startswith(f"brittleness:{SCRIPT}:") for k in parsed.keys)
    assert any(k.startswith(f"confusion:{SCRIPT}:") for k in parsed.keys)
    assert f"capacity:intent:{SCRIPT}:contacts" in parsed.keys
    assert f"slot:{IMG}:gold" in parsed.keys


def test_edits_are_marked_where_they_are_even_when_they_overlap_or_fall_outside() -> None:
    edits = [
        {
            "perturbation": "typo",
            "kind": "typo.substitution",
            "start": 4,
            "end": 9,
            "before": "x",
            "after": "y",
        },
        {"perturbation": "filler", "kind": "filler", "start": 6, "end": 12, "before": "", "after": "uh"},
        {"perturbation": "typo", "kind": "typo.omission", "start": 0, "end": 0, "before": "<", "after": ""},
        {"perturbation": "fragments", "kind": "break", "start": 99, "end": 99, "before": "", "after": ""},
    ]
    text = "a < b & c > d <e>"
    out = _highlight(text, edits)
    parsed = _parse(f"<p>{out}</p>")
    assert "".join(parsed.text).replace("\u2038", "").replace("\u2702", "") == text
    bodies = [body for _, body in parsed.marks]
    assert bodies == ["\u2038", "b ", "& c", " > ", "\u2702"]  # the overlap [6, 9) is one mark with both
    assert parsed.marks[2][0]["data-perturbation"] == "typo filler"
    assert parsed.marks[0][0]["title"].startswith("typo (typo.omission): deleted")
    assert "<" not in out.replace("<mark", "").replace("</mark", "")


# -- writing the file and looking at it ----------------------------------------------------------------------


def test_write_report_replaces_the_file_whole(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    out.write_text("old")
    report = write_report(db, out, RUN)
    assert out.read_text(encoding="utf-8") == report.html
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
    with pytest.raises(ReportError, match="cannot write"):
        write_report(db, tmp_path / "missing" / "report.html", RUN)


def _screenshots() -> ModuleType:
    root = str(Path(__file__).resolve().parents[2])
    if root not in sys.path:
        sys.path.insert(0, root)
    return importlib.import_module("bench.report_screenshot")


def test_the_report_renders_in_chromium_to_a_page_that_is_not_blank(db: Path, tmp_path: Path) -> None:
    shots = _screenshots()
    if shots.find_browser() is None:
        pytest.skip(
            f"no Chromium binary on PATH (looked for {', '.join(shots.BROWSERS)}): install one to "
            "check that the report renders"
        )
    html_path = tmp_path / "report.html"
    write_report(db, html_path, RUN)
    png = tmp_path / "shot.png"
    shots.screenshot(html_path, png, window=(1400, 2400))
    pixels = shots.count_pixels(png.read_bytes())
    assert (pixels.width, pixels.height) == (1400, 2400)
    assert pixels.non_white_share > 0.03, pixels
    assert pixels.colours > 64, pixels


def test_the_png_decoder_reads_every_filter() -> None:
    import struct
    import zlib

    shots = _screenshots()
    width, rows = (
        3,
        [
            bytes([10, 20, 30, 40, 50, 60, 70, 80, 90]),
            bytes([255] * 9),
            bytes([1, 2, 3] * 3),
            bytes([9, 8, 7, 6, 5, 4, 3, 2, 1]),
            bytes([200, 100, 0, 0, 100, 200, 50, 50, 50]),
        ],
    )

    def filtered(kind: int, row: bytes, prev: bytes) -> bytes:
        out = bytearray()
        for i, x in enumerate(row):
            a = row[i - 3] if i >= 3 else 0
            b, c = prev[i], prev[i - 3] if i >= 3 else 0
            predictor = [0, a, b, (a + b) // 2, shots._paeth(a, b, c)][kind]
            out.append((x - predictor) & 0xFF)
        return bytes(out)

    raw, prev = bytearray(), bytes(9)
    for kind, row in enumerate(rows):
        raw += bytes([kind]) + filtered(kind, row, prev)
        prev = row

    def chunk(name: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + name + body + struct.pack(">I", zlib.crc32(name + body))

    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, len(rows), 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(bytes(raw)))
        + chunk(b"IEND", b"")
    )
    w, h, channels, decoded = shots.decode_png(png)
    assert (w, h, channels) == (3, 5, 3) and decoded == rows
    pixels = shots.count_pixels(png)
    assert pixels.non_white == 15 - 3 and pixels.colours == 3 + 1 + 1 + 3 + 3
