"""`python -m bench.llm`: the LLM client benchmark runs end to end and reports sane figures (no timings
are asserted: they depend on the machine)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench import llm  # noqa: E402


@pytest.mark.slow
def test_quick_run_prints_the_table_and_writes_the_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_json = tmp_path / "llm.json"
    figures = llm.main(
        [
            "--quick",
            "--latency", "0.005",
            "--concurrency", "1,3",
            "--calls", "6",
            "--cpu-calls", "8",
            "--cpu-concurrency", "2",
            "--rounds", "2",
            "--stub-calls", "20",
            "--json", str(out_json),
        ]
    )  # fmt: skip
    out = capsys.readouterr().out

    header = next(line for line in out.splitlines() if line.lstrip().startswith("conc"))
    for column in (
        "calls",
        "seconds",
        "calls/s",
        "ideal",
        "ratio",
        "target",
        "library/s",
        "lib@ideal",
        "bound by",
    ):
        assert column in header
    assert "loopback server at latency 0" in out
    assert "client library (ChatOpenAI.ainvoke)" in out
    assert "botdrill LLMClient.complete, live" in out
    assert "over the library:" in out
    assert "record (LLMStore memory)" in out
    assert "replay (no network)" in out
    assert "botdrill's own code alone" in out
    assert "target >= 90% of the ideal" in out

    assert json.loads(out_json.read_text()) == json.loads(json.dumps(figures))
    assert figures["latency_s"] == 0.005
    points = figures["points"]
    assert [p["concurrency"] for p in points] == [1, 3]
    for point in points:
        assert point["calls"] == 6
        assert point["ideal_calls_per_s"] == pytest.approx(point["concurrency"] / 0.005)
        assert point["seconds"] > 0 and point["calls_per_s"] > 0
        assert point["calls_per_s"] == pytest.approx(point["calls"] / point["seconds"])
        assert point["ratio"] == pytest.approx(point["calls_per_s"] / point["ideal_calls_per_s"])
        assert point["target_met"] == (point["ratio"] >= 0.9)
        assert point["verdict"] in ("met", "MISSED", "n/a (server)", "n/a (library CPU)")
        assert point["bound_by"] in (
            "latency",
            "server",
            "library CPU",
            "client CPU",
            "client queueing",
            "CPU wait",
        )
        assert point["client_cpu_per_call_us"] > 0
        assert point["library"]["calls_per_s"] > 0
        # A call cannot come back before the server's latency: no more than `concurrency / latency` per
        # second (a little slack for the clock's granularity).
        assert point["ratio"] < 1.05 and point["library"]["ratio"] < 1.05
        assert f"{point['ideal_calls_per_s']:.1f}" in out
    assert figures["missed_at"] == [p["concurrency"] for p in points if p["verdict"] == "MISSED"]

    cpu = figures["cpu_per_call"]
    assert cpu["rounds"] == 2 and cpu["calls"] == 8
    for name in ("library_us", "live_us", "record_us", "replay_us"):
        assert cpu[name] > 0
    assert cpu["botdrill_overhead_us"] == pytest.approx(cpu["live_us"] - cpu["library_us"])
    assert cpu["recording_overhead_us"] == pytest.approx(cpu["record_us"] - cpu["live_us"])
    assert all(len(values) == 2 for values in cpu["rounds_us"].values())
    isolated = cpu["isolated"]
    assert isolated["calls"] == 20 and isolated["stub_us"] > 0
    assert all(len(values) == 2 and min(values) > 0 for values in isolated["rounds_us"].values())
    assert figures["replay"]["calls"] == 8 and figures["replay"]["calls_per_s"] > 0
    assert figures["server"]["raw_calls_per_s"] > 0


def test_arguments_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["--concurrency", "0,4"],
        ["--concurrency", "a"],
        ["--latency", "0"],
        ["--calls", "0"],
        ["--stub-calls", "0"],
    ):
        with pytest.raises(SystemExit) as exc:
            llm.main(argv)
        assert exc.value.code == 2
    assert "concurrencies must be integers" in capsys.readouterr().err
