"""LangChain's real agent loop (``create_agent`` + ``ChatOpenAI``) against the scripted model
over HTTP, with guarded tools from ``functionlayer_langchain``."""

from __future__ import annotations

import asyncio
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
from functionlayer_langchain import tools
from langchain.agents import create_agent
from langchain_openai import ChatOpenAI

from tests.e2e import _support

ROOT = Path(__file__).resolve().parents[2]
TASK = "multiply 2 and 5, then add 32 to the result"


class Calculator(_support.Calculator):
    run_id = "langchain-e2e"
    make_tools = tools


def agent_for(model: ScriptedModel, calculator: Calculator, *, streaming: bool = False) -> Any:
    llm = ChatOpenAI(
        model="gpt-4o-mini",
        base_url=model.base_url,
        api_key="unused",  # type: ignore[arg-type]
        streaming=streaming,
        max_retries=0,
    )
    return create_agent(llm, tools=calculator.tools)


def assistant_call_ids(request: dict[str, Any]) -> list[str]:
    return [
        call["id"] for message in request["messages"] for call in message.get("tool_calls") or []
    ]


@pytest.mark.parametrize("streaming", [False, True], ids=["plain", "streaming"])
def test_approved_runs_once_and_answer_uses_result(streaming: bool) -> None:
    human = ScriptedHuman([approve()])
    calculator = Calculator(human)
    with ScriptedModel(math_script()) as model:
        result = agent_for(model, calculator, streaming=streaming).invoke(
            {"messages": [("user", TASK)]}
        )
    assert calculator.multiplied == [(2, 5)]
    assert "42" in result["messages"][-1].content
    # The model saw multiply's real result, then add's.
    assert [(r.name, r.content) for r in tool_results(model.requests[-1])] == [
        ("multiply", "10"),
        ("add", "42"),
    ]
    # The approval was asked under the model's own tool call id.
    [asked] = human.function_call_requests
    assert asked.call_id == assistant_call_ids(model.requests[1])[0]
    assert model.errors == []


def test_rejected_never_runs_and_model_gets_feedback() -> None:
    human = ScriptedHuman([reject("use 3 instead of 2")])
    calculator = Calculator(human)
    with ScriptedModel(math_script()) as model:
        result = agent_for(model, calculator).invoke({"messages": [("user", TASK)]})
    assert calculator.multiplied == []
    expected = rejection_message("multiply", "use 3 instead of 2")
    # The next request the model received carries the feedback as multiply's tool result.
    [feedback] = tool_results(model.requests[1])
    assert (feedback.name, feedback.content) == ("multiply", expected)
    assert expected in result["messages"][-1].content
    assert len(model.requests) == 2  # the loop went on to a final answer, no add


def test_async_agent_with_async_tool() -> None:
    human = ScriptedHuman([approve()])
    calculator = Calculator(human, use_async=True)
    with ScriptedModel(math_script()) as model:
        agent = agent_for(model, calculator, streaming=True)
        result = asyncio.run(agent.ainvoke({"messages": [("user", TASK)]}))
    assert calculator.multiplied == [(2, 5)]
    assert "42" in result["messages"][-1].content


def test_parallel_calls_in_one_turn_each_get_their_own_decision() -> None:
    human = ScriptedHuman({"call_ok": approve(), "call_no": reject("too many at once")})
    calculator = Calculator(human)
    script = [
        tool_calls(
            tool_call("multiply", {"x": 2, "y": 3}, id="call_no"),
            tool_call("multiply", {"x": 4, "y": 5}, id="call_ok"),
        ),
        text(lambda request: " | ".join(r.content for r in tool_results(request))),
    ]
    with ScriptedModel(script) as model:
        agent_for(model, calculator).invoke({"messages": [("user", "two products")]})
    assert calculator.multiplied == [(4, 5)]
    results = {r.call_id: r.content for r in tool_results(model.requests[1])}
    assert results == {
        "call_ok": "20",
        "call_no": rejection_message("multiply", "too many at once"),
    }


def run_example(name: str, answers: str) -> subprocess.CompletedProcess[str]:
    return _support.run_example(f"langchain/{name}", answers)


def test_terminal_example_approved() -> None:
    proc = run_example("math_example.py", "y\n")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("Using the scripted offline model at http://127.0.0.1:")
    assert "wants to call multiply" in proc.stdout
    # Piped answers are not echoed, so the answer follows the prompt on the same line.
    assert lines[-1].endswith("Agent: 2 multiplied by 5 is 10, and adding 32 gives 42.")


def test_terminal_example_rejected_with_feedback() -> None:
    proc = run_example("math_example.py", "n\nplease use 3 instead\n")
    assert proc.returncode == 0, proc.stderr
    expected = rejection_message("multiply", "please use 3 instead")
    assert proc.stdout.splitlines()[-1].endswith(expected)
    assert "gives 42" not in proc.stdout


def test_terminal_example_without_input_fails_closed() -> None:
    proc = run_example("math_example.py", "")
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.splitlines()[-1]
    assert "multiply was not run:" in last and "gives 42" not in proc.stdout


def test_human_as_tool_example() -> None:
    proc = run_example("human_as_tool.py", "Ada Lovelace\n")
    assert proc.returncode == 0, proc.stderr
    assert "What is the name of our newest customer?" in proc.stdout
    assert proc.stdout.splitlines()[-1].endswith(
        "Agent: Welcome aboard, Ada Lovelace! We are glad to have you with us."
    )
