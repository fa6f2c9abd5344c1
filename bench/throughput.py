"""Throughput of the embedded default (built-in users against the reference bot), with storage.

Runs the same drill twice, once through the LangGraph cohort graph and once through the same steps in a
bare Python loop, into fresh DuckDB files, and prints dialogues/s, exchanges/s and the ratio. Start-up
(imports, training the reference bot) is reported apart, since it is paid once per run.

    python -m bench.throughput [--n 5000] [--concurrency 1000] [--repeat 3] [--perturb default]

`--n` counts dialogues: with the default perturbations each scenario runs seven times (clean and six
perturbed), so 5000 dialogues are 714 scenarios. `--perturb none` measures clean dialogues only.

One core: BLAS threads are pinned to one before numpy loads.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=5000, help="dialogues per measurement")
    parser.add_argument("--concurrency", type=int, default=1000, help="cohort size")
    parser.add_argument("--repeat", type=int, default=3, help="measurements per loop kind (median kept)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--perturb", default="default", help="as `botdrill run --perturb`")
    args = parser.parse_args()

    started = time.perf_counter()
    import duckdb

    from botdrill.agents import ReferenceAssistant
    from botdrill.simulator import RunConfig, run_drill
    from botdrill.simulator._variants import parse_variants

    bot = ReferenceAssistant()
    setup = time.perf_counter() - started
    print(f"start-up (imports + training the reference bot): {setup:.2f} s")
    scenarios = max(1, args.n // len(parse_variants(args.perturb)))
    print(
        f"n={args.n} dialogues ({scenarios} scenarios, perturb={args.perturb}), cohort={args.concurrency}, "
        f"seed={args.seed}, median of {args.repeat}"
    )

    results: dict[str, tuple[float, float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for loop in ("graph", "plain"):
            times = []
            exchanges = messages = dialogues = 0
            for i in range(args.repeat):
                db = Path(tmp) / f"{loop}-{i}.duckdb"
                config = RunConfig(
                    db=str(db),
                    n=scenarios,
                    perturb=args.perturb,
                    seed=args.seed,
                    concurrency=args.concurrency,
                    loop=loop,
                    run_id=f"bench-{loop}-{i}",
                )
                result = run_drill(config, assistant=bot)
                times.append(result.seconds)
                dialogues = result.simulated
                con = duckdb.connect(str(db), read_only=True)
                row = con.execute(
                    "select count(*) filter (where speaker = 'assistant'), count(*) from turns"
                ).fetchone()
                con.close()
                assert row is not None
                exchanges, messages = row
            seconds = statistics.median(times)
            results[loop] = (seconds, exchanges, messages)
            rate = dialogues / seconds
            print(
                f"{loop:>5}: {seconds:6.2f} s  {rate:8.0f} dialogues/s  "
                f"{exchanges / seconds:9.0f} exchanges/s  "
                f"{messages / seconds:9.0f} messages/s  ({exchanges / dialogues:.1f} exchanges per dialogue; "
                f"ten-exchange equivalent {exchanges / seconds / 10:7.0f} dialogues/s)"
            )
    graph, plain = results["graph"][0], results["plain"][0]
    print(
        f"ratio graph/plain time: {graph / plain:.3f}  (LangGraph overhead {100 * (graph / plain - 1):+.1f}%)"
    )


if __name__ == "__main__":
    main()
