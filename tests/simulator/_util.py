"""Shared helpers for the simulator tests: running the CLI and reading a botdrill database."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import duckdb

from botdrill.simulator._records import TurnRecord

CLI = [sys.executable, "-m", "botdrill.simulator"]


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for a CLI subprocess: wide console (no wrapping), no inherited BOTDRILL_DB."""
    env = dict(os.environ)
    env.pop("BOTDRILL_DB", None)
    env["COLUMNS"] = "400"
    env["NO_COLOR"] = "1"
    env.update(extra)
    return env


def run_cli(
    *args: str, cwd: str | Path | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `botdrill ARGS` to completion and capture its output."""
    return subprocess.run(
        [*CLI, *args],
        cwd=cwd,
        env=env or cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def one_line(text: str) -> str:
    """Collapse whitespace, so assertions do not depend on how a console wrapped a message."""
    return " ".join(text.split())


def query(db: str | Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """Rows of `sql` on a read-only connection that is closed afterwards."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def transcripts(db: str | Path, run_id: str) -> list[tuple[int, int, str, str]]:
    """Every turn of a run as (dialogue idx, turn_idx, speaker, text), in order."""
    return query(
        db,
        """
        select d.idx, t.turn_idx, t.speaker, t.text
        from turns t join dialogues d using (dialogue_id)
        where d.run_id = ? order by d.idx, t.turn_idx""",
        [run_id],
    )


def digests(db: str | Path, run_id: str) -> dict[int, str]:
    """idx -> transcript_sha256 of a run."""
    return dict(
        query(db, "select idx, transcript_sha256 from dialogues where run_id = ? order by idx", [run_id])
    )


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    """Run the `botdrill` app in this process (much faster than a subprocess) and return the click result.

    The result has `exit_code`, `stdout` and `stderr`, kept apart.
    """
    from typer.testing import CliRunner

    from botdrill.simulator._cli import app

    return CliRunner().invoke(
        app, list(args), env={"COLUMNS": "400", "BOTDRILL_DB": None, **(env or {})}, catch_exceptions=False
    )


# -- what every stored transcript must satisfy -------------------------------------------------------

TURN_COLUMNS = "turn_idx, speaker, text, sim_time, gold_acts, part, parts, error_type"


class Turn(NamedTuple):
    """The columns of a turn that its dialogue's shape depends on."""

    turn_idx: int
    speaker: str
    text: str
    sim_time: float
    gold_acts: list[str] | None
    part: int | None
    parts: int | None
    error_type: str | None


ENDED_BY_THE_USER = ("user_done", "user_gave_up")
"""End reasons whose last user message gets no reply."""


def transcript_problems(turns: Sequence[Turn], end_reason: str) -> list[str]:
    """What is wrong with the shape of one dialogue's transcript (nothing, for a good one).

    User and assistant messages no longer alternate (fragments, double texts, barge-ins), but the engine
    keeps these promises: the transcript is in the order of simulated time; the user speaks first; the
    assistant answers the user's messages one by one, in the order they were sent, and never before they
    were sent; every message gets its answer except the user's last when the user ended the dialogue
    (goodbye or give-up), and those the user had already sent when the assistant ended it (kept,
    unanswered); an abandoned dialogue ends with one empty user row; a turn sent as fragments is
    sent whole and in order (only a dialogue the assistant ended may cut one short); a dialogue that
    ended on an assistant error ends with that error, its only one.
    """
    problems: list[str] = []
    if not turns:
        return ["no turns"]
    if [t.turn_idx for t in turns] != list(range(len(turns))):
        problems.append("turn_idx is not 0..n-1")
    times = [t.sim_time for t in turns]
    if times != sorted(times):
        problems.append("turn_idx order is not sim_time order")
    if times[0] <= 0:
        problems.append("the first message is sent at time 0")
    if turns[0].speaker != "user":
        problems.append("the assistant speaks first")
    empty = [t for t in turns if t.speaker == "user" and not t.text]
    if end_reason == "user_abandoned":
        last = turns[-1]
        if empty != [last] or last.gold_acts != ["abandon"]:
            problems.append("an abandoned dialogue does not end with exactly one empty 'abandon' row")
    elif empty:
        problems.append("an empty user message in a dialogue that was not abandoned")
    users = [t for t in turns if t.speaker == "user" and t.text]
    bots = [t for t in turns if t.speaker == "assistant"]
    sent = answered = 0
    for t in turns:
        if t.speaker == "user" and t.text:
            sent += 1
        elif t.speaker == "assistant":
            answered += 1
        if answered > sent:
            problems.append(f"turn {t.turn_idx}: more replies than user messages so far")
            break
    if end_reason in ("handoff", "max_turns", "assistant_error"):
        # Messages the user had already sent when the assistant ended the dialogue are kept, unanswered.
        late = users[len(bots) :]
        if len(bots) > len(users) or (bots and any(t.sim_time > bots[-1].sim_time for t in late)):
            problems.append(f"{len(bots)} replies to {len(users)} user messages, or one sent after the end")
    else:
        unanswered = 1 if end_reason in ENDED_BY_THE_USER else 0
        if len(bots) != len(users) - unanswered:
            problems.append(f"{len(bots)} replies to {len(users)} user messages; it ended with {end_reason}")
    for k, (asked, reply) in enumerate(zip(users, bots, strict=False)):
        if reply.sim_time < asked.sim_time:
            problems.append(f"reply {k} comes before the message it answers")
    # The user's last message ends the dialogue when the user ended it, and no earlier one could have.
    closing = [
        i
        for i, t in enumerate(users)
        if t.part == (t.parts or 0) - 1 and {"goodbye", "give_up"} & set(t.gold_acts or ())
    ]
    if end_reason in ENDED_BY_THE_USER:
        act = "give_up" if end_reason == "user_gave_up" else "goodbye"
        if not users or act not in (users[-1].gold_acts or ()) or closing != [len(users) - 1]:
            problems.append(f"{end_reason}, but the user's last message is not its turn's last {act}")
    elif any(i < len(bots) for i in closing):
        # Only a goodbye the assistant's last reply overtook (sent, never answered) may go unheeded.
        problems.append(f"a goodbye or give-up was answered, yet the dialogue ended with {end_reason}")
    # Fragments: each turn's messages are consecutive, numbered 0..parts-1.
    expected: tuple[int, int | None] = (
        0,
        None,
    )  # the next message's part, and its turn's parts (None: a new turn may start)
    for i, t in enumerate(users):
        if t.part is None or t.parts is None or not 0 <= t.part < t.parts:
            problems.append(f"user message {i}: part {t.part} of {t.parts}")
            break
        if t.part != expected[0] or expected[1] not in (None, t.parts):
            problems.append(f"user message {i}: part {t.part} of {t.parts} does not follow its turn")
            break
        expected = (0, None) if t.part == t.parts - 1 else (t.part + 1, t.parts)
    else:
        if expected[0] and end_reason in (*ENDED_BY_THE_USER, "user_abandoned"):
            problems.append("the user left in the middle of a turn")
    errors = [t for t in turns if t.error_type is not None]
    if end_reason == "assistant_error":
        if not bots or errors != [bots[-1]] or bots[-1] is not turns[-1] or bots[-1].text:
            problems.append("an assistant error is not the dialogue's last turn, with no text")
    elif errors:
        problems.append(f"an error turn in a dialogue that ended with {end_reason}")
    return problems


def stored_transcripts(db: str | Path, run_id: str) -> dict[str, tuple[str, list[Turn]]]:
    """dialogue_id -> (end_reason, turns in turn_idx order) for every dialogue of a run."""
    ends = dict(query(db, "select dialogue_id, end_reason from dialogues where run_id = ?", [run_id]))
    out: dict[str, tuple[str, list[Turn]]] = {d: (end, []) for d, end in ends.items()}
    for row in query(
        db,
        f"select dialogue_id, {TURN_COLUMNS} from turns where run_id = ? order by dialogue_id, turn_idx",
        [run_id],
    ):
        out[row[0]][1].append(Turn(*row[1:]))
    return out


def record_turns(turns: Sequence[TurnRecord]) -> list[Turn]:
    """The shape columns of an engine's finished turns."""
    return [
        Turn(t.turn_idx, t.speaker, t.text, t.sim_time, t.gold_acts, t.part, t.parts, t.error_type)
        for t in turns
    ]
