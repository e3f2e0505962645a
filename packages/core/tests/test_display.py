"""The display rule every channel uses (``functionlayer._display``): which characters are
marked, which arguments are shown in which order, and when a channel may offer Approve."""

from __future__ import annotations

import json
from typing import Any

import pytest
from functionlayer.display import (
    TRUNCATED,
    WARNING,
    display_arguments,
    format_arguments,
    make_visible,
    ordered_names,
    show_arguments,
    visible_json,
)

# Characters that render as nothing (or as an empty cell) and so must be marked: the ones the
# red-team report named, and the first and last of every Default_Ignorable_Code_Point range.
INVISIBLE: list[int] = [
    *range(0xFE00, 0xFE10),  # variation selectors 1-16
    0xE0100,
    0xE0101,
    0xE01EF,  # variation selectors 17-256
    0x034F,  # combining grapheme joiner
    *range(0x180B, 0x1810),  # Mongolian free variation selectors, vowel separator
    0x17B4,
    0x17B5,  # Khmer inherent vowels
    0x115F,
    0x1160,
    0x3164,
    0xFFA0,  # Hangul fillers
    0x2800,  # braille pattern blank
    0x00AD,
    0x061C,
    0x200B,
    0x200F,
    0x202A,
    0x202E,
    0x2060,
    0x2065,
    0x206F,
    0xFEFF,
    0xFFF0,
    0xFFF8,
    0x1BCA0,
    0x1BCA3,
    0x1D173,
    0x1D17A,
    0xE0000,
    0xE0001,
    0xE0020,
    0xE007F,
    0xE0FFF,
    # the categories marked before: controls, line separator, unusual space, private use
    0x0007,
    0x2028,
    0x00A0,
    0x3000,
    0xE000,
]

# Visible characters from the same blocks and scripts: never marked.
VISIBLE = ["é", "ß", "한", "ក", "ᠠ", "ㄱ", "⠁", "😀", "中", "ж", "a-b", "1.5", "x\ny", "a\tb"]


@pytest.mark.parametrize("code", INVISIBLE, ids=[f"U+{c:04X}" for c in INVISIBLE])
def test_every_invisible_character_is_marked(code: int) -> None:
    char = chr(code)
    for text in (f"pay{char}pal", f"a {char} b", char, f"{char}x", f"x{char}"):
        shown, marked = make_visible(text)
        assert marked, text
        assert char not in shown and f"⟨U+{code:04X}⟩" in shown, (text, shown)
    rendered = format_arguments({"to": f"bob{char}@example.com", f"k{char}": 1})
    assert rendered.startswith(WARNING) and char not in rendered


@pytest.mark.parametrize("text", VISIBLE)
def test_visible_characters_are_shown_as_they_are(text: str) -> None:
    assert make_visible(text) == (text, False)


def test_a_string_hidden_in_variation_selectors_is_spelled_out() -> None:
    # One visible character followed by variation selectors that encode "rm -rf /".
    payload = "😀" + "".join(chr(0xE0100 + b - 16) for b in b"rm -rf /")
    shown, marked = make_visible(payload)
    assert marked and shown.startswith("😀⟨U+E01")
    assert shown.count("⟨U+") == len(b"rm -rf /")


@pytest.mark.parametrize(
    ("kwargs", "properties", "expected"),
    [
        ({"b": 1, "a": 2}, {"a": {}, "b": {}}, ["a", "b"]),
        ({"extra": 1, "a": 2}, {"a": {}, "b": {}}, ["a", "extra"]),
        ({"z": 1, "y": 2, "a": 3}, {"a": {}}, ["a", "z", "y"]),
        ({"z": 1, "y": 2}, None, ["z", "y"]),
        ({"z": 1}, {}, ["z"]),
    ],
)
def test_every_argument_is_shown_schema_order_first_then_the_agents_order(
    kwargs: dict[str, Any], properties: dict[str, Any] | None, expected: list[str]
) -> None:
    schema = None if properties is None else {"type": "object", "properties": properties}
    assert ordered_names(kwargs, schema) == expected
    assert [a.name for a in display_arguments(kwargs, schema)] == expected
    text = format_arguments(kwargs, schema)
    positions = [text.index(f"{name}: ") for name in expected]
    assert positions == sorted(positions)


@pytest.mark.parametrize(
    ("kwargs", "room", "complete"),
    [
        ({"to": "bob"}, None, True),
        ({"body": "x" * 100_000}, None, True),
        ({"to": "bob"}, 8, True),  # "to: bob" is 7 characters
        ({"to": "b" * 100}, 100, False),
        ({"body": "x" * 5000}, 3000, False),
        ({"body": "\u202e" * 100}, 200, False),  # markers count, not the raw characters
        ({"body": "\u202e" * 10}, 200, True),
    ],
)
def test_show_arguments_is_complete_only_when_everything_fits(
    kwargs: dict[str, Any], room: int | None, complete: bool
) -> None:
    shown = show_arguments(kwargs, None, room=room)
    assert shown.complete is complete
    if complete:
        assert shown.text == format_arguments(kwargs)
    else:
        assert room is not None and len(shown.text) <= room
        assert shown.text.endswith(TRUNCATED)
        assert format_arguments(kwargs).startswith(shown.text[: -len(TRUNCATED) - 1])


def test_show_arguments_measures_what_the_channel_sends() -> None:
    kwargs = {"q": "&" * 50}

    def escaped(text: str) -> int:
        return len(text.replace("&", "&amp;"))

    assert show_arguments(kwargs, room=100).complete
    shown = show_arguments(kwargs, room=100, size=escaped)
    assert not shown.complete and escaped(shown.text) <= 100


@pytest.mark.parametrize("code", INVISIBLE, ids=[f"U+{c:04X}" for c in INVISIBLE])
def test_visible_json_escapes_what_it_would_mark_and_parses_back(code: int) -> None:
    value = {f"k{chr(code)}": [f"pay{chr(code)}pal", "p\u0430ypal", "é 中 😀", None, 1.5]}
    text = visible_json(value)
    assert chr(code) not in text and "\u0430" not in text
    assert "é 中 😀" in text  # visible non-ASCII stays as it is
    assert json.loads(text) == value
