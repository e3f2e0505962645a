"""Hidden characters made visible: what :mod:`functionlayer._display` marks in every channel.

Every character that renders as nothing or changes the reading direction (controls, bidi
overrides and isolates, zero-width characters, variation selectors, fillers, unusual spaces)
is replaced by a visible marker such as ``⟨U+202E⟩``, and letters from another alphabet hidden
inside a Latin word (Cyrillic U+0430 in "paypal") are marked too. Pure functions, no I/O.
"""

from __future__ import annotations

import json
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

__all__ = ["WARNING", "has_hidden_characters", "make_visible", "visible_json"]

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
