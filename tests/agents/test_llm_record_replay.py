"""Record and replay of LLM calls: the `llm_calls` table, its keys, and runs that make no request at all."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from pydantic import BaseModel

from botdrill.agents._adapters import AssistantError
from botdrill.agents._llm import LLMClient, LLMConfig, LLMConfigError, LLMReplayMiss, LLMResult, ModelPrice
from botdrill.agents._llm_store import LLMCallRecord, LLMStore, canonical_json, request_key

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench._loopback import LoopbackServer, Scripted, ToolCallSpec  # noqa: E402

KEY = "sk-botdrill-replay-7d41c0be93aa52f8"
TENANT = "tenant-secret-0c7e19d4"
HI = [{"role": "user", "content": "someone used my card in Lisbon"}]
TRANSFER = {
    "type": "function",
    "function": {"name": "transfer_to_human", "parameters": {"type": "object", "properties": {}}},
}


class Route(BaseModel):
    intent: str


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer(latency=0.005, lifetime=30) as running:
        yield running
    assert not running.running


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOTDRILL_REPLAY_KEY", KEY)
    monkeypatch.setenv("BOTDRILL_REPLAY_TENANT", TENANT)


def config(base_url: str, **kwargs: Any) -> LLMConfig:
    fields: dict[str, Any] = {
        "base_url": base_url, "model": "drill-model", "api_key_env": "BOTDRILL_REPLAY_KEY", "seed": 3,
        "headers_from_env": {"X-Tenant": "BOTDRILL_REPLAY_TENANT"}, "timeout": 2.0, "deadline": 5.0,
    }  # fmt: skip
    return LLMConfig(**(fields | kwargs))


def same_answer(result: LLMResult) -> LLMResult:
    """The result without what depends on how it was served."""
    return dataclasses.replace(result, cached=False, attempts=0, wall_ms=0.0)


async def record_three(server: LoopbackServer, store: LLMStore) -> list[LLMResult]:
    server.script(
        Scripted(text="I have frozen the card.", prompt_tokens=12, completion_tokens=5),
        Scripted(tool_calls=(ToolCallSpec("transfer_to_human", {}),)),
        Scripted(tool_calls=(ToolCallSpec("Route", {"intent": "fraud"}),)),
    )
    async with LLMClient(config(server.base_url), store=store, mode="record") as client:
        return [
            await client.complete(HI),
            await client.complete(HI, tools=[TRANSFER]),
            await client.complete(HI, schema=Route),
        ]


@pytest.mark.asyncio
async def test_record_then_replay_without_a_request(server: LoopbackServer, tmp_path: Path) -> None:
    path = tmp_path / "drill.duckdb"
    with LLMStore(path, run_id="run-1") as store:
        recorded = await record_three(server, store)
    assert len(server.requests) == 3 and not any(r.cached for r in recorded)

    with LoopbackServer() as untouched, LLMStore(path) as store:
        async with LLMClient(config(untouched.base_url), store=store, mode="replay") as client:
            replayed = [
                await client.complete(HI),
                await client.complete(HI, tools=[TRANSFER]),
                await client.complete(HI, schema=Route),
            ]
    assert untouched.requests == []  # the server's log proves it: no request at all
    assert all(r.cached and r.attempts == 0 for r in replayed)
    assert [same_answer(r) for r in replayed] == [same_answer(r) for r in recorded]
    assert replayed[0].text == "I have frozen the card." and replayed[0].prompt_tokens == 12
    assert replayed[0].latency_ms == recorded[0].latency_ms  # the simulated clock reads the same
    assert replayed[1].tool_calls[0].name == "transfer_to_human"
    assert replayed[2].parsed == Route(intent="fraud")


@pytest.mark.asyncio
async def test_replay_needs_no_secret_and_no_network(
    server: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "drill.duckdb"
    with LLMStore(path) as store:
        recorded = await record_three(server, store)
    monkeypatch.delenv("BOTDRILL_REPLAY_KEY")
    monkeypatch.delenv("BOTDRILL_REPLAY_TENANT")
    # A recording made against one endpoint replays for the same model anywhere (CI, offline).
    elsewhere = config("https://llm.invalid/v1")
    with pytest.raises(LLMConfigError):
        LLMClient(elsewhere)  # live, it would need the key
    with LLMStore(path) as store:
        async with LLMClient(elsewhere, store=store, mode="replay") as client:
            replayed = await client.complete(HI)
    assert same_answer(replayed) == same_answer(recorded[0])


@pytest.mark.asyncio
async def test_replay_miss_names_the_key_and_model(server: LoopbackServer) -> None:
    with LLMStore() as store:
        async with LLMClient(config(server.base_url), store=store, mode="replay") as client:
            key = client.request_key(HI)
            with pytest.raises(LLMReplayMiss) as caught:
                await client.complete(HI)
    error = caught.value
    assert isinstance(error, AssistantError) and error.key == key and error.model == "drill-model"
    assert key in str(error) and "drill-model" in str(error)
    assert server.requests == []


@pytest.mark.asyncio
async def test_record_answers_a_repeated_request_from_the_store(server: LoopbackServer) -> None:
    server.script("first answer", "second answer")
    with LLMStore() as store:
        async with LLMClient(config(server.base_url, temperature=1.0), store=store, mode="record") as client:
            first = await client.complete(HI)
            again = await client.complete(HI)
            other = await client.complete(HI, salt="trial-2")  # same words, another trial
    assert (first.text, again.text, other.text) == ("first answer", "first answer", "second answer")
    assert not first.cached and again.cached and not other.cached
    assert len(server.requests) == 2


@pytest.mark.asyncio
async def test_record_sends_identical_concurrent_requests_once(server: LoopbackServer) -> None:
    server.latency = 0.05
    with LLMStore() as store:
        async with LLMClient(config(server.base_url), store=store, mode="record") as client:
            results = await asyncio.gather(*[client.complete(HI) for _ in range(5)])
    assert len(server.requests) == 1
    assert [r.cached for r in results].count(False) == 1
    assert len({same_answer(r) for r in results}) == 1


@pytest.mark.asyncio
async def test_a_new_recording_replaces_an_earlier_run(server: LoopbackServer, tmp_path: Path) -> None:
    path = tmp_path / "drill.duckdb"
    server.script("old answer", "new answer")
    for run in ("run-1", "run-2"):
        with LLMStore(path, run_id=run) as store:
            async with LLMClient(config(server.base_url), store=store, mode="record") as client:
                await client.complete(HI)
    assert len(server.requests) == 2  # record mode calls again for what an earlier run recorded
    with LLMStore(path) as store:
        async with LLMClient(config(server.base_url), store=store, mode="replay") as client:
            assert (await client.complete(HI)).text == "new answer"
        assert store.count() == 1
    with duckdb.connect(str(path)) as con:
        assert con.execute("select run_id from llm_calls").fetchall() == [("run-2",)]


@pytest.mark.asyncio
async def test_live_mode_stores_nothing(server: LoopbackServer) -> None:
    with LLMStore() as store:
        async with LLMClient(config(server.base_url), store=store) as client:
            result = await client.complete(HI)
            await client.complete(HI)
        assert store.count() == 0
    assert result.key is None and len(server.requests) == 2


def test_modes_that_need_a_store() -> None:
    for mode in ("record", "replay"):
        with pytest.raises(LLMConfigError, match="LLMStore"):
            LLMClient(config("http://127.0.0.1:9/v1"), mode=mode)  # type: ignore[arg-type]


def test_key_is_sha256_of_canonical_json() -> None:
    request = {"model": "m", "messages": [{"role": "user", "content": "é"}], "params": {"b": 1, "a": None}}
    text = '{"messages":[{"content":"é","role":"user"}],"model":"m","params":{"a":null,"b":1}}'
    assert canonical_json(request) == text
    assert request_key(request) == hashlib.sha256(text.encode()).hexdigest()
    with pytest.raises(TypeError):
        canonical_json({"content": object()})


def test_what_the_key_depends_on() -> None:
    base = LLMClient(config("http://127.0.0.1:9/v1"))
    key = base.request_key(HI)
    assert LLMClient(config("http://127.0.0.1:10/v1")).request_key(HI) == key  # not the endpoint
    assert LLMClient(config("http://127.0.0.1:9/v1", timeout=1.0)).request_key(HI) == key  # nor the policy
    others = {
        LLMClient(config("http://127.0.0.1:9/v1", model="other")).request_key(HI),
        LLMClient(config("http://127.0.0.1:9/v1", temperature=0.7)).request_key(HI),
        LLMClient(config("http://127.0.0.1:9/v1", seed=4)).request_key(HI),
        LLMClient(config("http://127.0.0.1:9/v1", max_tokens=10)).request_key(HI),
        base.request_key([*HI, {"role": "assistant", "content": "ok"}]),
        base.request_key(HI, tools=[TRANSFER]),
        base.request_key(HI, tools=[TRANSFER], tool_choice="required"),
        base.request_key(HI, schema=Route),
        base.request_key(HI, schema=Route, schema_method="json_schema"),
        base.request_key(HI, salt="trial-1"),
    }
    assert len(others) == 10 and key not in others


@pytest.mark.asyncio
async def test_stored_row(server: LoopbackServer, tmp_path: Path) -> None:
    path = tmp_path / "drill.duckdb"
    server.script(Scripted(text="frozen", prompt_tokens=1000, completion_tokens=200))
    prices = {"drill-model": ModelPrice(prompt=0.5, completion=2.0)}
    with LLMStore(path, run_id="run-7") as store:
        async with LLMClient(config(server.base_url, prices=prices), store=store, mode="record") as client:
            result = await client.complete(HI)
    with duckdb.connect(str(path)) as con:
        row = con.execute(
            "select key, model, endpoint, request, response, prompt_tokens, completion_tokens, latency_ms, "
            "cost_usd, created_at, run_id from llm_calls"
        ).fetchone()
    assert row is not None
    key, model, endpoint, request, response, prompt, completion, latency, cost, created, run = row
    assert key == result.key and model == "drill-model" and run == "run-7"
    assert endpoint == f"127.0.0.1:{server.port}"
    assert json.loads(request)["messages"] == HI and json.loads(request)["params"]["seed"] == 3
    assert json.loads(response)["text"] == "frozen"
    assert (prompt, completion) == (1000, 200) and latency == result.latency_ms > 0
    assert cost == pytest.approx(result.cost_usd) == pytest.approx((1000 * 0.5 + 200 * 2.0) / 1e6)
    assert created is not None


@pytest.mark.asyncio
async def test_no_secret_in_the_store(server: LoopbackServer, tmp_path: Path) -> None:
    path = tmp_path / "drill.duckdb"
    marker = "a-distinctive-user-message-4417"
    with LLMStore(path) as store:
        async with LLMClient(config(server.base_url), store=store, mode="record") as client:
            await client.complete([{"role": "user", "content": marker}])
            await client.complete(HI, stream=True)
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"  # it was sent, not stored
    data = path.read_bytes()
    assert marker.encode() in data  # the grep below can see plain text in this file
    assert KEY.encode() not in data and TENANT.encode() not in data
    assert b"authorization" not in data.lower() and b"x-tenant" not in data.lower()
    columns = "key || model || endpoint || request::VARCHAR || response::VARCHAR || coalesce(run_id, '')"
    with duckdb.connect(str(path)) as con:
        rows = con.execute(f"select ({columns}) like '%' || ? || '%' from llm_calls", [KEY]).fetchall()
    assert rows == [(False,), (False,)]


@pytest.mark.asyncio
async def test_shares_a_connection_with_other_tables(server: LoopbackServer, tmp_path: Path) -> None:
    path = tmp_path / "drill.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create table runs (run_id varchar primary key)")
    con.execute("insert into runs values ('run-1')")
    con.execute("BEGIN")  # the owner's open transaction is not the store's
    with LLMStore(con, run_id="run-1") as store:
        async with LLMClient(config(server.base_url), store=store, mode="record") as client:
            await client.complete(HI)
    con.execute("ROLLBACK")
    assert con.execute("select count(*) from llm_calls").fetchone() == (1,)
    assert con.execute("select r.run_id from runs r join llm_calls l using (run_id)").fetchall() == [
        ("run-1",)
    ]
    LLMStore(con).close()  # a second store on the same file: CREATE TABLE IF NOT EXISTS
    con.close()


def test_rows_are_written_in_batches(tmp_path: Path) -> None:
    path = tmp_path / "drill.duckdb"
    store = LLMStore(path, flush_every=3)

    def stored() -> int:
        row = store._con.execute("select count(*) from llm_calls").fetchone()
        return int(row[0]) if row else 0

    for i in range(4):
        store.put(
            LLMCallRecord(key=f"k{i}", model="m", endpoint="h", request={"i": i}, response={"text": ""})
        )
        assert store.get(f"k{i}") is not None and store.recorded(f"k{i}") is not None
    assert stored() == 3  # the fourth is still buffered
    store.close()
    with LLMStore(path) as reopened:
        assert reopened.count() == 4 and reopened.recorded("k0") is None and reopened.get("k0") is not None
