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

Being the agent's, the schema is inert data: it never makes the server fetch anything. Every
``$ref`` must point inside the document (``#...``), checked at creation (:func:`check_schema`),
and validation uses a registry whose retrieval refuses every URI, so a stored schema with an
outside reference fails closed instead of being fetched. A schema is at most
:data:`MAX_SCHEMA_BYTES` bytes of JSON and :data:`MAX_SCHEMA_DEPTH` levels deep; validating an
edit runs off the event loop and gives up after :data:`VALIDATION_SECONDS`
(:func:`edit_problems_off_loop`), refusing the edit.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
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
    "edit_problems_off_loop",
    "merge_edits",
    "schema_problem",
]

MAX_SCHEMA_BYTES = 65_536
"""The largest ``parameters`` schema accepted, as compact JSON (UTF-8 bytes)."""
MAX_SCHEMA_DEPTH = 32
"""The deepest nesting of objects and arrays accepted in a ``parameters`` schema."""
VALIDATION_SECONDS = 5.0
"""How long validating an edit may take before the edit is refused."""
MAX_SCHEMA_EXPANSION = 20_000
"""The most subschemas a schema may stand for once its local ``$ref`` are followed (a few
``$defs`` each referring twice to the previous one would otherwise make validation
exponential)."""
_REF_KEYS = ("$ref", "$dynamicRef", "$recursiveRef")
_ANCHOR_KEYS = ("$anchor", "$dynamicAnchor")
# Values that are data, not subschemas: a "$ref" inside them is not a reference.
_DATA_KEYS = frozenset({"const", "enum", "default", "examples"})


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


class _NoRetrieval(Exception):
    pass


def _refuse_retrieval(uri: str) -> Any:
    """The registry's retrieval: never fetch a schema (agent data must not reach the network
    or the file system)."""
    raise _NoRetrieval(f"the schema refers to {uri!r} outside itself; nothing is fetched")


@functools.cache
def _pool() -> ThreadPoolExecutor:
    """Validation's own two threads: a validation that overruns its time limit (it cannot be
    stopped) holds one of these, never the threads the rest of the server uses."""
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="fl-schema")


@functools.cache
def _registry() -> Any:
    from referencing import Registry

    return Registry(retrieve=_refuse_retrieval)  # type: ignore[call-arg]


def _depth(value: Any) -> int:
    """How deeply objects and arrays nest in ``value`` (iterative: no recursion limit)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, Mapping):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_SCHEMA_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def _outside_refs(schema: Any) -> list[str]:
    """Every reference in the schema that does not point inside the document."""
    found: list[str] = []
    stack: list[Any] = [schema]
    while stack:
        item = stack.pop()
        if isinstance(item, list | tuple):
            stack.extend(item)
            continue
        if not isinstance(item, Mapping):
            continue
        for key, value in item.items():
            if key in _REF_KEYS and isinstance(value, str):
                if not value.startswith("#"):
                    found.append(value)
            elif key not in _DATA_KEYS:
                stack.append(value)
    return found


def _pointer(root: Any, ref: str, anchors: Mapping[str, Any]) -> Any:
    """The subschema a local reference names (``#``, ``#/a/b``, ``#anchor``), or None."""
    fragment = ref[1:]
    if not fragment.startswith("/"):
        return root if not fragment else anchors.get(fragment)
    target = root
    for raw in fragment[1:].split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(target, Mapping):
            target = target.get(part)
        elif isinstance(target, list) and part.isdigit() and int(part) < len(target):
            target = target[int(part)]
        else:
            return None
    return target


def _expansion(root: Any) -> int:
    """How many subschemas ``root`` stands for with its local references followed (each
    reference target counted once per reference to it; a reference back into itself, which
    only recurses as deep as the data, counted once). Stops counting past the limit."""
    anchors: dict[str, Any] = {}
    stack: list[Any] = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, Mapping):
            for key, value in item.items():
                if key in _ANCHOR_KEYS and isinstance(value, str):
                    anchors.setdefault(value, item)
                elif key not in _DATA_KEYS:
                    stack.append(value)
    memo: dict[int, int] = {}
    active: set[int] = set()

    def cost(node: Any) -> int:
        if isinstance(node, list):
            return sum(cost(n) for n in node) if node else 1
        if not isinstance(node, Mapping):
            return 1
        key = id(node)
        if key in memo:
            return memo[key]
        if key in active:
            return 1
        active.add(key)
        total = 1
        for name, value in node.items():
            if total > MAX_SCHEMA_EXPANSION:
                break
            if name in _REF_KEYS and isinstance(value, str):
                target = _pointer(root, value, anchors)
                total += cost(target) if target is not None else 1
            elif name not in _DATA_KEYS:
                total += cost(value)
        active.discard(key)
        memo[key] = total
        return total

    return cost(root)


def _nested_ids(schema: Any) -> bool:
    """Whether a subschema (not the root) declares its own ``$id``."""
    stack: list[Any] = [schema]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, Mapping):
            for key, value in item.items():
                if key == "$id" and item is not schema:
                    return True
                if key not in _DATA_KEYS:
                    stack.append(value)
    return False


def schema_problem(schema: Any) -> str | None:
    """Why ``schema`` may not be used (too large, too deep, a reference outside itself), or
    ``None``. The same rule at creation and, for schemas stored before it, at every edit."""
    try:
        size = len(json.dumps(schema, separators=(",", ":"), allow_nan=False).encode("utf-8"))
    except (TypeError, ValueError, RecursionError):
        return "parameters is not a JSON schema (it is not plain JSON)"
    if size > MAX_SCHEMA_BYTES:
        return f"parameters is too large ({size} bytes of JSON; at most {MAX_SCHEMA_BYTES})"
    if _depth(schema) > MAX_SCHEMA_DEPTH:
        return f"parameters is nested too deeply (at most {MAX_SCHEMA_DEPTH} levels)"
    outside = _outside_refs(schema)
    if outside:
        return (
            f"parameters refers to {outside[0]!r}: a $ref must point inside the schema "
            '(such as "#/$defs/Name"); nothing outside it is ever fetched'
        )
    if _nested_ids(schema):
        return "parameters may have an $id only at its root (no embedded schema resources)"
    try:
        expansion = _expansion(schema)
    except RecursionError:  # a chain of references longer than Python follows
        expansion = MAX_SCHEMA_EXPANSION + 1
    if expansion > MAX_SCHEMA_EXPANSION:
        return (
            "parameters stands for too many subschemas once its $ref are followed "
            f"(at most {MAX_SCHEMA_EXPANSION})"
        )
    return None


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
    try:
        found = _schema_errors(json.dumps(schema), json.dumps(dict(merged)))
    except (TypeError, ValueError):
        found = (("", "the edited arguments are not plain JSON"),)
    for name, text in found:
        problems.setdefault(name, text)
    return problems


@functools.lru_cache(maxsize=32)
def _schema_errors(schema_json: str, merged_json: str) -> tuple[tuple[str, str], ...]:
    """What the schema says of the merged arguments, as (name, text) pairs. Cached: the check
    made off the event loop (:func:`edit_problems_off_loop`) is the one the decision reuses."""
    schema, merged = json.loads(schema_json), json.loads(merged_json)
    refused = schema_problem(schema)
    if refused is not None:  # a schema stored before the rule: edits cannot be checked
        return (("", f"cannot be checked, so no edit is accepted: {refused}"),)
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema, registry=_registry())
    problems: dict[str, str] = {}
    try:
        errors = sorted(validator.iter_errors(merged), key=lambda e: list(e.path))
    except Exception:  # an unresolvable reference (never fetched), a broken schema
        return (("", "cannot be checked: the request's schema has a reference it cannot resolve"),)
    for error in errors:
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
    return tuple(problems.items())


async def edit_problems_off_loop(
    spec: FunctionCallSpec, merged: Mapping[str, Any], *, timeout: float = VALIDATION_SECONDS
) -> dict[str, str]:
    """:func:`edit_problems` in a worker thread, at most ``timeout`` seconds: the event loop
    (every other request) never waits for the agent's schema. Too slow is a problem too."""
    if not spec.parameters:
        return edit_problems(spec, merged)
    loop = asyncio.get_running_loop()
    try:
        return await asyncio.wait_for(
            loop.run_in_executor(_pool(), edit_problems, spec, merged), timeout
        )
    except TimeoutError:
        return {"": f"could not be checked against the request's schema within {timeout:g} seconds"}


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
