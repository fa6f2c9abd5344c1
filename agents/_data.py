"""The package's own data files (`data/*.yaml`): word lists, fitted models, the bot's phrases."""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml


def load_data(name: str) -> Any:
    """The shipped `data/<name>` file, parsed as YAML (safe loader: data only, nothing executed)."""
    return yaml.safe_load(
        resources.files("botdrill.agents").joinpath("data", name).read_text(encoding="utf-8")
    )
