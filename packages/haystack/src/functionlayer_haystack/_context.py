"""What a Haystack Agent's conversation says about a tool call, for the approver
(``RequestContext``): the last user message before the step and the text of the assistant
message whose tool calls are running (the Agent's ``State`` ``messages``, which each tool built
here receives). The agent's words, never trusted: every channel shows them as such.

The ``FunctionLayerConfirmation`` strategy gets no conversation from Haystack (its ``run`` has
the tool's name, description, parameters, call id and the application's ``hook_context``), so
its requests carry no context."""

from __future__ import annotations

from collections.abc import Sequence

from functionlayer import RequestContext
from haystack.dataclasses import ChatMessage, ChatRole

__all__ = ["context_of"]


def context_of(messages: Sequence[ChatMessage] | None) -> RequestContext | None:
    """The context of the step whose calls the last of ``messages`` holds; ``None`` when the
    tool runs outside an Agent (no messages) or they say nothing."""
    if not messages:
        return None
    turn = messages[-1] if messages[-1].tool_calls else None
    before = messages[:-1] if turn is not None else messages
    user = next((m.text for m in reversed(before) if m.role == ChatRole.USER), None)
    return RequestContext.bounded(user_request=user, reason=turn.text if turn is not None else None)
