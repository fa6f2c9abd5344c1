"""docs/queries.md: every query in the cookbook runs on a real drill, and three of them are recounted.

The drill is the doc's, made smaller: runs `demo` (the built-in bot) and `demo-standard` (the bare bot with
the `standard` policy), 60 scenarios under the default perturbations in two trials, the capacity
simulation of `demo`, and the shrink of the dialogue the doc shrinks. Each ```sql block must run, return
rows, and have the columns of the sample answer printed under it. The answers to "which critical intents
were missed under typos?", "which hand-offs were slowest?" and "where did the bot ask for a slot it already
had?" are then computed again in Python from the raw tables and must agree row for row.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import pytest
from typer.testing import CliRunner

from botdrill.scenarios import load_pack
from botdrill.simulator import RunConfig, run_drill
from botdrill.simulator._cli import app
from botdrill.simulator._shrink import shrink_dialogue
from botdrill.simulator._store import Store

DOC = Path(__file__).resolve().parents[2] / "docs" / "queries.md"
RUNS = ("demo", "demo-standard")
SHRUNK = "demo-000007-typo2"


class Query(NamedTuple):
    """One ```sql block of the doc."""

    question: str
    """The `## ` heading it sits under."""
    sql: str
    sample: list[str]
    """The header of the sample answer printed under it."""


def queries(doc: str) -> list[Query]:
    found = []
    for section in re.split(r"^## ", doc, flags=re.M)[1:]:
        question = section.splitlines()[0].strip()
        for match in re.finditer(r"```sql\n(.*?)```\n(.*?)(?=```|\Z)", section, re.S):
            header = next((line for line in match.group(2).splitlines() if line.startswith("| ")), "")
            found.append(
                Query(question, match.group(1), [c.strip() for c in header.strip("| ").split(" | ")])
            )
    return found


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cookbook") / "demo.duckdb"
    run_drill(RunConfig(db=str(path), n=60, perturb="default", trials=2, run_id="demo"))
    run_drill(
        RunConfig(
            db=str(path),
            n=60,
            perturb="default",
            trials=2,
            run_id="demo-standard",
            target="reference-bare",
            policy="standard",
        )
    )
    result = CliRunner().invoke(
        app,
        ["capacity", "--db", str(path), "--run", "demo"],
        env={"COLUMNS": "400", "BOTDRILL_DB": None},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    store = Store(path)
    try:
        shrink_dialogue(store, "demo", SHRUNK)
    finally:
        store.close()
    return path


@pytest.fixture(scope="module")
def con(db: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(str(db), read_only=True)
    try:
        yield connection
    finally:
        connection.close()


def run(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    cursor = con.execute(sql)
    return [d[0] for d in cursor.description], cursor.fetchall()


def the(doc: str, words: str) -> Query:
    """The first query under the question whose heading contains `words`."""
    matching = [q for q in queries(doc) if words in q.question]
    assert matching, f"no question mentions {words!r}"
    return matching[0]


# -- the cookbook as a whole --------------------------------------------------------------------------


def test_the_cookbook_asks_the_questions_it_promises(doc: str) -> None:
    questions = {q.question for q in queries(doc)}
    assert len(questions) >= 12
    for words in (
        "critical intents were missed under typos",
        "hand-offs were slowest",
        "ask for a slot it already had",
        "brittle",
        "fragments",
        "slots are most often wrong",
        "escalation triggers",
        "personas fail most",
        "over-escalations",
        "pass^k",
        "said in one dialogue",
        "simulated user spoil",
        "not cover",
        "compare",
    ):
        assert any(words in q for q in questions), words
    # Each question in the list at the top links to its section.
    for question in questions:
        anchor = re.sub(r"[^a-z0-9 -]", "", question.lower()).replace(" ", "-")
        assert f"(#{anchor})" in doc, question


def test_the_doc_uses_the_runs_and_dialogues_this_drill_makes(
    doc: str, con: duckdb.DuckDBPyConnection
) -> None:
    commands = re.findall(r"```bash\n(.*?)```", doc, re.S)[0]
    assert set(re.findall(r"--run-id (\S+)", commands)) == set(RUNS)
    assert f"--dialogue {SHRUNK}" in commands
    sql = "\n".join(q.sql for q in queries(doc))
    literals = set(re.findall(r"run_id = '([^']+)'", sql))
    literals |= {
        r for group in re.findall(r"run_id in \(([^)]*)\)", sql) for r in re.findall(r"'([^']+)'", group)
    }
    assert literals == set(RUNS)
    stored = {r for (r,) in con.execute("select run_id from runs").fetchall()}
    assert literals <= stored
    for dialogue in set(re.findall(r"'(demo-\d{6}[^']*)'", sql)):
        assert con.execute("select count(*) from dialogues where dialogue_id = ?", [dialogue]).fetchone() == (
            1,
        )


def test_every_query_runs_returns_rows_and_has_the_sample_answers_columns(
    doc: str, con: duckdb.DuckDBPyConnection
) -> None:
    found = queries(doc)
    assert len(found) >= 16
    for query in found:
        try:
            names, rows = run(con, query.sql)
        except duckdb.Error as exc:  # pragma: no cover - the message says which query broke
            pytest.fail(f"{query.question}: {exc}\n{query.sql}")
        assert rows, f"{query.question}: no rows\n{query.sql}"
        assert names == query.sample, query.question


# -- which critical intents were missed under typos? --------------------------------------------------


def test_critical_intents_missed_under_typos_agree_with_a_recount(
    doc: str, con: duckdb.DuckDBPyConnection
) -> None:
    names, rows = run(con, the(doc, "critical intents were missed under typos").sql)
    assert names == ["gold_intent", "typo_dialogues", "missed", "missed_only_with_typos", "late", "misrouted"]

    dialogues = con.execute(
        "select pair_id, gold_intent, critical, perturbation, outcome from dialogues "
        "where run_id = 'demo' and simulator_fault is null"
    ).fetchall()
    clean = {pair: outcome for pair, _, _, perturbation, outcome in dialogues if perturbation == "none"}
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for pair, intent, critical, perturbation, outcome in dialogues:
        if not critical or perturbation != "typo":
            continue
        c = counts[intent]
        c["dialogues"] += 1
        c["missed"] += outcome == "missed_escalation"
        c["only"] += outcome == "missed_escalation" and clean.get(pair) != "missed_escalation"
        c["late"] += outcome == "late_escalation"
        c["misrouted"] += outcome == "misrouted"
    expected = sorted(
        (
            (intent, c["dialogues"], c["missed"], c["only"], c["late"], c["misrouted"])
            for intent, c in counts.items()
        ),
        key=lambda r: (-r[2], -r[5], r[0]),
    )
    assert rows == expected
    # Every critical intent of the pack was drilled with typos, and some of them went wrong.
    pack = load_pack("banking")
    assert {r[0] for r in rows} == {i.name for i in pack.intents if i.critical}
    assert sum(r[2] + r[4] + r[5] for r in rows) > 0


# -- which hand-offs were slowest? --------------------------------------------------------------------


def test_slowest_handoffs_agree_with_a_recount(doc: str, con: duckdb.DuckDBPyConnection) -> None:
    names, rows = run(con, the(doc, "hand-offs were slowest").sql)
    assert names == [
        "dialogue_id",
        "gold_intent",
        "perturbation",
        "escalation_trigger",
        "escalation_turn",
        "escalation_deadline",
        "seconds_to_handoff",
        "outcome",
    ]
    scored = {
        row[0]: row[1:]
        for row in con.execute(
            "select dialogue_id, gold_intent, perturbation, escalation_trigger, escalation_turn, "
            "escalation_deadline, outcome from dialogues where run_id = 'demo' and simulator_fault is null"
        ).fetchall()
    }
    first: dict[str, tuple[float, int]] = {}
    replies: Counter[str] = Counter()
    for dialogue, speaker, sim_time, handoff in con.execute(
        "select dialogue_id, speaker, sim_time, handoff from turns where run_id = 'demo' "
        "order by dialogue_id, turn_idx"
    ).fetchall():
        if speaker == "assistant":
            replies[dialogue] += 1
        if handoff and dialogue not in first:
            first[dialogue] = (sim_time, replies[dialogue])
    handed = [(d, seconds, turn) for d, (seconds, turn) in first.items() if d in scored]
    escalated = con.execute(
        "select count(*) from dialogues where run_id = 'demo' and simulator_fault is null and escalated"
    ).fetchone()
    assert escalated == (len(handed),)
    # The first hand-off's place among the replies is the stored escalation turn.
    assert all(scored[d][3] == turn for d, _, turn in handed)
    slowest = sorted(handed, key=lambda h: (-h[1], h[0]))[:10]
    expected = [(d, *scored[d][:5], seconds, scored[d][5]) for d, seconds, _ in slowest]
    assert rows == expected
    assert len(rows) == 10
    assert [r[6] for r in rows] == sorted((r[6] for r in rows), reverse=True)


# -- where did the bot ask for a slot it already had? -------------------------------------------------


def _strings(text: str) -> list[str]:
    return [s.replace("''", "'") for s in re.findall(r"'((?:[^']|'')*)'", text)]


def test_the_slot_re_ask_query_uses_the_packs_cues(doc: str) -> None:
    sql = the(doc, "ask for a slot it already had").sql
    pack = load_pack("banking")
    cues_sql = sql.split("slot_cues(slot, cue) as (", 1)[1].split(") v(slot, cues)", 1)[0]
    listed = {slot: _strings(body) for slot, body in re.findall(r"\('(\w+)',\s*\[(.*?)\]\)", cues_sql, re.S)}
    assert listed == {s.name: s.cues for s in pack.slots}
    asking_sql = sql.split("not_asking(cue) as (", 1)[1].split("),", 1)[0]
    lexicon = pack.lexicon
    assert set(_strings(asking_sql)) == {
        c.lower().replace("\u2019", "'") for c in [*lexicon.confirm_cues, *lexicon.done_cues]
    }


def test_slot_re_asks_agree_with_a_recount(doc: str, con: duckdb.DuckDBPyConnection) -> None:
    names, rows = run(con, the(doc, "ask for a slot it already had").sql)
    assert names == ["dialogue_id", "turn_idx", "slot", "given_in_message", "asked_in_reply", "text"]

    pack = load_pack("banking")
    cues = [(s.name, [c.lower() for c in s.cues]) for s in pack.slots]
    closing = [
        c.lower().replace("\u2019", "'") for c in [*pack.lexicon.confirm_cues, *pack.lexicon.done_cues]
    ]
    turns: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for row in con.execute(
        "select t.dialogue_id, t.turn_idx, t.speaker, t.text, t.gold_slots from turns t "
        "join dialogues d using (dialogue_id) "
        "where d.run_id = 'demo' and d.simulator_fault is null order by t.dialogue_id, t.turn_idx"
    ).fetchall():
        turns[row[0]].append(row[1:])
    expected = []
    for dialogue, messages in turns.items():
        said = [m for m in messages if m[1] == "user" and m[2]]
        given: dict[str, int] = {}
        for n, (_, _, _, gold) in enumerate(said, start=1):
            for span in gold or []:
                given.setdefault(span["slot"], n)
        for n, (turn_idx, _, text, _) in enumerate((m for m in messages if m[1] == "assistant"), start=1):
            lowered = text.lower().replace("\u2019", "'")
            if any(c in lowered for c in closing):
                continue
            for slot, slot_cues in cues:
                if any(c in lowered for c in slot_cues) and given.get(slot, n + 1) <= n:
                    expected.append((dialogue, turn_idx, slot, given[slot], n, text))
    assert rows == sorted(expected, key=lambda r: (r[0], r[1], r[2]))
    assert rows, "the drill has no re-asks to check"
    # A re-ask is never a confirmation, and the slot was said by then.
    assert not any("is that right" in r[5].lower() for r in rows)
    assert all(r[3] <= r[4] for r in rows)
