"""Errors that are the user's configuration's fault.

    BotdrillError                  base of every error botdrill raises on purpose
    └── LocatedError               a file or spec is malformed or invalid (file, line, field)
        └── ScenarioError          a pack or scenario file

Errors of the assistant under test live in `botdrill.agents` and are recorded on the dialogue, never raised
out of a run.
"""

from __future__ import annotations


class BotdrillError(Exception):
    """Base of the errors botdrill raises on purpose; each carries a stable `code`."""

    code = "botdrill_error"


class LocatedError(BotdrillError):
    """A configuration file (or spec) is malformed or invalid, at a place that can be named.

    Attributes:
        path: the file, or `None` for something built in memory or given inline.
        line: 1-based line of the offending value, when known.
        field: dotted path of the offending field (`intents.3.escalation.within_turns`), when known.
        reason: what is wrong, in words.
    """

    unnamed: str | None = None
    """What the message names when there is no file (`<pack>`), or `None` to name nothing."""

    def __init__(
        self, reason: str, *, path: str | None = None, line: int | None = None, field: str | None = None
    ) -> None:
        self.path = path
        self.line = line
        self.field = field
        self.reason = reason
        where = path or self.unnamed
        if where is not None and line is not None:
            where += f":{line}"
        head = f"{where}: " if where is not None else ""
        super().__init__(head + (f"{field}: " if field else "") + reason)


class ScenarioError(LocatedError):
    """A pack file is malformed or invalid (see `LocatedError` for its attributes)."""

    code = "scenario_invalid"
    unnamed = "<pack>"
