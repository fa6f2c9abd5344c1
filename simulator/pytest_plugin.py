"""botdrill's pytest plugin: drill your assistant inside your own test suite and assert on the results.

Installed with botdrill and registered through the `pytest11` entry point, it gives every test suite a
`botdrill_drill` fixture. The fixture runs a drill into a database under the test's temporary directory
and returns a `Drill` to assert on, by metric name (the same names as `botdrill run --fail-if`) or by SQL:

    def test_fraud_reaches_a_person(botdrill_drill):
        drill = botdrill_drill(my_bot, n=60, perturb="typo")
        drill.check("escalation_recall<0.95", "brittleness.typo>0.1")   # fails the test if one holds
        assert drill.metric("success_rate") > 0.6

`my_bot` is anything `botdrill run --target` accepts as an object: a function of the messages, an
object with an async `respond`, a LangGraph graph; leave it out to drill the built-in reference bot. Like
the CLI, this module is a composition root: the one other place in `botdrill.simulator` that reads
`botdrill.analysis`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # imported when a drill runs: loading the plugin must not slow every pytest start-up
    from ._runner import RunResult


@dataclass(frozen=True)
class Drill:
    """A finished drill: where it is stored, and ways to read it."""

    db: Path
    run_id: str
    result: RunResult

    def metric(self, name: str) -> float | None:
        """A metric of the run by its gate name (`escalation_recall`, `brittleness.typo`, `pass^2`...)."""
        from botdrill.analysis import metric_value, parse_threshold

        parse_threshold(f"{name}>=0")  # the same names, checked the same way
        return metric_value(self.db, self.run_id, name)

    def check(self, *fail_if: str) -> None:
        """Fail the test with every breached threshold (`METRIC OP NUMBER`, as `--fail-if`)."""
        from botdrill.analysis import check, parse_threshold

        breaches = check(self.db, self.run_id, [parse_threshold(t) for t in fail_if])
        if breaches:
            pytest.fail("botdrill gate failed:\n" + "\n".join(f"  {b}" for b in breaches), pytrace=False)

    def sql(self, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Rows of a read-only query on the drill's database."""
        from ._store import connect

        con = connect(self.db, read_only=True)
        try:
            return con.execute(query, params or []).fetchall()
        finally:
            con.close()

    def failures(self, limit: int = 20) -> list[dict[str, Any]]:
        """Rows of the `failures` view for this run."""
        from botdrill.analysis import failures

        return failures(self.db, self.run_id, limit=limit)


@pytest.fixture
def botdrill_drill(tmp_path: Path) -> Iterator[Callable[..., Drill]]:
    """A function that runs a drill and returns a `Drill`.

    Call it as `botdrill_drill(assistant=None, *, n=50, perturb="default", **options)`; the options are
    those of `botdrill.simulator.RunConfig` (pack, seed, policy, trials, complexity, max_turns...). Each call
    is its own run in one database under the test's temporary directory.
    """
    counter = itertools.count(1)
    db = tmp_path / "botdrill.duckdb"

    def drill(assistant: object = None, *, n: int = 50, perturb: str = "default", **options: Any) -> Drill:
        from botdrill.agents._adapters import as_assistant

        from ._runner import RunConfig, run_drill

        run_id = options.pop("run_id", None) or f"drill-{next(counter)}"
        bot = None if assistant is None else as_assistant(assistant)
        if bot is not None:
            options.setdefault("target", getattr(bot, "name", type(assistant).__name__))
        config = RunConfig(db=str(db), n=n, perturb=perturb, run_id=run_id, **options)
        result = run_drill(config, assistant=bot)
        return Drill(db, result.run_id, result)

    yield drill
