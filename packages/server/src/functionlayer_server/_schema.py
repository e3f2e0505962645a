"""The function's schema travels with the request: what it lets the server check and show.

The agent's core sends, with each function call, the JSON schema of the function's arguments
(``spec.parameters``) and the decisions the function accepts (``spec.allowed_decisions``).
This module, pure and without I/O, answers for every channel:

- which kind of decision a person's answer is (:func:`decision_kind`) and whether the function
  accepts it (:func:`check_allowed`);
- what an edit means: edits are *partial*, merged into the proposed arguments, and the merged
  object must satisfy the schema (:func:`merge_edits`, :func:`edit_problems`). An invalid edit
  is refused before anything is recorded, naming the field, so the person who made it is told
  where they made it instead of the agent failing closed later.

The schema comes from the agent and is not trusted for authority: the agent's own core
validates the approved arguments against the real signature again before running anything.
Here it only lets the server refuse mistakes early and build forms.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from functionlayer._models import DECISION_KINDS, FunctionCallSpec

__all__ = [
    "DECISION_KINDS",
    "SchemaProblem",
    "allowed",
    "check_allowed",
    "check_schema",
    "decision_kind",
    "describe",
    "edit_problems",
    "merge_edits",
]


class SchemaProblem(Exception):
    """An edit or decision the request's schema refuses. ``fields`` maps argument names (or
    ``""`` for the whole object) to what is wrong with them."""

    def __init__(self, message: str, fields: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = dict(fields or {})


def allowed(spec: FunctionCallSpec) -> tuple[str, ...]:
    """The decisions this request accepts (all four unless the function restricted them)."""
    if spec.allowed_decisions is None:
        return DECISION_KINDS
    return tuple(d for d in DECISION_KINDS if d in spec.allowed_decisions)


def decision_kind(
    spec: FunctionCallSpec,
    *,
    approved: bool | None,
    edited_kwargs: Mapping[str, Any] | None,
    response: str | None,
) -> str | None:
    """``approve``, ``edit``, ``reject`` or ``respond``; ``None`` when the answer is none of
    them (the decision rules refuse it then). Edits that change nothing are an approval."""
    if response is not None:
        return "respond"
    if approved is False:
        return "reject"
    if approved is True:
        if edited_kwargs is None:
            return "approve"
        if isinstance(edited_kwargs, Mapping) and merge_edits(spec, edited_kwargs) == spec.kwargs:
            return "approve"
        return "edit"
    return None


def check_allowed(spec: FunctionCallSpec, kind: str | None) -> None:
    if kind is None or kind in allowed(spec):
        return
    raise SchemaProblem(
        f"the decision {kind!r} is not allowed for {spec.fn} "
        f"(this function accepts: {', '.join(allowed(spec))})"
    )


def merge_edits(spec: FunctionCallSpec, edits: Mapping[str, Any]) -> dict[str, Any]:
    """The full arguments an edit approves: the proposal with the edited names replaced, in
    the proposal's order (new names last)."""
    return {**spec.kwargs, **edits}


def _non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, Mapping):
        return any(_non_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_non_finite(v) for v in value)
    return False


def _field(path: Sequence[Any], validator: str, instance: Any, schema: Any) -> str:
    if path:
        return str(path[0])
    if validator == "required" and isinstance(schema, list):
        for name in schema:
            if isinstance(instance, Mapping) and name not in instance:
                return str(name)
    return ""


def edit_problems(spec: FunctionCallSpec, merged: Mapping[str, Any]) -> dict[str, str]:
    """What is wrong with the merged arguments, by argument name (``""``: the whole object).
    Empty when they fit the schema, or when the request carries no schema."""
    problems: dict[str, str] = {}
    for name, value in merged.items():
        if _non_finite(value):
            problems[name] = "must be a finite number (NaN and Infinity are not JSON numbers)"
    schema = spec.parameters
    if not schema:
        return problems
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema)
    for error in sorted(validator.iter_errors(dict(merged)), key=lambda e: list(e.path)):
        name = _field(list(error.path), str(error.validator), error.instance, error.validator_value)
        if error.validator == "additionalProperties":
            extra = [n for n in merged if n not in (schema.get("properties") or {})]
            for unknown in extra:
                problems.setdefault(unknown, "is not an argument of this function")
            continue
        if error.validator == "required" and name:
            problems.setdefault(name, "is required")
            continue
        problems.setdefault(name, error.message)
    return problems


def describe(problems: Mapping[str, str]) -> str:
    parts = [f"{name!r} {text}" if name else text for name, text in problems.items()]
    return "invalid edited arguments: " + "; ".join(parts)


def check_schema(spec: FunctionCallSpec) -> None:
    """Refuse, at creation, a ``parameters`` object that is not a JSON schema of an object:
    edits could not be checked against it later."""
    schema = spec.parameters
    if schema is None:
        return
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise SchemaProblem(f"parameters is not a valid JSON schema: {exc.message}") from None
    if schema.get("type", "object") != "object":
        raise SchemaProblem('parameters must be the JSON schema of an object ("type": "object")')
