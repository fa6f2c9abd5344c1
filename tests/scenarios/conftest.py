"""Fixtures shared by the tests of `botdrill.scenarios`."""

from __future__ import annotations

from importlib.resources import files

import pytest

from botdrill.scenarios import Pack, load_pack


@pytest.fixture(scope="session")
def pack() -> Pack:
    """The built-in banking pack (models are frozen, so sharing it is safe)."""
    return load_pack("banking")


@pytest.fixture(scope="session")
def banking_text() -> str:
    """The built-in banking pack's YAML text, to mutate into broken variants."""
    return files("botdrill.scenarios").joinpath("packs/banking.yaml").read_text(encoding="utf-8")
