"""Runs with LLM components, end to end against a loopback OpenAI-compatible server: an LLM assistant's
tokens and cost per dialogue, an LLM judge's labels and who inferred them, and replays that miss."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import duckdb
from typer.testing import CliRunner

from botdrill.agents._adapters import as_assistant
from botdrill.agents._types import Message
from botdrill.simulator import RunConfig, run_drill
from botdrill.simulator._cli import app

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench._loopback import LoopbackServer, RecordedRequest, Scripted, ToolCallSpec  # noqa: E402

LLM = "  timeout: 2\n  deadline: 4\n  backoff: 0.01\n  max_retries: 1\n"


def _bot_file(tmp_path: Path, server: LoopbackServer) -> Path:
    path = tmp_path / "bot.yaml"
    path.write_text(
        f"llm:\n  base_url: {server.base_url}\n  model: bot-model\n{LLM}"
        "  prices: {bot-model: {prompt: 2.0, completion: 8.0}}\n"
        "system_prompt: You are a bank's assistant.\n",
        encoding="utf-8",
    )
    return path


def test_an_llm_assistants_tokens_and_cost_are_per_dialogue_and_in_the_summary(tmp_path: Path) -> None:
    def answer(request: RecordedRequest) -> Scripted:
        return Scripted(text="Could you tell me more?", prompt_tokens=100, completion_tokens=10)

    db = tmp_path / "x.duckdb"
    with LoopbackServer(answer, lifetime=60) as server:
        result = CliRunner().invoke(
            app,
            [
                *("run", "--db", str(db), "-n", "4", "--perturb", "none", "--run-id", "llm", "-q"),
                *("--target", f"llm:{_bot_file(tmp_path, server)}", "--max-turns", "3"),
            ],
        )
        sent = len(server.chat_requests())
    assert result.exit_code == 0, result.output
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute(
        "select d.llm_calls, d.llm_prompt_tokens, d.llm_completion_tokens, d.llm_cost_usd, "
        "(select count(*) from turns t where t.dialogue_id = d.dialogue_id and t.speaker = 'assistant') "
        "from dialogues d"
    ).fetchall()
    versions = json.loads(con.execute("select versions from runs").fetchone()[0])  # type: ignore[index]
    con.close()
    assert sum(r[0] for r in rows) == sent
    for calls, prompt, completion, cost, replies in rows:
        # Every reply cost one call at the scripted usage (identical requests share one answer).
        assert calls <= replies and prompt == 100 * replies and completion == 10 * replies
        assert cost is not None and abs(cost - replies * (100 * 2.0 + 10 * 8.0) / 1e6) < 1e-12
    total = sum(r[1] + r[2] for r in rows)
    assert f"{sum(r[1] for r in rows)} prompt + {sum(r[2] for r in rows)} completion tokens" in result.output
    assert total > 0 and "LLM:" in result.output
    assert versions["assistant"] == "llm:bot-model" and versions["user"] == "agenda"
    assert versions["judge"] == "rules"


def words_only(messages: list[Message]) -> str:
    return "Thanks, let me look into that for you."


def _judge_file(tmp_path: Path, server: LoopbackServer) -> Path:
    path = tmp_path / "judge.yaml"
    path.write_text(f"llm:\n  base_url: {server.base_url}\n  model: judge-model\n{LLM}", encoding="utf-8")
    return path


def test_an_llm_judge_labels_what_the_bot_does_not_expose_and_says_so(tmp_path: Path) -> None:
    verdict = Scripted(tool_calls=(ToolCallSpec("Verdict", {"intent": "report_fraud", "handoff": False}),))
    db = str(tmp_path / "x.duckdb")
    with LoopbackServer(lambda r: verdict, lifetime=60) as server:
        config = RunConfig(
            db=db,
            n=6,
            seed=2,
            perturb="none",
            run_id="j",
            max_turns=2,
            judge=f"llm:{_judge_file(tmp_path, server)}",
        )
        run_drill(config, assistant=as_assistant(words_only))
    con = duckdb.connect(db, read_only=True)
    turns = con.execute(
        "select distinct intent, intent_source, judged_by from turns where speaker = 'assistant'"
    ).fetchall()
    routing = con.execute("select distinct routed_intent, routing_source from dialogues").fetchall()
    calls = con.execute("select sum(llm_calls) + sum(llm_cached) from dialogues").fetchone()
    con.close()
    assert turns == [("report_fraud", "judged", "llm:judge-model")]
    assert routing == [("report_fraud", "judged")]
    assert calls is not None and calls[0] > 0


def test_a_failing_llm_judge_falls_back_on_the_rules_and_says_so(tmp_path: Path) -> None:
    db = str(tmp_path / "x.duckdb")
    with LoopbackServer(lambda r: Scripted.error_status(503), lifetime=60) as server:
        config = RunConfig(
            db=db,
            n=4,
            seed=2,
            perturb="none",
            run_id="j",
            max_turns=2,
            judge=f"llm:{_judge_file(tmp_path, server)}",
        )
        run_drill(config, assistant=as_assistant(words_only))
    con = duckdb.connect(db, read_only=True)
    judged = {
        row[0] for row in con.execute("select judged_by from turns where speaker = 'assistant'").fetchall()
    }
    errors = con.execute("select count(*) from dialogues where error_type is not null").fetchone()
    con.close()
    assert judged and all(j.startswith("rules (llm:judge-model failed: LLM") for j in judged), judged
    assert errors == (0,)  # the bot did nothing wrong


def test_a_replay_that_misses_a_recording_says_so_on_the_dialogue_and_exits_1(tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"
    with LoopbackServer(lambda r: Scripted(text="How can I help?"), lifetime=60) as server:
        bot = _bot_file(tmp_path, server)
        args = ["run", "--db", str(db), "-n", "3", "--perturb", "none", "--max-turns", "2", "-q"]
        assert CliRunner().invoke(app, [*args, "--run-id", "rec", "--target", f"llm:{bot}"]).exit_code == 0
    con = duckdb.connect(str(db))
    con.execute("delete from llm_calls where key = (select min(key) from llm_calls)")
    con.close()
    result = CliRunner().invoke(app, ["run", "--db", str(db), "--replay", "rec", "-q"])
    assert result.exit_code == 1, result.output
    assert "transcripts identical to rec; 0 LLM requests sent" in result.output
    con = duckdb.connect(str(db), read_only=True)
    missed = con.execute(
        "select count(*) from dialogues where run_id = 'rec-replay' and error_type = 'LLMReplayMiss'"
    ).fetchone()
    con.close()
    assert missed is not None and missed[0] >= 1


def test_shrinking_re_runs_an_llm_users_dialogue_from_the_record(tmp_path: Path) -> None:
    import json as _json

    from botdrill.simulator._shrink import _Replayer
    from botdrill.simulator._store import Store

    gist = "The gist, to say in your own words: "

    def faithful(request: RecordedRequest) -> Scripted:
        line = next(x for x in request.body["messages"][-1]["content"].splitlines() if x.startswith(gist))
        return Scripted(
            tool_calls=(ToolCallSpec("UserSays", {"text": _json.loads(line.removeprefix(gist))}),)
        )

    db = str(tmp_path / "x.duckdb")
    with LoopbackServer(faithful, lifetime=60) as server:
        user = tmp_path / "user.yaml"
        user.write_text(f"llm:\n  base_url: {server.base_url}\n  model: user-model\n{LLM}", encoding="utf-8")
        config = RunConfig(db=db, n=3, seed=4, perturb="typo", run_id="u", user=f"llm:{user}")
        run_drill(config)
    # The server is gone: the re-runs are answered from the record alone.
    store = Store(db)
    try:
        rows = store.con.execute("select idx, transcript_sha256 from dialogues where run_id = 'u'").fetchall()
        for idx, digest in rows:
            replayer = _Replayer(config, "u", idx, None, store)
            finished, _ = replayer.run(None)
            assert finished[0].transcript_sha256 == digest
            assert finished[0].error_type is None and finished[0].llm_calls == 0
    finally:
        store.close()
