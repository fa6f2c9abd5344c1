"""The JSON Schema of a scenario pack, for editors that complete keys and flag typos while a pack is written.

The schema is pydantic's `Pack.model_json_schema()`, post-processed for editors: every field and enum member
gets the docstring written under it in `_models` as its description, and every object forbids unknown keys,
as the models do. The built-in packs point at the shipped copy (`packs/pack.schema.json`) with a
`yaml-language-server` modeline; `botdrill schema` prints it.

The schema checks shape only (keys, types, enum values, simple bounds). Checks that span several fields,
such as slot references and template placeholders, stay with the loader.
"""

from __future__ import annotations

import ast
import inspect
import json
from enum import Enum
from functools import cache
from typing import Any

from pydantic import BaseModel

from . import _models
from ._models import Pack

DIALECT = "https://json-schema.org/draft/2020-12/schema"
TITLE = "botdrill scenario pack"


def pack_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a pack file, with descriptions and closed objects."""
    schema = Pack.model_json_schema()
    docs = _attribute_docs()
    classes = _documented_classes()
    for name, definition in schema.get("$defs", {}).items():
        _describe(definition, classes.get(name), docs)
    _describe(schema, Pack, docs)
    _close_objects(schema)
    return {"$schema": DIALECT, **schema, "title": TITLE}


def schema_text() -> str:
    """`pack_schema()` as deterministic JSON text: sorted keys, two-space indent, trailing newline."""
    return json.dumps(pack_schema(), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def _describe(definition: dict[str, Any], cls: type | None, docs: dict[str, dict[str, str]]) -> None:
    """Fill field descriptions of a model, or list the members' meanings under an enum's description."""
    if cls is None:
        return
    own = docs.get(cls.__name__, {})
    if "description" in definition:
        definition["description"] = _unwrap(definition["description"])
    if issubclass(cls, BaseModel):
        for field, prop in definition.get("properties", {}).items():
            if field in own and "description" not in prop:
                prop["description"] = own[field]
    elif issubclass(cls, Enum) and own:
        lines = [f"- `{member.value}`: {own[member.name]}" for member in cls if member.name in own]
        definition["description"] = "\n\n".join(
            part for part in (definition.get("description", ""), "\n".join(lines)) if part
        )


def _close_objects(node: Any) -> None:
    """Set `additionalProperties: false` on every object schema that lists its properties."""
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            _close_objects(value)
    elif isinstance(node, list):
        for value in node:
            _close_objects(value)


def _unwrap(doc: str) -> str:
    """A docstring with its source line breaks undone: paragraphs stay apart, lines within them join."""
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


@cache
def _documented_classes() -> dict[str, type]:
    """The models and enums of `_models`, by the name pydantic gives their `$defs` entry."""
    return {
        name: obj
        for name, obj in vars(_models).items()
        if inspect.isclass(obj)
        and obj.__module__ == _models.__name__
        and (issubclass(obj, BaseModel) or issubclass(obj, Enum))
    }


@cache
def _attribute_docs() -> dict[str, dict[str, str]]:
    """Docstrings written under class attributes in `_models`: {class name: {attribute: docstring}}."""
    tree = ast.parse(inspect.getsource(_models))
    out: dict[str, dict[str, str]] = {}
    for cls in tree.body:
        if not isinstance(cls, ast.ClassDef):
            continue
        found: dict[str, str] = {}
        for stmt, following in zip(cls.body, cls.body[1:], strict=False):
            target: ast.expr | None = None
            if isinstance(stmt, ast.AnnAssign):
                target = stmt.target
            elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
                target = stmt.targets[0]
            if (
                isinstance(target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                found[target.id] = _unwrap(following.value.value)
        out[cls.name] = found
    return out
