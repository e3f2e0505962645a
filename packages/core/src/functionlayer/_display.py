"""How a request's arguments are shown to a human, the same way in every channel.

A person approves what they read, so what they read must be what runs:

- arguments in the function's signature order (the order of the JSON schema's ``properties``
  when the request carries one, else the order the agent sent), never sorted;
- strings with their real line breaks, not ``\\n`` escapes;
- every character that is invisible or changes the reading direction (controls, bidi
  overrides and isolates, zero-width characters, unusual spaces) replaced by a visible
  marker such as ``⟨U+202E⟩``, and letters from another alphabet hidden inside a Latin word
  (Cyrillic U+0430 in "paypal") marked too, with a warning line.

Pure functions with no I/O: the terminal (core) and every server channel (inbox, Slack,
email) call them, so a fix here fixes every channel.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "WARNING",
    "DisplayArgument",
    "display_arguments",
    "format_arguments",
    "has_hidden_characters",
    "make_visible",
    "ordered_names",
]

WARNING = "⚠ This request contains invisible or direction-changing characters"
"""Shown above the arguments whenever :func:`make_visible` had to mark something."""

_SHOWN_AS_IS = {"\n", "\t", " "}


def _marker(char: str) -> str:
    return f"⟨U+{ord(char):04X}⟩"


def _hidden(char: str) -> bool:
    """Invisible, direction-changing or space-like characters (other than newline/tab/space)."""
    if char in _SHOWN_AS_IS:
        return False
    category = unicodedata.category(char)
    # Cc controls, Cf format (bidi marks/overrides/isolates, zero-width joiners, soft hyphen,
    # BOM...), Zl/Zp line and paragraph separators, Zs spaces other than the plain one,
    # Co/Cn private-use and unassigned code points (nothing the reader can check).
    return category in ("Cc", "Cf", "Zl", "Zp", "Zs", "Co", "Cn", "Cs")


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


def _mark_lookalikes(word: str) -> str:
    """In a word mixing Latin with Cyrillic or Greek letters, mark the non-Latin ones."""
    scripts = {s for s in map(_script, word) if s is not None}
    if "latin" not in scripts or len(scripts) < 2:
        return word
    return "".join(f"{_marker(c)}" if _script(c) in ("cyrillic", "greek") else c for c in word)


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


def make_visible(text: str) -> tuple[str, bool]:
    """``text`` with every hidden or look-alike character replaced by a ``⟨U+XXXX⟩`` marker,
    and whether anything was marked."""
    out: list[str] = []
    for piece in _split_words(text):
        if len(piece) == 1 and _hidden(piece):
            out.append(_marker(piece))
        elif piece[:1].isalnum():
            out.append(_mark_lookalikes(piece))
        else:
            out.append(piece)
    shown = "".join(out)
    return shown, shown != text


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


def _render(value: Any) -> str:
    if isinstance(value, str):
        return value  # real line breaks, no quotes or escapes
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def display_arguments(
    kwargs: Mapping[str, Any], schema: Mapping[str, Any] | None = None
) -> list[DisplayArgument]:
    """Every argument, in signature order, with hidden characters made visible."""
    shown: list[DisplayArgument] = []
    for name in ordered_names(kwargs, schema):
        text, marked = make_visible(_render(kwargs[name]))
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
