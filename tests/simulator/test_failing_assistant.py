"""An assistant under test that fails is data: its dialogues end with `assistant_error`, the run goes on."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from botdrill.agents import Message, Reply
from botdrill.agents._adapters import as_assistant
from botdrill.scenarios import Pack
from botdrill.simulator import RunConfig, run_drill
from botdrill.simulator._variants import DEFAULT_PERTURBATIONS

from ._util import one_line, query, run_cli, stored_transcripts, transcript_problems

ASK_CARD = "Could you give me the last four digits of the card?"


def _index(thread_id: str) -> int:
    """The scenario index in a dialogue id `<run>-<index>-<variant>` (run ids here have no dash)."""
    return int(thread_id.split("-")[1])


def _drill(tmp_path: Path, bot: Any, *, n: int = 36, **options: Any) -> Path:
    db = tmp_path / "f.duckdb"
    result = run_drill(
        RunConfig(db=str(db), n=n, seed=7, run_id="f", target="tests:bot", perturb="none", **options),
        assistant=bot if hasattr(bot, "respond_batch") else as_assistant(bot, name="bot"),
    )
    assert result.simulated == n
    assert query(db, "select status from runs") == [("finished",)]
    assert query(db, "select count(*) from dialogues") == [(n,)]
    return db


def _dialogues(db: Path) -> dict[int, dict[str, Any]]:
    con_rows = query(
        db,
        "select idx, outcome, end_reason, error_type, error_message, user_turns, assistant_turns, "
        "escalated, escalation_source from dialogues order by idx",
    )
    keys = (
        "outcome",
        "end_reason",
        "error_type",
        "error_message",
        "user_turns",
        "assistant_turns",
        "escalated",
        "escalation_source",
    )
    return {row[0]: dict(zip(keys, row[1:], strict=True)) for row in con_rows}


def _assert_error_turn(db: Path, idx: int, error_type: str) -> None:
    """The failed call is stored as the last turn: an assistant turn with no text and the error's type."""
    rows = query(
        db,
        "select t.speaker, t.text, t.error_type, t.latency_ms, t.handoff from turns t "
        "join dialogues d using (dialogue_id) where d.idx = ? order by t.turn_idx desc limit 1",
        [idx],
    )
    speaker, text, kind, latency, handoff = rows[0]
    assert (speaker, text, kind) == ("assistant", "", error_type)
    assert latency is not None and latency >= 0
    assert handoff is None


def _assert_normal(row: dict[str, Any]) -> None:
    assert row["outcome"] != "assistant_error"
    assert row["end_reason"] != "assistant_error"
    assert row["error_type"] is None
    assert row["error_message"] is None


def test_a_target_that_raises_on_some_dialogues(tmp_path: Path) -> None:
    def bot(messages: list[Message]) -> Any:  # sync: runs in a worker thread
        if "card" in messages[0]["content"].lower():
            raise RuntimeError("card service is down")
        if len(messages) == 1:
            return ASK_CARD
        return {"text": "Thanks, I'm passing you to a colleague.", "handoff": True}

    db = _drill(tmp_path, bot)
    firsts = dict(
        query(
            db, "select d.idx, t.text from turns t join dialogues d using (dialogue_id) where t.turn_idx = 0"
        )
    )
    rows = _dialogues(db)
    failing = {i for i, text in firsts.items() if "card" in text.lower()}
    assert 0 < len(failing) < len(rows)  # the seed gives both kinds
    for idx, row in rows.items():
        if idx in failing:
            assert row["outcome"] == "assistant_error"
            assert row["end_reason"] == "assistant_error"
            assert row["error_type"] == "RuntimeError"
            assert row["error_message"] == "card service is down"
            assert (row["user_turns"], row["assistant_turns"]) == (1, 1)
            _assert_error_turn(db, idx, "RuntimeError")
        else:
            _assert_normal(row)
            assert row["escalated"] or row["end_reason"] in ("user_gave_up", "user_done")
    assert query(db, "select count(*) from failures where outcome = 'assistant_error'") == [(len(failing),)]
    assert query(db, "select sum(errors) from intent_summary") == [(len(failing),)]


def test_a_target_that_fails_on_the_second_call_of_each_thread(tmp_path: Path) -> None:
    calls: Counter[str] = Counter()

    async def bot(messages: list[Message], *, thread_id: str) -> str:
        calls[thread_id] += 1
        if calls[thread_id] == 2:
            raise ValueError()  # no message: the type stands in for it
        return ASK_CARD

    db = _drill(tmp_path, bot)
    rows = _dialogues(db)
    assert set(calls.values()) <= {1, 2}
    errors = 0
    for idx, row in rows.items():
        if calls[f"f-{idx:06d}-none"] == 2:
            errors += 1
            assert (row["outcome"], row["error_type"], row["error_message"]) == (
                "assistant_error",
                "ValueError",
                "ValueError",
            )
            assert row["assistant_turns"] == 2
            _assert_error_turn(db, idx, "ValueError")
        else:
            _assert_normal(row)
            assert row["end_reason"] in ("user_gave_up", "user_done")
    assert errors > len(rows) // 2


def test_a_failing_target_is_data_in_every_variant_of_a_paired_run(tmp_path: Path) -> None:
    calls: Counter[str] = Counter()

    async def bot(messages: list[Message], *, thread_id: str) -> str:
        calls[thread_id] += 1
        if calls[thread_id] == 2:
            raise ValueError("second call")
        return ASK_CARD

    db = tmp_path / "p.duckdb"
    variants = 1 + len(DEFAULT_PERTURBATIONS)
    result = run_drill(
        RunConfig(db=str(db), n=6, seed=7, run_id="f", target="tests:bot"), assistant=as_assistant(bot)
    )
    assert result.simulated == 6 * variants
    rows = query(
        db,
        "select dialogue_id, perturbation, outcome, end_reason, error_type, assistant_turns from dialogues",
    )
    assert len(rows) == 6 * variants
    assert set(calls) == {r[0] for r in rows}
    for dialogue_id, _, outcome, end, error_type, bot_turns in rows:
        if calls[dialogue_id] == 2:
            assert (outcome, end, error_type, bot_turns) == (
                "assistant_error",
                "assistant_error",
                "ValueError",
                2,
            )
        else:
            assert (calls[dialogue_id], error_type, bot_turns) == (1, None, 1)
            assert end in ("user_gave_up", "user_done")
    assert {r[1] for r in rows if r[2] == "assistant_error"} == {"none", *DEFAULT_PERTURBATIONS}
    assert {
        d: p
        for d, (end, turns) in stored_transcripts(db, "f").items()
        if (p := transcript_problems(turns, end))
    } == {}


BAD_REPLIES: dict[int, tuple[Any, str]] = {
    0: (42, "got int"),
    1: ({"intent": "check_balance"}, "needs a string 'text'"),
    2: (None, "got NoneType"),
    3: ({"text": "ok", "handoff": "perhaps"}, "handoff"),
    4: ({"text": 7}, "needs a string 'text'"),
}


def test_a_target_that_returns_something_that_is_not_a_reply(tmp_path: Path) -> None:
    def bot(messages: list[Message], thread_id: str) -> Any:
        kind = _index(thread_id) % 6
        if kind in BAD_REPLIES:
            return BAD_REPLIES[kind][0]
        return {"text": "Connecting you to an advisor.", "handoff": True, "extra": "kept"}

    db = _drill(tmp_path, bot)
    for idx, row in _dialogues(db).items():
        kind = idx % 6
        if kind in BAD_REPLIES:
            assert row["outcome"] == "assistant_error", idx
            assert row["error_type"] == "AssistantProtocolError"
            assert BAD_REPLIES[kind][1] in row["error_message"]
            _assert_error_turn(db, idx, "AssistantProtocolError")
        else:
            _assert_normal(row)
            assert row["escalated"] and row["escalation_source"] == "exposed"
            assert row["outcome"] in ("success", "over_escalation")


def test_a_target_that_hangs_times_out(tmp_path: Path) -> None:
    async def bot(messages: list[Message], thread_id: str) -> str:
        if _index(thread_id) % 3 == 0:
            await asyncio.sleep(30)
        return "I'm transferring you to our fraud team."

    db = _drill(tmp_path, bot, n=12, timeout=0.2)
    for idx, row in _dialogues(db).items():
        if idx % 3 == 0:
            assert (row["outcome"], row["error_type"]) == ("assistant_error", "AssistantTimeout")
            assert "0.2" in row["error_message"]
            _assert_error_turn(db, idx, "AssistantTimeout")
            (latency,) = query(
                db,
                "select max(latency_ms) from turns t join dialogues d using (dialogue_id) where d.idx = ?",
                [idx],
            )[0]
            assert 150 < latency < 5000
        else:
            _assert_normal(row)
            assert row["escalated"]


def test_words_that_hand_off_are_judged_an_escalation(tmp_path: Path, pack: Pack) -> None:
    def bot(messages: list[Message]) -> str:
        return "I'm transferring you to a colleague now."

    db = _drill(tmp_path, bot)
    rows = query(
        db,
        "select gold_intent, outcome, escalated, escalation_turn, escalation_source, routing_source, "
        "end_reason, case when complexity = 'turn_into' then walk[1] else gold_intent end from dialogues",
    )
    assert {r[0] for r in rows} & {i.name for i in pack.intents if i.escalation.expected == "never"}
    for intent, outcome, escalated, turn, source, routing, end, first in rows:
        assert (escalated, turn, source, routing, end) == (True, 1, "judged", "none", "handoff")
        # A dialogue that opened with an everyday request and was handed over before it turned to its goal
        # is judged on what the user had asked for.
        expected = pack.intent(first).escalation.expected
        assert outcome == ("success" if expected == "must" else "over_escalation"), intent
    assert query(
        db,
        "select count(*) from turns where speaker = 'assistant' and "
        "(handoff is not true or handoff_source != 'judged')",
    ) == [(0,)]


def test_a_team_named_in_the_words_is_a_judged_route(tmp_path: Path, pack: Pack) -> None:
    def bot(messages: list[Message]) -> str:
        return "I'm transferring you to our fraud team now."

    db = _drill(tmp_path, bot)
    rows = query(db, "select gold_intent, routed_intent, routing_source, misrouted from dialogues")
    assert rows and {r[1:3] for r in rows} == {("report_fraud", "judged")}
    assert all(misrouted == (gold != "report_fraud") for gold, _, _, misrouted in rows)
    assert query(
        db,
        "select distinct intent, intent_source, judged_by from turns where speaker = 'assistant'",
    ) == [("report_fraud", "judged", "rules")]


def test_an_exposed_handoff_flag_wins_over_the_words(tmp_path: Path) -> None:
    def bot(messages: list[Message]) -> Any:
        if len(messages) == 1:
            return {"text": "I'm transferring you to our fraud team now.", "handoff": False}
        return "I can transfer money to your savings account."

    db = _drill(tmp_path, bot, n=20)
    assert query(db, "select count(*) from dialogues where escalated") == [(0,)]
    assert query(db, "select count(*) from turns where handoff or handoff_source is not null") == [(0,)]
    assert query(
        db,
        "select count(*) from dialogues where expected_escalation = 'must' "
        "and outcome != 'missed_escalation'",
    ) == [(0,)]


class PoisonedBatch:
    """A batch assistant whose whole batch fails when one conversation in it is poisoned."""

    name = "poisoned-batch"

    def __init__(self) -> None:
        self.forgotten: list[str] = []
        self.batch_sizes: list[int] = []

    def respond_batch(self, requests: Sequence[tuple[str, list[Message]]]) -> list[Reply]:
        self.batch_sizes.append(len(requests))
        if any(_index(thread_id) % 4 == 0 for thread_id, _ in requests):
            raise KeyError("poisoned conversation")
        return [
            Reply(text=ASK_CARD) if len(m) == 1 else Reply(text="Passing you on.", handoff=True, intent="x")
            for _, m in requests
        ]

    def forget(self, thread_id: str) -> None:
        self.forgotten.append(thread_id)


def test_one_bad_conversation_does_not_sink_a_batch(tmp_path: Path) -> None:
    bot = PoisonedBatch()
    db = _drill(tmp_path, bot, n=24, concurrency=8)
    assert max(bot.batch_sizes) <= 8
    assert 1 in bot.batch_sizes  # the failed batches were retried one by one
    assert sorted(bot.forgotten) == [f"f-{i:06d}-none" for i in range(24)]
    for idx, row in _dialogues(db).items():
        if idx % 4 == 0:
            assert (row["outcome"], row["error_type"]) == ("assistant_error", "KeyError")
            assert "poisoned conversation" in row["error_message"]
        else:
            _assert_normal(row)


class StringBatch:
    """A batch assistant that answers plain strings, as a `str`-returning callable may."""

    name = "string-batch"

    def respond_batch(self, requests: Sequence[tuple[str, list[Message]]]) -> list[Any]:
        return [ASK_CARD for _ in requests]

    def forget(self, thread_id: str) -> None:
        pass


class ShortBatch:
    """A batch assistant that answers one reply too few."""

    name = "short-batch"

    def respond_batch(self, requests: Sequence[tuple[str, list[Message]]]) -> list[Reply]:
        return [Reply(text=ASK_CARD) for _ in requests][:-1]

    def forget(self, thread_id: str) -> None:
        pass


def test_a_batch_assistant_answering_strings_does_not_crash_the_run(tmp_path: Path) -> None:
    db = _drill(tmp_path, StringBatch(), n=10)
    for row in _dialogues(db).values():
        assert row["outcome"] != "assistant_error" or row["error_type"] == "AssistantProtocolError"


def test_a_batch_assistant_answering_too_few_replies_does_not_crash_the_run(tmp_path: Path) -> None:
    db = _drill(tmp_path, ShortBatch(), n=10)
    errors = query(db, "select distinct error_type from dialogues where outcome = 'assistant_error'")
    assert errors == [("AssistantProtocolError",)]


FLAKYBOT = """
import asyncio


async def respond(messages, thread_id):
    kind = int(thread_id.split("-")[1]) % 4
    if kind == 0:
        raise RuntimeError("backend exploded")
    if kind == 1:
        return 17
    if kind == 2:
        await asyncio.sleep(30)
    return {"text": "Let me put you through to a colleague.", "handoff": True}
"""


@pytest.mark.slow
def test_the_cli_run_completes_with_a_failing_target(tmp_path: Path) -> None:
    (tmp_path / "flakybot.py").write_text(FLAKYBOT)
    db = tmp_path / "cli.duckdb"
    proc = run_cli(
        "run",
        "--target",
        "flakybot:respond",
        "-n",
        "16",
        "--timeout",
        "0.2",
        "--db",
        str(db),
        "--run-id",
        "flaky",
        "--perturb",
        "none",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "16 dialogues simulated" in one_line(proc.stderr)
    rows = query(db, "select idx, outcome, error_type, error_message from dialogues order by idx")
    assert len(rows) == 16
    expected = {
        0: ("RuntimeError", "backend exploded"),
        1: ("AssistantProtocolError", "got int"),
        2: ("AssistantTimeout", "0.2 s"),
    }
    for idx, outcome, error_type, message in rows:
        if idx % 4 in expected:
            kind, words = expected[idx % 4]
            assert (outcome, error_type) == ("assistant_error", kind), idx
            assert words in message
        else:
            assert outcome != "assistant_error" and error_type is None and message is None
    assert query(db, "select target, status from runs") == [("flakybot:respond", "finished")]
    assert query(db, "select versions->>'assistant' from runs") == [("flakybot:respond",)]


STUCKBOT = """
import threading

_never = threading.Event()


def respond(messages, thread_id):
    if thread_id.split("-")[1].endswith("0"):
        _never.wait()  # a sync target stuck for good: no timeout of its own
    return {"text": "I'm transferring you to our fraud team.", "handoff": True}
"""


@pytest.mark.slow
def test_a_sync_target_stuck_for_good_neither_blocks_the_run_nor_its_exit(tmp_path: Path) -> None:
    (tmp_path / "stuckbot.py").write_text(STUCKBOT)
    db = tmp_path / "stuck.duckdb"
    # run_cli raises TimeoutExpired if the process is still alive after 60 s.
    proc = run_cli(
        "run",
        "--target",
        "stuckbot:respond",
        "-n",
        "12",
        "--timeout",
        "0.3",
        "--db",
        str(db),
        "--run-id",
        "stuck",
        "--perturb",
        "none",
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    rows = query(db, "select idx, outcome, error_type from dialogues order by idx")
    assert len(rows) == 12
    for idx, outcome, error_type in rows:
        if idx % 10 == 0:
            assert (outcome, error_type) == ("assistant_error", "AssistantTimeout")
        else:
            assert error_type is None


def test_what_else_a_target_returns_is_kept_as_raw_json(tmp_path: Path) -> None:
    def bot(messages: list[Message]) -> dict[str, Any]:
        return {
            "text": "I'm transferring you to our fraud team.",
            "handoff": True,
            "trace_id": "abc-1",
            "scores": {"fraud": 0.9},
        }

    db = _drill(tmp_path, bot, n=4)
    raws = query(
        db,
        "select distinct raw->>'trace_id', (raw->'scores'->>'fraud')::double from turns "
        "where speaker = 'assistant'",
    )
    assert raws == [("abc-1", 0.9)]
    assert query(db, "select count(*) from turns where speaker = 'user' and raw is not null") == [(0,)]
