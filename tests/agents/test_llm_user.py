"""The LLM user simulator, driven for real through langchain-openai against a loopback server.

The scripted "models" read the per-turn instruction the way a model would: a faithful one says the gist
and the details it was given; others invent a card number, wander off to another request, or fail.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from botdrill.agents._llm import LLMConfig
from botdrill.agents._llm_user import LLMUser, LLMUserConfig, LLMUserConfigError, load_llm_user
from botdrill.scenarios import Pack, Scenario, sample_scenario
from botdrill.simulator import RunConfig, run_drill
from botdrill.simulator._cli import app

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench._loopback import LoopbackServer, RecordedRequest, Scripted, ToolCallSpec  # noqa: E402

GIST = "The gist, to say in your own words: "
DETAILS = "Say these details exactly as written: "


def _line(request: RecordedRequest, prefix: str) -> Any:
    for line in request.body["messages"][-1]["content"].splitlines():
        if line.startswith(prefix):
            return json.loads(line.removeprefix(prefix))
    return None


def says(text: str, slots: dict[str, str] | None = None, acts: list[str] | None = None) -> Scripted:
    """The structured answer, as the forced tool call langchain-openai asks for."""
    return Scripted(
        tool_calls=(ToolCallSpec("UserSays", {"text": text, "acts": acts or [], "slots": slots or {}}),)
    )


def faithful(request: RecordedRequest) -> Scripted:
    """A model that says exactly the gist and reports the details it was told to say."""
    return says(_line(request, GIST), _line(request, DETAILS) or {})


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer(faithful, latency=0.0, lifetime=120) as running:
        yield running


def user_file(tmp_path: Path, server: LoopbackServer, extra: str = "") -> Path:
    path = tmp_path / "user.yaml"
    path.write_text(
        f"llm:\n  base_url: {server.base_url}\n  model: user-model\n  timeout: 2\n  deadline: 4\n"
        f"  backoff: 0.01\n  max_retries: 1\n{extra}",
        encoding="utf-8",
    )
    return path


def drill(tmp_path: Path, user: str, name: str = "r", **options: Any) -> duckdb.DuckDBPyConnection:
    db = str(tmp_path / "x.duckdb")
    run_drill(
        RunConfig(db=db, n=8, seed=3, perturb="none", run_id=name, user=user, concurrency=8).model_copy(
            update=options
        )
    )
    return duckdb.connect(db, read_only=True)


def test_a_faithful_llm_user_gives_the_agenda_users_transcripts(
    tmp_path: Path, server: LoopbackServer
) -> None:
    con = drill(tmp_path, f"llm:{user_file(tmp_path, server)}", "llm", perturb="typo")
    con.close()
    baseline = drill(tmp_path, "agenda", "agenda", perturb="typo")
    pairs = baseline.execute(
        "select a.transcript_sha256 = b.transcript_sha256, b.simulator_fault, b.llm_calls "
        "from dialogues a join dialogues b on a.idx = b.idx where a.run_id = 'agenda' and b.run_id = 'llm'"
    ).fetchall()
    assert len(pairs) == 16
    assert all(same for same, _, _ in pairs), "the model said the gist: the transcripts must be the same"
    assert all(fault is None for _, fault, _ in pairs)
    # Every composed turn cost one request; nudges and barge-ins come from the agenda's templates.
    sent = sum(calls for _, _, calls in pairs)
    assert 0 < sent <= len(server.chat_requests())
    stored = baseline.execute("select count(*) from llm_calls where run_id = 'llm'").fetchone()
    assert stored is not None and stored[0] >= 1
    baseline.close()


def test_gold_slots_are_found_in_the_models_own_words(tmp_path: Path) -> None:
    def rephrase(request: RecordedRequest) -> Scripted:
        details = _line(request, DETAILS) or {}
        words = ", ".join(f"my {k.replace('_', ' ')} is {v}" for k, v in details.items())
        return says(f"Right so {words or 'hello there'}, thanks", details)

    with LoopbackServer(rephrase, lifetime=60) as server:
        con = drill(tmp_path, f"llm:{user_file(tmp_path, server)}")
    rows = con.execute(
        'select t.text, s.slot, s.value, s.start, s."end" from turns t, unnest(t.gold_slots) as u(s) '
        "where t.speaker = 'user'"
    ).fetchall()
    con.close()
    assert rows, "the drill should have given slot values"
    for text, slot, value, start, end in rows:
        assert text.startswith("Right so")
        assert text[start:end], (text, slot, value)


def test_an_invented_card_number_is_a_simulator_fault_left_out_of_the_scores(tmp_path: Path) -> None:
    def inventive(request: RecordedRequest) -> Scripted:
        details = _line(request, DETAILS) or {}
        if "card_last4" in details:
            return says("it's the card ending 0000", {"card_last4": "0000"})
        return faithful(request)

    with LoopbackServer(inventive, lifetime=60) as server:
        con = drill(tmp_path, f"llm:{user_file(tmp_path, server)}", n=24)
    faults = con.execute(
        "select d.simulator_fault, count(*) from dialogues d where d.run_id = 'r' group by all"
    ).fetchall()
    flagged = con.execute(
        "select t.user_fault, t.raw from turns t where t.user_fault is not null and t.speaker = 'user'"
    ).fetchall()
    scored = con.execute("select count(*) from scored_dialogues where simulator_fault is not null").fetchone()
    con.close()
    assert ("invented_value", len(flagged)) in faults or any(f == "invented_value" for f, _ in faults)
    assert flagged and all(fault == "invented_value" for fault, _ in flagged)
    findings = json.loads(flagged[0][1])["findings"]
    assert any("card_last4" in f and "0000" in f for f in findings)
    assert scored == (0,)


def test_a_user_that_wanders_to_another_request_left_its_goal(pack: Pack) -> None:
    config = LLMUserConfig(llm=LLMConfig(base_url="http://127.0.0.1:9/v1", model="m"))
    user = LLMUser(config, pack)
    scenario = _scenario(pack, "check_balance")
    agenda = user.start(scenario)
    plan = user.planner.next_turn(agenda, None)
    other = pack.intent("lost_or_stolen_card").openings[0]
    from botdrill.agents._llm_user import UserSays

    turn = user.check(agenda, plan, UserSays(text=other), user.controls(agenda, plan))
    assert turn.fault == "left_goal"
    assert turn.llm is not None and any("lost_or_stolen_card" in f for f in turn.llm["findings"])
    kept = user.check(agenda, plan, UserSays(text=plan.text), user.controls(agenda, plan))
    assert kept.fault is None


def test_a_value_the_model_left_out_is_taken_back_from_the_agenda(pack: Pack) -> None:
    config = LLMUserConfig(llm=LLMConfig(base_url="http://127.0.0.1:9/v1", model="m"))
    user = LLMUser(config, pack)
    for index in range(200):
        scenario = sample_scenario(pack, seed=5, index=index)
        agenda = user.start(scenario)
        plan = user.planner.next_turn(agenda, None)
        if plan.slots:
            break
    else:
        pytest.fail("no opening with a slot value in 200 scenarios")
    from botdrill.agents._llm_user import UserSays

    given = dict(agenda.given)
    turn = user.check(agenda, plan, UserSays(text="hello, I need some help"), user.controls(agenda, plan))
    assert turn.slots == [] and turn.fault is None
    assert turn.llm is not None and turn.llm["dropped"] == [s.slot for s in plan.slots]
    assert all(s.slot not in agenda.given for s in plan.slots) and given != agenda.given


def test_the_prompt_carries_the_frame_and_the_control_signals(
    tmp_path: Path, pack: Pack, server: LoopbackServer
) -> None:
    import asyncio

    path = user_file(tmp_path, server, "formality: formal\n")
    user = load_llm_user(f"llm:{path}", pack)
    scenario = _scenario(pack, "report_fraud")
    agenda = user.start(scenario)

    async def go() -> None:
        try:
            await user.next_turn(agenda, None, [])
        finally:
            await user.aclose()

    asyncio.run(go())
    (request,) = server.chat_requests()
    system, instruction = (m["content"] for m in request.body["messages"])
    assert scenario.persona.description in system and pack.intent("report_fraud").description in system
    assert "formal and polite" in instruction
    assert "Do not ask for a person." in instruction
    assert [t["function"]["name"] for t in request.body["tools"]] == ["UserSays"]


def test_a_failing_user_model_ends_its_dialogue_as_data_and_the_run_goes_on(tmp_path: Path) -> None:
    with LoopbackServer(lambda r: Scripted.error_status(500), lifetime=60) as server:
        con = drill(tmp_path, f"llm:{user_file(tmp_path, server)}")
    rows = con.execute(
        "select end_reason, outcome, simulator_fault, error_type from dialogues where run_id = 'r'"
    ).fetchall()
    scored = con.execute("select count(*) from scored_dialogues").fetchone()
    con.close()
    assert len(rows) == 8
    assert {r[:3] for r in rows} == {("user_error", "simulator_error", "user_error")}
    # The first failures are the server's 500s; once they pass the breaker's threshold, the rest fail fast.
    assert {r[3] for r in rows} <= {"LLMStatusError", "LLMCircuitOpen"}
    assert scored == (0,)


def test_replay_reruns_with_no_model_and_identical_transcripts(tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"
    with LoopbackServer(faithful, lifetime=60) as server:
        path = user_file(tmp_path, server)
        result = CliRunner().invoke(
            app,
            [
                "run",
                "--db",
                str(db),
                "-n",
                "6",
                "--perturb",
                "none",
                "--run-id",
                "rec",
                "--user",
                f"llm:{path}",
                "-q",
            ],
        )
        assert result.exit_code == 0, result.output
        assert "LLM:" in result.output and "requests sent" in result.output
        made = len(server.chat_requests())
    assert made > 0
    # The server is gone: a replay that sent anything would fail its dialogues.
    result = CliRunner().invoke(app, ["run", "--db", str(db), "--replay", "rec", "-q"])
    assert result.exit_code == 0, result.output
    assert "6/6 transcripts identical to rec; 0 LLM requests sent" in result.output
    con = duckdb.connect(str(db), read_only=True)
    cached = con.execute(
        "select sum(llm_cached), sum(llm_calls) from dialogues where run_id = 'rec-replay'"
    ).fetchone()
    tokens = con.execute(
        "select a.llm_prompt_tokens = b.llm_prompt_tokens from dialogues a join dialogues b using (idx) "
        "where a.run_id = 'rec' and b.run_id = 'rec-replay'"
    ).fetchall()
    con.close()
    assert cached is not None and cached[0] == made and cached[1] == 0
    assert all(same for (same,) in tokens)


def test_config_errors_name_the_file_line_and_field(tmp_path: Path, pack: Pack) -> None:
    path = tmp_path / "user.yaml"
    path.write_text(
        "llm:\n  base_url: http://127.0.0.1:1/v1\n  model: m\nbrevity: chatty\n", encoding="utf-8"
    )
    with pytest.raises(LLMUserConfigError) as info:
        load_llm_user(f"llm:{path}", pack)
    assert (info.value.line, info.value.field) == (4, "brevity") and str(path) in str(info.value)
    with pytest.raises(LLMUserConfigError, match="agenda"):
        load_llm_user("gpt", pack)


def _scenario(pack: Pack, intent: str) -> Scenario:
    for index in range(500):
        scenario = sample_scenario(pack, seed=11, index=index)
        if scenario.goal.intent == intent and not scenario.goal.opens_with and not scenario.goal.also:
            return scenario
    raise AssertionError(f"no simple {intent} scenario")
