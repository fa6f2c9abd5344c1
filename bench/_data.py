"""Where the benchmarks and calibration scripts find the real data sets."""

from __future__ import annotations

import os
from pathlib import Path


def default_data_dir() -> Path:
    """`$BOTDRILL_DATA`, else the `shared/data` folder beside the checkout (when `--data` is not given)."""
    env = os.environ.get("BOTDRILL_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"
