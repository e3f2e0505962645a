"""The one condition language of grants and operator rules (pure: no I/O, no eval).

A condition is one line of text, ``ARG OP VALUE``: ``amount <= 100``, ``currency == "EUR"``,
``to in ["acme", "globex"]``, ``note any``. ``VALUE`` is a JSON literal (parsed as data, never
evaluated). Conditions are written by the operator (rules, in the policy file) or by a person
(a grant's scope); what they are evaluated against is the agent's arguments, which stay inert
data: compared, never interpreted.

Evaluation is type-strict and fails closed: the string ``"50"`` is not ``<= 100``, ``true`` is
not ``1``, a missing argument matches no condition, and an argument that is an object or a list
matches only ``any``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_CONDITIONS",
    "Condition",
    "ConditionError",
    "parse_condition",
    "parse_conditions",
]

MAX_CONDITIONS = 32
MAX_SET = 100
MAX_TEXT = 2000
NUMERIC_OPS = ("<", "<=", ">", ">=")
OPS = ("==", "!=", *NUMERIC_OPS, "in", "any")

_ARG = r"[A-Za-z_][A-Za-z0-9_]{0,63}"
_SYMBOLIC = re.compile(rf"^\s*({_ARG})\s*(==|!=|<=|>=|<|>)\s*(\S.*?)\s*$", re.DOTALL)
_WORD = re.compile(rf"^\s*({_ARG})\s+(in|any)\b\s*(.*?)\s*$", re.DOTALL)


class ConditionError(ValueError):
    """A condition that cannot be used (the message says why)."""


def _scalar(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, str | bool | int)


def _number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and (not isinstance(value, float) or math.isfinite(value))
    )


def _same(a: Any, b: Any) -> bool:
    """Type-strict equality of two scalars: numbers with numbers (1 == 1.0), booleans with
    booleans, strings with strings, null with null."""
    if _number(a) and _number(b):
        return bool(a == b)
    if isinstance(a, bool) and isinstance(b, bool):
        return a is b
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    return a is None and b is None


@dataclass(frozen=True)
class Condition:
    arg: str
    op: str
    value: Any = None
    """A scalar (``==``, ``!=``), a number (``<``...), a tuple of scalars (``in``), None (``any``)."""

    def text(self) -> str:
        if self.op == "any":
            return f"{self.arg} any"
        value = list(self.value) if self.op == "in" else self.value
        return f"{self.arg} {self.op} {json.dumps(value, ensure_ascii=False)}"

    def __str__(self) -> str:
        return self.text()

    def matches(self, kwargs: Mapping[str, Any]) -> bool:
        """Whether the agent's argument satisfies this condition (missing: never)."""
        if self.arg not in kwargs:
            return False
        actual = kwargs[self.arg]
        if self.op == "any":
            return True
        if not _scalar(actual):
            return False
        if self.op == "==":
            return _same(actual, self.value)
        if self.op == "!=":
            return not _same(actual, self.value)
        if self.op == "in":
            return any(_same(actual, v) for v in self.value)
        if not _number(actual):
            return False
        if self.op == "<":
            return bool(actual < self.value)
        if self.op == "<=":
            return bool(actual <= self.value)
        if self.op == ">":
            return bool(actual > self.value)
        return bool(actual >= self.value)


def parse_condition(text: Any) -> Condition:
    """One condition from its text (``ConditionError`` when it is not one)."""
    if not isinstance(text, str):
        raise ConditionError("a condition is a string such as 'amount <= 100'")
    if len(text) > MAX_TEXT:
        raise ConditionError(f"a condition is at most {MAX_TEXT} characters")
    match = _SYMBOLIC.match(text) or _WORD.match(text)
    if match is None:
        raise ConditionError(
            f"cannot read condition {text!r}: write ARG OP VALUE with OP one of "
            "==, !=, <, <=, >, >=, in, any (e.g. 'amount <= 100', 'to in [\"a\", \"b\"]')"
        )
    arg, op, rest = match.group(1), match.group(2), match.group(3)
    if op == "any":
        if rest:
            raise ConditionError(f"{text!r}: 'any' takes no value")
        return Condition(arg, "any")
    try:
        value = json.loads(rest)
    except ValueError:
        raise ConditionError(
            f"{text!r}: the value must be JSON (strings in double quotes)"
        ) from None
    if op == "in":
        if not isinstance(value, list) or not value or len(value) > MAX_SET:
            raise ConditionError(f"{text!r}: 'in' takes a list of 1-{MAX_SET} values")
        if not all(_scalar(v) for v in value):
            raise ConditionError(f"{text!r}: 'in' takes strings, numbers, booleans or null")
        return Condition(arg, "in", tuple(value))
    if op in NUMERIC_OPS:
        if not _number(value):
            raise ConditionError(f"{text!r}: {op} compares numbers only")
        return Condition(arg, op, value)
    if not _scalar(value):
        raise ConditionError(f"{text!r}: {op} compares a string, number, boolean or null")
    return Condition(arg, op, value)


def parse_conditions(texts: Iterable[Any], *, where: str = "conditions") -> tuple[Condition, ...]:
    if isinstance(texts, str | bytes) or not isinstance(texts, Iterable):
        raise ConditionError(f"{where} must be a list of conditions")
    items = list(texts)
    if len(items) > MAX_CONDITIONS:
        raise ConditionError(f"{where}: at most {MAX_CONDITIONS} conditions")
    return tuple(parse_condition(t) for t in items)
