"""The Agents SDK's sticky decisions (``state.approve(item, always_approve=True)`` /
``always_reject=True``; scoped to the item's agent since 0.24) against FunctionLayer decisions,
through the real ``Runner`` loop and the scripted model: a tool decided through FunctionLayer is
never run on a sticky SDK approval that no person made.

- A guarded tool (``tools([...])``) asks FunctionLayer inside its body for every call, so an SDK
  ``always_approve`` (even with ``needs_approval`` set on it as well) only skips the SDK's own
  pause: each call still waits for its person.
- The SDK's own approvals decided through FunctionLayer (``decide``, ``pause``, ``resume``) refuse
  a run state holding an ``always_approve`` (``StickyApprovalError``) before anything is asked
  or claimed: the SDK would run later calls of that tool with no person deciding.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from agents import (
    Agent,
    OpenAIResponsesModel,
    Runner,
    RunState,
    function_tool,
    set_tracing_disabled,
)
from functionlayer import FunctionLayer
from functionlayer._feedback import rejection_message
from functionlayer.testing import ScriptedHuman, approve, reject
from functionlayer.testing.model import ScriptedModel, text, tool_call, tool_results
from functionlayer_openai_agents import PausedRun, StickyApprovalError, decide, pause, resume, tools
from openai import AsyncOpenAI

set_tracing_disabled(True)


def agent_for(model: ScriptedModel, agent_tools: list[Any]) -> Agent[Any]:
    client = AsyncOpenAI(base_url=model.base_url, api_key="unused", max_retries=0)
    return Agent(name="payer", model=OpenAIResponsesModel("gpt-4o-mini", client), tools=agent_tools)


def two_transfers() -> list[Any]:
    return [
        tool_call("transfer", {"to": "bob", "amount": 1}, id="call_1"),
        tool_call("transfer", {"to": "eve", "amount": 2}, id="call_2"),
        text(lambda request: " | ".join(r.content for r in tool_results(request))),
    ]


class NativeBank:
    """``needs_approval=True``: the SDK pauses, FunctionLayer decides through this package."""

    def __init__(self) -> None:
        self.transfers: list[tuple[str, int]] = []

        @function_tool(needs_approval=True)
        def transfer(to: str, amount: int) -> str:
            """Send money."""
            self.transfers.append((to, amount))
            return f"sent {amount} to {to}"

        self.tools = [transfer]


def test_sticky_sdk_approval_does_not_run_a_guarded_tool_without_its_person() -> None:
    human = ScriptedHuman({"call_1": approve(), "call_2": reject("not eve")})
    fl = FunctionLayer(backend=human)
    transfers: list[tuple[str, int]] = []

    @fl.require_approval()
    def transfer(to: str, amount: int) -> str:
        """Send money."""
        transfers.append((to, amount))
        return f"sent {amount} to {to}"

    [guarded] = tools([transfer])
    guarded.needs_approval = True  # the SDK pauses too, and is then told "always"
    with ScriptedModel(two_transfers()) as model:
        agent = agent_for(model, [guarded])
        first = Runner.run_sync(agent, "pay bob and eve")
        state = first.to_state()
        [item] = state.get_interruptions()
        state.approve(item, always_approve=True)  # sticky: the SDK will not pause call_2
        result = Runner.run_sync(agent, state)
    assert transfers == [("bob", 1)]  # call_2 waited for its person, who rejected it
    assert [r.call_id for r in human.function_call_requests] == ["call_1", "call_2"]
    assert rejection_message("transfer", "not eve") in result.final_output


def test_decide_refuses_a_state_holding_a_sticky_approval() -> None:
    human = ScriptedHuman({"call_1": approve(), "call_2": approve()})
    fl = FunctionLayer(backend=human)
    bank = NativeBank()
    with ScriptedModel(two_transfers()) as model:
        agent = agent_for(model, bank.tools)
        state = Runner.run_sync(agent, "pay bob and eve").to_state()
        [item] = state.get_interruptions()
        state.approve(item, always_approve=True)  # the application's own "always", not a person
        with pytest.raises(StickyApprovalError, match="always_approve for transfer"):
            decide(fl, state)
        with pytest.raises(StickyApprovalError):
            pause(fl, state)
    assert human.function_call_requests == []  # nothing asked, nothing decided
    assert bank.transfers == []


def test_resume_refuses_a_saved_pause_holding_a_sticky_approval_before_claiming() -> None:
    human = ScriptedHuman({"call_1": approve()})
    fl = FunctionLayer(backend=human)
    bank = NativeBank()
    with ScriptedModel(two_transfers()) as model:
        agent = agent_for(model, bank.tools)
        paused = pause(fl, Runner.run_sync(agent, "pay bob and eve"))
        # The saved state gets an "always" (application code, or an edited file).
        loaded = asyncio.run(RunState.from_json(agent, paused.state))
        [item] = loaded.get_interruptions()
        loaded.approve(item, always_approve=True)
        tampered = PausedRun(state=loaded.to_json(), requests=paused.requests)
        with pytest.raises(StickyApprovalError):
            resume(fl, agent, tampered, wait=True)
        stored = fl.get_function_call("call_1")
        assert stored.status is not None and stored.status.approved is True
        assert stored.status.execution is None  # the person's approval was not used up
        # The clean pause resumes with it (as another process would, with its own client):
        # call_1 runs once; call_2 pauses again.
        fresh = agent_for(model, bank.tools)
        state = resume(fl, fresh, paused, wait=True)
        assert state is not None
        second = Runner.run_sync(fresh, state)
    assert bank.transfers == [("bob", 1)]
    assert [str(i.call_id) for i in second.interruptions] == ["call_2"]


def test_sticky_sdk_rejection_only_stops_calls() -> None:
    human = ScriptedHuman({"call_1": approve(), "call_2": approve()})
    fl = FunctionLayer(backend=human)
    bank = NativeBank()
    with ScriptedModel(two_transfers()) as model:
        agent = agent_for(model, bank.tools)
        state = Runner.run_sync(agent, "pay bob and eve").to_state()
        [item] = state.get_interruptions()
        state.reject(item, always_reject=True, rejection_message="never")
        Runner.run_sync(agent, decide(fl, state))
    assert bank.transfers == []  # a sticky rejection stands: nothing runs
    assert human.function_call_requests == []  # and nobody is asked about those calls
