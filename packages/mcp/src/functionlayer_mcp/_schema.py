"""Which argument keys a tool's ``inputSchema`` does not declare.

A gate reads the arguments the way the tool's schema shapes them (``target.region`` is the
``region`` key inside the ``target`` object). An argument the schema does not declare is one the
gateway and the upstream may read differently: a literal ``"target.region"`` key next to the real
``target`` object, which the upstream silently drops while a careless reader would gate on it.
So a gated tool's call may only carry keys its schema declares (``properties``,
``patternProperties``), unless the schema explicitly allows more (``additionalProperties`` true or
a schema) or declares nothing about the object's keys at all (a free-form object, where no key
can be mistaken for another). Omitting ``additionalProperties`` next to ``properties`` is not
explicit: such keys are refused.

The walk follows local ``$ref`` pointers, ``allOf`` (all apply) and ``anyOf``/``oneOf`` (the call
passes when one branch declares every key). It is bounded; a schema it cannot read (a remote
``$ref``, a cycle, a bad pattern, too deep or too many branches) is an error, so the call is
refused rather than forwarded unexamined.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["UnreadableSchemaError", "may_hold", "shown", "undeclared_keys"]

_MAX_DEPTH = 32
_MAX_ALTERNATIVES = 64
_MAX_STEPS = 100_000  # schema nodes visited for one call: a self-referring schema cannot hang us
_MAX_REPORTED = 5
_SHOWN_CHARS = 60


class UnreadableSchemaError(ValueError):
    """The schema cannot be examined (remote reference, cycle, bad pattern, too large)."""


def shown(text: str, limit: int = _SHOWN_CHARS) -> str:
    """``text`` quoted and cut to ``limit`` characters: agent-supplied names in messages."""
    return repr(text if len(text) <= limit else text[:limit] + "…")


def undeclared_keys(schema: Any, arguments: Mapping[str, Any]) -> list[str]:
    """Where ``arguments`` carry keys ``schema`` does not declare (at most a few, for a message).

    Each entry is a path such as ``'target.region'`` or ``'target' / 'zone'``. Raises
    :class:`UnreadableSchemaError` when the schema cannot be examined.
    """
    problems = _Walk(schema).check(schema, arguments, (), 0)
    if len(problems) > _MAX_REPORTED:
        extra = len(problems) - _MAX_REPORTED
        return [*problems[:_MAX_REPORTED], f"and {extra} more"]
    return problems


def may_hold(schema: Any, path: list[str]) -> bool:
    """Whether arguments fitting ``schema`` can carry a value at ``path`` (nested keys).

    False only when the schema rules it out: at some level, every way the schema can apply
    declares its keys and none of them is the next part of ``path``. A schema that cannot be
    examined is not ruled out here (calls to its tool are refused anyway).
    """
    walk = _Walk(schema)
    try:
        return walk.may_hold(schema, path, 0)
    except UnreadableSchemaError:
        return True


class _Walk:
    def __init__(self, root: Any) -> None:
        self.root = root
        self.steps = 0

    def check(self, schema: Any, value: Any, where: tuple[str, ...], depth: int) -> list[str]:
        if not isinstance(value, Mapping | list):
            return []
        if depth > _MAX_DEPTH:
            raise UnreadableSchemaError(f"arguments nested deeper than {_MAX_DEPTH} levels")
        best: list[str] | None = None
        for alternative in self.alternatives(schema, 0):
            if not _admits(alternative, value):
                continue  # a branch for another JSON type (``null`` of an optional object)
            problems = self.check_alternative(alternative, value, where, depth)
            if not problems:
                return []
            if best is None or len(problems) < len(best):
                best = problems
        return best or []

    def may_hold(self, schema: Any, path: list[str], depth: int) -> bool:
        if not path:
            return True
        if depth > _MAX_DEPTH:
            raise UnreadableSchemaError("the path is nested too deeply")
        key, rest = path[0], path[1:]
        for alternative in self.alternatives(schema, 0):
            if not _admits(alternative, {}):
                continue
            subs: list[Any] = []
            extra: list[Any] = []
            declares = closed = False
            for part in alternative:
                declared = part.get("properties")
                if isinstance(declared, Mapping):
                    declares = True
                    if key in declared:
                        subs.append(declared[key])
                patterns = part.get("patternProperties")
                if isinstance(patterns, Mapping):
                    declares = True
                    subs += [sub for pattern, sub in patterns.items() if _search(pattern, key)]
                if "additionalProperties" in part:
                    declares = True
                    more = part["additionalProperties"]
                    if more is False:
                        closed = True
                    else:
                        extra.append(more)
            if not declares:
                return True  # a free-form object: any key may be there
            if not closed:
                subs += extra
            if any(self.may_hold(sub, rest, depth + 1) for sub in subs):
                return True
        return False

    def alternatives(self, schema: Any, depth: int) -> list[list[Mapping[str, Any]]]:
        """The ways ``schema`` can apply: each a list of schemas that all apply at once."""
        self.steps += 1
        if depth > _MAX_DEPTH or self.steps > _MAX_STEPS:
            raise UnreadableSchemaError("the schema is nested too deeply (or refers to itself)")
        if schema is True:
            return [[{}]]
        if schema is False:
            return [[{"properties": {}, "additionalProperties": False}]]
        if not isinstance(schema, Mapping):
            raise UnreadableSchemaError(f"a schema is not an object: {type(schema).__name__}")
        result: list[list[Mapping[str, Any]]] = [[schema]]
        parts: list[list[list[Mapping[str, Any]]]] = []
        if "$ref" in schema:
            parts.append(self.alternatives(self.resolve(schema["$ref"]), depth + 1))
        for member in _schemas(schema.get("allOf")):
            parts.append(self.alternatives(member, depth + 1))
        for keyword in ("anyOf", "oneOf"):
            branches = _schemas(schema.get(keyword))
            if branches:
                parts.append(
                    [alt for branch in branches for alt in self.alternatives(branch, depth + 1)]
                )
        for choices in parts:
            result = [done + choice for done in result for choice in choices]
            if len(result) > _MAX_ALTERNATIVES:
                raise UnreadableSchemaError("the schema has too many alternatives")
        return result

    def resolve(self, ref: Any) -> Any:
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise UnreadableSchemaError(f"only local references are followed, not {ref!r}")
        node: Any = self.root
        for raw in ref[1:].split("/")[1:] if ref != "#" else []:
            part = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise UnreadableSchemaError(f"the reference {ref!r} points nowhere")
        return node

    def check_alternative(
        self,
        alternative: list[Mapping[str, Any]],
        value: Mapping[str, Any] | list[Any],
        where: tuple[str, ...],
        depth: int,
    ) -> list[str]:
        problems: list[str] = []
        if isinstance(value, list):
            for index, item in enumerate(value):
                for sub in _item_schemas(alternative, index):
                    problems += self.check(sub, item, (*where, str(index)), depth + 1)
            return problems
        properties: dict[str, list[Any]] = {}
        patterns: list[tuple[str, Any]] = []
        extra: list[Any] = []
        declares = allows = forbids = False
        for schema in alternative:
            declared = schema.get("properties")
            if isinstance(declared, Mapping):
                declares = True
                for key, sub in declared.items():
                    properties.setdefault(key, []).append(sub)
            declared_patterns = schema.get("patternProperties")
            if isinstance(declared_patterns, Mapping):
                declares = True
                patterns += declared_patterns.items()
            if "additionalProperties" in schema:
                declares = True
                more = schema["additionalProperties"]
                if more is False:
                    forbids = True
                elif more is True:
                    allows = True
                else:
                    extra.append(more)
        for key, item in value.items():
            path = (*where, str(key))
            subs = properties.get(key, []) + [
                sub for pattern, sub in patterns if _search(pattern, str(key))
            ]
            if not subs:
                if forbids or (declares and not allows and not extra):
                    problems.append(" / ".join(shown(part) for part in path))
                    continue
                subs = extra
            for sub in subs:
                problems += self.check(sub, item, path, depth + 1)
        return problems


def _admits(alternative: list[Mapping[str, Any]], value: Mapping[str, Any] | list[Any]) -> bool:
    """Whether no schema of ``alternative`` restricts ``type`` to exclude ``value``'s type."""
    wanted = "array" if isinstance(value, list) else "object"
    for schema in alternative:
        kind = schema.get("type")
        if isinstance(kind, str) and kind != wanted:
            return False
        if isinstance(kind, list) and wanted not in kind:
            return False
    return True


def _schemas(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else []


def _item_schemas(alternative: list[Mapping[str, Any]], index: int) -> list[Any]:
    found: list[Any] = []
    for schema in alternative:
        prefix = schema.get("prefixItems")
        items = schema.get("items")
        if isinstance(items, list):  # the older tuple form of items
            prefix, items = items, schema.get("additionalItems")
        if isinstance(prefix, list) and index < len(prefix):
            found.append(prefix[index])
        elif isinstance(items, Mapping | bool):
            found.append(items)
    return found


def _search(pattern: Any, key: str) -> bool:
    try:
        return re.search(str(pattern), key) is not None
    except re.error as exc:
        raise UnreadableSchemaError(f"patternProperties {pattern!r} is not a pattern") from exc
