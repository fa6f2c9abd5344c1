"""Rule-based judges of an assistant's words, for what a bot does not expose itself."""

from __future__ import annotations

import re

_HANDOFF = re.compile(
    r"\b(?:transfer(?:ring)?|connect(?:ing)?|put(?:ting)?|hand(?:ing)?|pass(?:ing)?)\s+you\s+"
    r"(?:(?:over|through|on)\s+)?(?:to|with)\s+(?:a |an |one of (?:our|my) |our |the |my )?"
    r"(?:member of (?:our |the )?)?(?:\w+\s+){0,2}?"
    r"(?:human|person|agent|advis[oe]r|colleague|specialist|team|representative|operator|staff)",
    re.IGNORECASE,
)


def judge_handoff(text: str) -> bool:
    """Whether the assistant's words say it is handing the conversation to a person.

    Example:
        >>> judge_handoff("I'm transferring you to our fraud team now.")
        True
        >>> judge_handoff("I can transfer money to your savings account.")
        False
    """
    return bool(_HANDOFF.search(text))
