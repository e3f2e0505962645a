"""The raw OpenAI client's tool-calling loop with ``functionlayer_openai`` against the scripted
model over HTTP, and the openai_client examples through the terminal backend."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import openai
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
from functionlayer_openai import Toolset, tools

from tests.e2e import _support

ROOT = Path(__file__).resolve().parents[2]
TASK = "multiply 2 and 5, then add 32 to the result"


class Calculator(_support.Calculator):
    run_id = "openai-e2e"
    make_tools = tools


def loop(model: ScriptedModel, toolset: Toolset, prompt: str = TASK) -> str:
    client = openai.OpenAI(base_url=model.base_url, api_key="unused", max_retries=0)
    messages: list[Any] = [{"role": "user", "content": prompt}]
    for _ in range(6):
        message = (
            client.chat.completions.create(
                model="gpt-4o-mini", messages=messages, tools=toolset.definitions
            )
            .choices[0]
            .message
        )
        messages.append(message)
        if not message.tool_calls:
            return message.content or ""
        messages.extend(toolset.run(message.tool_calls))
    raise AssertionError("the loop did not finish")


async def aloop(model: ScriptedModel, toolset: Toolset, prompt: str) -> str:
    client = openai.AsyncOpenAI(base_url=model.base_url, api_key="unused", max_retries=0)
    messages: list[Any] = [{"role": "user", "content": prompt}]
    for _ in range(6):
        reply = await client.chat.completions.create(
            model="gpt-4o-mini", messages=messages, tools=toolset.definitions
        )
        message = reply.choices[0].message
        messages.append(message)
        if not message.tool_calls:
            return message.content or ""
        messages.extend(await toolset.arun(message.tool_calls))
    raise AssertionError("the loop did not finish")


def test_approved_runs_once_and_answer_uses_result() -> None:
    human = ScriptedHuman([approve()])
    calculator = Calculator(human)
    with ScriptedModel(math_script()) as model:
        answer = loop(model, calculator.tools)
    assert calculator.multiplied == [(2, 5)]
    assert "42" in answer
    assert [(r.name, r.content) for r in tool_results(model.requests[-1])] == [
        ("multiply", "10"),
        ("add", "42"),
    ]
    [asked] = human.function_call_requests
    assert asked.call_id == tool_results(model.requests[1])[0].call_id
    assert model.requests[0]["tools"] == calculator.tools.definitions


def test_rejected_never_runs_and_model_gets_feedback() -> None:
    human = ScriptedHuman([reject("use 3 instead of 2")])
    calculator = Calculator(human)
    with ScriptedModel(math_script()) as model:
        answer = loop(model, calculator.tools)
    assert calculator.multiplied == []
    expected = rejection_message("multiply", "use 3 instead of 2")
    [feedback] = tool_results(model.requests[1])
    assert (feedback.name, feedback.content) == ("multiply", expected)
    assert expected in answer


def test_async_turn_runs_calls_concurrently_matched_by_id() -> None:
    human = ScriptedHuman({"call_ok": approve(), "call_no": reject("not that one")})
    calculator = Calculator(human)
    script = [
        tool_calls(
            tool_call("multiply", {"x": 2, "y": 3}, id="call_no"),
            tool_call("multiply", {"x": 4, "y": 5}, id="call_ok"),
            tool_call("add", "{not json", id="call_bad"),
            tool_call("divide", {"x": 1}, id="call_unknown"),
        ),
        text("done"),
    ]
    with ScriptedModel(script) as model:
        assert asyncio.run(aloop(model, calculator.tools, "go")) == "done"
    assert calculator.multiplied == [(4, 5)]
    results = {r.call_id: r.content for r in tool_results(model.requests[1])}
    assert results["call_ok"] == "20"
    assert results["call_no"] == rejection_message("multiply", "not that one")
    assert "not valid JSON" in results["call_bad"] and "Nothing was run" in results["call_bad"]
    assert "no tool named 'divide'" in results["call_unknown"]


def test_responses_api_loop() -> None:
    human = ScriptedHuman([approve()])
    calculator = Calculator(human)
    with ScriptedModel(math_script()) as model:
        client = openai.OpenAI(base_url=model.base_url, api_key="unused", max_retries=0)
        items: list[Any] = [{"role": "user", "content": TASK}]
        for _ in range(6):
            response = client.responses.create(
                model="gpt-4o-mini", input=items, tools=calculator.tools.responses_definitions
            )
            outputs = calculator.tools.run_responses(response)
            if not outputs:
                break
            items += [item.model_dump(exclude_none=True) for item in response.output]
            items += outputs
    assert calculator.multiplied == [(2, 5)]
    assert "42" in response.output_text


def run_example(name: str, answers: str) -> subprocess.CompletedProcess[str]:
    return _support.run_example(f"openai_client/{name}", answers)


@pytest.mark.parametrize(
    "example",
    ["math_example.py", "math_example_fetch_approval.py", "math_example_create_get.py"],
)
def test_terminal_example_approved(example: str) -> None:
    proc = run_example(example, "y\n")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("Using the scripted offline model at http://127.0.0.1:")
    assert "wants to call multiply" in proc.stdout
    assert lines[-1].endswith("Agent: 2 multiplied by 5 is 10, and adding 32 gives 42.")


@pytest.mark.parametrize(
    "example",
    ["math_example.py", "math_example_fetch_approval.py", "math_example_create_get.py"],
)
def test_terminal_example_rejected_with_feedback(example: str) -> None:
    proc = run_example(example, "n\nplease use 3 instead\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1].endswith(
        rejection_message("multiply", "please use 3 instead")
    )
    assert "gives 42" not in proc.stdout
