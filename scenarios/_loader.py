"""Loading packs from YAML with errors that point at a file, a line and a field.

The YAML is parsed once with `yaml.compose`, which keeps the position of every node; values are built from
that tree with safe constructors only (no tags, no Python objects), and pydantic validation errors are
mapped back to the line of the offending node.
"""

from __future__ import annotations

import hashlib
import re
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ._errors import LocatedError, ScenarioError
from ._models import Pack

_Path = tuple[str | int, ...]
_LOCATED = re.compile(r"^@([\w.]+): (.*)$", re.DOTALL)


def _build(node: yaml.Node, path: _Path, lines: dict[_Path, int], source: str) -> Any:
    """Turn a composed node into plain Python data, recording each node's line under its path."""
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise ScenarioError(
                    "a key must be a plain word, not a list or mapping",
                    path=source,
                    line=key_node.start_mark.line + 1,
                    field=_dotted(path) or None,
                )
            key = _scalar(key_node)
            if key in out:
                raise ScenarioError(
                    f"duplicate key {key!r}",
                    path=source,
                    line=key_node.start_mark.line + 1,
                    field=_dotted((*path, key)),
                )
            out[key] = _build(value_node, (*path, key), lines, source)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), lines, source) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    # Resolve one scalar with the safe loader's rules (ints, floats, bools, dates, null).
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def _dotted(path: _Path) -> str:
    return ".".join(str(p) for p in path)


def _line_for(loc: _Path, lines: dict[_Path, int]) -> int | None:
    for cut in range(len(loc), -1, -1):
        line = lines.get(tuple(loc[:cut]))
        if line is not None:
            return line
    return None


def compose_mapping(
    text: str, *, source: str, error: type[LocatedError], what: str
) -> tuple[dict[str, Any], dict[_Path, int]]:
    """Safe-load a YAML mapping and the line of every node under its path, or raise `error` saying where.

    Shared by every YAML file botdrill reads (packs, escalation policies): `what` names the file's kind
    in the message for a file that is not a mapping.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(f"not valid YAML: {problem}", path=source, line=mark.line + 1 if mark else None) from None
    if root is None:
        raise error("the file is empty", path=source)
    lines: dict[_Path, int] = {}
    try:
        data = _build(root, (), lines, source)
    except ScenarioError as exc:  # structural checks: duplicate or non-scalar keys
        if error is ScenarioError:
            raise
        raise error(exc.reason, path=source, line=exc.line, field=exc.field) from None
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        raise error(
            f"unsupported YAML value: {exc.problem}", path=source, line=mark.line + 1 if mark else None
        ) from None
    if not isinstance(data, dict):
        raise error(f"{what} must be a mapping of keys to values", path=source, line=1)
    return data, lines


def parse_pack(text: str, *, source: str = "<pack>") -> Pack:
    """Parse and validate a pack from YAML text.

    Raises:
        ScenarioError: with `source`, the line and the field of the first problem (and how many more).
    """
    data, lines = compose_mapping(text, source=source, error=ScenarioError, what="a pack")
    try:
        return Pack.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0]
        loc = tuple(first["loc"])
        more = (
            f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
            if len(errors) > 1
            else ""
        )
        msg = first["msg"].removeprefix("Value error, ")
        located = _LOCATED.match(msg)
        if located:  # a cross-field check that names its own field (see _models.located)
            loc = tuple(int(p) if p.isdigit() else p for p in located.group(1).split("."))
            msg = located.group(2)
        raise ScenarioError(
            msg + more, path=source, line=_line_for(loc, lines), field=_dotted(loc) or None
        ) from None


def load_pack(path: str | Path) -> Pack:
    """Load a pack from a YAML file, or a built-in pack by name (`banking`).

    Raises:
        ScenarioError: the file is missing, malformed or invalid; the message names file, line and field.
    """
    text, source = _read(path)
    return parse_pack(text, source=source)


def pack_digest(path: str | Path) -> str:
    """SHA-256 of the pack's text, stored on every run so a report says exactly which pack produced it."""
    text, _ = _read(path)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def builtin_packs() -> list[str]:
    """Names of the packs shipped with botdrill."""
    folder = resources.files("botdrill.scenarios").joinpath("packs")
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def _read(path: str | Path) -> tuple[str, str]:
    name = str(path)
    if name in builtin_packs():
        resource = resources.files("botdrill.scenarios").joinpath("packs", f"{name}.yaml")
        return resource.read_text(encoding="utf-8"), f"<builtin:{name}>"
    file = Path(path)
    if not file.is_file():
        known = ", ".join(builtin_packs())
        raise ScenarioError(f"no such pack file (built-in packs: {known})", path=name)
    try:
        return file.read_text(encoding="utf-8"), name
    except UnicodeDecodeError as exc:
        raise ScenarioError(
            f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})", path=name
        ) from None
