"""The function's schema travels with the request: what it lets the server check and show.

The agent's core sends, with each function call, the JSON schema of the function's arguments
(``spec.parameters``) and the decisions the function accepts (``spec.allowed_decisions``).
This module answers for every channel:

- which kind of decision a person's answer is (:func:`decision_kind`) and whether the function
  accepts it (:func:`check_allowed`);
- what an edit means: edits are *partial*, merged into the proposed arguments, and the merged
  object must satisfy the schema (:func:`merge_edits`, :func:`edit_problems`). An invalid edit
  is refused before anything is recorded, naming the field, so the person who made it is told
  where they made it instead of the agent failing closed later.

The schema comes from the agent and is not trusted for authority: the agent's own core
validates the approved arguments against the real signature again before running anything.
Here it only lets the server refuse mistakes early and build forms.

Being the agent's, the schema is inert data (:mod:`._schema_check`): it never makes the
server fetch anything. Every ``$ref`` must point inside the document (``#...``) and the schema
stays within :data:`MAX_SCHEMA_BYTES`, :data:`MAX_SCHEMA_DEPTH` and
:data:`MAX_SCHEMA_EXPANSION`, checked at creation (:func:`check_schema`); validation uses a
registry whose retrieval refuses every URI, so a stored schema with an outside reference fails
closed instead of being fetched. A person's edit is validated in a worker process, off the
event loop, killed after :data:`VALIDATION_SECONDS` (:func:`edit_problems_off_loop`), which
refuses the edit.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from functionlayer.models import DECISION_KINDS, FunctionCallSpec

from functionlayer_server._schema_check import (
    MAX_SCHEMA_BYTES,
    MAX_SCHEMA_DEPTH,
    MAX_SCHEMA_EXPANSION,
    schema_errors,
    schema_problem,
)

__all__ = [
    "DECISION_KINDS",
    "MAX_SCHEMA_BYTES",
    "MAX_SCHEMA_DEPTH",
    "MAX_SCHEMA_EXPANSION",
    "VALIDATION_SECONDS",
    "SchemaProblem",
    "allowed",
    "check_allowed",
    "check_schema",
    "decision_kind",
    "describe",
    "edit_problems",
    "edit_problems_off_loop",
    "merge_edits",
    "non_finite",
    "schema_problem",
]

VALIDATION_SECONDS = 5.0
"""How long validating an edit may take (in its worker process) before the edit is refused."""
_WORKER = Path(__file__).with_name("_schema_check.py")
_CHECKED_MAX = 256
_checked: OrderedDict[tuple[str, str], tuple[tuple[str, str], ...]] = OrderedDict()
"""Recent validations, by (schema JSON, arguments JSON): the worker's answer, reused by the
policy's own check of the same decision (which must not validate again on the event loop)."""


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


def non_finite(value: Any) -> bool:
    """True if a NaN, an infinity (or a number too large for JSON, parsed as one) hides in a
    JSON value: refused in arguments, state and edits alike."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, Mapping):
        return any(non_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(non_finite(v) for v in value)
    return False


def edit_problems(spec: FunctionCallSpec, merged: Mapping[str, Any]) -> dict[str, str]:
    """What is wrong with the merged arguments, by argument name (``""``: the whole object).
    Empty when they fit the schema, or when the request carries no schema."""
    problems: dict[str, str] = {}
    for name, value in merged.items():
        if non_finite(value):
            problems[name] = "must be a finite number (NaN and Infinity are not JSON numbers)"
    schema = spec.parameters
    if not schema:
        return problems
    try:
        key = (json.dumps(schema), json.dumps(dict(merged)))
    except (TypeError, ValueError):
        return {**problems, "": "the edited arguments are not plain JSON"}
    found = _checked.get(key)
    if found is None:  # not checked in a worker (a direct caller): check here
        found = tuple(schema_errors(schema, merged))
        _remember(key, found)
    for name, text in found:
        problems.setdefault(name, text)
    return problems


def _remember(key: tuple[str, str], found: tuple[tuple[str, str], ...]) -> None:
    _checked[key] = found
    _checked.move_to_end(key)
    while len(_checked) > _CHECKED_MAX:
        _checked.popitem(last=False)


async def edit_problems_off_loop(
    spec: FunctionCallSpec, merged: Mapping[str, Any], *, timeout: float = VALIDATION_SECONDS
) -> dict[str, str]:
    """:func:`edit_problems`, the schema part in a worker process killed after ``timeout``
    seconds: the event loop never waits for the agent's schema, and a validation that runs
    away (a backtracking ``pattern``, references that multiply) is stopped. Too slow, or no
    answer from the worker, refuses the edit."""
    schema = spec.parameters
    try:
        key = (json.dumps(schema), json.dumps(dict(merged)))
    except (TypeError, ValueError):
        return edit_problems(spec, merged)
    if not schema or key in _checked:
        return edit_problems(spec, merged)
    payload = json.dumps({"schema": schema, "merged": dict(merged)}).encode("utf-8")
    try:
        worker = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",
            str(_WORKER),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except OSError as exc:
        return {"": f"could not be checked against the request's schema ({exc})"}
    try:
        out, _ = await asyncio.wait_for(worker.communicate(payload), timeout)
    except TimeoutError:
        return {"": f"could not be checked against the request's schema within {timeout:g} seconds"}
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
    try:
        found = tuple((str(name), str(text)) for name, text in json.loads(out))
    except (ValueError, TypeError):
        return {"": "could not be checked against the request's schema (the check failed)"}
    if worker.returncode != 0:
        return {"": "could not be checked against the request's schema (the check failed)"}
    _remember(key, found)
    return edit_problems(spec, merged)


def describe(problems: Mapping[str, str]) -> str:
    parts = [f"{name!r} {text}" if name else text for name, text in problems.items()]
    return "invalid edited arguments: " + "; ".join(parts)


def check_schema(spec: FunctionCallSpec) -> None:
    """Refuse, at creation, a ``parameters`` object that is not a JSON schema of an object:
    edits could not be checked against it later."""
    schema = spec.parameters
    if schema is None:
        return
    refused = schema_problem(schema)
    if refused is not None:
        raise SchemaProblem(refused)
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise SchemaProblem(f"parameters is not a valid JSON schema: {exc.message}") from None
    if schema.get("type", "object") != "object":
        raise SchemaProblem('parameters must be the JSON schema of an object ("type": "object")')
