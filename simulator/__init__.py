"""How a dialogue runs: the LangGraph dialogue graph, the runner, the DuckDB store and the CLI.

    >>> from botdrill.simulator import RunConfig, run_drill
    >>> result = run_drill(RunConfig(db=":memory:", n=20, seed=1))  # doctest: +SKIP

Names are imported on first use, so `botdrill sql` and `botdrill runs` start without loading LangGraph or
scikit-learn.
"""

from __future__ import annotations

from importlib import import_module
from importlib import metadata as _metadata
from typing import TYPE_CHECKING, Any

try:
    __version__ = _metadata.version("botdrill")
except _metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

_WHERE = {
    "Engine": "_engine",
    "LiveDialogue": "_engine",
    "build_graph": "_graph",
    "DialogueRecord": "_records",
    "Outcome": "_records",
    "SlotCheck": "_records",
    "TurnRecord": "_records",
    "RunConfig": "_runner",
    "RunMismatchError": "_runner",
    "RunResult": "_runner",
    "new_run_id": "_runner",
    "run_drill": "_runner",
    "score": "_scoring",
    "SCHEMA_VERSION": "_store",
    "Store": "_store",
    "StoreError": "_store",
    "connect": "_store",
}

if TYPE_CHECKING:
    from ._engine import Engine, LiveDialogue
    from ._graph import build_graph
    from ._records import DialogueRecord, Outcome, SlotCheck, TurnRecord
    from ._runner import RunConfig, RunMismatchError, RunResult, new_run_id, run_drill
    from ._scoring import score
    from ._store import SCHEMA_VERSION, Store, StoreError, connect


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "SCHEMA_VERSION",
    "DialogueRecord",
    "Engine",
    "LiveDialogue",
    "Outcome",
    "RunConfig",
    "RunMismatchError",
    "RunResult",
    "SlotCheck",
    "Store",
    "StoreError",
    "TurnRecord",
    "__version__",
    "build_graph",
    "connect",
    "new_run_id",
    "run_drill",
    "score",
]
