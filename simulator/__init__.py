"""How a dialogue runs: the LangGraph dialogue graph, the runner, the DuckDB store and the CLI.

>>> from botdrill.simulator import RunConfig, run_drill
>>> result = run_drill(RunConfig(db=":memory:", n=20, seed=1))  # doctest: +SKIP
"""

from importlib import metadata as _metadata

from ._engine import Engine, LiveDialogue
from ._graph import build_graph
from ._records import DialogueRecord, Outcome, SlotCheck, TurnRecord
from ._runner import RunConfig, RunMismatchError, RunResult, new_run_id, run_drill
from ._scoring import score
from ._store import SCHEMA_VERSION, Store, StoreError, connect

try:
    __version__ = _metadata.version("botdrill")
except _metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

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
