"""What a ControlFlow run says about a tool call, for the approver (``RequestContext``): the
objectives (and instructions) of the tasks the orchestrator has the agent work on, as the
user's request, and the text of the model's message that made the call, as its reason. The
agent's words, never trusted: every channel shows them as such.

ControlFlow hands a tool only its arguments. The model's message is the ``response`` local of
``Agent._run_model`` / ``Agent._run_model_async`` while its tool calls run (read with the core's
frame reader, as the call id is); the tasks are the running orchestrator's (ControlFlow's
``ctx`` holds it during a run)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controlflow.agents.agent import Agent
from controlflow.utilities.context import ctx
from functionlayer import RequestContext
from functionlayer.adapters import CallIdFinder

__all__ = ["context_of_call"]


def _text(local: Mapping[str, Any]) -> object:
    """The text of the model's message in a ``_run_model`` frame (a string or text blocks)."""
    content = getattr(local.get("response"), "content", None)
    if isinstance(content, list):
        texts = [b.get("text") if isinstance(b, dict) else b for b in content]
        return "\n".join(t for t in texts if isinstance(t, str))
    return content


def _code(method: Any) -> Any:
    """The code of an ``Agent`` method ControlFlow wraps in a Prefect task (``.fn``)."""
    return getattr(method, "fn", method).__code__


# The frame reader is the core's (it returns a frame's non-empty string; here the model's text).
_REASONS = CallIdFinder(
    frozenset({_code(Agent._run_model), _code(Agent._run_model_async)}),
    _text,
    warning=UserWarning,
    message="",  # never warned about: a call without a model message sends no reason
    distribution="controlflow",
)


def _objectives() -> str | None:
    orchestrator = ctx.get("orchestrator")
    if orchestrator is None:
        return None
    tasks = orchestrator.get_tasks("assigned")
    parts = [part for task in tasks for part in (task.objective, task.instructions) if part]
    return "\n".join(parts) or None


def context_of_call(depth: int = 1) -> RequestContext | None:
    """The context of the call ControlFlow runs now; ``None`` outside a ControlFlow run.
    ``depth`` is the frame to start from (1: the caller)."""
    return RequestContext.bounded(user_request=_objectives(), reason=_REASONS.find(depth + 1))
