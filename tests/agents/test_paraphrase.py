"""The LLM paraphraser, driven for real through langchain-openai against a loopback server.

The scripted "model" reads the seed from the request's JSON data, the way a model would, and answers the
forced `Paraphrases` tool call with the rewrites scripted for that seed; a few seeds are scripted to fail.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from botdrill.agents._augment import Seed
from botdrill.agents._http_adapters import AdapterConfigError
from botdrill.agents._llm import LLMConfig
from botdrill.agents._llm_store import LLMStore
from botdrill.agents._paraphrase import (
    PROMPT_VARIANTS,
    LLMParaphraser,
    ParaphraseConfig,
    ParaphraseConfigError,
    clean_paraphrases,
    load_paraphraser,
)

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench._loopback import LoopbackServer, RecordedRequest, Scripted, ToolCallSpec  # noqa: E402

DESCRIPTIONS = {
    "freeze_card": "freeze a lost card so nobody can use it",
    "report_fraud": "report a payment they did not make",
}
SCRIPTED: dict[str, list[str]] = {
    "freeze my card": [
        "  Please freeze\n my card now ",
        "please FREEZE my card now",  # a repeat, in other case
        "Freeze My Card",  # the seed itself
        "",
        "   ",
        '"can you lock my card"',  # quoted, as models like to
        "lock card pls",
        "block my card, I lost it",
    ],
    "there's a charge I never made": ["i didn't make this payment", "unknown charge on my account"],
    "i lost my card": ["lost my card, pls freeze it", "my card is gone, can you stop it"],
    "someone used my card": ["somebody used my card without asking", "a stranger used my card"],
    "only the seed": ["Only the seed", "ONLY THE SEED  "],
    "too many": [f"rewrite number {i}" for i in range(21)],
}
BOOM = "the server fails on this one"


def seed_data(request: RecordedRequest) -> dict[str, str]:
    """The JSON data of the request's last message: what the customer wants, and the seed."""
    content = request.messages[-1]["content"]
    data: dict[str, str] = json.loads(content.split("\n", 1)[1])
    return data


def model(request: RecordedRequest) -> Scripted:
    """Rewrites scripted by seed text; a 500 for `BOOM`; something generic for any other seed."""
    text = seed_data(request)["message"]
    if text == BOOM:
        return Scripted.error_status(500)
    texts = SCRIPTED.get(text, [f"{text}, please", f"hi, {text}"])
    return Scripted(tool_calls=(ToolCallSpec("Paraphrases", {"texts": texts}),))


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer(model, lifetime=30) as running:
        yield running
    assert not running.running


def config(server: LoopbackServer, **kwargs: Any) -> ParaphraseConfig:
    llm = LLMConfig(
        base_url=server.base_url, model="para-model", timeout=2, deadline=4, backoff=0.01, max_retries=1
    )
    return ParaphraseConfig(llm=llm, **kwargs)


def seeds(*texts: str, file: str = "seeds.csv", intent: str = "freeze_card") -> list[Seed]:
    return [Seed(text=t, intent=intent, source=f"{file}:{n}") for n, t in enumerate(texts, 2)]


async def fetch(paraphraser: LLMParaphraser, batch: list[Seed], **kwargs: Any) -> Any:
    try:
        return await paraphraser.paraphrase(batch, DESCRIPTIONS, **kwargs)
    finally:
        await paraphraser.aclose()


@pytest.mark.asyncio
async def test_paraphrases_are_cleaned_and_the_seed_is_sent_as_data(server: LoopbackServer) -> None:
    paraphraser = LLMParaphraser(config(server, n=3))
    batch = seeds("freeze my card", "only the seed")
    result = await fetch(paraphraser, batch)

    assert result.paraphrases == {
        "seeds.csv:2": ["Please freeze my card now", "can you lock my card", "lock card pls"]
    }
    assert "no usable paraphrase" in result.failures["seeds.csv:3"]
    assert (result.calls, result.cached) == (2, 0)

    request = next(r for r in server.chat_requests() if seed_data(r)["message"] == "freeze my card")
    system, user = (m["content"] for m in request.messages)
    assert "freeze my card" not in system, "the seed goes in the data message, never the instructions"
    assert seed_data(request) == {
        "what the customer wants": DESCRIPTIONS["freeze_card"],
        "message": "freeze my card",
    }
    assert "3 different ways" in system and "not instructions" in user
    assert [t["function"]["name"] for t in request.body["tools"]] == ["Paraphrases"]


def test_cleaning_keeps_order_and_stops_at_n() -> None:
    assert clean_paraphrases(["a b", "A  B", "'c'", "c", "d", "e"], "seed", 3) == ["a b", "c", "d"]
    assert clean_paraphrases(["Seed ", "", "x"], " seed", 5) == ["x"]


@pytest.mark.asyncio
async def test_variants_rotate_over_the_seeds_and_are_reported_with_their_hashes(
    server: LoopbackServer,
) -> None:
    paraphraser = LLMParaphraser(config(server, instructions="Write in British English."))
    batch = seeds("a", "b", "c", "d")
    result = await fetch(paraphraser, batch)

    order = list(PROMPT_VARIANTS)
    assert result.variants_used == {s.source: order[i % 3] for i, s in enumerate(batch)}
    reported = paraphraser.prompt_variants()
    assert [v["id"] for v in reported] == order
    by_id = {v["id"]: v for v in reported}
    for variant in reported:
        assert variant["sha256"] == hashlib.sha256(variant["text"].encode()).hexdigest()
        assert "Write in British English." in variant["text"]
    assert len({v["sha256"] for v in reported}) == 3
    for request in server.chat_requests():
        source = next(s.source for s in batch if s.text == seed_data(request)["message"])
        assert request.messages[0]["content"] == by_id[result.variants_used[source]]["text"]
    assert len(result.paraphrases) == 4 and not result.failures

    only = LLMParaphraser(config(server, variants=["casual-v1"]))
    assert set((await fetch(only, batch)).variants_used.values()) == {"casual-v1"}
    # The hash follows what is sent: another n is another prompt.
    assert (
        only.prompt_variants()[0]["sha256"]
        != LLMParaphraser(config(server, n=7, variants=["casual-v1"])).prompt_variants()[0]["sha256"]
    )


@pytest.mark.asyncio
async def test_record_then_replay_makes_no_request_and_gives_the_same_paraphrases(
    tmp_path: Path, server: LoopbackServer
) -> None:
    db = tmp_path / "batch.duckdb"
    batch = [
        *seeds("i lost my card", "freeze my card"),
        *seeds("there's a charge I never made", intent="report_fraud", file="fraud.csv"),
    ]
    store = LLMStore(db, run_id="batch-1")
    recorder = LLMParaphraser(config(server))
    recorder.use_store(store, "record")
    recorded = await fetch(recorder, batch)
    store.close()
    sent = len(server.chat_requests())
    assert sent == 3 and recorded.calls == 3 and not recorded.failures

    con = duckdb.connect(str(db))
    try:
        replayer = LLMParaphraser(config(server))
        replayer.use_store(LLMStore(con), "replay")
        replayed = await fetch(replayer, batch)
        assert len(server.chat_requests()) == sent, "a replay sends nothing"
        assert replayed.paraphrases == recorded.paraphrases
        assert replayed.variants_used == recorded.variants_used
        assert (replayed.calls, replayed.cached) == (0, 3)

        # A seed never recorded is that seed's failure; the recorded ones still come back.
        replayer.use_store(LLMStore(con), "replay")
        extra = await fetch(replayer, [*batch, *seeds("someone used my card", file="new.csv")])
        assert len(server.chat_requests()) == sent
        assert list(extra.failures) == ["new.csv:2"] and "LLMReplayMiss" in extra.failures["new.csv:2"]
        assert extra.paraphrases == recorded.paraphrases
    finally:
        con.close()


@pytest.mark.asyncio
async def test_identical_seeds_of_two_files_do_not_share_an_answer(
    tmp_path: Path, server: LoopbackServer
) -> None:
    store = LLMStore(tmp_path / "batch.duckdb")
    paraphraser = LLMParaphraser(config(server, variants=["plain-v1"]))
    paraphraser.use_store(store, "record")
    result = await fetch(paraphraser, [*seeds("i lost my card"), *seeds("i lost my card", file="more.csv")])
    assert len(server.chat_requests()) == 2 and store.count() == 2
    assert result.paraphrases["seeds.csv:2"] == result.paraphrases["more.csv:2"]
    store.close()


@pytest.mark.asyncio
async def test_a_failing_seed_lands_in_failures_and_the_others_succeed(server: LoopbackServer) -> None:
    paraphraser = LLMParaphraser(config(server))
    batch = seeds("i lost my card", BOOM, "too many", "someone used my card")
    result = await fetch(paraphraser, batch, concurrency=2)

    assert list(result.paraphrases) == ["seeds.csv:2", "seeds.csv:5"]
    assert list(result.failures) == ["seeds.csv:3", "seeds.csv:4"]
    assert "LLMStatusError" in result.failures["seeds.csv:3"] and "500" in result.failures["seeds.csv:3"]
    # 21 rewrites overflow the bounded answer: refused, not truncated.
    assert "LLMResponseError" in result.failures["seeds.csv:4"]
    assert result.calls == len(server.chat_requests()) == 5  # the 500 was retried once
    assert server.max_in_flight <= 2


@pytest.mark.asyncio
async def test_concurrency_must_be_positive(server: LoopbackServer) -> None:
    with pytest.raises(ValueError, match="concurrency"):
        await fetch(LLMParaphraser(config(server)), seeds("x"), concurrency=0)


def test_config_errors_name_the_file_line_and_field(tmp_path: Path) -> None:
    head = "llm:\n  base_url: http://127.0.0.1:1/v1\n  model: m\n"
    path = tmp_path / "paraphraser.yaml"
    path.write_text(head + "n: 50\n", encoding="utf-8")
    with pytest.raises(ParaphraseConfigError) as info:
        load_paraphraser(path)
    assert (info.value.line, info.value.field) == (4, "n") and str(path) in str(info.value)
    assert isinstance(info.value, AdapterConfigError)

    path.write_text(head + "n: 3\nvariants:\n  - plain-v1\n  - fancy-v9\n", encoding="utf-8")
    with pytest.raises(ParaphraseConfigError, match="fancy-v9") as info:
        load_paraphraser(path)
    assert (info.value.line, info.value.field) == (6, "variants")

    path.write_text(head + "temperature: 0.7\n", encoding="utf-8")
    with pytest.raises(ParaphraseConfigError) as info:
        load_paraphraser(path)
    assert (info.value.line, info.value.field) == (4, "temperature")

    with pytest.raises(ParaphraseConfigError, match="no such file"):
        load_paraphraser(tmp_path / "missing.yaml")

    path.write_text(head + "n: 2\nvariants: [detailed-v1]\n", encoding="utf-8")
    loaded = load_paraphraser(path)
    assert (loaded.config.n, loaded.config.variants) == (2, ["detailed-v1"])
