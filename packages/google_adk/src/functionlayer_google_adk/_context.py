"""What an ADK invocation says about a tool call, for the approver (``RequestContext``): the
user's message that started the invocation (``ToolContext.user_content``) and the text of the
model's event that made the call (found in the session by its function call id). The agent's
words, never trusted: every channel shows them as such."""

from __future__ import annotations

from typing import Any

from functionlayer import RequestContext

__all__ = ["context_of"]


def context_of(tool_context: Any) -> RequestContext | None:
    call_id = getattr(tool_context, "function_call_id", None)
    user = _text(getattr(tool_context, "user_content", None))
    reason = None
    session = getattr(tool_context, "session", None)
    for event in reversed(list(getattr(session, "events", None) or [])):
        parts = getattr(getattr(event, "content", None), "parts", None) or []
        calls = [getattr(part, "function_call", None) for part in parts]
        if call_id is not None and any(getattr(c, "id", None) == call_id for c in calls if c):
            reason = _text(getattr(event, "content", None))
            break
    return RequestContext.bounded(user_request=user, reason=reason)


def _text(content: Any) -> str | None:
    """The text parts of a ``types.Content`` (not the model's thoughts)."""
    parts = getattr(content, "parts", None) or []
    texts = [
        part.text
        for part in parts
        if isinstance(getattr(part, "text", None), str) and not getattr(part, "thought", False)
    ]
    return "\n".join(texts) or None
