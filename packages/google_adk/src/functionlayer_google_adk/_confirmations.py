"""ADK's own tool confirmations, decided through FunctionLayer.

A tool declared with ``FunctionTool(fn, require_confirmation=...)`` (or calling
``tool_context.request_confirmation(hint, payload)``) pauses the run: the invocation ends with an
``adk_request_confirmation`` function call, and the next ``runner.run_async`` takes the answer as
a ``FunctionResponse`` with ``{"confirmed": ..., "payload": ...}``. This module asks FunctionLayer
about each paused call (the model's function call id is the call id) and writes the answers:

- :func:`arun`: runs the agent and resumes every pause inline, once FunctionLayer decided;
- :func:`decide` / :func:`adecide`: the answers to a paused run's confirmation requests, as the
  message to resume it with;
- :func:`pause` now, :func:`collect` later (another process, with a persistent session
  service): the requests are created and the session's address saved; nothing blocks;
- :class:`ConfirmationPlugin` (``Runner(..., plugins=[ConfirmationPlugin()])``): a denied call's
  response is the human's feedback instead of ADK's fixed "This tool call is rejected.".

What to ask, how to read the answer, and claiming the one execution an approval authorises are
the core's (``functionlayer.adapters``); this module only translates. ADK cannot run a call with
other arguments than the model's, so an approval with edits is applied as a denial telling the
model the approved arguments. The confirmation is ADK's, inside the agent process: for the
guarantee that nothing in that process can approve, guard the function itself
(``fl.require_approval()`` and :func:`~functionlayer_google_adk.tool`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from functionlayer import FunctionCall, FunctionLayer, adapters
from functionlayer.adapters import NativeDecision, PendingToolCall
from google.adk.events import Event
from google.adk.plugins import BasePlugin
from google.adk.runners import Runner
from google.adk.tools.base_tool import BaseTool
from google.adk.tools.tool_confirmation import ToolConfirmation
from google.adk.tools.tool_context import ToolContext
from google.genai import types

__all__ = [
    "CONFIRMATION_FUNCTION",
    "ConfirmationPlugin",
    "ConfirmationRequest",
    "PausedRun",
    "acollect",
    "adecide",
    "apause",
    "arun",
    "collect",
    "decide",
    "pause",
    "requests_in",
]

CONFIRMATION_FUNCTION = "adk_request_confirmation"
"""The function call ADK pauses a run with (``google.adk`` keeps the name private)."""

_FORMAT = "functionlayer-google-adk/paused-run@1"
_ADK_DEFAULT_HINT = "Please approve or reject the tool call "
_MARK = "functionlayer"  # the payload key carrying FunctionLayer's message on a denial


@dataclass(frozen=True)
class ConfirmationRequest:
    """One ``adk_request_confirmation`` call of a paused run."""

    request_id: str
    """The confirmation call's own id: the answer's function response id."""
    call: PendingToolCall
    """The paused tool call (the model's function call id, the tool, its arguments)."""
    payload: Any = None
    """The payload the tool asked for (given back unchanged on approval)."""


def requests_in(events: Iterable[Event]) -> list[ConfirmationRequest]:
    """The confirmation requests among ``events`` (a run's events, in order)."""
    found: list[ConfirmationRequest] = []
    for event in events:
        for call in event.get_function_calls():
            if call.name != CONFIRMATION_FUNCTION or not call.id:
                continue
            args = call.args or {}
            original = args.get("originalFunctionCall")
            confirmation = args.get("toolConfirmation") or {}
            if not isinstance(original, Mapping) or not original.get("id"):
                continue  # nothing to match a decision to; ADK keeps it paused
            kwargs = original.get("args") or {}
            hint = confirmation.get("hint") if isinstance(confirmation, Mapping) else None
            if not isinstance(hint, str) or hint.startswith(_ADK_DEFAULT_HINT):
                hint = None  # ADK's own words are addressed to a program, not to the approver
            pending = PendingToolCall(
                call_id=str(original["id"]),
                fn=str(original.get("name") or "tool"),
                kwargs=dict(kwargs) if isinstance(kwargs, Mapping) else {"arguments": kwargs},
                description=hint or None,
            )
            payload = confirmation.get("payload") if isinstance(confirmation, Mapping) else None
            found.append(ConfirmationRequest(call.id, pending, payload))
    return found


def _confirmation(decision: NativeDecision, payload: Any) -> ToolConfirmation:
    if decision.approved:
        return ToolConfirmation(confirmed=True, payload=payload)
    message = decision.message or "The tool call was denied."
    return ToolConfirmation(confirmed=False, payload={_MARK: {"message": message}})


def _answers(
    requests: Sequence[ConfirmationRequest], decisions: Mapping[str, NativeDecision]
) -> types.Content:
    parts = []
    for request in requests:
        decision = decisions.get(request.call.call_id)
        if decision is None:
            continue
        answer = _confirmation(decision, request.payload)
        parts.append(
            types.Part(
                function_response=types.FunctionResponse(
                    id=request.request_id,
                    name=CONFIRMATION_FUNCTION,
                    response=answer.model_dump(by_alias=True, exclude_none=True),
                )
            )
        )
    return types.Content(role="user", parts=parts)


def _denial_message(confirmation: ToolConfirmation | None) -> str | None:
    if confirmation is None or confirmation.confirmed:
        return None
    payload = confirmation.payload
    mark = payload.get(_MARK) if isinstance(payload, Mapping) else None
    message = mark.get("message") if isinstance(mark, Mapping) else None
    return message if isinstance(message, str) else None


# -- inline ---------------------------------------------------------------------------------------


class ConfirmationPlugin(BasePlugin):
    """Gives the model the human's own words when FunctionLayer denied a paused call.

    ``Runner(agent=..., plugins=[ConfirmationPlugin()])``. ADK answers a denied confirmation with
    a fixed "This tool call is rejected."; with this plugin the call's response is FunctionLayer's
    message instead (the feedback, the answer given instead, or why nothing ran), as for a
    guarded function. It changes nothing else: calls confirmed or denied by anyone else keep
    ADK's own responses.
    """

    def __init__(self, name: str = "functionlayer_confirmations") -> None:
        super().__init__(name=name)

    async def after_tool_callback(
        self,
        *,
        tool: BaseTool,
        tool_args: dict[str, Any],
        tool_context: ToolContext,
        result: Any,
    ) -> dict[str, Any] | None:
        message = _denial_message(tool_context.tool_confirmation)
        return None if message is None else {"result": message}


# -- waiting --------------------------------------------------------------------------------------


def decide(
    fl: FunctionLayer, events: Iterable[Event], *, timeout: float | None = None
) -> types.Content | None:
    """Ask about every confirmation request among ``events`` (a paused run's events) and wait;
    the message to resume the run with (``runner.run_async(..., new_message=...)``), or ``None``
    when there was nothing to confirm. Fails closed: a call that cannot be decided (server down,
    timeout) is denied with the reason. Each approval is claimed (one approval, one execution).
    """
    requests = requests_in(events)
    if not requests:
        return None
    calls = [request.call for request in requests]
    return _answers(requests, adapters.decide(fl, calls, timeout=timeout, edits=False))


async def adecide(
    fl: FunctionLayer, events: Iterable[Event], *, timeout: float | None = None
) -> types.Content | None:
    """The async :func:`decide`; the calls wait concurrently."""
    requests = requests_in(events)
    return await _adecide_requests(fl, requests, timeout) if requests else None


async def _adecide_requests(
    fl: FunctionLayer, requests: Sequence[ConfirmationRequest], timeout: float | None
) -> types.Content:
    calls = [request.call for request in requests]
    return _answers(requests, await adapters.adecide(fl, calls, timeout=timeout, edits=False))


async def arun(
    runner: Runner,
    fl: FunctionLayer,
    *,
    user_id: str,
    session_id: str,
    new_message: types.Content,
    timeout: float | None = None,
    **run_kwargs: Any,
) -> AsyncIterator[Event]:
    """``runner.run_async`` that resumes every confirmation pause through FunctionLayer: yields
    the events of the run and of each resumed run, until a run ends without asking."""
    message: types.Content | None = new_message
    answered: set[str] = set()
    while message is not None:
        events: list[Event] = []
        async for event in runner.run_async(
            user_id=user_id, session_id=session_id, new_message=message, **run_kwargs
        ):
            events.append(event)
            yield event
        # Each confirmation request is answered once: one ADK re-emits is left to the caller.
        requests = [r for r in requests_in(events) if r.request_id not in answered]
        answered.update(r.request_id for r in requests)
        message = await _adecide_requests(fl, requests, timeout) if requests else None


# -- pause now, resume later ----------------------------------------------------------------------


@dataclass(frozen=True)
class PausedRun:
    """What to keep between :func:`pause` and :func:`collect`: where the session is and the
    confirmation requests waiting for a human. The session itself stays in the runner's session
    service (a persistent one, e.g. ``SqliteSessionService``, to resume in another process).
    ``to_json()`` / ``PausedRun.from_json()`` make it a string to store."""

    app_name: str
    user_id: str
    session_id: str
    confirmations: Sequence[ConfirmationRequest] = field(default_factory=tuple)
    requests: Sequence[FunctionCall] = field(default_factory=tuple)
    """The FunctionLayer requests as sent, one per paused call."""

    @property
    def call_ids(self) -> list[str]:
        return [request.call_id for request in self.requests]

    def to_json(self) -> str:
        fields = {
            "app_name": self.app_name,
            "user_id": self.user_id,
            "session_id": self.session_id,
            "confirmations": [
                {
                    "request_id": c.request_id,
                    "call_id": c.call.call_id,
                    "fn": c.call.fn,
                    "kwargs": c.call.kwargs,
                    "description": c.call.description,
                    "payload": c.payload,
                }
                for c in self.confirmations
            ],
        }
        return adapters.dump_pause(_FORMAT, fields, self.requests)

    @classmethod
    def from_json(cls, data: str | bytes) -> PausedRun:
        loaded, requests = adapters.load_pause(data, _FORMAT, "Google ADK")
        confirmations = tuple(
            ConfirmationRequest(
                str(c["request_id"]),
                PendingToolCall(
                    str(c["call_id"]),
                    str(c["fn"]),
                    dict(c.get("kwargs") or {}),
                    c.get("description"),
                ),
                c.get("payload"),
            )
            for c in loaded.get("confirmations") or []
        )
        return cls(
            app_name=str(loaded["app_name"]),
            user_id=str(loaded["user_id"]),
            session_id=str(loaded["session_id"]),
            confirmations=confirmations,
            requests=requests,
        )


def pause(
    fl: FunctionLayer, events: Iterable[Event], *, app_name: str, user_id: str, session_id: str
) -> PausedRun:
    """Create a FunctionLayer request for each confirmation request among ``events`` without
    waiting; returns what to save (``paused.to_json()``)."""
    confirmations = tuple(requests_in(events))
    sent = adapters.ask(fl, [c.call for c in confirmations])
    return PausedRun(app_name, user_id, session_id, confirmations, tuple(sent))


async def apause(
    fl: FunctionLayer, events: Iterable[Event], *, app_name: str, user_id: str, session_id: str
) -> PausedRun:
    confirmations = tuple(requests_in(events))
    sent = await adapters.aask(fl, [c.call for c in confirmations])
    return PausedRun(app_name, user_id, session_id, confirmations, tuple(sent))


def collect(
    fl: FunctionLayer, paused: PausedRun, *, wait: bool = False, timeout: float | None = None
) -> types.Content | None:
    """The message resuming a :class:`PausedRun` (``runner.run_async(user_id=paused.user_id,
    session_id=paused.session_id, new_message=...)``); ``None`` while any call is pending.

    ``wait=True`` blocks until all are decided (``timeout`` bounds each wait; expiry denies).
    Raises a :class:`~functionlayer.FunctionLayerError` when the decisions cannot be read:
    nothing is decided then, and you can try again later. Each approval is claimed here:
    collecting the same pause again denies an already approved call with "already ran".
    """
    decisions = adapters.collect(fl, paused.requests, wait=wait, timeout=timeout, edits=False)
    return None if decisions is None else _answers(paused.confirmations, decisions)


async def acollect(
    fl: FunctionLayer, paused: PausedRun, *, wait: bool = False, timeout: float | None = None
) -> types.Content | None:
    """The async :func:`collect`."""
    decisions = await adapters.acollect(
        fl, paused.requests, wait=wait, timeout=timeout, edits=False
    )
    return None if decisions is None else _answers(paused.confirmations, decisions)
