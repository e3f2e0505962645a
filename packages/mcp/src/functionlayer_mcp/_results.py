"""What the gateway answers a ``tools/call`` with, and what it records about an upstream's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mcp import types

__all__ = ["edited_result", "error", "result_text", "shown_name", "text"]


def text(content: str) -> types.TextContent:
    return types.TextContent(type="text", text=content)


def error(content: str) -> types.CallToolResult:
    """A refusal or a "not run": a tool error the model reads."""
    return types.CallToolResult(content=[text(content)], isError=True)


def result_text(result: Any) -> str:
    """What is recorded about an upstream result: its text blocks (else its content types)."""
    texts = [c.text for c in result.content if isinstance(c, types.TextContent)]
    if texts:
        return "\n".join(texts)
    return ", ".join(sorted({c.type for c in result.content})) or "(no content)"


def edited_result(
    result: types.CallToolResult, message: Callable[[str], str]
) -> types.CallToolResult:
    """The upstream's result of an edited call, its text replaced by ``message(text)`` (which
    tells the model the arguments it ran with); other content kept."""
    texts = [c.text for c in result.content if isinstance(c, types.TextContent)]
    others = [c for c in result.content if not isinstance(c, types.TextContent)]
    return result.model_copy(update={"content": [text(message("\n".join(texts))), *others]})


def shown_name(name: str) -> str:
    """A tool name the agent sent, cut for a message (names the upstream lists are bounded)."""
    return name if len(name) <= 128 else name[:128] + "…"
