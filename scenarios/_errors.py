"""Errors that are the user's configuration's fault.

    BotdrillError                  base of every error botdrill raises on purpose
    └── ScenarioError              a pack or scenario file is malformed or invalid (file, line, field)

Errors of the assistant under test live in `botdrill.agents` and are recorded on the dialogue, never raised
out of a run.
"""

from __future__ import annotations


class BotdrillError(Exception):
    """Base of the errors botdrill raises on purpose; each carries a stable `code`."""

    code = "botdrill_error"


class ScenarioError(BotdrillError):
    """A pack file is malformed or invalid.

    Attributes:
        path: the file, or `None` for packs built in memory.
        line: 1-based line of the offending value, when known.
        field: dotted path of the offending field (`intents.3.escalation.within_turns`), when known.
        reason: what is wrong, in words.
    """

    code = "scenario_invalid"

    def __init__(
        self, reason: str, *, path: str | None = None, line: int | None = None, field: str | None = None
    ) -> None:
        self.path = path
        self.line = line
        self.field = field
        self.reason = reason
        where = path or "<pack>"
        if line is not None:
            where += f":{line}"
        head = f"{where}: {field}: " if field else f"{where}: "
        super().__init__(head + reason)
