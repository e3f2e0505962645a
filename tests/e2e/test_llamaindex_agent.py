"""LlamaIndex's real agent loop (``FunctionAgent`` + the OpenAI LLM class) against the scripted
model over HTTP, with guarded tools from ``functionlayer_llamaindex``.

LlamaIndex's agents are async only; both sync and ``async def`` guarded functions are covered,
and ``AgentWorkflow`` (the multi-agent runner) too.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from functionlayer._feedback import rejection_message
from functionlayer.testing import ScriptedHuman, approve, reject
from functionlayer.testing.model import (
    ScriptedModel,
    math_script,
    text,
    tool_call,
    tool_calls,
    tool_results,
)
from functionlayer_llamaindex import tools
from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent
from llama_index.llms.openai import OpenAI

from tests.e2e import _support

ROOT = Path(__file__).resolve().parents[2]
TASK = "multiply 2 and 5, then add 32 to the result"


class Calculator(_support.Calculator):
    run_id = "llamaindex-e2e"
    make_tools = tools


def agent_for(model: ScriptedModel, calculator: Calculator) -> FunctionAgent:
    llm = OpenAI(model="gpt-4o-mini", api_base=model.base_url, api_key="unused", max_retries=0)
    return FunctionAgent(tools=calculator.tools, llm=llm)


def run(agent: Any, message: str) -> str:
    async def go() -> str:
        return str(await agent.run(message))

    return asyncio.run(go())


def assistant_call_ids(request: dict[str, Any]) -> list[str]:
    return [
        call["id"] for message in request["messages"] for call in message.get("tool_calls") or []
    ]


@pytest.mark.parametrize("use_async", [False, True], ids=["sync-function", "async-function"])
def test_approved_runs_once_and_answer_uses_result(use_async: bool) -> None:
    human = ScriptedHuman([approve()])
    calculator = Calculator(human, use_async=use_async)
    with ScriptedModel(math_script()) as model:
        answer = run(agent_for(model, calculator), TASK)
    assert calculator.multiplied == [(2, 5)]
    assert answer == "2 multiplied by 5 is 10, and adding 32 gives 42."
    assert [(r.name, r.content) for r in tool_results(model.requests[-1])] == [
        ("multiply", "10"),
        ("add", "42"),
    ]
    # The approval was asked under the model's own tool call id.
    [asked] = human.function_call_requests
    assert asked.call_id == assistant_call_ids(model.requests[1])[0]
    assert model.errors == []


@pytest.mark.parametrize("use_async", [False, True], ids=["sync-function", "async-function"])
def test_rejected_never_runs_and_model_gets_feedback(use_async: bool) -> None:
    human = ScriptedHuman([reject("use 3 instead of 2")])
    calculator = Calculator(human, use_async=use_async)
    with ScriptedModel(math_script()) as model:
        answer = run(agent_for(model, calculator), TASK)
    assert calculator.multiplied == []
    expected = rejection_message("multiply", "use 3 instead of 2")
    # The next request the model received carries the exact feedback as multiply's result.
    [feedback] = tool_results(model.requests[1])
    assert (feedback.name, feedback.content) == ("multiply", expected)
    assert expected in answer
    assert len(model.requests) == 2  # the loop went on to a final answer, no add


@pytest.mark.parametrize("use_async", [False, True], ids=["sync-function", "async-function"])
def test_several_calls_in_one_turn_each_get_their_own_decision(use_async: bool) -> None:
    human = ScriptedHuman(
        {"call_ok": approve(), "call_no": reject("too many at once"), "call_ok2": approve()}
    )
    calculator = Calculator(human, use_async=use_async)
    script = [
        tool_calls(
            tool_call("multiply", {"x": 2, "y": 3}, id="call_no"),
            tool_call("multiply", {"x": 4, "y": 5}, id="call_ok"),
            tool_call("multiply", {"x": 6, "y": 7}, id="call_ok2"),
        ),
        text(lambda request: " | ".join(r.content for r in tool_results(request))),
    ]
    with ScriptedModel(script) as model:
        run(agent_for(model, calculator), "three products")
    assert sorted(calculator.multiplied) == [(4, 5), (6, 7)]
    results = {r.call_id: r.content for r in tool_results(model.requests[1])}
    assert results == {
        "call_ok": "20",
        "call_ok2": "42",
        "call_no": rejection_message("multiply", "too many at once"),
    }
    # Each request carries the id of the model's call with those arguments.
    asked = {r.call_id: r.spec.kwargs for r in human.function_call_requests}
    assert asked == {
        "call_no": {"x": 2, "y": 3},
        "call_ok": {"x": 4, "y": 5},
        "call_ok2": {"x": 6, "y": 7},
    }


def test_agent_workflow_passes_the_call_id_too() -> None:
    human = ScriptedHuman({"call_wf": approve()})
    calculator = Calculator(human)
    script = [tool_call("multiply", {"x": 2, "y": 5}, id="call_wf"), text("done")]
    with ScriptedModel(script) as model:
        workflow = AgentWorkflow(agents=[agent_for(model, calculator)])
        assert run(workflow, "multiply") == "done"
    assert [r.call_id for r in human.function_call_requests] == ["call_wf"]
    assert [(r.call_id, r.content) for r in tool_results(model.requests[1])] == [("call_wf", "10")]


def run_example(
    answers: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return _support.run_example("llamaindex/math_example.py", answers, env, timeout=180)


def test_terminal_example_approved() -> None:
    proc = run_example("y\n")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("Using the scripted offline model at http://127.0.0.1:")
    assert "wants to call multiply" in proc.stdout
    assert lines[-1].endswith("Agent: 2 multiplied by 5 is 10, and adding 32 gives 42.")


def test_terminal_example_rejected_with_feedback() -> None:
    proc = run_example("n\nplease use 3 instead\n")
    assert proc.returncode == 0, proc.stderr
    expected = rejection_message("multiply", "please use 3 instead")
    assert proc.stdout.splitlines()[-1].endswith(expected)
    assert "gives 42" not in proc.stdout


def test_terminal_example_without_input_fails_closed() -> None:
    proc = run_example("")
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.splitlines()[-1]
    assert "multiply was not run:" in last and "gives 42" not in proc.stdout


def test_example_real_model_path() -> None:
    # OPENAI_API_KEY + OPENAI_BASE_URL: the example talks to "a real model", here a scripted
    # model started by the test, exactly as it would to an OpenAI-compatible server.
    with ScriptedModel(math_script()) as model:
        base_url = model.base_url
        env = {**os.environ, "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": base_url}
        proc = run_example("y\n", env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"Using the real model gpt-4o-mini at {base_url} (OPENAI_API_KEY is set)."
    assert lines[-1].endswith("Agent: 2 multiplied by 5 is 10, and adding 32 gives 42.")
    assert len(model.requests) == 3 and model.errors == []
