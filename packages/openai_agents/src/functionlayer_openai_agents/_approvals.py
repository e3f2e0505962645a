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
ran". What to ask, how to read the answer and the claim are the core's (``functionlayer.adapters``).

Sticky SDK decisions: ``state.approve(item, always_approve=True)`` makes the SDK run every later
call of that tool (of that agent, since 0.24) without an interruption, so without any person
deciding it. This module never makes one, and refuses (:class:`StickyApprovalError`, nothing
decided, nothing resumed) a run state that holds one for a tool of the paused agents: a tool
decided through FunctionLayer must never be run on a decision no person made. A sticky
*rejection* (``always_reject=True``) stands: calls of that tool are not asked about and the
SDK rejects them (a person's approval never overrides it).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agents import Agent, RunState, ToolApprovalItem
from functionlayer import FunctionCall, FunctionLayer, FunctionLayerError, adapters
from functionlayer.adapters import NativeDecision, PendingToolCall

__all__ = [
    "PausedRun",
    "StickyApprovalError",
    "adecide",
    "apause",
    "aresume",
    "decide",
    "pause",
    "resume",
]


class StickyApprovalError(FunctionLayerError):
    """The run state holds an SDK ``always_approve`` for a tool decided through FunctionLayer:
    resuming it would run later calls of that tool with no person deciding. Nothing was decided
    or resumed."""


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


def _calls(state: RunState[Any, Any], agent: Agent[Any] | None = None) -> list[PendingToolCall]:
    """The interrupted calls to ask about: none when the state holds a sticky approval (refused);
    calls of a tool with a sticky rejection are left to the SDK, which rejects them."""
    rejected = _refuse_sticky_approvals(state, agent)
    found = (_pending(item) for item in state.get_interruptions())
    return [call for call in found if call is not None and call.fn not in rejected]


def _tool_names(state: RunState[Any, Any], agent: Agent[Any] | None) -> set[str]:
    names: set[str] = set()
    agents = [item.agent for item in state.get_interruptions()]
    for owner in [*agents, agent, getattr(state, "_current_agent", None)]:
        for candidate in getattr(owner, "tools", None) or []:
            name = getattr(candidate, "name", None)
            if isinstance(name, str) and name:
                names.add(name)
    names.update(item.name for item in state.get_interruptions() if item.name)
    return names


def _refuse_sticky_approvals(state: RunState[Any, Any], agent: Agent[Any] | None) -> set[str]:
    """Raise :class:`StickyApprovalError` when the state would let the SDK run a tool of the
    paused agents on an ``always_approve`` instead of a person's decision per call; returns
    the tools with an ``always_reject`` (their calls stay rejected, nobody is asked)."""
    if not hasattr(state, "_context"):  # an SDK whose approvals this cannot read: fail closed
        raise StickyApprovalError(
            "cannot read this openai-agents release's run state approvals to check for "
            "always_approve decisions; refusing to decide or resume through FunctionLayer"
        )
    context = state._context
    if context is None:
        return set()
    probe = f"functionlayer-probe-{secrets.token_hex(16)}"  # a call id no tool call has
    status = {name: context.is_tool_approved(name, probe) for name in _tool_names(state, agent)}
    sticky = sorted(name for name, approved in status.items() if approved is True)
    if sticky:
        raise StickyApprovalError(
            f"the run state holds an always_approve for {', '.join(sticky)}: the Agents SDK "
            "would run every later call of it without asking anyone. Tools decided through "
            "FunctionLayer need a person's decision per call; approve with "
            "state.approve(item) (not always_approve=True) or start from a state without it. "
            "Nothing was decided or resumed."
        )
    return {name for name, approved in status.items() if approved is False}


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
    return _apply(state, adapters.decide(fl, calls, timeout=timeout, edits=False))


async def adecide(
    fl: FunctionLayer, result: Any, *, timeout: float | None = None
) -> RunState[Any, Any]:
    """The async :func:`decide`; the calls wait concurrently."""
    state = _state_of(result)
    calls = _calls(state)
    return _apply(state, await adapters.adecide(fl, calls, timeout=timeout, edits=False))


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
        return adapters.dump_pause(_FORMAT, {"state": self.state}, self.requests)

    @classmethod
    def from_json(cls, data: str | bytes) -> PausedRun:
        loaded, requests = adapters.load_pause(data, _FORMAT, "OpenAI Agents")
        if not isinstance(loaded.get("state"), dict):
            raise ValueError("a saved pause needs the run state")
        return cls(state=loaded["state"], requests=requests)


def pause(fl: FunctionLayer, result: Any) -> PausedRun:
    """Create a FunctionLayer request for each of ``result.interruptions`` without waiting;
    returns what to save (``paused.to_json()``)."""
    state = _state_of(result)
    sent = adapters.ask(fl, _calls(state))
    return PausedRun(state=state.to_json(), requests=tuple(sent))


async def apause(fl: FunctionLayer, result: Any) -> PausedRun:
    state = _state_of(result)
    sent = await adapters.aask(fl, _calls(state))
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
    state: RunState[Any, Any] = await RunState.from_json(
        agent, paused.state, context_override=context_override
    )
    rejected = _refuse_sticky_approvals(state, agent)  # before anything is claimed
    requests = [request for request in paused.requests if request.spec.fn not in rejected]
    decisions = await adapters.acollect(fl, requests, wait=wait, timeout=timeout, edits=False)
    if decisions is None:
        return None
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
    # RunState.from_json is a coroutine in the SDK; it does no I/O of ours.
    state: RunState[Any, Any] = asyncio.run(
        RunState.from_json(agent, paused.state, context_override=context_override)
    )
    rejected = _refuse_sticky_approvals(state, agent)  # before anything is claimed
    requests = [request for request in paused.requests if request.spec.fn not in rejected]
    decisions = adapters.collect(fl, requests, wait=wait, timeout=timeout, edits=False)
    if decisions is None:
        return None
    return _apply(state, decisions)
