"""`botdrill generate`, `batches`, `review` and `dataset`: a data team's loop for rare intents, driven
through the CLI against a DuckDB file.

Batches are small (5 utterances, 1 dialogue and 1 near-miss negative per intent) so the whole file runs in
seconds. The batches shared by several tests are made once per module; a test that changes a database
(rollback, ratings) works on a copy of it.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ._util import invoke, one_line, query

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._loopback import LoopbackServer, RecordedRequest, Scripted, ToolCallSpec  # noqa: E402

SEEDS = ROOT / "docs" / "examples" / "banking_seeds.csv"
SMALL = ("--per-intent", "5", "--dialogues", "1", "--negatives", "1")
BATCH_LINE = re.compile(r"^Batch (\S+): (\d+) of (\d+) candidates kept", re.MULTILINE)


def generate(db: Path, *args: str, seeds: Path | None = SEEDS) -> Any:
    """`botdrill generate` with the small sizes, on `db`, from `seeds` (none when None)."""
    seed_args = ("--seeds", str(seeds)) if seeds is not None else ()
    return invoke("generate", *seed_args, "--db", str(db), *SMALL, *args)


def batch_of(result: Any) -> str:
    """The id of the batch a successful `generate` made, as its first line reports it."""
    assert result.exit_code == 0, result.stderr
    m = BATCH_LINE.search(result.stdout)
    assert m is not None, result.stdout
    return m.group(1)


def kept_texts(db: Path, batch_id: str) -> list[tuple[str, str, str]]:
    """(kind, intent, text) of a batch's kept examples, in the batch's order."""
    rows = query(
        db, "select kind, intent, text from examples where batch_id = ? and kept order by idx", [batch_id]
    )
    return [(k, i, t) for k, i, t in rows]


def copy_db(db: Path, to: Path) -> Path:
    """A copy of a closed botdrill database (with its write-ahead log, if one was left)."""
    target = to / db.name
    shutil.copy(db, target)
    wal = db.with_name(db.name + ".wal")
    if wal.exists():
        shutil.copy(wal, target.with_name(target.name + ".wal"))
    return target


def table_row(output: str, first: str) -> list[str]:
    """The cells of the table row whose first cell is `first` (rich's box-drawing tables)."""
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if cells and cells[0] == first:
            return cells
    raise AssertionError(f"no row {first!r} in:\n{output}")


@dataclass(frozen=True)
class Batches:
    """A database with three batches: `a` and `again` (seed 0) and `b` (seed 1)."""

    db: Path
    a: str
    again: str
    b: str
    first_output: str


@pytest.fixture(scope="module")
def batches(tmp_path_factory: pytest.TempPathFactory) -> Batches:
    db = tmp_path_factory.mktemp("generate") / "g.duckdb"
    first = generate(db, "--seed", "0")
    a = batch_of(first)
    again = batch_of(generate(db, "--seed", "0"))
    b = batch_of(generate(db, "--seed", "1"))
    return Batches(db=db, a=a, again=again, b=b, first_output=first.stdout)


# -- generate -------------------------------------------------------------------------------------------


def test_generate_reports_the_batch_and_its_gates_and_stores_it(batches: Batches) -> None:
    out = batches.first_output
    m = BATCH_LINE.search(out)
    assert m is not None and m.group(1) == batches.a
    kept, candidates = int(m.group(2)), int(m.group(3))
    assert 0 < kept < candidates
    assert "seed 0)" in out.splitlines()[0]
    assert "Gates" in out
    assert table_row(out, "generated")[1:] == [str(candidates), str(candidates)]
    for gate in ("alignment", "slot_coverage", "coherence", "naturalness", "near_duplicate", "quota"):
        table_row(out, gate)
    assert table_row(out, "diversity_floor")[2] == str(kept)
    assert "two-sample AUC" in out

    ((status, n_kept, n_candidates, seed, methods),) = query(
        batches.db,
        "select status, n_kept, n_candidates, seed, methods from batches where batch_id = ?",
        [batches.a],
    )
    assert (status, n_kept, n_candidates, seed) == ("active", kept, candidates, 0)
    assert methods == ["pack", "seed_templates", "lexical", "perturb:typo"]
    ((stored, stored_kept),) = query(
        batches.db,
        "select count(*), count(*) filter (where kept) from examples where batch_id = ?",
        [batches.a],
    )
    assert (stored, stored_kept) == (candidates, kept)
    kinds = {k for k, _, _ in kept_texts(batches.db, batches.a)}
    assert "utterance" in kinds and "dialogue" in kinds
    # Five utterances per target intent at most, as asked.
    per_intent = query(
        batches.db,
        "select intent, count(*) from examples where batch_id = ? and kept and kind = 'utterance' group by 1",
        [batches.a],
    )
    assert per_intent and all(n <= 5 for _, n in per_intent)


def test_the_same_seed_gives_the_same_kept_texts_and_another_seed_others(batches: Batches) -> None:
    assert len({batches.a, batches.again, batches.b}) == 3
    first = kept_texts(batches.db, batches.a)
    assert first and kept_texts(batches.db, batches.again) == first
    other = kept_texts(batches.db, batches.b)
    assert other and {t for _, _, t in other} != {t for _, _, t in first}


def test_gates_need_seeds_unless_they_are_turned_off(tmp_path: Path) -> None:
    db = tmp_path / "n.duckdb"
    refused = generate(db, seeds=None)
    assert refused.exit_code == 2
    message = one_line(refused.stderr)
    assert message.startswith("error: ")
    assert "--seeds" in message and "--no-gates" in message
    assert refused.stdout == ""

    ungated = generate(db, "--no-gates", seeds=None)
    batch_id = batch_of(ungated)
    assert batch_id.startswith("banking-")
    # Without gates only the checks that always apply run.
    assert "alignment" not in ungated.stdout
    table_row(ungated.stdout, "forbidden")
    table_row(ungated.stdout, "quota")
    ((selection, n_kept),) = query(db, "select selection, n_kept from batches where batch_id = ?", [batch_id])
    assert json.loads(selection)["gates"] is False and n_kept > 0
    assert query(db, "select count(*) from examples where batch_id = ? and kept", [batch_id])[0][0] == n_kept


def test_a_seed_with_an_unknown_intent_names_the_file_and_line(tmp_path: Path) -> None:
    seeds = tmp_path / "my_seeds.csv"
    seeds.write_text(
        "text,intent\nsomeone stole my card,lost_or_stolen_card\nwhere is my parcel,track_parcel\n",
        encoding="utf-8",
    )
    result = generate(tmp_path / "s.duckdb", seeds=seeds)
    assert result.exit_code == 2
    message = one_line(result.stderr)
    assert "my_seeds.csv line 3" in message and "'track_parcel'" in message
    assert "is not an intent of the spec" in message
    assert not (tmp_path / "s.duckdb").exists()  # nothing was written


def test_an_unknown_method_lists_the_known_ones(tmp_path: Path) -> None:
    result = generate(tmp_path / "m.duckdb", "--methods", "pack,backtranslate")
    assert result.exit_code == 2
    message = one_line(result.stderr)
    assert "unknown method backtranslate" in message
    known = message.split("known: ", 1)[1]
    assert "pack" in known and "seed_templates" in known and "perturb:typo" in known


def test_list_methods(tmp_path: Path) -> None:
    result = invoke("generate", "--list-methods", "--db", str(tmp_path / "unused.duckdb"))
    assert result.exit_code == 0, result.stderr
    names = result.stdout.split()
    assert "pack" in names and "perturb:typo" in names and "llm_paraphrase" in names
    assert not (tmp_path / "unused.duckdb").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--methods", "pack,llm_paraphrase"), "llm_paraphrase needs --llm"),
        (("--llm-cache", "sometimes"), "--llm-cache 'sometimes'"),
        (("--forbid", "no_such_file.txt"), "no_such_file.txt: no such file"),
        (("--intent", "order_pizza"), "target intent 'order_pizza' is not in the spec"),
    ],
)
def test_other_bad_options_fail_with_one_line(tmp_path: Path, args: tuple[str, ...], expected: str) -> None:
    result = generate(tmp_path / "o.duckdb", *args)
    assert result.exit_code == 2
    assert expected in one_line(result.stderr)


def test_forbidden_texts_are_never_kept(batches: Batches, tmp_path: Path) -> None:
    db = copy_db(batches.db, tmp_path)
    earlier = [t for k, _, t in kept_texts(db, batches.a) if k == "utterance"]
    forbidden = earlier[::2]
    assert len(forbidden) >= 3
    forbid = tmp_path / "test_set.txt"
    forbid.write_text("\n".join(forbidden) + "\n", encoding="utf-8")

    batch_id = batch_of(generate(db, "--seed", "0", "--forbid", str(forbid)))
    kept = {t for _, _, t in kept_texts(db, batch_id)}
    assert kept and not kept & set(forbidden)
    # The same seed made them again: the forbidden gate refused them, and said so.
    refused = {
        t
        for (t,) in query(
            db, "select text from examples where batch_id = ? and rejected_by = 'forbidden'", [batch_id]
        )
    }
    assert set(forbidden) <= refused


# -- batches --------------------------------------------------------------------------------------------


def test_batches_list_shows_every_batch(batches: Batches) -> None:
    result = invoke("batches", "list", "--db", str(batches.db))
    assert result.exit_code == 0, result.stderr
    for batch_id in (batches.a, batches.again, batches.b):
        row = table_row(result.stdout, batch_id)
        assert row[2] == "active"
    n_kept = query(batches.db, "select n_kept from batches where batch_id = ?", [batches.b])[0][0]
    assert table_row(result.stdout, batches.b)[5] == str(n_kept)


def test_batches_show_prints_the_gates_and_the_intents(batches: Batches) -> None:
    result = invoke("batches", "show", batches.a, "--db", str(batches.db))
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert out.startswith(f"batch {batches.a} (active), created ")
    assert "seed 0, parent \u2013" in out  # no parent
    assert "Gates" in out and "Per intent" in out
    table_row(out, "alignment")
    kept, candidates = query(
        batches.db,
        "select count(*) filter (where kept), count(*) from examples "
        "where batch_id = ? and intent = 'report_fraud' and kind = 'utterance'",
        [batches.a],
    )[0]
    fraud = next(
        cells
        for line in out.splitlines()
        if (cells := [c.strip() for c in line.strip().strip("│").split("│")])[:2]
        == ["report_fraud", "utterance"]
    )
    assert fraud[2:4] == [str(kept), str(candidates)]


def test_batches_show_json_is_json(batches: Batches) -> None:
    result = invoke("batches", "show", batches.b, "--db", str(batches.db), "--json")
    assert result.exit_code == 0, result.stderr

    def no_constant(name: str) -> None:
        raise AssertionError(f"{name} is not JSON")

    info = json.loads(result.stdout, parse_constant=no_constant)
    assert info["batch_id"] == batches.b and info["seed"] == 1 and info["status"] == "active"
    assert info["config"]["seed"] == 1
    assert info["gate_counts"][0]["gate"] == "generated"
    assert sum(r["kept"] for r in info["per_intent"]) == info["n_kept"] > 0


def test_batches_diff_prints_the_seed_that_differs(batches: Batches) -> None:
    result = invoke("batches", "diff", batches.a, batches.b, "--db", str(batches.db))
    assert result.exit_code == 0, result.stderr
    assert "Settings that differ" in result.stdout
    assert table_row(result.stdout, "seed")[1:] == ["0", "1"]
    assert f"only in {batches.a}" in one_line(result.stdout)

    same = invoke("batches", "diff", batches.a, batches.again, "--db", str(batches.db))
    assert same.exit_code == 0, same.stderr
    shared = {t for _, _, t in kept_texts(batches.db, batches.a)}
    assert shared
    assert f"kept texts: {len(shared)} shared, 0 only in {batches.a}, 0 only in {batches.again}" in one_line(
        same.stdout
    )
    with pytest.raises(AssertionError):  # nothing that shapes the content differs
        table_row(same.stdout, "seed")


def test_rollback_marks_the_batch_and_happens_once(batches: Batches, tmp_path: Path) -> None:
    db = copy_db(batches.db, tmp_path)
    result = invoke("batches", "rollback", batches.b, "--reason", "x", "--db", str(db))
    assert result.exit_code == 0, result.stderr
    n_kept = query(db, "select n_kept from batches where batch_id = ?", [batches.b])[0][0]
    assert one_line(result.stdout).startswith(f"Rolled back {batches.b}: {n_kept} kept examples")

    listed = invoke("batches", "list", "--db", str(db))
    assert listed.exit_code == 0, listed.stderr
    assert table_row(listed.stdout, batches.b)[2] == "rolled_back"
    assert table_row(listed.stdout, batches.a)[2] == "active"
    shown = invoke("batches", "show", batches.b, "--db", str(db))
    assert f"batch {batches.b} (rolled_back)" in shown.stdout
    assert re.search(r"rolled back \d{4}-\d\d-\d\d \d\d:\d\d: x$", shown.stdout, re.MULTILINE)
    # The rows stay.
    assert query(db, "select count(*) from examples where batch_id = ? and kept", [batches.b])[0][0] == n_kept

    twice = invoke("batches", "rollback", batches.b, "--reason", "x", "--db", str(db))
    assert twice.exit_code == 2
    assert "already rolled back" in one_line(twice.stderr)


@pytest.mark.parametrize(
    "command",
    [
        ("batches", "rollback", "banking-nope"),
        ("batches", "show", "banking-nope"),
        ("batches", "diff", "banking-nope", "{a}"),
        ("review", "export", "banking-nope", "--out", "{tmp}/s.csv"),
    ],
)
def test_an_unknown_batch_is_an_error(batches: Batches, tmp_path: Path, command: tuple[str, ...]) -> None:
    args = [c.format(a=batches.a, tmp=tmp_path) for c in command]
    result = invoke(*args, "--db", str(batches.db))
    assert result.exit_code == 2
    assert "no batch 'banking-nope'" in one_line(result.stderr)
    assert not (tmp_path / "s.csv").exists()


def test_batch_commands_need_an_existing_database(tmp_path: Path) -> None:
    db = tmp_path / "none.duckdb"
    result = invoke("batches", "list", "--db", str(db))
    assert result.exit_code == 2
    assert "no such database" in result.stderr
    assert not db.exists()


# -- review ---------------------------------------------------------------------------------------------


def fill(sheet: Path, out: Path, kept: dict[str, bool], flip: frozenset[int] = frozenset()) -> int:
    """`out`: a copy of `sheet` as a rater fills it: kept examples usable (5, 4), refused ones not (2, 2);
    the rows numbered in `flip` (from 0) get the other verdict. Returns the rows rated."""
    with sheet.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        fields = list(reader.fieldnames or ())
        rows = list(reader)
    for i, row in enumerate(rows):
        good = kept[row["example_id"]] != (i in flip)
        row["usable"] = "yes" if good else "no"
        row["intent_fit"] = "5" if good else "2"
        row["naturalness"] = "4" if good else "2"
        row["comment"] = "" if good else "sounds off"
    with out.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


@pytest.fixture
def sheet(batches: Batches, tmp_path: Path) -> tuple[Path, Path, dict[str, bool]]:
    """A copy of the database, a 20-row rating sheet of batch `a`, and which examples were kept."""
    db = copy_db(batches.db, tmp_path)
    out = tmp_path / "sheet.csv"
    result = invoke("review", "export", batches.a, "--out", str(out), "--n", "20", "--db", str(db))
    assert result.exit_code == 0, result.stderr
    assert one_line(result.stdout) == f"Wrote 20 examples of {batches.a} to {out}."
    kept = {
        e: bool(k)
        for e, k in query(db, "select example_id, kept from examples where batch_id = ?", [batches.a])
    }
    return db, out, kept


def test_review_export_writes_a_blank_sheet_of_kept_and_refused(
    batches: Batches, sheet: tuple[Path, Path, dict[str, bool]]
) -> None:
    _, out, kept = sheet
    with out.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert reader.fieldnames == [
        "example_id", "batch_id", "intent", "text", "intent_fit", "naturalness", "usable", "comment"
    ]  # fmt: skip
    assert len(rows) == 20 and len({r["example_id"] for r in rows}) == 20
    assert {r["batch_id"] for r in rows} == {batches.a}
    assert all(r["usable"] == r["intent_fit"] == r["naturalness"] == "" for r in rows)
    verdicts = [kept[r["example_id"]] for r in rows]
    assert verdicts.count(False) == 6  # --refused 0.3 of 20
    assert verdicts.count(True) == 14


def test_review_import_reports_agreement_and_calibrate_suggests_a_threshold(
    batches: Batches, sheet: tuple[Path, Path, dict[str, bool]], tmp_path: Path
) -> None:
    db, out, kept = sheet
    raters = [tmp_path / "ana.csv", tmp_path / "ben.csv", tmp_path / "chloe.csv"]
    n = fill(out, raters[0], kept)
    fill(out, raters[1], kept, flip=frozenset({0, 7}))
    fill(out, raters[2], kept, flip=frozenset({3}))

    result = invoke("review", "import", batches.a, *map(str, raters), "--db", str(db))
    assert result.exit_code == 0, result.stderr
    assert one_line(result.stdout).startswith(f"Stored {3 * n * 3} ratings from 3 sheets.")
    assert "Agreement" in result.stdout
    stored = {
        d: (alpha, units, raters_n)
        for d, alpha, units, raters_n in query(
            db, "select dimension, alpha, units, raters from agreement where batch_id = ?", [batches.a]
        )
    }
    assert set(stored) == {"intent_fit", "naturalness", "usable"}
    for dimension, (alpha, units, raters_n) in stored.items():
        row = table_row(result.stdout, dimension)
        assert alpha is not None and 0 < alpha < 1  # mostly agreed, not always
        assert row[1] == f"{alpha:.3f}"
        assert row[2] == ("nominal" if dimension == "usable" else "ordinal")
        assert row[3:5] == [str(units), str(raters_n)] == [str(n), "3"]

    calibrated = invoke("review", "calibrate", batches.a, "--gate", "alignment", "--db", str(db))
    assert calibrated.exit_code == 0, calibrated.stderr
    ((threshold, n_rated),) = query(
        db, "select threshold, n from calibrations where batch_id = ? and gate = 'alignment'", [batches.a]
    )
    row = table_row(calibrated.stdout, "alignment")
    # "was" is the batch's own threshold; a near-miss negative of an intent without seeds has no alignment
    # score, so it may be rated and still not count.
    assert row[1] == f"{threshold:.3f}" and row[2] == "0.100"
    assert row[4] == str(n_rated) and 4 <= n_rated <= n
    assert f"--min-alignment {threshold:.3f} --parent {batches.a}" in one_line(calibrated.stdout)


def test_calibrate_without_both_verdicts_says_why(
    batches: Batches, sheet: tuple[Path, Path, dict[str, bool]], tmp_path: Path
) -> None:
    db, out, _ = sheet
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    rated = tmp_path / "dee.csv"
    with rated.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({**r, "usable": "yes"} for r in rows)
    assert invoke("review", "import", batches.a, str(rated), "--db", str(db)).exit_code == 0

    result = invoke("review", "calibrate", batches.a, "--gate", "alignment", "--db", str(db))
    assert result.exit_code == 2
    message = one_line(result.stderr)
    assert "gate 'alignment' on usable needs at least 2 good and 2 bad verdicts" in message
    assert re.search(r"got \d+ good and 0 bad", message)
    assert not query(db, "select * from calibrations where batch_id = ?", [batches.a])


# -- dataset --------------------------------------------------------------------------------------------


def build(db: Path, out: Path, *args: str) -> Any:
    return invoke(
        "dataset", "build", "--real", str(SEEDS), "--out", str(out), "--format", "hf", "--ratio", "2",
        "--db", str(db), *args,
    )  # fmt: skip


def train_by_batch(out: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in (out / "train.jsonl").read_text(encoding="utf-8").splitlines():
        run_id = json.loads(line)["run_id"]
        counts[run_id] = counts.get(run_id, 0) + 1
    return counts


def test_dataset_build_leaves_a_rolled_back_batch_out(batches: Batches, tmp_path: Path) -> None:
    db = copy_db(batches.db, tmp_path)
    before = build(db, tmp_path / "before")
    assert before.exit_code == 0, before.stderr
    for name in ("train.jsonl", "validation.jsonl", "manifest.json"):
        assert (tmp_path / "before" / name).is_file()
    manifest = json.loads((tmp_path / "before" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["format"] == "hf" and manifest["ratio"] == 2
    assert set(manifest["batches"]) == {batches.a, batches.again, batches.b}
    totals = manifest["totals"]
    assert one_line(before.stdout) == (
        f"Wrote {tmp_path / 'before'}: hf: {totals['real_train']} real + {totals['synthetic']} synthetic for "
        f"training, {totals['validation']} real for validation, {len(manifest['counts'])} intents"
    )
    used = train_by_batch(tmp_path / "before")
    assert used.get(batches.b, 0) > 0
    assert sum(n for run, n in used.items() if run != "real") == totals["synthetic"]
    validation = (tmp_path / "before" / "validation.jsonl").read_text(encoding="utf-8").splitlines()
    assert {json.loads(line)["run_id"] for line in validation} == {"real"}

    assert invoke("batches", "rollback", batches.b, "--reason", "x", "--db", str(db)).exit_code == 0
    after = build(db, tmp_path / "after")
    assert after.exit_code == 0, after.stderr
    manifest_after = json.loads((tmp_path / "after" / "manifest.json").read_text(encoding="utf-8"))
    assert set(manifest_after["batches"]) == {batches.a, batches.again}
    used_after = train_by_batch(tmp_path / "after")
    assert batches.b not in used_after
    assert used_after["real"] == used["real"]
    assert manifest_after["totals"]["synthetic"] < totals["synthetic"]

    named = build(db, tmp_path / "named", "--batch", batches.b)
    assert named.exit_code == 2
    assert f"batch {batches.b!r} is rolled back" in one_line(named.stderr)
    assert not (tmp_path / "named" / "manifest.json").exists()


# -- LLM paraphrases, recorded and replayed -------------------------------------------------------------


def paraphrases(request: RecordedRequest) -> Scripted:
    """The scripted paraphraser: two rewrites of the seed found in the request's JSON data."""
    data = json.loads(request.messages[-1]["content"].split("\n", 1)[1])
    text = data["message"]
    return Scripted(
        tool_calls=(
            ToolCallSpec(
                "Paraphrases",
                {"texts": [f"hello, {text}, and i would really like some help with it", f"so um {text}?"]},
            ),
        )
    )


def test_llm_paraphrases_are_recorded_then_replayed_without_a_request(tmp_path: Path) -> None:
    db = tmp_path / "llm.duckdb"
    server = LoopbackServer(paraphrases, lifetime=60).start()
    try:
        config = tmp_path / "paraphraser.yaml"
        config.write_text(
            f"llm:\n  base_url: {server.base_url}\n  model: para-model\n  timeout: 5\n  deadline: 10\n"
            "  max_retries: 0\nn: 2\n",
            encoding="utf-8",
        )
        args = ("--llm", str(config), "--methods", "llm_paraphrase,pack", "--seed", "3")
        recorded = generate(db, *args)
        batch_id = batch_of(recorded)
        assert "failed" not in recorded.stdout + recorded.stderr
        sent = len(server.chat_requests())
    finally:
        server.stop()
    assert not server.running
    n_seeds = sum(1 for _ in SEEDS.read_text(encoding="utf-8").splitlines()) - 1
    assert sent == n_seeds

    methods = [m for (m,) in query(db, "select method from examples where batch_id = ?", [batch_id])]
    assert any(m.startswith("llm_paraphrase") for m in methods)
    kept_methods = [
        m for _, m in query(db, "select idx, method from examples where batch_id = ? and kept", [batch_id])
    ]
    assert any(m.startswith("llm_paraphrase") for m in kept_methods)
    ((calls, for_batch),) = query(
        db, "select count(*), count(*) filter (where run_id = ?) from llm_calls", [batch_id]
    )
    assert calls == for_batch == sent
    ((variants,),) = query(db, "select prompt_variants from batches where batch_id = ?", [batch_id])
    assert [v["id"] for v in json.loads(variants)] == ["plain-v1", "casual-v1", "detailed-v1"]

    served = server.served
    replayed = generate(db, *args, "--llm-cache", "replay")
    replay_id = batch_of(replayed)
    assert replay_id != batch_id
    assert "failed" not in replayed.stdout + replayed.stderr  # a replay miss would say so
    assert server.served == served
    assert query(db, "select count(*) from llm_calls")[0][0] == calls  # nothing new recorded
    assert kept_texts(db, replay_id) == kept_texts(db, batch_id)

    # a paraphraser whose prompts changed (n differs) has nothing recorded: the replay refuses to go on
    config.write_text(
        f"llm:\n  base_url: {server.base_url}\n  model: para-model\n  timeout: 5\n  deadline: 10\n"
        "  max_retries: 0\nn: 3\n",
        encoding="utf-8",
    )
    missed = generate(db, *args, "--llm-cache", "replay")
    assert missed.exit_code == 2
    assert "no recorded paraphrase" in one_line(missed.stderr)
    assert "paraphrase of" in missed.stderr
    assert server.served == served
