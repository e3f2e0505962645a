"""The agent's JSON schema as inert data: limits, references, and validation that fetches
nothing. Only the standard library, ``jsonschema`` and ``referencing``: this file also runs on
its own, as the worker process :mod:`functionlayer_server._schema` validates edits in (JSON on
stdin, JSON on stdout), so that a validation that takes too long can be killed.

- :func:`schema_problem`: why a schema may not be used (too large, too deep, a reference
  outside itself, an embedded ``$id``, too many subschemas once references are followed).
- :func:`schema_errors`: what the schema says of an object, validated with a
  ``referencing.Registry`` whose retrieval refuses every URI.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote

__all__ = [
    "MAX_SCHEMA_BYTES",
    "MAX_SCHEMA_DEPTH",
    "MAX_SCHEMA_EXPANSION",
    "schema_errors",
    "schema_problem",
]

MAX_SCHEMA_BYTES = 65_536
"""The largest ``parameters`` schema accepted, as compact JSON (UTF-8 bytes)."""
MAX_SCHEMA_DEPTH = 32
"""The deepest nesting of objects and arrays accepted in a ``parameters`` schema."""
MAX_SCHEMA_EXPANSION = 20_000
"""The most subschemas a schema may stand for once its local ``$ref`` are followed (a few
``$defs`` each referring twice to the previous one would otherwise make validation
exponential)."""
_REF_KEYS = ("$ref", "$dynamicRef", "$recursiveRef")
_ANCHOR_KEYS = ("$anchor", "$dynamicAnchor")
# Keywords whose value maps names (not keywords) to subschemas.
_NAME_MAPS = frozenset(
    {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}
)
# Values that are data, not subschemas: a "$ref" inside them is not a reference.
_DATA_KEYS = frozenset({"const", "enum", "default", "examples"})


class _NoRetrieval(Exception):
    pass


def _refuse_retrieval(uri: str) -> Any:
    """The registry's retrieval: never fetch a schema (agent data must not reach the network
    or the file system)."""
    raise _NoRetrieval(f"the schema refers to {uri!r} outside itself; nothing is fetched")


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


def _children(node: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The subschemas directly under a schema object. The values of ``properties`` and the
    like are subschemas whatever their names (a property may be called ``default`` or
    ``$ref``); ``const``, ``enum``, ``default`` and ``examples`` hold data, not subschemas.
    Unknown keywords are searched too: counting too much only refuses, never fetches."""
    found: list[Mapping[str, Any]] = []
    for key, value in node.items():
        if key in _DATA_KEYS or key in _REF_KEYS:
            continue
        if key in _NAME_MAPS and isinstance(value, Mapping):
            found.extend(v for v in value.values() if isinstance(v, Mapping))
        elif isinstance(value, Mapping):
            found.append(value)
        elif isinstance(value, list):
            found.extend(v for v in value if isinstance(v, Mapping))
    return found


def _nodes(root: Any) -> list[Mapping[str, Any]]:
    """Every schema object in ``root``, the root first."""
    if not isinstance(root, Mapping):
        return []
    found: list[Mapping[str, Any]] = []
    stack: list[Mapping[str, Any]] = [root]
    while stack:
        node = stack.pop()
        found.append(node)
        stack.extend(_children(node))
    return found


def _refs(node: Mapping[str, Any]) -> list[str]:
    return [v for k in _REF_KEYS if isinstance(v := node.get(k), str)]


def _pointer(root: Any, ref: str, anchors: Mapping[str, Any]) -> Any:
    """The subschema a local reference names (``#``, ``#/a/b``, ``#anchor``), or None."""
    fragment = unquote(ref[1:])
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


def _expansion(root: Any, nodes: list[Mapping[str, Any]]) -> int:
    """How many subschemas ``root`` stands for with its local references followed (a target
    counted once per reference to it; a reference back into itself, which recurses only as
    deep as the data, counted once). Stops counting past the limit."""
    anchors: dict[str, Any] = {}
    for node in nodes:
        for key in _ANCHOR_KEYS:
            name = node.get(key)
            if isinstance(name, str):
                anchors.setdefault(name, node)
    memo: dict[int, int] = {}
    active: set[int] = set()

    def cost(node: Mapping[str, Any]) -> int:
        key = id(node)
        if key in memo:
            return memo[key]
        if key in active:
            return 1
        active.add(key)
        total = 1
        for ref in _refs(node):
            target = _pointer(root, ref, anchors)
            total += cost(target) if isinstance(target, Mapping) else 1
        for child in _children(node):
            if total > MAX_SCHEMA_EXPANSION:
                break
            total += cost(child)
        active.discard(key)
        memo[key] = total
        return total

    return cost(root) if isinstance(root, Mapping) else 1


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
    nodes = _nodes(schema)
    outside = [ref for node in nodes for ref in _refs(node) if not ref.startswith("#")]
    if outside:
        return (
            f"parameters refers to {outside[0]!r}: a $ref must point inside the schema "
            '(such as "#/$defs/Name"); nothing outside it is ever fetched'
        )
    if any("$id" in node for node in nodes[1:]):
        return "parameters may have an $id only at its root (no embedded schema resources)"
    try:
        expansion = _expansion(schema, nodes)
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


def schema_errors(schema: Any, merged: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What the schema says of the merged arguments, as (argument name or "", text) pairs."""
    refused = schema_problem(schema)
    if refused is not None:  # a schema stored before the rule: edits cannot be checked
        return [("", f"cannot be checked, so no edit is accepted: {refused}")]
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema, registry=_registry())
    problems: dict[str, str] = {}
    try:
        errors = sorted(validator.iter_errors(merged), key=lambda e: list(e.path))
    except Exception:  # an unresolvable reference (never fetched), a broken schema
        reason = "a reference it cannot resolve, or a broken schema"
        return [("", f"cannot be checked against the request's schema ({reason})")]
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
    return list(problems.items())


def main() -> None:
    """The worker: ``{"schema": ..., "merged": ...}`` on stdin, the pairs on stdout."""
    given = json.loads(sys.stdin.buffer.read())
    json.dump(schema_errors(given["schema"], given["merged"]), sys.stdout)


if __name__ == "__main__":
    main()
