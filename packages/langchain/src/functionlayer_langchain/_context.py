"""What a LangChain conversation says about a tool call, for the approver (``RequestContext``):
the last human message before the model's turn (the user's request) and the text of the AI
message that made the call (the model's stated reason). The agent's words, never trusted:
every channel shows them as such."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from functionlayer import RequestContext

__all__ = ["context_for", "messages_of"]


def messages_of(state: Any) -> list[Any]:
    """The ``messages`` of a LangGraph state (a mapping or an object); empty when it has none."""
    messages = (
        state.get("messages") if isinstance(state, Mapping) else getattr(state, "messages", None)
    )
    return (
        list(messages) if isinstance(messages, Sequence) and not isinstance(messages, str) else []
    )


def context_for(messages: Sequence[Any], tool_call_id: str | None) -> RequestContext | None:
    """The context of the tool call ``tool_call_id`` (the last AI message's, when the id is
    unknown or not found) in ``messages``; ``None`` when they say nothing."""
    turn = None
    for index in range(len(messages) - 1, -1, -1):
        if getattr(messages[index], "type", None) != "ai":
            continue
        ids = [_id(call) for call in getattr(messages[index], "tool_calls", None) or []]
        if tool_call_id is None or tool_call_id in ids:
            turn = index
            break
    if turn is None and tool_call_id is not None:
        return context_for(messages, None)
    reason = _text(getattr(messages[turn], "content", None)) if turn is not None else None
    before = messages[:turn] if turn is not None else messages
    user = next(
        (_text(getattr(m, "content", None)) for m in reversed(before) if _is_human(m)), None
    )
    return RequestContext.bounded(user_request=user, reason=reason)


def _is_human(message: Any) -> bool:
    return getattr(message, "type", None) == "human"


def _id(call: Any) -> Any:
    return call.get("id") if isinstance(call, dict) else getattr(call, "id", None)


def _text(content: Any) -> str | None:
    """A message's text: a string, or the text blocks of a list of content blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            part if isinstance(part, str) else part.get("text")
            for part in content
            if isinstance(part, str) or (isinstance(part, dict) and part.get("type") == "text")
        ]
        return "\n".join(p for p in parts if isinstance(p, str)) or None
    return None
