"""One approval, one execution through the frameworks' own approval pauses: the same saved pause
(or the same tool call id) resumed twice runs the tool's body once, and the second time the
model reads that it already ran. Real agent loops against the scripted model over HTTP;
``ScriptedHuman`` decides."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
from agents import Runner
from functionlayer import FunctionLayer
from functionlayer.testing import ScriptedHuman, approve
from functionlayer.testing.model import ScriptedModel, math_script, text, tool_call, tool_results
from functionlayer_agent_framework import apause as af_apause
from functionlayer_agent_framework import aresume as af_aresume
from functionlayer_google_adk import ConfirmationPlugin
from functionlayer_google_adk import PausedRun as AdkPausedRun
from functionlayer_google_adk import collect as adk_collect
from functionlayer_google_adk import pause as adk_pause
from functionlayer_langchain import HITLBridge
from functionlayer_openai_agents import apause as agents_apause
from functionlayer_openai_agents import aresume as agents_aresume
from functionlayer_pydantic_ai import PausedRun, collect
from functionlayer_pydantic_ai import pause as pydantic_pause
from google.adk.agents import Agent as AdkAgent
from google.adk.runners import Runner as AdkRunner
from google.adk.sessions.sqlite_session_service import SqliteSessionService
from google.genai import types as adk_types
from pydantic_ai import Agent
from pydantic_ai.tools import DeferredToolRequests

from tests.e2e import test_agent_framework_agent as af_e2e
from tests.e2e import test_google_adk_agent as adk_e2e
from tests.e2e import test_haystack_agent as haystack_e2e
from tests.e2e import test_langchain_hitl as hitl_e2e
from tests.e2e import test_openai_agents_agent as agents_e2e
from tests.e2e import test_pydantic_ai_agent as pydantic_e2e

TASK = "multiply 2 and 5, then add 32 to the result"
ALREADY_RAN = "multiply was not run again: call id {} was approved once and already ran"


def told(request: dict[str, Any], name: str = "multiply") -> str:
    [result] = [r.content for r in tool_results(request) if r.name in (name, None)][-1:]
    return result


def test_pydantic_ai_pause_collected_twice_runs_the_body_once() -> None:
    fl = FunctionLayer(backend=ScriptedHuman([approve()]))
    calculator = pydantic_e2e.NativeCalculator()
    with ScriptedModel(math_script()) as model:
        agent = Agent(
            pydantic_e2e.chat_model(model),
            tools=calculator.tools,
            output_type=[str, DeferredToolRequests],
        )
        first = agent.run_sync(TASK)
        paused = PausedRun.from_json(pydantic_pause(fl, first).to_json())
        [call_id] = paused.call_ids
        once, twice = collect(fl, paused), collect(fl, paused)
        assert once is not None and twice is not None
        resumed = agent.run_sync(message_history=paused.message_history, deferred_tool_results=once)
        replayed = agent.run_sync(
            message_history=paused.message_history, deferred_tool_results=twice
        )
    assert calculator.multiplied == [(2, 5)]  # the body ran once
    assert resumed.output == "2 multiplied by 5 is 10, and adding 32 gives 42."
    assert told(model.requests[-1]).startswith(ALREADY_RAN.format(call_id))
    assert "was not run again" in str(replayed.output)


@pytest.mark.parametrize("api", agents_e2e.APIS)
def test_openai_agents_pause_resumed_twice_runs_the_body_once(api: str) -> None:
    fl = FunctionLayer(backend=ScriptedHuman([approve()]))
    calculator = agents_e2e.NativeCalculator()

    async def scenario(model: ScriptedModel) -> tuple[str, Any, Any]:
        agent = agents_e2e.agent_for(model, api, calculator.tools)
        first = await Runner.run(agent, TASK)
        paused = await agents_apause(fl, first)
        [call_id] = paused.call_ids
        once = await agents_aresume(fl, agent, paused)
        twice = await agents_aresume(fl, agent, paused)
        assert once is not None and twice is not None
        return call_id, await Runner.run(agent, once), await Runner.run(agent, twice)

    with ScriptedModel(math_script()) as model:
        call_id, resumed, replayed = asyncio.run(scenario(model))
    assert calculator.multiplied == [(2, 5)]
    assert resumed.final_output == "2 multiplied by 5 is 10, and adding 32 gives 42."
    assert told(model.requests[-1]).startswith(ALREADY_RAN.format(call_id))
    assert "was not run again" in str(replayed.final_output)


def test_langchain_hitl_the_same_checkpoint_resumed_twice_runs_the_tool_once() -> None:
    """Two processes restore the same paused checkpoint (thread, tool call id): each resumes it.
    (Two savers holding the same pause; one saver would replay its first resume's writes.)"""
    fl = FunctionLayer(backend=ScriptedHuman({"hitl:call_m": approve()}))
    tools = hitl_e2e.Tools()
    [ask, answer] = hitl_e2e.one_multiply()
    with ScriptedModel([ask, ask, answer, answer]) as model:
        first_agent, config = hitl_e2e.agent_for(model, tools)
        second_agent, _ = hitl_e2e.agent_for(model, tools)
        for agent in (first_agent, second_agent):
            agent.invoke({"messages": [("user", "multiply 2 and 5")]}, config)
        first = HITLBridge(fl).resume(first_agent, config)
        second = HITLBridge(fl).collect(second_agent, config)
        assert second is not None
        first_agent.invoke(first, config)
        second_agent.invoke(second, config)
    assert tools.multiplied == [(2, 5)]
    assert [r.content for r in tool_results(model.requests[2])] == ["10"]
    assert ALREADY_RAN.format("hitl:call_m") in told(model.requests[3])  # in LangChain's words
    [decision] = second.resume["decisions"]
    assert decision["type"] == "reject"


@haystack_e2e.MODES
def test_haystack_confirmation_same_tool_call_id_twice_runs_once(use_async: bool) -> None:
    human = ScriptedHuman([approve()])
    calculator = haystack_e2e.Calculator(human, use_async=use_async, guarded=False)
    step = tool_call("multiply", {"x": 2, "y": 5}, id="call_same")
    script = [step, text(hitl_e2e.results_text), step, text(hitl_e2e.results_text)]
    with ScriptedModel(script) as model:
        # a fresh agent per run (a replayed run; each async run has its own event loop)
        first = haystack_e2e.run(
            haystack_e2e.confirmed_agent(model, calculator), "multiply 2 and 5", use_async=use_async
        )
        again = haystack_e2e.run(
            haystack_e2e.confirmed_agent(model, calculator), "multiply 2 and 5", use_async=use_async
        )
    assert calculator.multiplied == [(2, 5)]
    assert first == "10"
    assert again.startswith(ALREADY_RAN.format("call_same")), again
    assert len(human.function_call_requests) == 1


def test_google_adk_the_same_pause_resumed_twice_runs_the_tool_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes hold the same saved pause (a copy of the session file and the PausedRun):
    each resumes it; ADK's own bookkeeping cannot see the other copy, FunctionLayer's claim can."""
    monkeypatch.setenv("GOOGLE_API_KEY", "unused")
    fl = FunctionLayer(backend=ScriptedHuman([approve()]))
    calculator = adk_e2e.NativeCalculator()

    def runner_on(model: ScriptedModel, path: Path) -> AdkRunner:
        agent = AdkAgent(name="math", model=adk_e2e.gemini(model), tools=calculator.tools)
        return AdkRunner(
            agent=agent,
            app_name="math",
            session_service=SqliteSessionService(str(path)),
            plugins=[ConfirmationPlugin()],
        )

    async def resume(runner: AdkRunner, paused: AdkPausedRun, answers: Any) -> list[Any]:
        stream = runner.run_async(
            user_id=paused.user_id, session_id=paused.session_id, new_message=answers
        )
        return [event async for event in stream]

    async def scenario(model: ScriptedModel) -> tuple[str, list[Any], list[Any]]:
        first, second = tmp_path / "first.sqlite3", tmp_path / "second.sqlite3"
        runner = runner_on(model, first)
        session = await runner.session_service.create_session(app_name="math", user_id="me")
        message = adk_types.Content(role="user", parts=[adk_types.Part(text=TASK)])
        events = [
            event
            async for event in runner.run_async(
                user_id="me", session_id=session.id, new_message=message
            )
        ]
        paused = AdkPausedRun.from_json(
            adk_pause(fl, events, app_name="math", user_id="me", session_id=session.id).to_json()
        )
        shutil.copy(first, second)  # the pause, saved twice
        [call_id] = paused.call_ids
        once, twice = adk_collect(fl, paused), adk_collect(fl, paused)
        resumed = await resume(runner, paused, once)
        replayed = await resume(runner_on(model, second), paused, twice)
        return call_id, resumed, replayed

    with ScriptedModel(math_script()) as model:
        call_id, resumed, replayed = asyncio.run(scenario(model))
    assert calculator.multiplied == [(2, 5)]  # the body ran once
    assert adk_e2e.final_text(resumed) == "2 multiplied by 5 is 10, and adding 32 gives 42."
    assert told(model.requests[-1]).startswith(ALREADY_RAN.format(call_id))
    assert "was not run again" in adk_e2e.final_text(replayed)


@pytest.mark.parametrize("api", af_e2e.APIS)
def test_agent_framework_pause_resumed_twice_runs_the_body_once(api: str) -> None:
    """Two processes restore the same saved pause (session and requests): each resumes it."""
    fl = FunctionLayer(backend=ScriptedHuman([approve()]))
    calculator = af_e2e.NativeCalculator()

    async def scenario(model: ScriptedModel) -> tuple[str, Any, Any]:
        agent = af_e2e.agent_for(model, api, calculator.tools)
        session = agent.create_session()
        paused = await af_apause(fl, agent, await agent.run(TASK, session=session), session)
        [call_id] = paused.call_ids
        once = await af_aresume(fl, agent, paused)
        twice = await af_aresume(fl, agent, paused)
        return call_id, once, twice

    with ScriptedModel(math_script()) as model:
        call_id, resumed, replayed = asyncio.run(scenario(model))
    assert calculator.multiplied == [(2, 5)]  # the body ran once
    assert resumed.text == "2 multiplied by 5 is 10, and adding 32 gives 42."
    # The second resume declines the call: the framework tells the model it was rejected.
    last = model.requests[-1]
    assert [r.content for r in tool_results(last) if r.call_id == call_id] == [af_e2e.DECLINED]
    assert af_e2e.DECLINED in replayed.text
