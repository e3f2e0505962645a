"""What an Agent Framework run says about the calls it paused for approval, for the approver
(``RequestContext``): the text of the assistant message that holds each approval request (the
model's stated reason) and the last user message of the session's history (the user's request).
The agent's words, never trusted: every channel shows them as such.

Only the approvals bridge can send it. A guarded tool gets from the framework the arguments, the
call id and, at most, a ``FunctionInvocationContext`` whose session history is still empty while
the run goes on (the framework stores the turn when the run ends): no conversation to read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent_framework import AgentSession
from functionlayer import RequestContext

__all__ = ["request_contexts"]

_APPROVAL_REQUEST = "function_approval_request"


async def request_contexts(
    agent: Any, response: Any, session: AgentSession | None
) -> Mapping[str, RequestContext]:
    """The context of each approval request of ``response`` (an ``agent.run`` result), by the
    model's function-call id; ``session`` (the run's) gives the user's request."""
    user = await _last_user_text(agent, session)
    contexts: dict[str, RequestContext] = {}
    for message in getattr(response, "messages", None) or []:
        for content in message.contents:
            call = content.function_call if content.type == _APPROVAL_REQUEST else None
            context = RequestContext.bounded(user_request=user, reason=message.text)
            if call is not None and call.call_id and context is not None:
                contexts[str(call.call_id)] = context
    return contexts


async def _last_user_text(agent: Any, session: AgentSession | None) -> str | None:
    """The last user message with text in the session's history (its history providers)."""
    if session is None:
        return None
    for provider in getattr(agent, "context_providers", None) or []:
        get_messages = getattr(provider, "get_messages", None)
        if get_messages is None:
            continue
        source_id = getattr(provider, "source_id", None)
        state = session.state.get(source_id) if isinstance(source_id, str) else None
        try:
            messages = await get_messages(session.session_id, state=state)
        except Exception:  # a history this cannot read: the approver just gets no user request
            continue
        for message in reversed(list(messages)):
            role = getattr(message.role, "value", message.role)
            if role == "user" and message.text:
                return str(message.text)
    return None
