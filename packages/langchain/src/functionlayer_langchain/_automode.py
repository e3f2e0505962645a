"""LangChain's ``AutoModeMiddleware`` escalating to a person instead of only blocking.

``AutoModeMiddleware`` (langchain 1.5, beta) asks a decision model whether each call of the
tools it watches is risky: low-risk calls run, risky ones get an error ``ToolMessage`` and
never run. :class:`AutoModeEscalation` wraps it: low-risk calls still run at once; a call the
classifier blocks is asked about through FunctionLayer (under ``automode:<tool call id>``)
instead, and runs only after a person approved that exact call, once. Rejected, expired or
undecidable: the tool does not run and the model gets FunctionLayer's message (fail closed).

The wrapped middleware is used only through its public ``wrap_tool_call`` /
``awrap_tool_call``: a call it passed to the handler was allowed; a call for which it returned
without calling the handler was blocked. A classifier error propagates as it does without the
wrapper (the tool does not run). Do not list the wrapped middleware in ``create_agent`` as well.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from functionlayer import FunctionCall, FunctionCallSpec, FunctionLayer, adapters
from langchain.agents.middleware import AgentMiddleware
from langchain_core.messages import ToolMessage

__all__ = ["AutoModeEscalation"]

SOURCE = "langchain.AutoModeMiddleware"


class AutoModeEscalation(AgentMiddleware[Any, Any, Any]):
    """``AutoModeMiddleware`` whose blocks become FunctionLayer approval requests.

    >>> auto_mode = AutoModeMiddleware(tools=[delete_file], classifier=classifier)
    >>> agent = create_agent(model, tools=[...], middleware=[AutoModeEscalation(auto_mode, fl)])

    ``timeout`` (seconds; default: the client's) bounds each wait; expiry rejects.
    """

    def __init__(
        self,
        auto_mode: Any,
        fl: FunctionLayer,
        *,
        timeout: float | None = None,
        call_id_prefix: str = "automode:",
    ) -> None:
        super().__init__()
        if not callable(getattr(auto_mode, "wrap_tool_call", None)):
            raise TypeError(
                "AutoModeEscalation wraps an AutoModeMiddleware (anything with wrap_tool_call), "
                f"got {type(auto_mode).__name__}"
            )
        self.timeout = adapters.checked_timeout(timeout) or fl.timeout
        self.auto_mode = auto_mode
        self.fl = fl
        self.call_id_prefix = call_id_prefix

    @property
    def name(self) -> str:
        return f"FunctionLayerEscalation[{getattr(self.auto_mode, 'name', 'AutoMode')}]"

    # -- the request ------------------------------------------------------------------------

    def _spec(self, request: Any, blocked: Any) -> FunctionCallSpec:
        call = request.tool_call
        tool = getattr(request, "tool", None)
        reason = getattr(blocked, "content", None)
        description = getattr(tool, "description", None) or ""
        if isinstance(reason, str) and reason:
            description = f"{description}\n\nEscalated by AutoModeMiddleware: {reason}".lstrip()
        return FunctionCallSpec(
            fn=str(call["name"]),
            kwargs=dict(call.get("args") or {}),
            channel=self.fl.contact_channel,
            timeout_seconds=self.timeout,
            description=description or None,
            state={"source": SOURCE, "tool_call_id": str(call.get("id") or "")},
        )

    def _message(self, request: Any, content: str) -> ToolMessage:
        call = request.tool_call
        return ToolMessage(
            content=content, tool_call_id=call["id"], name=call["name"], status="error"
        )

    def _approved_request(self, request: Any, stored: FunctionCall) -> tuple[Any, str | None]:
        """(the request to run, None) for an approval, else (None, the message for the model)."""
        decision = adapters.decision_of(stored)
        if decision is None or not decision.approved:
            return None, (decision.message if decision else None) or "The tool call was denied."
        if decision.arguments is not None:
            call = request.tool_call
            request = request.override(tool_call={**call, "args": dict(decision.arguments)})
        return request, None

    def _failed(self, request: Any, call_id: str, exc: Exception) -> ToolMessage:
        reason = f"{type(exc).__name__}: {exc}"
        name = str(request.tool_call["name"])
        return self._message(request, adapters.not_run_message(name, reason, call_id))

    def _call_id(self, request: Any) -> str | None:
        tool_call_id = request.tool_call.get("id")
        return f"{self.call_id_prefix}{tool_call_id}" if tool_call_id else None

    # -- sync -------------------------------------------------------------------------------

    def wrap_tool_call(self, request: Any, handler: Callable[[Any], Any]) -> Any:
        allowed = False

        def through(passed: Any) -> Any:
            nonlocal allowed
            allowed = True
            return handler(passed)

        result = self.auto_mode.wrap_tool_call(request, through)
        if allowed:
            return result
        return self._escalate(request, handler, result)

    def _escalate(self, request: Any, handler: Callable[[Any], Any], blocked: Any) -> Any:
        call_id = self._call_id(request)
        if call_id is None:
            return blocked  # nothing to tie a decision to: the block stands
        name = str(request.tool_call["name"])
        try:
            stored = self.fl.fetch_approval(self._spec(request, blocked), call_id)
        except Exception as exc:  # fail closed: no decision, nothing runs
            return self._failed(request, call_id, exc)
        approved, message = self._approved_request(request, stored)
        if approved is None:
            return self._message(request, message or "")
        granted = adapters.claim(self.fl, call_id, name)
        if not granted.proceed:
            return self._message(request, granted.message or "")
        try:
            result = handler(approved)
        except Exception as exc:
            adapters.report(self.fl, granted, exc, raised=True)
            raise
        adapters.report(self.fl, granted, getattr(result, "content", result))
        return result

    # -- async ------------------------------------------------------------------------------

    async def awrap_tool_call(self, request: Any, handler: Callable[[Any], Awaitable[Any]]) -> Any:
        allowed = False

        async def through(passed: Any) -> Any:
            nonlocal allowed
            allowed = True
            return await handler(passed)

        result = await self.auto_mode.awrap_tool_call(request, through)
        if allowed:
            return result
        call_id = self._call_id(request)
        if call_id is None:
            return result
        name = str(request.tool_call["name"])
        try:
            stored = await self.fl.afetch_approval(self._spec(request, result), call_id)
        except Exception as exc:
            return self._failed(request, call_id, exc)
        approved, message = self._approved_request(request, stored)
        if approved is None:
            return self._message(request, message or "")
        granted = await adapters.aclaim(self.fl, call_id, name)
        if not granted.proceed:
            return self._message(request, granted.message or "")
        try:
            outcome = await handler(approved)
        except Exception as exc:
            await adapters.areport(self.fl, granted, exc, raised=True)
            raise
        await adapters.areport(self.fl, granted, getattr(outcome, "content", outcome))
        return outcome
