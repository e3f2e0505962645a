"""How a request's arguments are shown to a human, the same way in every channel.

A person approves what they read, so what they read must be what runs:

- arguments in the function's signature order (the order of the JSON schema's ``properties``
  when the request carries one, else the order the agent sent), never sorted;
- strings with their real line breaks, not ``\\n`` escapes;
- every argument, including those the schema does not list (``**kwargs``);
- every character that renders as nothing or changes the reading direction (controls, bidi
  overrides and isolates, zero-width characters, variation selectors, fillers, unusual
  spaces) replaced by a visible marker such as ``⟨U+202E⟩``, and letters from another
  alphabet hidden inside a Latin word (Cyrillic U+0430 in "paypal") marked too, with a
  warning line;
- numbers with thousands separators (``25,000``), and an amount the schema describes as
  cents (or another minor unit) with its value in whole units beside it
  (``1,500,000 cents (= 15,000.00)``): :func:`format_number`;
- the agent's context (the user's request, the model's reason) only as quoted text labelled
  as coming from the agent, hidden characters marked: :func:`format_context`;
- after an approval with edits, the proposed and the run arguments side by side with the
  differences marked: :func:`compare_arguments`;
- and one rule for every channel with a size limit (:func:`show_arguments`): either every
  argument is shown in full, or the channel offers no Approve (the person opens the inbox).

Pure functions with no I/O: the terminal (core) and every server channel (inbox, Slack,
Discord, email) call them, so a fix here fixes every channel. Marking hidden characters is
``_visible``'s. The public names are :mod:`functionlayer.display`'s.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from functionlayer._visible import WARNING, make_visible


def ordered_names(kwargs: Mapping[str, Any], schema: Mapping[str, Any] | None) -> list[str]:
    """Argument names in signature order: the schema's properties first (in their order),
    then any other argument in the order the agent sent it."""
    properties = (schema or {}).get("properties")
    names = [n for n in properties if n in kwargs] if isinstance(properties, Mapping) else []
    return names + [n for n in kwargs if n not in names]


@dataclass(frozen=True)
class DisplayArgument:
    """One argument ready to show: ``text`` is multi-line when the value is."""

    name: str
    text: str
    multiline: bool
    marked: bool


# A schema property whose description, title or format says the number counts a minor unit.
_MINOR_UNIT = re.compile(r"\b(cents?|minor[ _-]units?|pence|paise|centavos?)\b", re.IGNORECASE)


def _property(schema: Mapping[str, Any] | None, name: str) -> Mapping[str, Any]:
    properties = (schema or {}).get("properties")
    prop = properties.get(name) if isinstance(properties, Mapping) else None
    return prop if isinstance(prop, Mapping) else {}


def _minor_units(prop: Mapping[str, Any]) -> bool:
    hints = [prop.get(key) for key in ("format", "description", "title")]
    return any(isinstance(h, str) and _MINOR_UNIT.search(h) for h in hints)


def format_number(value: int | float, prop: Mapping[str, Any] | None = None) -> str:
    """A number as a person reads it: ``25,000``, ``1,234.5``; an integer the property's
    schema (``format``, ``description`` or ``title``) says counts cents or another minor unit
    also in whole units: ``1,500,000 cents (= 15,000.00)``. The exact value stays readable
    (only separators are added)."""
    if isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int):
        text = f"{value:,}"
        if prop is not None and _minor_units(prop):
            whole, cents = divmod(abs(value), 100)
            sign = "-" if value < 0 else ""
            text += f" cents (= {sign}{whole:,}.{cents:02d})"
        return text
    if value != value or value in (float("inf"), float("-inf")):
        return repr(value)
    plain = repr(value)
    if "e" in plain or "E" in plain:
        return plain
    integral, _, fraction = plain.partition(".")
    head = f"{int(integral):,}" if integral != "-0" else integral
    return head + ("." + fraction if fraction else "")


def _render(value: Any, prop: Mapping[str, Any] | None = None) -> str:
    if isinstance(value, str):
        return value  # real line breaks, no quotes or escapes
    if isinstance(value, int | float) and not isinstance(value, bool):
        return format_number(value, prop)
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def display_arguments(
    kwargs: Mapping[str, Any], schema: Mapping[str, Any] | None = None
) -> list[DisplayArgument]:
    """Every argument, in signature order, with hidden characters made visible and numbers
    formatted (:func:`format_number`)."""
    shown: list[DisplayArgument] = []
    for name in ordered_names(kwargs, schema):
        text, marked = make_visible(_render(kwargs[name], _property(schema, name)))
        label, marked_name = make_visible(name)
        shown.append(DisplayArgument(label, text, "\n" in text, marked or marked_name))
    return shown


def format_arguments(
    kwargs: Mapping[str, Any], schema: Mapping[str, Any] | None = None, *, indent: str = ""
) -> str:
    """Plain text for terminals, email and chat: ``name: value`` lines, multi-line values
    indented below their name, and the warning line first when anything was marked."""
    lines: list[str] = []
    arguments = display_arguments(kwargs, schema)
    if any(a.marked for a in arguments):
        lines.append(indent + WARNING)
    if not arguments:
        lines.append(indent + "(no arguments)")
    for argument in arguments:
        if argument.multiline:
            lines.append(f"{indent}{argument.name}:")
            lines.extend(f"{indent}    {line}" for line in argument.text.split("\n"))
        else:
            lines.append(f"{indent}{argument.name}: {argument.text}")
    return "\n".join(lines)


# -- after edits: what was proposed and what ran -----------------------------------------------


@dataclass(frozen=True)
class ComparedArgument:
    """One argument proposed by the agent and as approved (edited) by the person."""

    name: str
    proposed: str
    """As shown (numbers formatted, hidden characters marked); ``(not given)`` when absent."""
    approved: str
    changed: bool


ABSENT = "(not given)"


def compare_arguments(
    proposed: Mapping[str, Any],
    approved: Mapping[str, Any],
    schema: Mapping[str, Any] | None = None,
) -> list[ComparedArgument]:
    """Every argument of either side, in signature order, with the proposed and the approved
    value as shown and whether they differ (compared by value, not by text)."""
    names = ordered_names({**dict(proposed), **dict(approved)}, schema)
    rows: list[ComparedArgument] = []
    for name in names:
        prop = _property(schema, name)
        before = make_visible(_render(proposed[name], prop))[0] if name in proposed else ABSENT
        after = make_visible(_render(approved[name], prop))[0] if name in approved else ABSENT
        same = name in proposed and name in approved and proposed[name] == approved[name]
        same = same and type(proposed[name]) is type(approved[name])
        rows.append(ComparedArgument(make_visible(name)[0], before, after, not same))
    return rows


def format_comparison(
    proposed: Mapping[str, Any],
    approved: Mapping[str, Any],
    schema: Mapping[str, Any] | None = None,
    *,
    indent: str = "",
) -> str:
    """Plain text for terminals, email and chat: each changed argument as ``name: proposed →
    approved`` marked ``(changed)``, unchanged ones once."""
    lines: list[str] = []
    for row in compare_arguments(proposed, approved, schema):
        if row.changed:
            lines.append(f"{indent}{row.name} (changed): {row.proposed}  →  {row.approved}")
        else:
            lines.append(f"{indent}{row.name}: {row.approved}")
    return "\n".join(lines) if lines else indent + "(no arguments)"


# -- the agent's context: quoted, labelled, never trusted ---------------------------------------

CONTEXT_LABEL = "From the agent — may be wrong or injected"
"""Heads every display of a request's context: the agent wrote it, not a person."""

_CONTEXT_FIELDS = (
    ("user_request", "User's request (as the agent reports it)"),
    ("reason", "Agent's stated reason"),
    ("turn", "Conversation (as the agent reports it)"),
)


@dataclass(frozen=True)
class ContextLine:
    """One field of the agent's context as shown: a label and the quoted text."""

    label: str
    text: str
    marked: bool


def context_lines(context: Any, *, limit: int | None = None) -> list[ContextLine]:
    """The fields of a :class:`~functionlayer.RequestContext` (or its dict form) that are set,
    hidden characters marked, each cut to ``limit`` characters when given."""
    if context is None:
        return []
    data = context if isinstance(context, Mapping) else getattr(context, "__dict__", {})
    lines: list[ContextLine] = []
    for key, label in _CONTEXT_FIELDS:
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            continue
        text, marked = make_visible(value.strip())
        if limit is not None and len(text) > limit:
            text = text[: max(limit - 1, 0)] + "…"
        lines.append(ContextLine(label, text, marked))
    return lines


def format_context(context: Any, *, indent: str = "", limit: int | None = None) -> str:
    """Plain text: the label, then each field's label and its text quoted line by line
    (``> ``), hidden characters marked; empty when there is no context."""
    lines = context_lines(context, limit=limit)
    if not lines:
        return ""
    out = [f"{indent}{CONTEXT_LABEL}:"]
    if any(line.marked for line in lines):
        out.append(indent + WARNING)
    for line in lines:
        out.append(f"{indent}{line.label}:")
        out.extend(f"{indent}> {part}" for part in line.text.split("\n"))
    return "\n".join(out)


TRUNCATED = "… (truncated: open the request in the inbox to read every argument)"
"""Ends the arguments a channel could not show in full."""


@dataclass(frozen=True)
class ShownArguments:
    """What a channel shows of a call's arguments, and whether that is every argument in full.

    A channel offers Approve only when ``complete`` is true: nobody approves what they could
    not read. When it is false, ``text`` is the beginning of the arguments ending with
    :data:`TRUNCATED`, and the channel offers reject and the inbox only."""

    text: str
    complete: bool


def show_arguments(
    kwargs: Mapping[str, Any],
    schema: Mapping[str, Any] | None = None,
    *,
    room: int | None,
    size: Callable[[str], int] = len,
    indent: str = "",
) -> ShownArguments:
    """The one display rule for every channel: :func:`format_arguments` (every argument, in
    signature order, hidden characters marked) when ``size`` of it is at most ``room`` (no
    limit when ``room`` is None), else its beginning cut to fit ``room`` and marked
    incomplete. ``size`` measures the text as the channel will send it (after its escaping)."""
    text = format_arguments(kwargs, schema, indent=indent)
    if room is None or size(text) <= room:
        return ShownArguments(text, complete=True)
    keep = max(room - len(TRUNCATED) - 1, 0)
    cut = text[:keep] + "\n" + TRUNCATED
    while keep > 0 and size(cut) > room:
        keep = max(keep - max(size(cut) - room, 1), 0)
        cut = text[:keep] + "\n" + TRUNCATED
    return ShownArguments(cut, complete=False)
