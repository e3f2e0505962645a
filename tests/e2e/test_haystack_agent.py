"""Haystack's real ``Agent`` (``run`` and ``run_async``, ``OpenAIChatGenerator``) against the
scripted model over HTTP: guarded tools from ``functionlayer_haystack``, and Haystack's own
``ConfirmationHook`` answered by FunctionLayer through ``FunctionLayerConfirmation``."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from functionlayer._feedback import rejection_message
from functionlayer.testing import ScriptedHuman, approve, edit, fail, reject, respond
from functionlayer.testing.model import (
    ScriptedModel,
    math_script,
    text,
    tool_call,
    tool_calls,
    tool_results,
)
from functionlayer_haystack import FunctionLayerConfirmation, tools
from functionlayer_haystack._confirmation import edited_parameters_message
from haystack.components.agents import Agent
from haystack.components.generators.chat import OpenAIChatGenerator
from haystack.dataclasses import ChatMessage
from haystack.hooks.human_in_the_loop import ConfirmationHook
from haystack.utils import Secret

from tests.e2e import _support

ROOT = Path(__file__).resolve().parents[2]
TASK = "multiply 2 and 5, then add 32 to the result"


class Calculator(_support.Calculator):
    run_id = "haystack-e2e"
    make_tools = tools


def agent_for(model: ScriptedModel, calculator: Calculator, **agent_options: Any) -> Agent:
    generator = OpenAIChatGenerator(
        model="gpt-4o-mini",
        api_key=Secret.from_token("unused"),
        api_base_url=model.base_url,
        max_retries=0,
    )
    return Agent(chat_generator=generator, tools=calculator.tools, **agent_options)


def run(agent: Agent, message: str, *, use_async: bool) -> str:
    messages = [ChatMessage.from_user(message)]
    if use_async:
        result = asyncio.run(agent.run_async(messages=messages))
    else:
        result = agent.run(messages=messages)
    return str(result["messages"][-1].text)


def assistant_call_ids(request: dict[str, Any]) -> list[str]:
    return [
        call["id"] for message in request["messages"] for call in message.get("tool_calls") or []
    ]


MODES = pytest.mark.parametrize(
    "use_async", [False, True], ids=["Agent.run+sync-fn", "Agent.run_async+async-fn"]
)


# -- guarded tools -------------------------------------------------------------------------------
@MODES
def test_approved_runs_once_and_answer_uses_result(use_async: bool) -> None:
    human = ScriptedHuman([approve()])
    calculator = Calculator(human, use_async=use_async)
    with ScriptedModel(math_script()) as model:
        answer = run(agent_for(model, calculator), TASK, use_async=use_async)
    assert calculator.multiplied == [(2, 5)]
    assert answer == "2 multiplied by 5 is 10, and adding 32 gives 42."
    assert [(r.name, r.content) for r in tool_results(model.requests[-1])] == [
        ("multiply", "10"),
        ("add", "42"),
    ]
    [asked] = human.function_call_requests
    assert asked.call_id == assistant_call_ids(model.requests[1])[0]
    assert model.errors == []


@MODES
def test_rejected_never_runs_and_model_gets_feedback(use_async: bool) -> None:
    human = ScriptedHuman([reject("use 3 instead of 2")])
    calculator = Calculator(human, use_async=use_async)
    with ScriptedModel(math_script()) as model:
        answer = run(agent_for(model, calculator), TASK, use_async=use_async)
    assert calculator.multiplied == []
    expected = rejection_message("multiply", "use 3 instead of 2")
    [feedback] = tool_results(model.requests[1])
    assert (feedback.name, feedback.content) == ("multiply", expected)
    assert expected in answer
    assert len(model.requests) == 2


@MODES
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
        run(agent_for(model, calculator), "three products", use_async=use_async)
    assert sorted(calculator.multiplied) == [(4, 5), (6, 7)]
    results = {r.call_id: r.content for r in tool_results(model.requests[1])}
    assert results == {
        "call_ok": "20",
        "call_ok2": "42",
        "call_no": rejection_message("multiply", "too many at once"),
    }
    asked = {r.call_id: r.spec.kwargs for r in human.function_call_requests}
    assert asked == {
        "call_no": {"x": 2, "y": 3},
        "call_ok": {"x": 4, "y": 5},
        "call_ok2": {"x": 6, "y": 7},
    }


# -- Haystack's ConfirmationHook, answered by FunctionLayer ----------------------------------------
def confirmed_agent(model: ScriptedModel, calculator: Calculator) -> Agent:
    strategy = FunctionLayerConfirmation(calculator.fl, timeout=5)
    hook = ConfirmationHook(confirmation_strategies={"multiply": strategy})
    return agent_for(model, calculator, hooks={"before_tool": [hook]})


@MODES
def test_confirmation_approved_runs_the_plain_tool_under_the_model_call_id(
    use_async: bool,
) -> None:
    human = ScriptedHuman([approve()])
    calculator = Calculator(human, use_async=use_async, guarded=False)
    with ScriptedModel(math_script()) as model:
        answer = run(confirmed_agent(model, calculator), TASK, use_async=use_async)
    assert calculator.multiplied == [(2, 5)]
    assert answer == "2 multiplied by 5 is 10, and adding 32 gives 42."
    [asked] = human.function_call_requests
    assert asked.call_id == assistant_call_ids(model.requests[1])[0]
    assert (asked.spec.fn, asked.spec.kwargs) == ("multiply", {"x": 2, "y": 5})
    assert asked.spec.description == "Multiply two integers."
    assert len(human.requests) == 1  # add has no strategy: nobody was asked about it


@MODES
def test_confirmation_rejected_feedback_is_the_tool_result(use_async: bool) -> None:
    human = ScriptedHuman([reject("use 3 instead of 2")])
    calculator = Calculator(human, use_async=use_async, guarded=False)
    with ScriptedModel(math_script()) as model:
        run(confirmed_agent(model, calculator), TASK, use_async=use_async)
    assert calculator.multiplied == []
    [feedback] = tool_results(model.requests[1])
    assert (feedback.name, feedback.content) == (
        "multiply",
        rejection_message("multiply", "use 3 instead of 2"),
    )


@MODES
def test_confirmation_edit_runs_with_the_edited_arguments(use_async: bool) -> None:
    human = ScriptedHuman([edit(x=3, y=5)])
    calculator = Calculator(human, use_async=use_async, guarded=False)
    with ScriptedModel(math_script()) as model:
        answer = run(confirmed_agent(model, calculator), TASK, use_async=use_async)
    assert calculator.multiplied == [(3, 5)]
    assert answer == "2 multiplied by 5 is 15, and adding 32 gives 47."
    # The model is told what changed (Haystack puts the note before the call), then the result.
    messages = model.requests[1]["messages"]
    note = edited_parameters_message("multiply", {"x": 2, "y": 5}, {"x": 3, "y": 5})
    assert {"role": "user", "content": note} in messages
    assert [(r.name, r.content) for r in tool_results(model.requests[1])] == [("multiply", "15")]


def test_confirmation_matches_several_calls_by_id_and_answers_instead() -> None:
    human = ScriptedHuman(
        {"call_a": approve(), "call_b": respond("It is 12, no need."), "call_c": fail()}
    )
    calculator = Calculator(human, guarded=False)
    script = [
        tool_calls(
            tool_call("multiply", {"x": 1, "y": 2}, id="call_c"),
            tool_call("multiply", {"x": 3, "y": 4}, id="call_b"),
            tool_call("multiply", {"x": 5, "y": 6}, id="call_a"),
        ),
        text("done"),
    ]
    with ScriptedModel(script) as model:
        run(confirmed_agent(model, calculator), "three", use_async=False)
    assert calculator.multiplied == [(5, 6)]
    results = {r.call_id: r.content for r in tool_results(model.requests[1])}
    assert results["call_a"] == "30"
    assert results["call_b"] == "It is 12, no need."
    # No decision possible (the backend failed): fail closed, naming the model's call id.
    assert results["call_c"].startswith("multiply was not run:")
    assert results["call_c"].endswith("kept under call id call_c.")
    assert sorted(r.call_id for r in human.function_call_requests) == ["call_a", "call_b"]


# -- the example ----------------------------------------------------------------------------------
def run_example(
    answers: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return _support.run_example("haystack/math_example.py", answers, env, timeout=180)


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
    with ScriptedModel(math_script()) as model:
        base_url = model.base_url
        env = {**os.environ, "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": base_url}
        proc = run_example("y\n", env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"Using the real model gpt-4o-mini at {base_url} (OPENAI_API_KEY is set)."
    assert lines[-1].endswith("Agent: 2 multiplied by 5 is 10, and adding 32 gives 42.")
    assert len(model.requests) == 3 and model.errors == []
