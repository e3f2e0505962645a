"""Which argument keys a tool's inputSchema does not declare (``functionlayer_mcp._schema``)."""

from __future__ import annotations

from typing import Any

import pytest
from functionlayer_mcp._schema import UnreadableSchemaError, may_hold, undeclared_keys

# What FastMCP generates for deploy(env: str, target: Target, tags: list[Tag], note: Note | None).
FASTMCP: dict[str, Any] = {
    "$defs": {
        "Target": {
            "properties": {"region": {"type": "string"}, "cluster": {"type": "string"}},
            "required": ["region"],
            "type": "object",
        },
        "Tag": {"properties": {"key": {"type": "string"}}, "type": "object"},
        "Note": {"properties": {"text": {"type": "string"}}, "type": "object"},
    },
    "properties": {
        "env": {"type": "string"},
        "target": {"$ref": "#/$defs/Target"},
        "tags": {"items": {"$ref": "#/$defs/Tag"}, "type": "array"},
        "note": {"anyOf": [{"$ref": "#/$defs/Note"}, {"type": "null"}]},
        "labels": {"additionalProperties": True, "type": "object"},
        "blob": {},
    },
    "type": "object",
}


@pytest.mark.parametrize(
    ("arguments", "undeclared"),
    [
        ({"env": "prod", "target": {"region": "eu"}}, []),
        ({"env": "prod", "target.region": "us"}, ["'target.region'"]),
        ({"target": {"region": "eu", "region.x": 1}}, ["'target' / 'region.x'"]),
        ({"tags": [{"key": "a"}, {"key": "b", "evil": 1}]}, ["'tags' / '1' / 'evil'"]),
        ({"note": {"text": "hi"}}, []),
        ({"note": {"text": "hi", "more": 1}}, ["'note' / 'more'"]),
        ({"note": None}, []),
        # Explicitly open, or free-form: nothing to mistake a key for.
        ({"labels": {"any.key": 1}}, []),
        ({"blob": {"any.key": {"deep": 1}}}, []),
        (
            {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6, "g": 7},
            [*map(repr, "abcde"), "and 2 more"],
        ),
    ],
)
def test_undeclared_keys(arguments: dict[str, Any], undeclared: list[str]) -> None:
    assert undeclared_keys(FASTMCP, arguments) == undeclared


@pytest.mark.parametrize(
    ("schema", "arguments", "undeclared"),
    [
        ({"type": "object"}, {"x.y": 1}, []),
        ({"properties": {"a": {}}, "additionalProperties": True}, {"a.b": 1}, []),
        ({"properties": {"a": {}}, "additionalProperties": False}, {"a.b": 1}, ["'a.b'"]),
        ({"properties": {"a": {}}, "additionalProperties": {"type": "string"}}, {"b": "x"}, []),
        ({"patternProperties": {"^x_": {}}}, {"x_1": 1, "y": 2}, ["'y'"]),
        ({"allOf": [{"properties": {"a": {}}}, {"properties": {"b": {}}}]}, {"a": 1, "b": 2}, []),
        ({"allOf": [{"properties": {"a": {}}}, {"properties": {"b": {}}}]}, {"c": 1}, ["'c'"]),
        ({"oneOf": [{"properties": {"a": {}}}, {"properties": {"b": {}}}]}, {"b": 1}, []),
        (True, {"anything": 1}, []),
    ],
)
def test_schema_forms(schema: Any, arguments: dict[str, Any], undeclared: list[str]) -> None:
    assert undeclared_keys(schema, arguments) == undeclared


@pytest.mark.parametrize(
    "schema",
    [
        {"properties": {"a": {"$ref": "https://example.com/s.json"}}},
        {"properties": {"a": {"$ref": "#/$defs/missing"}}},
        {"$defs": {"L": {"$ref": "#/$defs/L"}}, "properties": {"a": {"$ref": "#/$defs/L"}}},
        {"patternProperties": {"(": {}}},
        {"$defs": {"L": {"anyOf": [{"$ref": "#/$defs/L"}] * 2}}, "$ref": "#/$defs/L"},
    ],
)
def test_a_schema_that_cannot_be_examined_is_an_error(schema: dict[str, Any]) -> None:
    with pytest.raises(UnreadableSchemaError):
        undeclared_keys(schema, {"a": {"b": 1}})


NESTED = {"$defs": {"N": {"properties": {"n": {"$ref": "#/$defs/N"}}}}, "$ref": "#/$defs/N"}


def test_deep_arguments_are_bounded() -> None:
    value: dict[str, Any] = {}
    for _ in range(100):
        value = {"n": value}
    with pytest.raises(UnreadableSchemaError, match="nested deeper"):
        undeclared_keys(NESTED, value)
    assert undeclared_keys(NESTED, {"n": {"n": {"n": {}}}}) == []


@pytest.mark.parametrize(
    ("path", "holds"),
    [
        ("env", True),
        ("target.region", True),
        ("target.regoin", False),
        ("target", True),
        ("note.text", True),  # through anyOf and $ref
        ("note.txt", False),
        ("tags", True),
        ("labels.anything", True),  # explicitly open
        ("blob.anything.deeper", True),  # free-form
        ("env.anything", False),  # a string has no keys
        ("nope", False),
    ],
)
def test_may_hold(path: str, holds: bool) -> None:
    assert may_hold(FASTMCP, path.split(".")) is holds
