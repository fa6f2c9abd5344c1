"""docs/schema.md documents exactly the database a fresh store creates, so the page cannot go stale.

Every table and view has a `### `name`` heading in the right part of the page (`## Tables` or `## Views`),
and its section has one row per column, in the database's order, with the column's type. A table's rows
also say whether the column can be NULL (`no` exactly when it is NOT NULL), and its section names the
primary key. The page may name no table, view or column the database lacks.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from botdrill.simulator._store import SCHEMA_VERSION, Store

DOC = Path(__file__).resolve().parents[2] / "docs" / "schema.md"

_HEADING = re.compile(r"^### `([a-z_]+)`\s*$", re.M)
_PART = re.compile(r"^## (.+?)\s*$", re.M)
_ROW = re.compile(r"^\| `([A-Za-z0-9_]+)` \|(.*)\|\s*$")
_PRIMARY_KEY = re.compile(r"Primary key:\s+(none|`\(([a-z_, ]+)\)`)\.")


class Section(NamedTuple):
    """One `### `name`` section of the page."""

    name: str
    part: str
    """The `## ` heading it sits under: `Tables` or `Views`."""
    text: str
    rows: list[tuple[str, list[str]]]
    """(column, the other cells of its row)."""


class Column(NamedTuple):
    name: str
    type: str
    nullable: bool


def _cells(rest: str) -> list[str]:
    return [c.strip() for c in rest.split(" | ")]


def sections(doc: str) -> Iterator[Section]:
    """The page's object sections, in order."""
    parts = [(m.start(), m.group(1)) for m in _PART.finditer(doc)]
    headings = list(_HEADING.finditer(doc))
    for i, match in enumerate(headings):
        end = headings[i + 1].start() if i + 1 < len(headings) else len(doc)
        nxt = next((start for start, _ in parts if start > match.start()), len(doc))
        text = doc[match.start() : min(end, nxt)]
        part = [name for start, name in parts if start < match.start()][-1]
        rows = []
        for line in text.splitlines():
            row = _ROW.match(line)
            if row:
                rows.append((row.group(1), _cells(row.group(2))))
        yield Section(match.group(1), part, text, rows)


def _norm_type(text: str) -> str:
    return re.sub(r'[\s"`]', "", text).upper()


def database(con: Any) -> tuple[dict[str, str], dict[str, list[Column]], dict[str, list[str]]]:
    """Objects (name -> 'BASE TABLE' or 'VIEW'), their columns in order, and the tables' primary keys."""
    kinds = dict(
        con.execute(
            "select table_name, table_type from information_schema.tables where table_schema = 'main'"
        ).fetchall()
    )
    columns: dict[str, list[Column]] = {name: [] for name in kinds}
    for table, column, data_type, nullable in con.execute(
        "select table_name, column_name, data_type, is_nullable from information_schema.columns "
        "where table_schema = 'main' order by table_name, ordinal_position"
    ).fetchall():
        columns[table].append(Column(column, data_type, nullable == "YES"))
    keys = {
        table: list(names)
        for table, names in con.execute(
            "select table_name, constraint_column_names from duckdb_constraints() "
            "where constraint_type = 'PRIMARY KEY' and schema_name = 'main'"
        ).fetchall()
    }
    return kinds, columns, keys


def problems(doc: str, con: Any) -> list[str]:
    """Everything on which the page and the database disagree (nothing, when the page is right)."""
    kinds, columns, keys = database(con)
    found: list[str] = []
    documented = list(sections(doc))
    names = [s.name for s in documented]
    for name in sorted({n for n in names if names.count(n) > 1}):
        found.append(f"{name}: documented more than once")
    for name in sorted(set(kinds) - set(names)):
        found.append(f"{name}: a {kinds[name].lower()} with no section")
    for section in documented:
        name = section.name
        if name not in kinds:
            found.append(f"{name}: documented, but the database has no such table or view")
            continue
        expected_part = "Tables" if kinds[name] == "BASE TABLE" else "Views"
        if section.part != expected_part:
            found.append(f"{name}: under '## {section.part}', expected '## {expected_part}'")
        actual = columns[name]
        listed = [column for column, _ in section.rows]
        for column in [c.name for c in actual if c.name not in listed]:
            found.append(f"{name}.{column}: not documented")
        for column in [c for c in listed if c not in {a.name for a in actual}]:
            found.append(f"{name}.{column}: documented, but the database has no such column")
        if [c for c in listed if c in {a.name for a in actual}] != [
            a.name for a in actual if a.name in listed
        ]:
            found.append(f"{name}: columns not listed in the database's order")
        if len(listed) != len(set(listed)):
            found.append(f"{name}: a column is listed twice")
        by_name = {c.name: c for c in actual}
        width = 3 if kinds[name] == "BASE TABLE" else 2
        for column, cells in section.rows:
            if column not in by_name:
                continue
            if len(cells) != width or not all(cells):
                found.append(f"{name}.{column}: expected {width} filled cells after the name, got {cells}")
                continue
            if _norm_type(cells[0]) != _norm_type(by_name[column].type):
                found.append(f"{name}.{column}: documented as {cells[0]}, the type is {by_name[column].type}")
            if kinds[name] == "BASE TABLE":
                says_never_null = cells[1] == "no"
                if says_never_null == by_name[column].nullable:
                    state = "nullable" if by_name[column].nullable else "NOT NULL"
                    found.append(f"{name}.{column}: NULL cell {cells[1]!r}, but the column is {state}")
        if kinds[name] == "BASE TABLE":
            match = _PRIMARY_KEY.search(section.text)
            if match is None:
                found.append(f"{name}: no 'Primary key: ...' sentence")
            else:
                listed_key = (
                    [] if match.group(1) == "none" else [k.strip() for k in match.group(2).split(",")]
                )
                if listed_key != keys.get(name, []):
                    found.append(
                        f"{name}: primary key documented as {listed_key}, it is {keys.get(name, [])}"
                    )
    # Links like [`name`](#name) must point at the section of an object the database has.
    for label, anchor in re.findall(r"\[`([a-z_]+)`\]\(#([a-z_]+)\)", doc):
        if label != anchor or anchor not in kinds or anchor not in names:
            found.append(f"link [{label}](#{anchor}): no section of that table or view")
    return found


@pytest.fixture(scope="module")
def fresh() -> Iterator[Any]:
    store = Store(":memory:")
    try:
        yield store.con
    finally:
        store.close()


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def test_the_page_documents_every_table_view_and_column_and_nothing_else(doc: str, fresh: Any) -> None:
    assert problems(doc, fresh) == []


def test_the_page_covers_the_objects_of_a_fresh_store(doc: str, fresh: Any) -> None:
    kinds, columns, _ = database(fresh)
    # The store makes the nine tables and sixteen views this page was written for, and the page has them.
    assert sum(k == "BASE TABLE" for k in kinds.values()) >= 9
    assert sum(k == "VIEW" for k in kinds.values()) >= 16
    documented = {s.name for s in sections(doc)}
    assert documented == set(kinds)
    assert sum(len(s.rows) for s in sections(doc)) == sum(len(c) for c in columns.values())


def test_the_page_states_the_current_schema_version(doc: str, fresh: Any) -> None:
    assert fresh.execute("select max(version) from schema_version").fetchone() == (SCHEMA_VERSION,)
    assert f"schema version {SCHEMA_VERSION}" in doc
    assert f"This page describes version {SCHEMA_VERSION}" in doc
    # Every table a migration creates or changes is named in the migrations section.
    migrations = doc.split("## Schema versions and migrations", 1)[1]
    for table in ("dialogues", "turns", "edits", "coverage", "capacity", "shrinks"):
        assert f"`{table}" in migrations, table


def test_the_rolled_up_views_are_the_ones_the_conventions_name(doc: str, fresh: Any) -> None:
    conventions = doc.split("## Conventions", 1)[1].split("## Tables", 1)[0]
    star = conventions.split("**`'*'` means \"all\".**", 1)[1].split("\n\n", 1)[0]
    named = set(re.findall(r"`([a-z_]+)`", star))
    kinds, _, _ = database(fresh)
    views = {name for name, kind in kinds.items() if kind == "VIEW"}
    assert named - {"routed_intent"} <= views
    assert {"routing", "slot_scores", "success_rates", "pass_k", "brittleness"} <= named


def test_the_checker_finds_what_a_stale_page_gets_wrong(doc: str, fresh: Any) -> None:
    """The comparison above can fail: a page with a dropped, an invented and a mistyped column, a table
    left out, a view that does not exist and a wrong key is caught on each count."""
    stale = doc.replace(
        "| `escalation_turn` | `INTEGER` | when not escalated |",
        "| `gone` | `INTEGER` | when not escalated |",
        1,
    )
    stale = stale.replace("| `sim_seconds` | `DOUBLE` | no |", "| `sim_seconds` | `INTEGER` | no |", 1)
    stale = stale.replace(
        "| `captured` | `VARCHAR` | when the bot never exposed the slot |",
        "| `captured` | `VARCHAR` | no |",
        1,
    )
    stale = re.sub(r"Primary key:\s+`\(dialogue_id, slot\)`", "Primary key: `(dialogue_id)`", stale, count=1)
    stale = stale.replace("### `shrinks`", "### `shrunk`", 1)
    stale += "\n## Views\n\n### `no_such_view`\n\n| column | type | meaning |\n|---|---|---|\n"
    found = problems(stale, fresh)
    expected = [
        "shrinks: a base table with no section",
        "dialogues.escalation_turn: not documented",
        "dialogues.gone: documented, but the database has no such column",
        "dialogues.sim_seconds: documented as `INTEGER`, the type is DOUBLE",
        "slot_checks.captured: NULL cell 'no', but the column is nullable",
        "slot_checks: primary key documented as ['dialogue_id'], it is ['dialogue_id', 'slot']",
        "shrunk: documented, but the database has no such table or view",
        "no_such_view: documented, but the database has no such table or view",
        "link [shrinks](#shrinks): no section of that table or view",
    ]
    for problem in expected:
        assert any(f.startswith(problem) for f in found), (problem, found)
