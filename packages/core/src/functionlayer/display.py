"""The display rule: how a request's arguments and the agent's context are shown to a person,
the same way in every channel (terminal, inbox, Slack, Discord, Teams, email).

Arguments in signature order with their real line breaks, hidden and direction-changing
characters marked, numbers readable, the agent's words labelled as the agent's, and one rule
for channels with a size limit (:func:`show_arguments`: every argument in full, or no Approve).
Pure functions with no I/O; a channel builds its message from these and nothing else.
"""

from __future__ import annotations

from functionlayer._display import (
    ABSENT,
    CONTEXT_LABEL,
    TRUNCATED,
    ComparedArgument,
    ContextLine,
    DisplayArgument,
    ShownArguments,
    compare_arguments,
    context_lines,
    display_arguments,
    format_arguments,
    format_comparison,
    format_context,
    format_number,
    ordered_names,
    show_arguments,
)
from functionlayer._visible import WARNING, has_hidden_characters, make_visible, visible_json

__all__ = [
    "ABSENT",
    "CONTEXT_LABEL",
    "TRUNCATED",
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
