"""Whether a call's arguments fit the tool's ``inputSchema`` (and can be carried as JSON)."""

from __future__ import annotations

import math
from typing import Any

from mcp import types

from functionlayer_mcp import _compat
from functionlayer_mcp._schema import UnreadableSchemaError, shown, undeclared_keys

__all__ = ["finite", "schema_problem"]


def finite(value: Any) -> bool:
    """Whether ``value`` (parsed JSON) holds no NaN or infinite number, at any depth."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(finite(v) for v in value.values())
    if isinstance(value, list):
        return all(finite(v) for v in value)
    return True


def schema_problem(tool: types.Tool | None, arguments: dict[str, Any]) -> str | None:
    """Why ``arguments`` do not fit the tool's input schema, or ``None`` when they do.

    Keys the schema does not declare are a misfit too (:mod:`functionlayer_mcp._schema`).
    """
    if tool is None:
        return "the upstream lists no such tool"
    import jsonschema
    from referencing import Registry
    from referencing.exceptions import Unresolvable

    schema = _compat.field(tool, "inputSchema")
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        undeclared = undeclared_keys(schema, arguments)
    except UnreadableSchemaError as exc:
        return f"the tool's input schema cannot be examined: {exc}"
    if undeclared:
        return "it does not declare the key(s) " + ", ".join(undeclared)
    try:
        cls.check_schema(schema)
        # A registry that fetches nothing: a $ref outside the schema fails closed instead of
        # making the gateway open a URL (or a file) the schema names.
        validator = cls(schema, registry=Registry(retrieve=_refuse_retrieval))  # type: ignore[call-arg]
        error = jsonschema.exceptions.best_match(validator.iter_errors(arguments))
    except jsonschema.SchemaError as exc:
        return f"the tool's input schema is invalid: {exc.message}"
    except Unresolvable as exc:
        return f"the tool's input schema has a reference that is never fetched: {exc}"
    if error is None:
        return None
    where = "/".join(shown(str(p)) for p in error.absolute_path)
    message = error.message if len(error.message) <= 300 else error.message[:300] + "…"
    return f"{where}: {message}" if where else message


def _refuse_retrieval(uri: str) -> Any:
    raise LookupError(f"{uri!r} is outside the schema; nothing is fetched")
