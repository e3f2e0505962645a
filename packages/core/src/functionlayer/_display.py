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
Discord, email) call them, so a fix here fixes every channel.
"""

from __future__ import annotations

import json
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = [
    "CONTEXT_LABEL",
    "WARNING",
    "ComparedArgument",
    "ContextLine",
    "DisplayArgument",
    "ShownArguments",
    "compare_arguments",
    "context_lines",
    "display_arguments",
    "format_arguments",
    "format_comparison",
    "format_context",
    "format_number",
    "has_hidden_characters",
    "make_visible",
    "ordered_names",
    "show_arguments",
    "visible_json",
]

WARNING = "⚠ This request contains invisible or direction-changing characters"
"""Shown above the arguments whenever :func:`make_visible` had to mark something."""

_SHOWN_AS_IS = {"\n", "\t", " "}


def _marker(char: str) -> str:
    return f"⟨U+{ord(char):04X}⟩"


# Unicode's Default_Ignorable_Code_Point property: code points a renderer shows as nothing when
# it does not support them (Unicode Standard, section 5.21; derived in the UCD's
# DerivedCoreProperties.txt as Other_Default_Ignorable_Code_Point + Cf + Variation_Selector,
# minus White_Space, the interlinear annotation characters U+FFF9..FFFB, the Egyptian
# hieroglyph format controls and the prepended concatenation marks). Cf is marked by category
# below anyway; these are the ranges of the property as of Unicode 15.1, inclusive. Among
# them: variation selectors (256 of them can encode any byte string inside one visible
# character), the combining grapheme joiner, Mongolian free variation selectors, Khmer
# inherent vowels, Hangul fillers, and the tag characters.
_DEFAULT_IGNORABLE: tuple[tuple[int, int], ...] = (
    (0x00AD, 0x00AD),  # soft hyphen
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x061C, 0x061C),  # Arabic letter mark
    (0x115F, 0x1160),  # Hangul choseong and jungseong fillers
    (0x17B4, 0x17B5),  # Khmer inherent vowels
    (0x180B, 0x180F),  # Mongolian free variation selectors and vowel separator
    (0x200B, 0x200F),  # zero width space, joiners, left-to-right and right-to-left marks
    (0x202A, 0x202E),  # bidi embeddings and overrides
    (0x2060, 0x206F),  # word joiner, invisible operators, bidi isolates, deprecated formats
    (0x3164, 0x3164),  # Hangul filler
    (0xFE00, 0xFE0F),  # variation selectors 1-16
    (0xFEFF, 0xFEFF),  # zero width no-break space (byte order mark)
    (0xFFA0, 0xFFA0),  # halfwidth Hangul filler
    (0xFFF0, 0xFFF8),  # reserved
    (0x1BCA0, 0x1BCA3),  # shorthand format controls
    (0x1D173, 0x1D17A),  # musical symbol beam and phrase controls
    (0xE0000, 0xE0FFF),  # tags, variation selectors 17-256 and reserved
)
_IGNORABLE_STARTS = [start for start, _ in _DEFAULT_IGNORABLE]

# Not default-ignorable but drawn as an empty cell by common fonts.
_BLANK = {0x2800}  # braille pattern blank


def _default_ignorable(code: int) -> bool:
    index = bisect_right(_IGNORABLE_STARTS, code) - 1
    return index >= 0 and code <= _DEFAULT_IGNORABLE[index][1]


@lru_cache(maxsize=4096)
def _hidden(char: str) -> bool:
    """Characters that render as nothing, change the reading direction or look like a space
    (other than newline, tab and the plain space)."""
    if char in _SHOWN_AS_IS:
        return False
    code = ord(char)
    if _default_ignorable(code) or code in _BLANK:
        return True
    category = unicodedata.category(char)
    # Cc controls, Cf format (bidi marks/overrides/isolates, zero-width joiners, soft hyphen,
    # BOM...), Zl/Zp line and paragraph separators, Zs spaces other than the plain one,
    # Co/Cn private-use and unassigned code points (nothing the reader can check).
    return category in ("Cc", "Cf", "Zl", "Zp", "Zs", "Co", "Cn", "Cs")


@lru_cache(maxsize=4096)
def _script(char: str) -> str | None:
    """``latin``, ``cyrillic``, ``greek`` or ``None`` for other characters."""
    if not char.isalpha():
        return None
    try:
        name = unicodedata.name(char)
    except ValueError:
        return None
    for script in ("LATIN", "CYRILLIC", "GREEK"):
        if name.startswith(script):
            return script.lower()
    return None


def _split_words(text: str) -> list[str]:
    words: list[str] = []
    current = ""
    for char in text:
        if char.isalnum():
            current += char
        else:
            if current:
                words.append(current)
                current = ""
            words.append(char)
    if current:
        words.append(current)
    return words


# In ASCII text the only characters to mark are the controls other than tab and newline.
_ASCII_HIDDEN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _replace_flagged(text: str, replace: Callable[[str], str]) -> str:
    """``text`` with every hidden or look-alike character replaced by ``replace(char)``."""
    if text.isascii():
        return _ASCII_HIDDEN.sub(lambda found: replace(found.group()), text)
    out: list[str] = []
    for piece in _split_words(text):
        scripts = {s for s in map(_script, piece) if s is not None}
        mixed = "latin" in scripts and len(scripts) > 1
        # Some invisible characters count as letters (the Hangul fillers), so every character
        # of a word is checked too, not only the characters between words.
        out.append(
            "".join(
                replace(c) if _hidden(c) or (mixed and _script(c) in ("cyrillic", "greek")) else c
                for c in piece
            )
        )
    return "".join(out)


def make_visible(text: str) -> tuple[str, bool]:
    """``text`` with every hidden or look-alike character replaced by a ``⟨U+XXXX⟩`` marker,
    and whether anything was marked."""
    shown = _replace_flagged(text, _marker)
    return shown, shown != text


def _json_escape(char: str) -> str:
    code = ord(char)
    if code > 0xFFFF:
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def visible_json(value: Any) -> str:
    """JSON (indented, non-ASCII kept) for a person to read and edit: every character
    :func:`make_visible` would mark is written as a ``\\uXXXX`` escape instead, so it is visible
    and the text still parses to exactly ``value``."""
    return _replace_flagged(
        json.dumps(value, indent=2, ensure_ascii=False, default=str), _json_escape
    )


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for k, v in value.items() for s in (*_strings(str(k)), *_strings(v))]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


def has_hidden_characters(kwargs: Mapping[str, Any]) -> bool:
    """True when any argument name or string anywhere in the values needs a marker."""
    return any(make_visible(s)[1] for s in _strings(dict(kwargs)))


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
