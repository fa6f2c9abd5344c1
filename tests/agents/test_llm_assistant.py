"""An LLM with a system prompt as the assistant under test, driven for real against a loopback server."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from botdrill.agents._adapters import load_target
from botdrill.agents._http_adapters import AdapterConfigError
from botdrill.agents._llm import LLMConfig
from botdrill.agents._llm_assistant import LLMAssistant, LLMAssistantConfig
from botdrill.simulator import RunConfig, run_drill

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench._loopback import LoopbackServer, RecordedRequest, Scripted, ToolCallSpec  # noqa: E402

PROMPT = "You are the assistant of a bank. Hand fraud to a person."


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer(latency=0.002, lifetime=60) as running:
        yield running


def bot(server: LoopbackServer) -> LLMAssistant:
    llm = LLMConfig(base_url=server.base_url, model="drill-model", timeout=2.0, deadline=5.0, backoff=0.02)
    return LLMAssistant(LLMAssistantConfig(llm=llm, system_prompt=PROMPT))


@pytest.mark.asyncio
async def test_a_plain_reply_is_words_and_the_prompt_goes_first(server: LoopbackServer) -> None:
    server.script(Scripted(text="Which account would you like?"))
    assistant = bot(server)
    reply = await assistant.respond([{"role": "user", "content": "what's my balance"}], thread_id="t1")
    await assistant.aclose()
    assert reply.text == "Which account would you like?" and reply.handoff is None
    (request,) = server.chat_requests()
    body = request.body
    assert body["messages"][0] == {"role": "system", "content": PROMPT}
    assert body["messages"][1] == {"role": "user", "content": "what's my balance"}
    assert [t["function"]["name"] for t in body["tools"]] == ["transfer_to_human"]


@pytest.mark.asyncio
async def test_a_transfer_tool_call_is_a_hand_off_with_what_the_model_understood(
    server: LoopbackServer,
) -> None:
    server.script(
        Scripted(
            tool_calls=(
                ToolCallSpec(
                    "transfer_to_human",
                    {"reason": "fraud", "intent": "report_fraud", "slots": {"amount": "45.50"}},
                ),
            )
        )
    )
    assistant = bot(server)
    reply = await assistant.respond([{"role": "user", "content": "someone used my card"}], thread_id="t2")
    await assistant.aclose()
    assert reply.handoff is True
    assert (reply.intent, reply.slots) == ("report_fraud", {"amount": "45.50"})
    assert reply.text == "I'm transferring you to a colleague now."
    assert reply.raw["reason"] == "fraud"


def test_a_drill_against_the_model_stores_its_hand_offs(tmp_path: Path) -> None:
    def answer(request: RecordedRequest) -> Scripted:
        last = request.body["messages"][-1]["content"].lower()
        if any(w in last for w in ("fraud", "stolen", "scam", "not me", "wasn't me")):
            return Scripted(tool_calls=(ToolCallSpec("transfer_to_human", {"reason": "critical"}),))
        return Scripted(text="Could you tell me a bit more?")

    db = tmp_path / "llm.duckdb"
    with LoopbackServer(answer, latency=0.002, lifetime=60) as server:
        result = run_drill(
            RunConfig(db=str(db), n=8, seed=2, perturb="none", max_turns=4, target="llm-loopback"),
            assistant=bot(server),
        )
        requests = len(server.chat_requests())
    assert result.simulated == 8
    con = duckdb.connect(str(db), read_only=True)
    try:
        sources = con.execute(
            "select escalation_source, count(*) from dialogues where escalated group by 1"
        ).fetchall()
        errors = con.execute("select count(*) from dialogues where error_type is not null").fetchone()
    finally:
        con.close()
    assert errors == (0,)
    assert sources and all(source == "exposed" for source, _ in sources)
    assert requests >= 8


def test_the_target_spec_and_config_errors(tmp_path: Path, server: LoopbackServer) -> None:
    good = tmp_path / "bot.yaml"
    good.write_text(
        json.dumps({"llm": {"base_url": server.base_url, "model": "m"}, "system_prompt": PROMPT}),
        encoding="utf-8",
    )
    assistant = load_target(f"llm:{good}")
    assert isinstance(assistant, LLMAssistant) and assistant.name == "llm:m"
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        f"llm:\n  base_url: {server.base_url}\n  model: m\nsystem_prompt: hi\nhandof_tool: false\n"
    )
    with pytest.raises(AdapterConfigError) as info:
        load_target(f"llm:{bad}")
    assert (info.value.line, info.value.field) == (5, "handof_tool")
    assert str(bad) in str(info.value)
