"""Pydantic AI's ``RequestInput`` answered by FunctionLayer persons.

``RequestInput(ask, timeout=...)`` (``pydantic_ai.capabilities``, in newer pydantic-ai-slim
releases) hands a run's deferred tool calls to ``ask`` and continues the same run with the
answer. :func:`request_input` builds one whose ``ask`` answers in place through FunctionLayer:

- calls awaiting **approval** (``requires_approval=True``, ``ApprovalRequired``) become approval
  requests under the tool call id, decided, claimed once and mapped as :func:`decide` does;
- **questions** (``CallDeferred(kind='question')``, e.g. the harness's ``AskUser``) become human
  contacts under the tool call id; the person's answer is the tool result;
- **external** calls are left alone (they still end the run as ``DeferredToolRequests``).

``answered_by`` names, per call, the person the backend reports as having decided or answered
(``responded_by``: the server's authenticated approver). Nothing the agent or the model sends
goes into it; expiries, failures and "already ran" name nobody.
"""

from __future__ import annotations

import asyncio
import importlib
import json
from typing import Any

from functionlayer import ConfigurationError, FunctionLayer, HumanContactSpec, adapters
from functionlayer.adapters import NativeDecision, PendingToolCall

from functionlayer_pydantic_ai._deferred import _pending, _results

__all__ = ["request_input"]


def _request_input_class() -> Any:
    """``pydantic_ai.capabilities.RequestInput``, or a clear error on releases without it."""
    try:
        capabilities = importlib.import_module("pydantic_ai.capabilities")
        tools = importlib.import_module("pydantic_ai.tools")
        exceptions = importlib.import_module("pydantic_ai.exceptions")
        found = capabilities.RequestInput
        tools.DeferredToolResults(answered_by={})
        exceptions.ToolFailed  # noqa: B018 - presence check
    except (ImportError, AttributeError, TypeError) as exc:
        from importlib.metadata import version

        raise ConfigurationError(
            "request_input() needs a pydantic-ai-slim release with "
            "pydantic_ai.capabilities.RequestInput and DeferredToolResults.answered_by (2.68 has "
            f"them; installed: {version('pydantic-ai-slim')}). Upgrade pydantic-ai-slim, or use "
            "approval_handler(fl) / decide(fl, ...) which work on every supported release."
        ) from exc
    return found


def _question(part: Any) -> str:
    """The text to show the person: the question's one string argument, else every argument."""
    arguments = part.args_as_dict(raise_if_invalid=False)
    strings = [value for value in arguments.values() if isinstance(value, str)]
    if len(arguments) == 1 and len(strings) == 1:
        return strings[0]
    return f"{part.tool_name}: {json.dumps(arguments, ensure_ascii=False, sort_keys=True)}"


async def _answer(
    fl: FunctionLayer, part: Any, timeout: float | None
) -> tuple[str | None, str | None]:
    """(answer, who) for a question, or (None, why nothing) when nobody answered."""
    wait = timeout if timeout is not None else fl.timeout
    spec = HumanContactSpec(msg=_question(part), channel=fl.contact_channel, timeout_seconds=wait)
    try:
        contact = await fl.afetch_human_response(spec, part.tool_call_id)
    except Exception as exc:  # fail closed: the model hears that nobody answered
        return None, adapters.contact_failed_message(f"{type(exc).__name__}: {exc}")
    status = contact.status
    if status is None or status.expired or status.response is None:
        reason = (status.response if status is not None else None) or "the request expired"
        return None, adapters.contact_failed_message(reason)
    return status.response, status.responded_by


def request_input(fl: FunctionLayer, *, timeout: float | None = None) -> Any:
    """A ``RequestInput`` capability answered by FunctionLayer persons:
    ``Agent(..., capabilities=[request_input(fl)])``.

    The run waits in place for each decision and answer (``timeout`` seconds bounds each wait,
    default the client's; expiry rejects, fail closed) and goes on with the results and
    ``answered_by``. Raises :class:`~functionlayer.ConfigurationError` on a pydantic-ai-slim
    without ``RequestInput``.
    """
    request_input_class = _request_input_class()
    tool_failed = importlib.import_module("pydantic_ai.exceptions").ToolFailed

    async def ask(ctx: Any, requests: Any, token: str) -> Any:
        approvals: list[PendingToolCall] = [_pending(part) for part in requests.approvals]
        questions = [
            part for part in requests.calls if requests.kind(part.tool_call_id) == "question"
        ]
        decided, answers = await asyncio.gather(
            adapters.adecide(fl, approvals, timeout=timeout),
            asyncio.gather(*(_answer(fl, part, timeout) for part in questions)),
        )
        results = _results(decided)
        answered_by = _answered_by(decided)
        calls: dict[str, Any] = {}
        for part, (answer, detail) in zip(questions, answers, strict=True):
            if answer is None:
                calls[part.tool_call_id] = tool_failed(detail or "Nobody answered.")
            else:
                calls[part.tool_call_id] = answer
                if detail:
                    answered_by[part.tool_call_id] = detail
        # Always an answer in place (never None: that would wait for a token nobody resolves);
        # external calls stay unanswered and end the run as DeferredToolRequests.
        return requests.build_results(
            approvals=results.approvals, calls=calls, answered_by=answered_by
        )

    return request_input_class(ask)


def _answered_by(decisions: dict[str, NativeDecision]) -> dict[str, str]:
    return {
        call_id: decision.responded_by
        for call_id, decision in decisions.items()
        if decision.responded_by
    }
