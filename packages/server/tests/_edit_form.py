"""The call the inbox's "Approve with edited arguments" tests propose (red-team finding 5c): a
schema whose properties have defaults, nulls and enums, and what the agent proposed against it:
two nulls, one argument outside the schema (**kwargs), and none of the properties that have a
default. Shared by the HTML-level test (test_display_rule) and the browser one."""

from __future__ import annotations

from typing import Any

EDIT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        "seats": {"type": "integer", "default": 2},
        "express": {"type": "boolean", "default": True},
        "level": {"enum": ["low", "high"], "default": "high"},
        "limit": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        "tags": {"type": "array", "items": {"type": "string"}, "default": ["x"]},
        "mode": {"enum": ["a", "b"]},
    },
    "required": ["city"],
}
EDIT_PROPOSED: dict[str, Any] = {"city": "Oslo", "note": None, "limit": None, "extra": "kept"}


def with_body(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with one more (string) property, ``body``."""
    return {**schema, "properties": {**schema["properties"], "body": {"type": "string"}}}
