"""The Agents SDK's own approval pause, decided through FunctionLayer.

A tool with ``needs_approval=True`` (or a callable saying so) interrupts the run:
``result.interruptions`` lists the calls, ``state = result.to_state()`` holds the run, and
``state.approve(item)`` / ``state.reject(item, rejection_message=...)`` followed by
``Runner.run(agent, state)`` resumes it. This module asks FunctionLayer about each interrupted
call (the tool call id is the call id) and applies the decisions to the state; a rejection's
``rejection_message`` is the human's feedback, exactly as a guarded function would return it.

- :func:`decide` / :func:`adecide`: wait for the humans, get the state to resume with;
- :func:`pause` now, :func:`resume` later (another process): the requests are created and the
  state serialised with ``RunState.to_json()``; nothing blocks.

The SDK cannot run a call with arguments other than the model's, so an approval with edited
arguments is applied as a rejection that tells the model which arguments the human approved.
Each approval is claimed when it is applied (one approval, one execution): resuming the same
saved pause twice approves each call once; the second time the call is rejected with "already
ran". What to ask, how to read the answer and the claim are the core's (``functionlayer._native``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agents import Agent, RunState, ToolApprovalItem
from functionlayer import FunctionCall, FunctionLayer, _native
from functionlayer._native import NativeDecision, PendingToolCall

__all__ = ["PausedRun", "adecide", "apause", "aresume", "decide", "pause", "resume"]

_FORMAT = "functionlayer-openai-agents/paused-run@1"


def _state_of(source: Any) -> RunState[Any, Any]:
    if isinstance(source, RunState):
        return source
    to_state = getattr(source, "to_state", None)
    if to_state is None:
        raise TypeError(f"expected a run result or a RunState, got {type(source).__name__}")
    state: RunState[Any, Any] = to_state()
    return state


def _description(item: ToolApprovalItem) -> str | None:
    for candidate in getattr(item.agent, "tools", None) or []:
        if getattr(candidate, "name", None) == item.name:
            description = getattr(candidate, "description", None)
            return description if isinstance(description, str) else None
    return None


def _pending(item: ToolApprovalItem) -> PendingToolCall | None:
    if not item.call_id or not item.name:
        return None  # nothing to match a decision to; the SDK keeps it interrupted
    raw = item.arguments or ""
    try:
        kwargs = json.loads(raw) if raw.strip() else {}
    except ValueError:
        kwargs = {"arguments": raw}
    if not isinstance(kwargs, dict):
        kwargs = {"arguments": kwargs}
    return PendingToolCall(item.call_id, item.name, kwargs, _description(item))


def _calls(state: RunState[Any, Any]) -> list[PendingToolCall]:
    found = (_pending(item) for item in state.get_interruptions())
    return [call for call in found if call is not None]


def _apply(
    state: RunState[Any, Any], decisions: Mapping[str, NativeDecision]
) -> RunState[Any, Any]:
    """Approve or reject each interruption a decision is known for. The decisions come from the
    core with ``edits=False``: an approval here is claimed and runs the model's arguments."""
    for item in state.get_interruptions():
        decision = decisions.get(item.call_id or "")
        if decision is None:
            continue
        if decision.approved and decision.arguments is None:
            state.approve(item)
        else:
            state.reject(item, rejection_message=decision.message or "The tool call was denied.")
    return state


# -- waiting --------------------------------------------------------------------------------------


def decide(fl: FunctionLayer, result: Any, *, timeout: float | None = None) -> RunState[Any, Any]:
    """Ask about each of ``result.interruptions`` (``result`` may be a ``RunState``), wait, and
    return the state with every decision applied: ``Runner.run_sync(agent, state)`` goes on.

    Fails closed: a call that cannot be decided (server down, timeout) is rejected with the
    reason as its message.
    """
    state = _state_of(result)
    calls = _calls(state)
    return _apply(state, _native.decide(fl, calls, timeout=timeout, edits=False))


async def adecide(
    fl: FunctionLayer, result: Any, *, timeout: float | None = None
) -> RunState[Any, Any]:
    """The async :func:`decide`; the calls wait concurrently."""
    state = _state_of(result)
    calls = _calls(state)
    return _apply(state, await _native.adecide(fl, calls, timeout=timeout, edits=False))


# -- pause now, resume later ----------------------------------------------------------------------


@dataclass(frozen=True)
class PausedRun:
    """What to keep between :func:`pause` and :func:`resume`: the serialised run state
    (``RunState.to_json()``) and its calls waiting for a human. ``to_json()`` /
    ``PausedRun.from_json()`` make it a string to store."""

    state: dict[str, Any]
    requests: Sequence[FunctionCall] = field(default_factory=tuple)
    """The FunctionLayer requests as sent, one per interrupted call."""

    @property
    def call_ids(self) -> list[str]:
        return [request.call_id for request in self.requests]

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": _FORMAT,
                "state": self.state,
                "requests": [request.model_dump(mode="json") for request in self.requests],
            }
        )

    @classmethod
    def from_json(cls, data: str | bytes) -> PausedRun:
        loaded = json.loads(data)
        if not isinstance(loaded, dict) or loaded.get("format") != _FORMAT:
            raise ValueError(f"not a saved OpenAI Agents pause ({_FORMAT})")
        if not isinstance(loaded.get("state"), dict):
            raise ValueError("a saved pause needs the run state")
        requests = tuple(FunctionCall.model_validate(r) for r in loaded.get("requests") or [])
        return cls(state=loaded["state"], requests=requests)


def pause(fl: FunctionLayer, result: Any) -> PausedRun:
    """Create a FunctionLayer request for each of ``result.interruptions`` without waiting;
    returns what to save (``paused.to_json()``)."""
    state = _state_of(result)
    sent = _native.ask(fl, _calls(state))
    return PausedRun(state=state.to_json(), requests=tuple(sent))


async def apause(fl: FunctionLayer, result: Any) -> PausedRun:
    state = _state_of(result)
    sent = await _native.aask(fl, _calls(state))
    return PausedRun(state=state.to_json(), requests=tuple(sent))


async def aresume(
    fl: FunctionLayer,
    agent: Agent[Any],
    paused: PausedRun,
    *,
    wait: bool = False,
    timeout: float | None = None,
    context_override: Any = None,
) -> RunState[Any, Any] | None:
    """The run state of a :class:`PausedRun` with the humans' decisions applied, ready for
    ``Runner.run(agent, state)``; ``None`` while any call is pending (``wait=False``).

    ``wait=True`` blocks until all are decided (``timeout`` bounds each wait; expiry rejects).
    Raises a :class:`~functionlayer.FunctionLayerError` when the decisions cannot be read:
    nothing is decided then, and you can try again later. Each approval is claimed here:
    resuming the same pause again rejects an already approved call with "already ran".
    """
    decisions = await _native.acollect(fl, paused.requests, wait=wait, timeout=timeout, edits=False)
    if decisions is None:
        return None
    state: RunState[Any, Any] = await RunState.from_json(
        agent, paused.state, context_override=context_override
    )
    return _apply(state, decisions)


def resume(
    fl: FunctionLayer,
    agent: Agent[Any],
    paused: PausedRun,
    *,
    wait: bool = False,
    timeout: float | None = None,
    context_override: Any = None,
) -> RunState[Any, Any] | None:
    """The sync :func:`aresume`, for code outside an event loop (``Runner.run_sync`` next)."""
    decisions = _native.collect(fl, paused.requests, wait=wait, timeout=timeout, edits=False)
    if decisions is None:
        return None
    # RunState.from_json is a coroutine in the SDK; it does no I/O of ours.
    state: RunState[Any, Any] = asyncio.run(
        RunState.from_json(agent, paused.state, context_override=context_override)
    )
    return _apply(state, decisions)
