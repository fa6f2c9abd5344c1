"""Throughput and CPU cost of botdrill's LLM client (`LLMClient`) against a loopback server.

    python -m bench.llm [--latency 0.1] [--concurrency 1,4,8,16,32,64] [--seconds 2.5] [--json PATH]
    python -m bench.llm --quick           # a smoke run of a few seconds

Two loopback servers (`bench._loopback`) run in processes of their own, so that their CPU does not count
against the client's: one with the fixed latency, one answering at once.

1. The server's ceiling: a raw HTTP client (the SDK's httpx client, nothing on top) against the zero-latency
   server; the calls/s it reaches and the server's CPU per request (from /proc, where there is one).
2. CPU per call: process CPU time (`time.process_time`, every thread) over calls made at a fixed
   concurrency against the zero-latency server, in interleaved rounds (median kept), for the client library
   (`ChatOpenAI(...).ainvoke` with the settings `LLMClient` gives it), `LLMClient.complete` live (the
   difference is botdrill's cost on top), the same recording into `LLMStore(":memory:")`, and replay from
   a store recorded before (a fresh `LLMStore` on the same DuckDB connection, as a new run opens it; no
   network call, so its calls/s is the replay ceiling). Over the network the difference is small against
   the round-to-round noise, so botdrill's own cost is also measured alone: `ChatOpenAI.ainvoke` replaced
   by a stub that answers at once, called directly and through `LLMClient.complete`.
3. Throughput: for each concurrency, calls through `LLMClient` with `concurrency` set, all submitted at
   once (its per-endpoint gate lets that many through), against the latency server; the calls/s achieved
   against the ideal, concurrency / latency. The same calls through `ChatOpenAI.ainvoke` under an
   `asyncio.Semaphore` show what the client library alone achieves at that point. Best of `--repeat` runs.

Target: at least 90% of the ideal wherever the server is not the bottleneck. Columns of the table: `lib@ideal`
is the share of one core the client library needs at the ideal rate (its CPU per call at that point
times the ideal rate); `busy` is the client's CPU time (every thread) over the wall time of botdrill's
run, `server` the server's; `waited` the share of the wall time the client's threads were ready to run
but waited for a CPU (Linux schedstat), whether for other processes or for each other. A point is bound
by the `server` when the server is at least 80% busy (or would be at the ideal rate), by the `library CPU`
when the client library alone needs 80% of a core or more at the ideal rate, by the `client CPU` when the
client was at least 80% busy, by `client queueing` when it was at least 30% busy (calls that come back
together wait for each other's CPU on the one event loop, and a fixed latency keeps them together), by
`CPU wait` when its threads waited 10% of the time or more, and by the `latency` otherwise. The target is
`n/a` at points bound by the server or by the library's CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from botdrill.agents._llm import CacheMode

ROOT = Path(__file__).resolve().parents[1]
MODEL = "loopback-model"
TARGET = 0.9
BUSY = 0.8
"""A process this busy (CPU time over wall time) is taken for the bottleneck of a point."""
QUEUEING = 0.3
"""A client this busy makes calls that come back together wait for each other's CPU on its one event loop
(a fixed latency keeps them together), enough to cost more than the target's 10% margin."""
CONTENDED = 0.1
"""The client's threads waiting this share of the time for a CPU (for other processes, or for each other)."""


# -- measuring ---------------------------------------------------------------------------------------------


def _proc_cpu(pid: int) -> float | None:
    """CPU seconds (user + system, every thread) of another process, where /proc says (Linux)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _run_queue_wait() -> float | None:
    """Seconds this process's threads have spent ready to run but waiting for a CPU (Linux schedstat)."""
    total = 0.0
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return None
    for tid in tasks:
        try:
            total += int(Path(f"/proc/self/task/{tid}/schedstat").read_text().split()[1]) / 1e9
        except (OSError, IndexError, ValueError):
            continue
    return total


@dataclass
class Span:
    """Wall time, CPU time of this process, its wait for a CPU, and the server's CPU over some calls."""

    calls: int
    seconds: float
    cpu: float
    waited: float | None
    server_cpu: float | None

    @property
    def rate(self) -> float:
        return self.calls / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_per_call_us(self) -> float:
        return self.cpu / self.calls * 1e6 if self.calls else 0.0

    @property
    def busy(self) -> float:
        return self.cpu / self.seconds if self.seconds > 0 else 0.0

    @property
    def server_busy(self) -> float | None:
        if self.server_cpu is None or self.seconds <= 0:
            return None
        return self.server_cpu / self.seconds

    @property
    def waited_share(self) -> float | None:
        if self.waited is None or self.seconds <= 0:
            return None
        return self.waited / self.seconds


async def _timed(calls: int, run: Callable[[], Awaitable[None]], server_pid: int | None) -> Span:
    server0 = _proc_cpu(server_pid) if server_pid else None
    wait0 = _run_queue_wait()
    cpu0, t0 = time.process_time(), time.perf_counter()
    await run()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    wait1 = _run_queue_wait()
    server1 = _proc_cpu(server_pid) if server_pid else None
    return Span(
        calls=calls,
        seconds=seconds,
        cpu=cpu,
        waited=None if wait0 is None or wait1 is None else wait1 - wait0,
        server_cpu=None if server0 is None or server1 is None else server1 - server0,
    )


def _messages(i: int) -> list[dict[str, str]]:
    """A request of its own for every call (the record store would answer repeated ones itself)."""
    return [
        {"role": "system", "content": "You are the assistant of a bank. Answer in one sentence."},
        {"role": "user", "content": f"My card was stolen yesterday, what do I do? (call {i})"},
    ]


# -- the server --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def loopback(latency: float) -> Iterator[tuple[str, int]]:
    """A loopback server in a process of its own: its base URL and process id."""
    command = [sys.executable, "-m", "bench._loopback", "--latency", repr(latency), "--lifetime", "3600"]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().strip()
            if not url.startswith("http://"):
                raise RuntimeError(f"the loopback server did not start (exit status {proc.poll()})")
            yield url, proc.pid
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


# -- the clients -------------------------------------------------------------------------------------------


def _config(url: str, concurrency: int) -> Any:
    from botdrill.agents._llm import LLMConfig

    return LLMConfig(base_url=url, model=MODEL, concurrency=concurrency, timeout=60.0, deadline=600.0)


def _library_model(url: str, config: Any) -> tuple[Any, Any]:
    """`ChatOpenAI` with the settings `LLMClient` gives it (no retries of its own, usage reported), and
    its HTTP client."""
    import openai
    from langchain_openai import ChatOpenAI
    from pydantic import SecretStr

    http = openai.DefaultAsyncHttpxClient(timeout=config.timeout)
    model = ChatOpenAI(
        model=config.model,
        base_url=url,
        api_key=SecretStr("botdrill-loopback"),
        temperature=config.temperature,
        max_completion_tokens=config.max_tokens,
        seed=config.seed,
        timeout=config.timeout,
        max_retries=0,
        http_async_client=http,
        stream_usage=True,
    )
    return model, http


async def _library(url: str, concurrency: int, warmup: int, calls: int, server_pid: int | None) -> Span:
    """`calls` calls of the bare client library, `concurrency` at a time."""
    model, http = _library_model(url, _config(url, concurrency))
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            await model.ainvoke(_messages(i))

    async def run(first: int, n: int) -> None:
        await asyncio.gather(*(one(i) for i in range(first, first + n)))

    try:
        await run(0, warmup)
        return await _timed(calls, lambda: run(warmup, calls), server_pid)
    finally:
        await http.aclose()


async def _botdrill(
    url: str,
    concurrency: int,
    warmup: int,
    calls: int,
    server_pid: int | None,
    store: Any = None,
    mode: CacheMode = "live",
) -> Span:
    """`calls` calls of `LLMClient.complete`, all at once: its gate lets `concurrency` through."""
    from botdrill.agents._llm import LLMClient

    client = LLMClient(_config(url, concurrency), store=store, mode=mode)

    async def run(first: int, n: int) -> None:
        await asyncio.gather(*(client.complete(_messages(i)) for i in range(first, first + n)))
        if store is not None:
            store.flush()

    async with client:
        await run(0, warmup)
        return await _timed(calls, lambda: run(warmup, calls), server_pid)


async def _raw(url: str, concurrency: int, warmup: int, calls: int, server_pid: int | None) -> Span:
    """`calls` chat requests through the SDK's bare httpx client: the server's ceiling, or this client's."""
    import openai

    gate = asyncio.Semaphore(concurrency)
    body = json.dumps({"model": MODEL, "messages": _messages(0), "temperature": 0.0})
    headers = {"content-type": "application/json", "authorization": "Bearer botdrill-loopback"}
    async with openai.DefaultAsyncHttpxClient(timeout=60.0) as http:

        async def one(_: int) -> None:
            async with gate:
                response = await http.post(f"{url}/chat/completions", content=body, headers=headers)
                response.raise_for_status()

        async def run(n: int) -> None:
            await asyncio.gather(*(one(i) for i in range(n)))

        await run(warmup)
        return await _timed(calls, lambda: run(calls), server_pid)


async def _replay(url: str, concurrency: int, calls: int) -> tuple[Span, Span]:
    """Record `calls` calls into an in-memory DuckDB, then replay them from a fresh store object on it."""
    import duckdb

    from botdrill.agents._llm_store import LLMStore

    con = duckdb.connect(":memory:")
    try:
        with LLMStore(con) as store:
            recorded = await _botdrill(url, concurrency, 0, calls, None, store=store, mode="record")
        with LLMStore(con) as store:
            replayed = await _botdrill(url, concurrency, 0, calls, None, store=store, mode="replay")
    finally:
        con.close()
    return recorded, replayed


async def _stubbed(concurrency: int, calls: int, rounds: int) -> dict[str, list[float]]:
    """CPU per call (µs) of botdrill's own code alone: `ChatOpenAI.ainvoke` replaced by a stub that answers
    at once, called directly (`stub`) and through `LLMClient.complete`, live and recording, in rounds."""
    from unittest import mock

    from langchain_core.messages import AIMessage
    from langchain_openai import ChatOpenAI
    from pydantic import SecretStr

    from botdrill.agents._llm import LLMClient
    from botdrill.agents._llm_store import LLMStore

    reply = AIMessage(
        content="ok",
        usage_metadata={"input_tokens": 20, "output_tokens": 1, "total_tokens": 21},
        response_metadata={"model_name": MODEL, "finish_reason": "stop"},
    )

    async def ainvoke(self: Any, messages: Any, config: Any = None, **kwargs: Any) -> AIMessage:
        await asyncio.sleep(0)
        return reply

    url = "http://127.0.0.1:9/v1"  # never reached: the stub answers
    found: dict[str, list[float]] = {"stub": [], "live": [], "record": []}

    async def measure(kind: str, first: int) -> float:
        store = LLMStore(":memory:") if kind == "record" else None
        client = LLMClient(
            _config(url, concurrency), store=store, mode="record" if store is not None else "live"
        )
        model = ChatOpenAI(model=MODEL, base_url=url, api_key=SecretStr("botdrill-loopback"))
        gate = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            if kind == "stub":
                async with gate:
                    await model.ainvoke(_messages(i))
            else:
                await client.complete(_messages(i))

        async with client:
            await asyncio.gather(*(one(first - i - 1) for i in range(concurrency)))  # builds the client
            cpu0 = time.process_time()
            await asyncio.gather(*(one(first + i) for i in range(calls)))
            if store is not None:
                store.flush()
            cpu = time.process_time() - cpu0
        if store is not None:
            store.close()
        return cpu / calls * 1e6

    with mock.patch.object(ChatOpenAI, "ainvoke", ainvoke):
        await measure("live", 0)  # warm-up
        for r in range(rounds):
            for kind in found:
                found[kind].append(await measure(kind, (r + 1) * (calls + concurrency) + 1))
    return found


# -- the benchmark -----------------------------------------------------------------------------------------


def _bound(span: Span, ideal: float, library_need: float, server_cpu_us: float | None) -> str:
    """What limits a point: the server, the client library's CPU, the client's CPU, waiting for a CPU, or
    nothing but the latency. `library_need`: the share of a core the client library needs at the ideal
    rate."""
    server = span.server_busy
    if (server is not None and server >= BUSY) or (server_cpu_us and ideal * server_cpu_us / 1e6 >= BUSY):
        return "server"
    if library_need >= BUSY:
        return "library CPU"
    if span.busy >= BUSY:
        return "client CPU"
    if span.busy >= QUEUEING:
        return "client queueing"
    waited = span.waited_share
    if waited is not None and waited >= CONTENDED:
        return "CPU wait"
    return "latency"


def _verdict(ratio: float, bound: str) -> str:
    if ratio >= TARGET:
        return "met"
    return f"n/a ({bound})" if bound in ("server", "library CPU") else "MISSED"


def _pct(value: float | None) -> str:
    return "    -" if value is None else f"{100 * value:4.0f}%"


def _parse_concurrency(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("concurrencies must be integers of at least 1")
    return values


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.llm",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--latency", type=float, default=None, help="seconds per reply (default 0.1)")
    parser.add_argument(
        "--concurrency",
        type=_parse_concurrency,
        default=None,
        help="comma-separated concurrencies (default 1,4,8,16,32,64)",
    )
    parser.add_argument(
        "--calls",
        type=int,
        default=None,
        help="calls per point (default: enough for --seconds at the ideal rate)",
    )
    parser.add_argument("--seconds", type=float, default=None, help="target seconds per point (default 2.5)")
    parser.add_argument(
        "--repeat", type=int, default=None, help="runs per point and client, the best kept (default 2)"
    )
    parser.add_argument(
        "--cpu-calls", type=int, default=None, help="calls per round of the CPU measurement (default 500)"
    )
    parser.add_argument(
        "--cpu-concurrency", type=int, default=8, help="concurrency of the CPU measurement (default 8)"
    )
    parser.add_argument("--rounds", type=int, default=None, help="rounds of the CPU measurement (default 5)")
    parser.add_argument(
        "--stub-calls",
        type=int,
        default=None,
        help="calls per round of botdrill's own CPU, the model stubbed out (default 5000)",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    quick = {
        "latency": 0.05,
        "concurrency": [1, 4],
        "seconds": 0.3,
        "repeat": 1,
        "cpu_calls": 60,
        "rounds": 1,
        "stub_calls": 300,
    }
    full = {
        "latency": 0.1,
        "concurrency": [1, 4, 8, 16, 32, 64],
        "seconds": 2.5,
        "repeat": 2,
        "cpu_calls": 500,
        "rounds": 5,
        "stub_calls": 5000,
    }
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.latency <= 0:
        parser.error("--latency must be positive (the ideal is concurrency / latency)")
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    for name in ("calls", "repeat", "cpu_calls", "rounds", "stub_calls", "cpu_concurrency"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print its figures, and return them (as `--json` writes them)."""
    args = _arguments(argv)
    started = time.perf_counter()
    import langchain_openai  # noqa: F401  (imports paid before anything is timed)
    import openai  # noqa: F401

    from botdrill.agents._llm_store import LLMStore

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(
        f"LLM client benchmark: latency {args.latency * 1000:g} ms, servers in processes of their own; "
        f"{cpus} CPUs, load average {'n/a' if load is None else f'{load[0]:.2f}'}; "
        f"langchain-openai {_version('langchain-openai')}, openai {_version('openai')}"
    )
    if load is not None and load[0] > max(1.0, cpus - 1.5):
        print(
            f"warning: the machine is busy (load {load[0]:.2f} on {cpus} CPUs): figures are noisy, "
            "see the 'waited' column"
        )
    figures: dict[str, Any] = {
        "latency_s": args.latency,
        "target_ratio": TARGET,
        "cpus": cpus,
        "load_average": None if load is None else list(load),
        "quick": args.quick,
    }

    with loopback(0.0) as (fast_url, fast_pid), loopback(args.latency) as (url, pid):
        # The server's ceiling: a raw client, nothing on top, against the zero-latency server.
        raw = asyncio.run(_raw(fast_url, 64, 128, max(50, 2 * args.cpu_calls), fast_pid))
        server_cpu_us = None if not raw.server_cpu else raw.server_cpu / raw.calls * 1e6
        ceiling = None if not server_cpu_us else 1e6 / server_cpu_us
        print(
            f"\nloopback server at latency 0, raw HTTP client at concurrency 64: {raw.rate:,.0f} calls/s, "
            f"server {_pct(raw.server_busy).strip()} busy"
            + (
                f", {server_cpu_us:,.0f} µs CPU per request: ceiling ~{ceiling:,.0f} calls/s"
                if server_cpu_us and ceiling
                else ""
            )
            + f"; the raw client spends {raw.cpu_per_call_us:,.0f} µs CPU per call"
        )
        figures["server"] = {
            "raw_calls_per_s": raw.rate,
            "raw_client_cpu_per_call_us": raw.cpu_per_call_us,
            "server_busy": raw.server_busy,
            "server_cpu_per_request_us": server_cpu_us,
            "server_ceiling_calls_per_s": ceiling,
        }

        # CPU per call, in interleaved rounds against the zero-latency server.
        c, n = args.cpu_concurrency, args.cpu_calls
        warmup = min(2 * c, 50)
        samples: dict[str, list[Span]] = {"library": [], "live": [], "record": []}
        for _ in range(args.rounds):
            samples["library"].append(asyncio.run(_library(fast_url, c, warmup, n, None)))
            samples["live"].append(asyncio.run(_botdrill(fast_url, c, warmup, n, None)))
            with LLMStore(":memory:") as store:
                samples["record"].append(
                    asyncio.run(_botdrill(fast_url, c, warmup, n, None, store=store, mode="record"))
                )
        _, replayed = asyncio.run(_replay(fast_url, c, n))
        cpu = {name: statistics.median(s.cpu_per_call_us for s in spans) for name, spans in samples.items()}
        rate = {name: statistics.median(s.rate for s in spans) for name, spans in samples.items()}
        overhead = cpu["live"] - cpu["library"]
        recording = cpu["record"] - cpu["live"]
        print(
            f"\nCPU per call (process CPU time, every thread; concurrency {c}, latency-0 server, median of "
            f"{args.rounds} round(s) of {n} calls):"
        )
        print(
            f"  client library (ChatOpenAI.ainvoke)  {cpu['library']:8,.0f} µs  "
            f"{rate['library']:8,.0f} calls/s  (one core: ~{1e6 / cpu['library']:,.0f} calls/s at most)"
        )
        print(
            f"  botdrill LLMClient.complete, live    {cpu['live']:8,.0f} µs  {rate['live']:8,.0f} calls/s"
            f"  over the library: {overhead:+,.0f} µs per call ({overhead / cpu['library']:+.1%})"
        )
        print(
            f"  botdrill, record (LLMStore memory)   {cpu['record']:8,.0f} µs  {rate['record']:8,.0f} calls/s"
            f"  over live: {recording:+,.0f} µs per call"
        )
        print(
            f"  botdrill, replay (no network)        {replayed.cpu_per_call_us:8,.0f} µs  "
            f"{replayed.rate:8,.0f} calls/s"
        )
        if args.rounds > 1:
            print(
                "  each round (µs): "
                + "; ".join(
                    f"{name} {[round(s.cpu_per_call_us) for s in spans]}" for name, spans in samples.items()
                )
            )
        stubbed = asyncio.run(_stubbed(c, args.stub_calls, args.rounds))
        own = {name: statistics.median(values) for name, values in stubbed.items()}
        print(
            f"  botdrill's own code alone (ChatOpenAI.ainvoke stubbed out, no HTTP; median of {args.rounds} "
            f"round(s) of {args.stub_calls} calls): live {own['live'] - own['stub']:+,.0f} µs per call, "
            f"record {own['record'] - own['stub']:+,.0f} µs (the stub itself: {own['stub']:,.0f} µs)"
        )
        figures["cpu_per_call"] = {
            "concurrency": c,
            "calls": n,
            "rounds": args.rounds,
            "library_us": cpu["library"],
            "live_us": cpu["live"],
            "record_us": cpu["record"],
            "replay_us": replayed.cpu_per_call_us,
            "botdrill_overhead_us": overhead,
            "recording_overhead_us": recording,
            "rounds_us": {name: [s.cpu_per_call_us for s in spans] for name, spans in samples.items()},
            "calls_per_s": rate,
            "isolated": {
                "calls": args.stub_calls,
                "stub_us": own["stub"],
                "live_overhead_us": own["live"] - own["stub"],
                "record_overhead_us": own["record"] - own["stub"],
                "rounds_us": stubbed,
            },
        }
        figures["replay"] = {
            "calls": replayed.calls,
            "calls_per_s": replayed.rate,
            "seconds": replayed.seconds,
            "cpu_per_call_us": replayed.cpu_per_call_us,
        }

        # Throughput against the ideal.
        print(
            f"\n{'conc':>4} {'calls':>6} {'seconds':>7} {'calls/s':>8} {'ideal':>7} {'ratio':>6}  "
            f"{'target':<17} {'library/s':>9} {'ratio':>6} {'lib@ideal':>9} {'busy':>5} {'waited':>6} "
            f"{'server':>6}  bound by"
        )
        points = []
        for concurrency in args.concurrency:
            ideal = concurrency / args.latency
            calls = args.calls or max(2 * concurrency, math.ceil(args.seconds * ideal))
            warmup = min(2 * concurrency, 200)
            libraries, ours_all = [], []
            for _ in range(args.repeat):
                libraries.append(asyncio.run(_library(url, concurrency, warmup, calls, pid)))
                ours_all.append(asyncio.run(_botdrill(url, concurrency, warmup, calls, pid)))
            library = max(libraries, key=lambda s: s.rate)
            ours = max(ours_all, key=lambda s: s.rate)
            ratio = ours.rate / ideal
            need = ideal * library.cpu_per_call_us / 1e6
            bound = _bound(ours, ideal, need, server_cpu_us)
            verdict = _verdict(ratio, bound)
            print(
                f"{concurrency:>4} {calls:>6} {ours.seconds:>7.2f} {ours.rate:>8.1f} {ideal:>7.1f} "
                f"{ratio:>6.1%}  {verdict:<17} {library.rate:>9.1f} {library.rate / ideal:>6.1%} "
                f"{_pct(need):>9} {_pct(ours.busy)} {_pct(ours.waited_share):>6} "
                f"{_pct(ours.server_busy):>6}  {bound}"
            )
            points.append(
                {
                    "concurrency": concurrency,
                    "calls": calls,
                    "seconds": ours.seconds,
                    "calls_per_s": ours.rate,
                    "ideal_calls_per_s": ideal,
                    "ratio": ratio,
                    "target_met": ratio >= TARGET,
                    "verdict": verdict,
                    "bound_by": bound,
                    "library_core_share_at_ideal": need,
                    "client_busy": ours.busy,
                    "client_waited": ours.waited_share,
                    "server_busy": ours.server_busy,
                    "client_cpu_per_call_us": ours.cpu_per_call_us,
                    "runs_calls_per_s": [s.rate for s in ours_all],
                    "library": {
                        "seconds": library.seconds,
                        "calls_per_s": library.rate,
                        "ratio": library.rate / ideal,
                        "client_busy": library.busy,
                        "client_waited": library.waited_share,
                        "client_cpu_per_call_us": library.cpu_per_call_us,
                        "runs_calls_per_s": [s.rate for s in libraries],
                    },
                }
            )
        figures["points"] = points
    print(
        f"(best of {args.repeat} run(s) per point. calls/s, ratio: botdrill's LLMClient; library/s, ratio: "
        "ChatOpenAI.ainvoke alone; lib@ideal: the share of one core the client library needs at the ideal "
        "rate; busy, waited, server: during botdrill's run)"
    )

    missed = [p["concurrency"] for p in points if p["verdict"] == "MISSED"]
    exempt = [f"{p['concurrency']} ({p['bound_by']})" for p in points if p["verdict"].startswith("n/a")]
    print(
        f"\ntarget >= {TARGET:.0%} of the ideal: "
        + (f"MISSED at concurrency {', '.join(map(str, missed))}" if missed else "met wherever it applies")
        + (f"; not applicable at {', '.join(exempt)}" if exempt else "")
        + f"  ({time.perf_counter() - started:.1f} s in all)"
    )
    figures["missed_at"] = missed
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return figures


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "?"


if __name__ == "__main__":
    main()
