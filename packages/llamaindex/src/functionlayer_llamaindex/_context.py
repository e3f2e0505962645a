"""What a LlamaIndex agent's run says about a tool call, for the approver (``RequestContext``):
the last user message in the agent's memory (the workflow ``Context`` store's ``memory``) and
the text of the assistant message whose tool calls are running (the last assistant message of
the store's ``scratchpad``, where ``FunctionAgent`` keeps the current turn), or for a
``ReActAgent`` the thought of its last action (the store's ``current_reasoning``). Read from the
``Context`` of the running ``call_tool`` step (``Context.get_step_context()``). The agent's
words, never trusted: every channel shows them as such."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from functionlayer import RequestContext
from llama_index.core.agent.react.types import ActionReasoningStep
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.workflow import Context

__all__ = ["context_of_step"]

#: Where ``FunctionAgent`` (the default ``scratchpad_key``) keeps the current turn's messages.
SCRATCHPAD_KEY = "scratchpad"
#: Where ``ReActAgent`` (the default ``reasoning_key``) keeps the current turn's reasoning steps.
REASONING_KEY = "current_reasoning"


async def context_of_step() -> RequestContext | None:
    """The context of the tool call the running workflow step makes; ``None`` outside a
    workflow step (a direct ``tool.acall``) or when the run says nothing."""
    step_context = getattr(Context, "get_step_context", None)  # llama-index-workflows >= 2.x
    if step_context is None:
        return None
    try:
        ctx: Any = step_context()
    except Exception:  # not in a workflow step (a direct call): no conversation to read
        return None
    memory = await ctx.store.get("memory", default=None)
    history: Sequence[Any] = await memory.aget() if memory is not None else ()
    scratchpad: Sequence[Any] = await ctx.store.get(SCRATCHPAD_KEY, default=None) or ()
    reasoning: Sequence[Any] = await ctx.store.get(REASONING_KEY, default=None) or ()
    return RequestContext.bounded(
        user_request=_last(history, MessageRole.USER),
        reason=_last(scratchpad, MessageRole.ASSISTANT) or _thought(reasoning),
    )


def _thought(steps: Sequence[Any]) -> str | None:
    """The thought of the last action step (``ActionReasoningStep``) of a ReAct turn."""
    for step in reversed(steps):
        if isinstance(step, ActionReasoningStep):
            return step.thought
    return None


def _last(messages: Sequence[Any], role: MessageRole) -> str | None:
    for message in reversed(messages):
        if isinstance(message, ChatMessage) and message.role == role:
            text = message.content
            return text if isinstance(text, str) else None
    return None
