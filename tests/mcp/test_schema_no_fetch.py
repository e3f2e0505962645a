"""The gateway validates arguments (and a person's edits) against the upstream tool's input
schema without ever fetching what a ``$ref`` names: such a reference fails closed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from functionlayer_mcp._arguments import schema_problem
from mcp import types

from tests.security.test_schema_no_fetch import Listener


@pytest.fixture
def listener() -> Iterator[Listener]:
    found = Listener()
    try:
        yield found
    finally:
        found.stop()


def test_a_reference_outside_the_tool_schema_is_not_fetched(listener: Listener) -> None:
    for uri in (f"{listener.url}/schema.json", "file:///etc/passwd"):
        tool = types.Tool(
            name="pay",
            inputSchema={"type": "object", "properties": {"to": {"$ref": uri}}},
        )
        problem = schema_problem(tool, {"to": "x"})
        assert problem is not None and "never fetched" in problem
    assert listener.hits == []


def test_arguments_are_still_checked_against_the_schema() -> None:
    tool = types.Tool(
        name="pay",
        inputSchema={
            "type": "object",
            "$defs": {"Amount": {"type": "integer"}},
            "properties": {"amount": {"$ref": "#/$defs/Amount"}},
            "required": ["amount"],
        },
    )
    assert schema_problem(tool, {"amount": 5}) is None
    assert schema_problem(tool, {"amount": "5"}) == "'amount': '5' is not of type 'integer'"
    assert schema_problem(tool, {}) == "'amount' is a required property"
