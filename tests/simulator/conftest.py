"""Fixtures shared by the simulator tests."""

from __future__ import annotations

import pytest

from botdrill.scenarios import Pack, load_pack


@pytest.fixture(scope="session")
def pack() -> Pack:
    """The built-in banking pack."""
    return load_pack("banking")
