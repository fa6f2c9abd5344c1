"""The pack JSON Schema: shipped up to date, accepts the built-in pack, rejects what the models reject."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from enum import Enum
from importlib.resources import files
from typing import Any

import pytest
import yaml

from botdrill.scenarios import Pack, Persona, ScenarioError, load_pack, parse_pack
from botdrill.scenarios._schema import pack_schema, schema_text

REGENERATE = "botdrill schema > scenarios/packs/pack.schema.json"
MODELINE = "# yaml-language-server: $schema=./pack.schema.json"

Validator = Callable[[dict[str, Any], Any], list[str]]


# -- a small validator for the keywords the pack schema uses ----------------------------------------

# Keywords that only annotate: editors show them, validation ignores them (`format` is an annotation in
# draft 2020-12 unless a validator opts in).
ANNOTATIONS = {"$schema", "$defs", "title", "description", "default", "format"}
ASSERTIONS = {
    "$ref",
    "type",
    "enum",
    "properties",
    "required",
    "additionalProperties",
    "propertyNames",
    "items",
    "minItems",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "anyOf",
}
TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
}


def mini_validate(schema: dict[str, Any], instance: Any) -> list[str]:
    """Errors of `instance` against `schema`, for the subset of draft 2020-12 in `ASSERTIONS`."""
    root = schema

    def check(node: dict[str, Any], value: Any, at: str) -> Iterator[str]:
        if "$ref" in node:
            name = node["$ref"].removeprefix("#/$defs/")
            yield from check(root["$defs"][name], value, at)
        if "type" in node and not TYPES[node["type"]](value):
            yield f"{at}: {value!r} is not of type {node['type']}"
            return
        if "enum" in node and value not in node["enum"]:
            yield f"{at}: {value!r} is not one of {node['enum']}"
        if "anyOf" in node and all(list(check(option, value, at)) for option in node["anyOf"]):
            yield f"{at}: {value!r} matches none of the options"
        if isinstance(value, str) and "pattern" in node and not re.search(node["pattern"], value):
            yield f"{at}: {value!r} does not match {node['pattern']}"
        if isinstance(value, int | float) and not isinstance(value, bool):
            if "minimum" in node and value < node["minimum"]:
                yield f"{at}: {value!r} is below {node['minimum']}"
            if "maximum" in node and value > node["maximum"]:
                yield f"{at}: {value!r} is above {node['maximum']}"
            if "exclusiveMinimum" in node and value <= node["exclusiveMinimum"]:
                yield f"{at}: {value!r} is not above {node['exclusiveMinimum']}"
        if isinstance(value, list):
            if len(value) < node.get("minItems", 0):
                yield f"{at}: fewer than {node['minItems']} items"
            for i, item in enumerate(value):
                yield from check(node.get("items", {}), item, f"{at}.{i}")
        if isinstance(value, dict):
            properties = node.get("properties", {})
            for key in node.get("required", []):
                if key not in value:
                    yield f"{at}: {key!r} is required"
            for key, item in value.items():
                if "propertyNames" in node:
                    yield from check(node["propertyNames"], key, f"{at}.{key} (key)")
                if key in properties:
                    yield from check(properties[key], item, f"{at}.{key}")
                elif node.get("additionalProperties") is False:
                    yield f"{at}: unknown key {key!r}"
                elif isinstance(node.get("additionalProperties"), dict):
                    yield from check(node["additionalProperties"], item, f"{at}.{key}")

    return list(check(schema, instance, "$"))


def jsonschema_validate(schema: dict[str, Any], instance: Any) -> list[str]:
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(instance)]


def _jsonschema_missing() -> bool:
    try:
        import jsonschema  # noqa: F401
    except ImportError:
        return True
    return False


@pytest.fixture(
    params=[
        pytest.param(mini_validate, id="mini"),
        pytest.param(
            jsonschema_validate,
            id="jsonschema",
            marks=pytest.mark.skipif(
                _jsonschema_missing(),
                reason="the optional `jsonschema` library is not installed; the built-in subset validator "
                "still runs",
            ),
        ),
    ]
)
def validate(request: pytest.FixtureRequest) -> Validator:
    fn: Validator = request.param
    return fn


def walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every schema object under `node`, `node` included (property maps are descended, not yielded)."""
    if isinstance(node, dict):
        yield node
        for key, value in node.items():
            if key in ("properties", "$defs"):
                for sub in value.values():
                    yield from walk(sub)
            else:
                yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


# -- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    built: dict[str, Any] = pack_schema()
    return built


@pytest.fixture
def banking_data(banking_text: str) -> dict[str, Any]:
    """The banking pack as JSON data (YAML dates become ISO strings, as an editor sees them)."""
    data: dict[str, Any] = json.loads(json.dumps(yaml.safe_load(banking_text), default=str))
    return data


# -- the shipped file -------------------------------------------------------------------------------


def test_shipped_schema_is_up_to_date() -> None:
    shipped = files("botdrill.scenarios").joinpath("packs", "pack.schema.json").read_text(encoding="utf-8")
    assert shipped == schema_text(), (
        f"scenarios/packs/pack.schema.json is out of date with the pack models; regenerate it: {REGENERATE}"
    )


def test_schema_text_is_deterministic_json() -> None:
    text = schema_text()
    assert text == schema_text()
    assert text.endswith("}\n")
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def test_schema_header(schema: dict[str, Any]) -> None:
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "$id" not in schema
    assert schema["title"]
    assert schema["description"] == Pack.__doc__
    assert schema["type"] == "object"
    assert set(schema["properties"]) == set(Pack.model_fields)


def test_validator_knows_every_keyword(schema: dict[str, Any]) -> None:
    # The subset validator must not silently skip a keyword the schema relies on.
    used = {key for node in walk(schema) for key in node}
    assert used <= ANNOTATIONS | ASSERTIONS, used - ANNOTATIONS - ASSERTIONS


def test_every_object_is_closed(schema: dict[str, Any]) -> None:
    objects = [node for node in walk(schema) if "properties" in node]
    assert len(objects) >= 6  # Pack, SlotSpec, Escalation, IntentSpec, Lexicon, Persona
    assert all(node["additionalProperties"] is False for node in objects)


def test_every_field_is_described(schema: dict[str, Any]) -> None:
    for node in walk(schema):
        for name, prop in node.get("properties", {}).items():
            assert prop.get("description"), f"{node.get('title')}.{name} has no description"
            assert "\n" not in prop["description"], f"{node.get('title')}.{name}: unwrapped docstring"


def test_persona_knobs_list_every_member(schema: dict[str, Any]) -> None:
    persona = schema["$defs"]["Persona"]["properties"]
    knobs = {
        name: field.annotation
        for name, field in Persona.model_fields.items()
        if isinstance(field.annotation, type) and issubclass(field.annotation, Enum)
    }
    assert set(knobs) == {
        "formality",
        "verbosity",
        "emotion",
        "expertise",
        "patience",
        "proficiency",
        "channel",
    }
    for name, enum in knobs.items():
        definition = schema["$defs"][persona[name]["$ref"].removeprefix("#/$defs/")]
        assert definition["enum"] == [member.value for member in enum], name
        assert persona[name]["default"] == Persona.model_fields[name].default.value, name
        for member in enum:
            assert f"`{member.value}`: " in definition["description"], f"{name}.{member.value} undocumented"


# -- validation -------------------------------------------------------------------------------------


def test_banking_pack_is_valid(validate: Validator, schema: dict[str, Any], banking_data: Any) -> None:
    assert validate(schema, banking_data) == []


def _set(path: tuple[str | int, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(data: dict[str, Any]) -> None:
        node: Any = data
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = value

    return apply


def _drop(path: tuple[str | int, ...]) -> Callable[[dict[str, Any]], None]:
    def apply(data: dict[str, Any]) -> None:
        node: Any = data
        for step in path[:-1]:
            node = node[step]
        del node[path[-1]]

    return apply


BROKEN = {
    "unknown top-level key": _set(("personae",), []),
    "unknown persona key": _set(("personas", 0, "mood"), "calm"),
    "unknown escalation key": _set(("intents", 0, "escalation", "within"), 2),
    "unknown greeting register": _set(("lexicon", "greetings", "shouty"), ["OI"]),
    "bad formality": _set(("personas", 0, "formality"), "posh"),
    "bad channel": _set(("personas", 0, "channel"), "fax"),
    "bad slot type": _set(("slots", 0, "type"), "iban"),
    "bad escalation": _set(("intents", 0, "escalation", "expected"), "always"),
    "probability above one": _set(("personas", 0, "vagueness"), 1.5),
    "zero weight": _set(("personas", 0, "weight"), 0),
    "bad persona id": _set(("personas", 0, "id"), "Nervous Nora"),
    "missing lexicon": _drop(("lexicon",)),
    "missing persona description": _drop(("personas", 0, "description")),
    "too few openings": _set(("intents", 0, "openings"), ["help"]),
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_schema_rejects_what_the_models_reject(
    validate: Validator, schema: dict[str, Any], banking_data: dict[str, Any], name: str
) -> None:
    broken = copy.deepcopy(banking_data)
    BROKEN[name](broken)
    assert validate(schema, broken), f"the schema accepts a pack with a {name}"
    with pytest.raises(ScenarioError):
        parse_pack(yaml.safe_dump(broken, allow_unicode=True))


# -- the modeline -----------------------------------------------------------------------------------


def test_banking_pack_points_at_the_schema(banking_text: str) -> None:
    assert banking_text.splitlines()[0] == MODELINE
    target = MODELINE.split("$schema=", 1)[1].removeprefix("./")
    assert files("botdrill.scenarios").joinpath("packs", target).is_file()
    assert load_pack("banking").name == "banking"
