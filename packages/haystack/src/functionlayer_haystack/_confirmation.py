"""A Haystack confirmation strategy whose decisions come from FunctionLayer's people and channels.

Haystack's own human-in-the-loop mechanism is a ``ConfirmationHook`` at the Agent's
``before_tool`` point: for each pending tool call it runs the configured ``ConfirmationStrategy``
(``run`` / ``run_async`` with the tool's name, description, parameters and the model's
``tool_call_id``) and applies the returned ``ToolExecutionDecision`` (run as is, run with new
parameters, or not run with a message to the model). :class:`FunctionLayerConfirmation` answers
those calls by asking FunctionLayer (terminal, web inbox, Slack, email...) under the model's
tool call id, and maps the person's decision onto Haystack's:

- approved: ``execute=True`` with the proposed parameters;
- approved with edits: ``execute=True`` with the edited parameters, and a message telling the
  model what changed (Haystack puts it before the call);
- rejected, answered instead, expired, or no decision possible (fail closed):
  ``execute=False`` with FunctionLayer's message for the model as the tool result.

One approval, one execution: before answering ``execute=True`` the strategy claims the execution
of the call (``functionlayer.adapters.claim``). The same tool call id asked about again (a
replayed or resumed run) gets ``execute=False`` with a message saying the call already ran; a
claim that cannot be recorded gets ``execute=False`` too (fail closed). Haystack runs the tool
after the hook, out of this strategy's sight, so the outcome is not reported: the execution is
recorded as started, outcome unknown.

The decision logic (who may decide, quorum, expiry) stays in ``functionlayer``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from functionlayer import (
    ApprovalTimeoutError,
    ContactChannel,
    FunctionCall,
    FunctionCallSpec,
    FunctionLayer,
    ResponseOption,
    adapters,
)
from functionlayer.adapters import (
    current_call_id,
    expired_message,
    not_run_message,
    rejection_message,
)
from haystack.core.serialization import default_from_dict, default_to_dict
from haystack.hooks.human_in_the_loop import ToolExecutionDecision

__all__ = ["FunctionLayerConfirmation", "edited_parameters_message"]


def edited_parameters_message(tool: str, proposed: dict[str, Any], approved: dict[str, Any]) -> str:
    """What the model is told when the person approved the call with other parameters."""

    def as_json(value: Any) -> str:
        return json.dumps(value, sort_keys=True, default=repr, ensure_ascii=False)

    return (
        f"The human approved {tool} with edited arguments {as_json(approved)} instead of the "
        f"proposed {as_json(proposed)}. {tool} runs with the edited arguments."
    )


class FunctionLayerConfirmation:
    """A Haystack ``ConfirmationStrategy`` backed by FunctionLayer.

    >>> from haystack.hooks.human_in_the_loop import ConfirmationHook
    >>> hook = ConfirmationHook(confirmation_strategies={"delete_file": FunctionLayerConfirmation()})
    >>> agent = Agent(chat_generator=..., tools=[delete_file], hooks={"before_tool": [hook]})

    ``fl`` is the client to ask through (default ``FunctionLayer()``: the terminal, or the server
    named by ``FUNCTIONLAYER_API_BASE``). ``timeout`` bounds each wait (default: the client's);
    ``contact_channel`` and ``reject_options`` are passed on with every request.

    Use it for plain tools. A tool guarded by ``fl.require_approval()`` asks by itself and
    must not also sit behind this strategy: the strategy claims the call's one execution, so
    the guard would then refuse to run it ("already ran").
    """

    def __init__(
        self,
        fl: FunctionLayer | None = None,
        *,
        timeout: float | None = None,
        contact_channel: ContactChannel | None = None,
        reject_options: Sequence[ResponseOption] | None = None,
    ) -> None:
        self.timeout = adapters.checked_timeout(timeout)
        self.fl = fl if fl is not None else FunctionLayer()
        self.contact_channel = contact_channel
        self.reject_options = list(reject_options) if reject_options else None

    def __repr__(self) -> str:
        return f"FunctionLayerConfirmation(fl={self.fl!r}, timeout={self.timeout!r})"

    # -- the ConfirmationStrategy protocol -----------------------------------------------------
    def run(
        self,
        *,
        tool_name: str,
        tool_description: str,
        tool_params: dict[str, Any],
        tool_call_id: str | None = None,
        confirmation_strategy_context: dict[str, Any] | None = None,
    ) -> ToolExecutionDecision:
        """Ask a person about this call and wait for the decision (blocks)."""
        spec = self._spec(tool_name, tool_description, tool_params)
        call_id = tool_call_id or current_call_id()
        try:
            call = self.fl.fetch_approval(spec, call_id, timeout=spec.timeout_seconds)
        except Exception as exc:  # any failure to get a decision: fail closed
            return self._failed(tool_name, tool_call_id, exc, call_id)
        decision = self._decision(call, tool_name, tool_params, tool_call_id)
        if not decision.execute:
            return decision
        return _claimed(decision, adapters.claim(self.fl, call.call_id, tool_name))

    async def run_async(
        self,
        *,
        tool_name: str,
        tool_description: str,
        tool_params: dict[str, Any],
        tool_call_id: str | None = None,
        confirmation_strategy_context: dict[str, Any] | None = None,
    ) -> ToolExecutionDecision:
        """:meth:`run` without blocking the event loop."""
        spec = self._spec(tool_name, tool_description, tool_params)
        call_id = tool_call_id or current_call_id()
        try:
            call = await self.fl.afetch_approval(spec, call_id, timeout=spec.timeout_seconds)
        except Exception as exc:  # fail closed, as above
            return self._failed(tool_name, tool_call_id, exc, call_id)
        decision = self._decision(call, tool_name, tool_params, tool_call_id)
        if not decision.execute:
            return decision
        return _claimed(decision, await adapters.aclaim(self.fl, call.call_id, tool_name))

    def to_dict(self) -> dict[str, Any]:
        """Serialize the settings; the client is rebuilt from the environment on load."""
        return default_to_dict(self, timeout=self.timeout)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FunctionLayerConfirmation:
        return default_from_dict(cls, data)

    # -- mapping -------------------------------------------------------------------------------
    def _spec(
        self, tool_name: str, tool_description: str, tool_params: dict[str, Any]
    ) -> FunctionCallSpec:
        from pydantic_core import to_jsonable_python

        return FunctionCallSpec(
            fn=tool_name,
            kwargs=to_jsonable_python(tool_params, fallback=repr),
            channel=self.contact_channel or self.fl.contact_channel,
            reject_options=self.reject_options,
            timeout_seconds=self.timeout if self.timeout is not None else self.fl.timeout,
            description=tool_description or None,
        )

    def _decision(
        self,
        call: FunctionCall,
        tool_name: str,
        tool_params: dict[str, Any],
        tool_call_id: str | None,
    ) -> ToolExecutionDecision:
        decided = call.as_completed()

        def refuse(message: str) -> ToolExecutionDecision:
            return ToolExecutionDecision(
                tool_name=tool_name, execute=False, tool_call_id=tool_call_id, feedback=message
            )

        if decided.approved:
            edits = decided.edited_kwargs
            if edits is None or edits == decided.kwargs:
                return ToolExecutionDecision(
                    tool_name=tool_name,
                    execute=True,
                    tool_call_id=tool_call_id,
                    final_tool_params=tool_params,
                )
            return ToolExecutionDecision(
                tool_name=tool_name,
                execute=True,
                tool_call_id=tool_call_id,
                feedback=edited_parameters_message(tool_name, decided.kwargs, edits),
                final_tool_params=dict(edits),
            )
        if decided.expired:
            return refuse(expired_message(tool_name, call.spec.timeout_seconds))
        if decided.response is not None:
            return refuse(decided.response)
        return refuse(
            rejection_message(
                tool_name,
                decided.comment,
                adapters.reject_option_label(self.reject_options, decided.reject_option_name),
            )
        )

    def _failed(
        self, tool_name: str, tool_call_id: str | None, exc: Exception, call_id: str | None
    ) -> ToolExecutionDecision:
        if isinstance(exc, ApprovalTimeoutError):
            message = expired_message(tool_name, self.timeout or self.fl.timeout)
        else:
            message = not_run_message(tool_name, f"{type(exc).__name__}: {exc}", call_id)
        return ToolExecutionDecision(
            tool_name=tool_name, execute=False, tool_call_id=tool_call_id, feedback=message
        )


def _claimed(decision: ToolExecutionDecision, claim: adapters.Claim) -> ToolExecutionDecision:
    """The approved decision if its execution was claimed, else a refusal saying why."""
    if claim.proceed:
        return decision
    return ToolExecutionDecision(
        tool_name=decision.tool_name,
        execute=False,
        tool_call_id=decision.tool_call_id,
        feedback=claim.message,
    )
