"""Resuming runs: a run id names a run; re-using it fills in what is missing, even after a SIGKILL."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from botdrill.agents._reference import ReferenceAssistant
from botdrill.simulator import RunConfig, RunMismatchError, run_drill
from botdrill.simulator._store import Store
from botdrill.simulator._variants import DEFAULT_PERTURBATIONS

from ._util import (
    CLI,
    cli_env,
    digests,
    one_line,
    query,
    run_cli,
    stored_transcripts,
    transcript_problems,
    transcripts,
)

# -- in process -------------------------------------------------------------------------------------

DIALOGUE_ROW = "select * exclude (run_id) from dialogues where run_id = ? order by idx"


def _runs_row(db: Path, run_id: str) -> tuple[object, ...]:
    rows = query(
        db,
        "select status, seed, n_dialogues, created_at, finished_at, config::varchar from runs "
        "where run_id = ?",
        [run_id],
    )
    assert len(rows) == 1
    return rows[0]


def test_resume_with_a_larger_n_adds_only_the_missing_dialogues(tmp_path: Path) -> None:
    db = tmp_path / "r.duckdb"
    first = run_drill(RunConfig(db=str(db), n=60, seed=4, run_id="r", concurrency=16, perturb="none"))
    assert (first.simulated, first.skipped) == (60, 0)
    before_rows = query(db, DIALOGUE_ROW, ["r"])
    before_turns = transcripts(db, "r")
    before_checks = query(db, "select * from slot_checks order by all")
    assert len(before_rows) == 60

    second = run_drill(RunConfig(db=str(db), n=100, seed=4, run_id="r", concurrency=64, perturb="none"))
    assert (second.simulated, second.skipped) == (40, 60)
    assert query(db, "select count(*), count(distinct dialogue_id), min(idx), max(idx) from dialogues") == [
        (100, 100, 0, 99)
    ]
    assert query(
        db, "select count(*) from (select dialogue_id, turn_idx from turns group by all having count(*) > 1)"
    ) == [(0,)]
    # The first 60 are untouched: same rows, same turns, same slot checks.
    after_rows = query(db, DIALOGUE_ROW, ["r"])
    assert after_rows[:60] == before_rows
    assert [t for t in transcripts(db, "r") if t[0] < 60] == before_turns
    assert [
        c for c in query(db, "select * from slot_checks order by all") if int(c[1].split("-")[1]) < 60
    ] == before_checks
    status, seed, n, *_ = _runs_row(db, "r")
    assert (status, seed, n) == ("finished", 4, 100)
    assert query(db, "select count(*) from runs") == [(1,)]

    # Resumed in two parts, or run in one go: the same 100 dialogues.
    fresh = tmp_path / "fresh.duckdb"
    run_drill(RunConfig(db=str(fresh), n=100, seed=4, run_id="r", perturb="none"))
    assert transcripts(fresh, "r") == transcripts(db, "r")
    assert digests(fresh, "r") == digests(db, "r")


def test_resume_of_a_complete_run_simulates_nothing(tmp_path: Path) -> None:
    db = tmp_path / "r.duckdb"
    run_drill(RunConfig(db=str(db), n=30, seed=2, run_id="done", perturb="none"))
    rows = query(db, DIALOGUE_ROW, ["done"])
    again = run_drill(RunConfig(db=str(db), n=30, seed=2, run_id="done", concurrency=3, perturb="none"))
    assert (again.simulated, again.skipped) == (0, 30)
    assert query(db, DIALOGUE_ROW, ["done"]) == rows
    # A smaller n does not forget what is stored.
    smaller = run_drill(RunConfig(db=str(db), n=10, seed=2, run_id="done", perturb="none"))
    assert smaller.simulated == 0
    assert query(db, "select count(*) from dialogues") == [(30,)]
    status, _, n, *_ = _runs_row(db, "done")
    assert (status, n) == ("finished", 30)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"seed": 5, "n": 80}, "seed"),
        ({"max_turns": 3}, "max_turns"),
        ({"perturb": "default"}, "perturb"),
        ({"perturb": "typo"}, "perturb"),
    ],
)
def test_resume_with_other_options_is_refused_and_changes_nothing(
    tmp_path: Path, change: dict[str, Any], field: str
) -> None:
    db = tmp_path / "r.duckdb"
    run_drill(RunConfig(db=str(db), n=40, seed=4, run_id="r", perturb="none"))
    rows, turns, run = query(db, DIALOGUE_ROW, ["r"]), transcripts(db, "r"), _runs_row(db, "r")
    options: dict[str, Any] = {"n": 40, "seed": 4, "run_id": "r", "perturb": "none"} | change
    with pytest.raises(RunMismatchError) as info:
        run_drill(RunConfig(db=str(db), **options))
    message = str(info.value)
    assert "'r'" in message
    assert field in message
    assert info.value.code == "run_mismatch"
    assert query(db, DIALOGUE_ROW, ["r"]) == rows
    assert transcripts(db, "r") == turns
    assert _runs_row(db, "r") == run
    # The database is closed again: a correct resume still works.
    assert run_drill(RunConfig(db=str(db), n=41, seed=4, run_id="r", perturb="none")).simulated == 1


class Stop(Exception):
    """Raised from the progress callback to interrupt a run mid-way."""


def test_an_interrupted_run_keeps_what_finished_and_resumes(tmp_path: Path) -> None:
    db = tmp_path / "r.duckdb"
    seen: list[int] = []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        assert total == 80
        if done == 30:
            raise Stop

    with pytest.raises(Stop):
        run_drill(
            RunConfig(db=str(db), n=80, seed=6, run_id="i", concurrency=8, perturb="none"),
            on_progress=progress,
        )
    assert seen[0] == 0 and seen[-1] == 30
    # The 30 dialogues handed to the store before the interruption are stored, whole; the run says so.
    assert query(db, "select count(*) from dialogues") == [(30,)]
    assert query(db, "select status, finished_at is not null from runs") == [("interrupted", True)]
    assert query(
        db,
        "select count(*) from dialogues d where user_turns + assistant_turns != "
        "(select count(*) from turns t where t.dialogue_id = d.dialogue_id)",
    ) == [(0,)]

    resumed = run_drill(RunConfig(db=str(db), n=80, seed=6, run_id="i", perturb="none"))
    assert (resumed.simulated, resumed.skipped) == (50, 30)
    assert query(db, "select status from runs") == [("finished",)]
    fresh = tmp_path / "fresh.duckdb"
    run_drill(RunConfig(db=str(fresh), n=80, seed=6, run_id="i", perturb="none"))
    assert transcripts(db, "i") == transcripts(fresh, "i")


class RecordingReference(ReferenceAssistant):  # type: ignore[misc]
    """The built-in bot, noting which dialogues it finished."""

    def __init__(self) -> None:
        super().__init__()
        self.finished: list[str] = []

    def forget(self, thread_id: str) -> None:
        self.finished.append(thread_id)
        super().forget(thread_id)


def test_an_interrupted_paired_run_resumes_exactly_the_missing_dialogues(tmp_path: Path) -> None:
    db = tmp_path / "p.duckdb"
    variants = 1 + len(DEFAULT_PERTURBATIONS)
    total = 12 * variants

    def progress(done: int, seen_total: int) -> None:
        assert seen_total == total
        if done == 30:
            raise Stop

    first = RecordingReference()
    with pytest.raises(Stop):
        run_drill(
            RunConfig(db=str(db), n=12, seed=6, run_id="p", concurrency=8),
            on_progress=progress,
            assistant=first,
        )
    stored = dict(query(db, "select idx, dialogue_id from dialogues"))
    assert len(stored) == 30
    assert sorted(first.finished) == sorted(stored.values())
    assert query(db, "select status, n_dialogues from runs") == [("interrupted", total)]
    before = query(db, DIALOGUE_ROW, ["p"])
    before_turns = transcripts(db, "p")

    # Resuming with other perturbations would not reproduce the run.
    for other in ("none", "typo", "all"):
        with pytest.raises(RunMismatchError, match="perturb"):
            run_drill(RunConfig(db=str(db), n=12, seed=6, run_id="p", perturb=other))
    assert query(db, DIALOGUE_ROW, ["p"]) == before

    second = RecordingReference()
    resumed = run_drill(RunConfig(db=str(db), n=12, seed=6, run_id="p"), assistant=second)
    assert (resumed.simulated, resumed.skipped) == (total - 30, 30)
    ids = dict(query(db, "select idx, dialogue_id from dialogues"))
    assert sorted(ids) == list(range(total))
    # Exactly the missing dialogues were simulated, each once; the stored ones were left as they were.
    assert sorted(second.finished) == sorted(set(ids.values()) - set(stored.values()))
    assert len(second.finished) == len(set(second.finished))
    assert [r for r in query(db, DIALOGUE_ROW, ["p"]) if r[1] in stored] == before
    assert [t for t in transcripts(db, "p") if t[0] in stored] == before_turns
    assert query(db, "select status, n_dialogues from runs") == [("finished", total)]
    # Every scenario has its clean twin and every variant.
    assert query(
        db, "select count(distinct pair_id), count(*), count(distinct perturbation) from dialogues"
    ) == [(12, total, variants)]
    assert query(db, "select count(*) from pairs") == [(12 * (variants - 1),)]
    assert {
        d: p
        for d, (end, turns) in stored_transcripts(db, "p").items()
        if (p := transcript_problems(turns, end))
    } == {}

    fresh = tmp_path / "fresh.duckdb"
    run_drill(RunConfig(db=str(fresh), n=12, seed=6, run_id="p"))
    assert transcripts(fresh, "p") == transcripts(db, "p")
    assert digests(fresh, "p") == digests(db, "p")
    assert query(fresh, "select * from edits order by all") == query(db, "select * from edits order by all")


def test_a_paired_run_resumed_with_a_larger_n_adds_whole_pairs(tmp_path: Path) -> None:
    db = tmp_path / "p.duckdb"
    variants = 1 + len(DEFAULT_PERTURBATIONS)
    run_drill(RunConfig(db=str(db), n=3, seed=2, run_id="g", perturb="default"))
    before = query(db, DIALOGUE_ROW, ["g"])
    more = run_drill(RunConfig(db=str(db), n=5, seed=2, run_id="g", perturb="default"))
    assert (more.simulated, more.skipped) == (2 * variants, 3 * variants)
    assert query(db, DIALOGUE_ROW, ["g"])[: 3 * variants] == before
    assert query(db, "select pair_id, count(*) from dialogues group by all order by all") == [
        (f"g-{i:06d}", variants) for i in range(5)
    ]
    assert query(
        db, "select count(*) from dialogues where idx // ? != split_part(pair_id, '-', 2)::int", [variants]
    ) == [(0,)]


def test_resume_with_another_critical_share_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "r.duckdb"
    run_drill(RunConfig(db=str(db), n=30, seed=1, run_id="cs", critical_share=0.0))
    assert query(db, "select count(*) from dialogues where critical") == [(0,)]
    with pytest.raises(RunMismatchError, match="critical_share"):
        run_drill(RunConfig(db=str(db), n=50, seed=1, run_id="cs", critical_share=1.0))


def test_two_runs_share_a_database_without_mixing(tmp_path: Path) -> None:
    db = tmp_path / "r.duckdb"
    run_drill(RunConfig(db=str(db), n=20, seed=1, run_id="a", perturb="none"))
    run_drill(RunConfig(db=str(db), n=25, seed=2, run_id="b", perturb="none"))
    assert dict(query(db, "select run_id, count(*) from dialogues group by all")) == {"a": 20, "b": 25}
    assert query(db, "select count(*) from dialogues where not starts_with(dialogue_id, run_id || '-')") == [
        (0,)
    ]
    assert query(
        db, "select count(*) from turns t join dialogues d using (dialogue_id) where t.run_id != d.run_id"
    ) == [(0,)]
    assert transcripts(db, "a") != transcripts(db, "b")[: len(transcripts(db, "a"))]


# -- killed with SIGKILL mid-run --------------------------------------------------------------------

SLOWBOT = '''
"""A slow, deterministic assistant: asks for the card, then hands off."""
import os
import time


def respond(messages):
    time.sleep(float(os.environ.get("SLOWBOT_SLEEP", "0")))
    if os.environ.get("SLOWBOT_CALLS"):  # one byte per answered call, for a test to watch progress
        with open(os.environ["SLOWBOT_CALLS"], "a") as calls:
            calls.write(".")
    bot_turns = sum(m["role"] == "assistant" for m in messages)
    if bot_turns == 0:
        return "Could you give me the last four digits of the card?"
    said = messages[-1]["content"]
    text = f"Thank you. I noted {len(said)} characters; passing you to a colleague."
    return {"text": text, "handoff": True}
'''

N_KILL = 300
RUN_ARGS = [
    "run",
    "--target",
    "slowbot:respond",
    "-n",
    str(N_KILL),
    "--concurrency",
    "8",
    "--run-id",
    "k",
    "--seed",
    "9",
    "--perturb",
    "none",
]


def _start_slow_run(
    tmp_path: Path, db: Path, sleep_per_call: float, *, stdout: int, **env: str
) -> subprocess.Popen[str]:
    """Start the slow CLI run into `db` and return once it has opened its database (or ended)."""
    proc = subprocess.Popen(
        [*CLI, *RUN_ARGS, "--db", str(db)],
        cwd=tmp_path,
        env=cli_env(SLOWBOT_SLEEP=str(sleep_per_call), **env),
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not db.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return proc


def _killed_run(tmp_path: Path, db: Path, sleep_per_call: float, wait: float) -> int | None:
    """Start the run, SIGKILL it `wait` seconds after it opened its database; how many dialogues it stored.

    `None` when the attempt proves nothing (the run finished first, or had stored nothing yet).
    """
    proc = _start_slow_run(tmp_path, db, sleep_per_call, stdout=subprocess.DEVNULL)
    try:
        assert proc.poll() is None, (
            f"the run ended before it was killed: {proc.stderr.read() if proc.stderr else ''}"
        )
        assert db.exists(), "the run did not open its database within 60 s"
        time.sleep(wait)
        if proc.poll() is not None:
            return None  # finished already: try again with a slower bot
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
    (count,) = query(db, "select count(*) from dialogues")[0]
    return count or None


@pytest.mark.slow
def test_sigkill_loses_only_unflushed_dialogues_and_a_rerun_completes(tmp_path: Path) -> None:
    (tmp_path / "slowbot.py").write_text(SLOWBOT)
    reference_db = tmp_path / "reference.duckdb"
    # The uninterrupted reference run goes on beside the one that is killed (it only sleeps).
    reference = subprocess.Popen(
        [*CLI, *RUN_ARGS, "--db", str(reference_db)],
        cwd=tmp_path,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        db = stored = None
        for attempt, (sleep_per_call, wait) in enumerate([(0.08, 1.8), (0.3, 6.0)]):
            db = tmp_path / f"killed{attempt}.duckdb"
            stored = _killed_run(tmp_path, db, sleep_per_call, wait)
            if stored is not None:
                break
        assert db is not None
        assert stored is not None, "no attempt was killed after storing some but not all dialogues"
        _, ref_err = reference.communicate(timeout=120)
    finally:
        if reference.poll() is None:
            reference.kill()
            reference.communicate()
    assert reference.returncode == 0, ref_err

    # Some but not all dialogues survived the kill, each one whole.
    assert 0 < stored < N_KILL
    assert query(db, "select status from runs where run_id = 'k'") == [("running",)]
    assert query(
        db,
        """
        select count(*) from dialogues d
        where user_turns + assistant_turns
                  != (select count(*) from turns t where t.dialogue_id = d.dialogue_id)
           or cardinality(gold_slots)
                  != (select count(*) from slot_checks c where c.dialogue_id = d.dialogue_id)
        """,
    ) == [(0,)]
    assert query(db, "select count(*) from turns anti join dialogues using (dialogue_id)") == [(0,)]
    assert query(db, "select count(*) from slot_checks anti join dialogues using (dialogue_id)") == [(0,)]
    killed_shas = digests(db, "k")
    reference_shas = digests(reference_db, "k")
    assert len(reference_shas) == N_KILL
    assert all(reference_shas[i] == sha for i, sha in killed_shas.items())

    # The same command again resumes and completes the run.
    proc = run_cli(*RUN_ARGS, "--db", str(db), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"{N_KILL - stored} dialogues simulated, {stored} already stored" in one_line(proc.stderr)
    assert query(db, "select count(*), count(distinct dialogue_id), count(distinct idx) from dialogues") == [
        (N_KILL, N_KILL, N_KILL)
    ]
    assert query(db, "select status, n_dialogues from runs") == [("finished", N_KILL)]
    assert transcripts(db, "k") == transcripts(reference_db, "k")
    assert digests(db, "k") == reference_shas
    outcome_columns = (
        "select idx, outcome, end_reason, escalated, escalation_turn from dialogues order by idx"
    )
    assert query(db, outcome_columns) == query(reference_db, outcome_columns)


@contextlib.contextmanager
def _ctrl_c_heard() -> Iterator[None]:
    """Start processes in here as a terminal would: with Ctrl-C at its default action.

    A process started in the background by a script (`pytest &`) ignores SIGINT, and so does every process
    it starts; Python keeps it ignored, so the run would never hear the Ctrl-C this test sends. A handler
    set here becomes the default action in a child, once it execs.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)


@pytest.mark.slow
def test_ctrl_c_stores_what_finished_marks_the_run_interrupted_and_exits_130(tmp_path: Path) -> None:
    (tmp_path / "slowbot.py").write_text(SLOWBOT)
    db = tmp_path / "int.duckdb"
    calls = tmp_path / "calls"
    with _ctrl_c_heard():
        proc = _start_slow_run(tmp_path, db, 0.08, stdout=subprocess.PIPE, SLOWBOT_CALLS=str(calls))
    try:
        # Wait for progress, not for a time: after 40 of the 600 replies (8 at a time, two per dialogue),
        # the first cohort's dialogues are over. Ctrl-C flushes every finished one.
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if calls.exists() and calls.stat().st_size >= 40:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the run ended before it was interrupted"
        assert calls.exists() and calls.stat().st_size >= 40, "the run made no progress within 60 s"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "--run-id" in err
    assert "Traceback" not in err
    (count,) = query(db, "select count(*) from dialogues")[0]
    assert 0 < count < N_KILL
    assert query(db, "select status, finished_at is not null from runs") == [("interrupted", True)]
    assert query(
        db,
        "select count(*) from dialogues d where user_turns + assistant_turns != "
        "(select count(*) from turns t where t.dialogue_id = d.dialogue_id)",
    ) == [(0,)]


@pytest.mark.parametrize(("stop_at", "status", "stored"), [(None, "finished", 20), (10, "interrupted", 10)])
def test_a_ctrl_c_while_the_run_is_being_stored_waits_for_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop_at: int | None, status: str, stored: int
) -> None:
    """Outside the event loop a Ctrl-C is held until the run's row says how it ended, then raised: DuckDB
    would turn it into a `RuntimeError` inside a query, and the run would stay `running`."""
    db = tmp_path / "c.duckdb"
    end_run = Store.end_run

    def end_run_hit_by_ctrl_c(self: Store, run_id: str, status: str) -> None:
        signal.raise_signal(signal.SIGINT)
        end_run(self, run_id, status)

    def progress(done: int, total: int) -> None:
        if done == stop_at:
            raise Stop

    monkeypatch.setattr(Store, "end_run", end_run_hit_by_ctrl_c)
    with _ctrl_c_heard():
        with pytest.raises(KeyboardInterrupt):
            run_drill(RunConfig(db=str(db), n=20, seed=3, run_id="c", perturb="none"), on_progress=progress)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert query(db, "select status, finished_at is not null from runs") == [(status, True)]
    assert query(db, "select count(*) from dialogues") == [(stored,)]
