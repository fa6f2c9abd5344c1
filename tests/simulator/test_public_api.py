"""The public API of `botdrill.simulator` is pinned: adding or removing a name is a deliberate change."""

from __future__ import annotations

import importlib
import importlib.util

import botdrill.simulator as simulator

EXPECTED = [
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


def test_all_is_pinned() -> None:
    assert simulator.__all__ == EXPECTED


def test_every_public_name_is_importable() -> None:
    module = importlib.import_module("botdrill.simulator")
    for name in EXPECTED:
        assert getattr(module, name) is not None, name
    namespace: dict[str, object] = {}
    exec("from botdrill.simulator import *", namespace)
    assert set(EXPECTED) <= set(namespace)


def test_version_and_schema() -> None:
    assert isinstance(simulator.__version__, str) and simulator.__version__
    assert simulator.SCHEMA_VERSION == 5


def test_errors_are_botdrill_errors_with_codes() -> None:
    from botdrill.scenarios import BotdrillError

    assert issubclass(simulator.StoreError, BotdrillError)
    assert issubclass(simulator.RunMismatchError, BotdrillError)
    assert simulator.StoreError.code == "store_unusable"
    assert simulator.RunMismatchError.code == "run_mismatch"


def test_new_run_ids_are_valid_and_distinct() -> None:
    ids = {simulator.new_run_id() for _ in range(20)}
    assert len(ids) > 1
    for run_id in ids:
        assert run_id.startswith("run-")
        assert simulator.RunConfig(run_id=run_id).run_id == run_id


def test_main_module_exists() -> None:
    spec = importlib.util.find_spec("botdrill.simulator.__main__")
    assert spec is not None
