"""CrewAI's real agent loop (Crew/Agent/Task, native tool calls) against the scripted model over HTTP."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import functionlayer_crewai._tool as crewai_tool_module
import pytest
from crewai import LLM, Agent, Crew, Task
from crewai.utilities.agent_utils import (
    convert_tools_to_openai_schema,
    execute_single_native_tool_call,
)
from functionlayer import FunctionLayer
from functionlayer.testing import ScriptedHuman, approve, reject
from functionlayer.testing.model import (
    ScriptedModel,
    math_script,
    text,
    tool_call,
    tool_calls,
    tool_results,
)
from functionlayer_crewai import CallIdNotFoundWarning, tools

from tests.e2e import _support

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "crewai" / "crewai_math.py"


class Calculator(_support.Calculator):
    run_id = "crewai-e2e"
    make_tools = tools


def kickoff(model: ScriptedModel, calculator: Calculator) -> Any:
    llm = LLM(model="openai/gpt-4o", base_url=model.base_url, api_key="x")
    agent = Agent(
        role="Mathematician",
        goal="Solve arithmetic with tools.",
        backstory="You always use your tools.",
        tools=calculator.tools,
        llm=llm,
        max_iter=6,
    )
    task = Task(
        description="multiply 2 and 5, then add 32 to the result",
        expected_output="a number",
        agent=agent,
    )
    return Crew(agents=[agent], tasks=[task]).kickoff()


@pytest.fixture
def call_id_warnings(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[warnings.WarningMessage]]:
    """Every CallIdNotFoundWarning raised during the test, with the warn-once flag reset."""
    monkeypatch.setattr(crewai_tool_module._CALL_IDS, "warned", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def call_id_warnings_in(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, CallIdNotFoundWarning)]


def test_approved_call_runs_once_and_the_answer_uses_its_result(
    call_id_warnings: list[warnings.WarningMessage],
) -> None:
    human = ScriptedHuman([approve()])
    calculator = Calculator(human)
    with ScriptedModel(math_script()) as model:
        result = kickoff(model, calculator)
    # Found through CrewAI's own executor: nothing to warn about.
    assert call_id_warnings_in(call_id_warnings) == []

    assert calculator.multiplied == [(2, 5)]
    assert model.errors == []
    # The model saw multiply's real result and added 32 to it.
    after_multiply = tool_results(model.requests[1])
    assert [(r.name, r.content) for r in after_multiply] == [("multiply", "10")]
    assert "42" in result.raw
    # The approval was keyed by the model's own tool call id.
    (request,) = human.function_call_requests
    assert request.call_id == after_multiply[0].call_id
    assert request.spec.fn == "multiply" and request.spec.kwargs == {"x": 2, "y": 5}


def test_rejected_call_never_runs_and_the_model_gets_the_feedback() -> None:
    human = ScriptedHuman([reject("use 3 and 5 instead")])
    calculator = Calculator(human)
    with ScriptedModel(math_script()) as model:
        result = kickoff(model, calculator)

    assert calculator.multiplied == []
    (result_shown,) = tool_results(model.requests[1])
    assert result_shown.name == "multiply"
    assert result_shown.content == "User denied multiply with feedback: use 3 and 5 instead"
    assert "use 3 and 5 instead" in result.raw
    assert "42" not in result.raw


def test_several_calls_in_one_turn_are_decided_by_call_id() -> None:
    # CrewAI runs these two calls in parallel threads: the decisions must follow the ids.
    human = ScriptedHuman({"call_b": approve(), "call_a": reject("not this one")})
    calculator = Calculator(human)
    script = [
        tool_calls(
            tool_call("multiply", {"x": 2, "y": 5}, id="call_a"),
            tool_call("multiply", {"x": 3, "y": 7}, id="call_b"),
        ),
        text("done"),
    ]
    with ScriptedModel(script) as model:
        kickoff(model, calculator)

    assert calculator.multiplied == [(3, 7)]
    shown = {r.call_id: r.content for r in tool_results(model.requests[1])}
    assert shown == {"call_a": "User denied multiply with feedback: not this one", "call_b": "21"}


def test_exception_from_an_approved_function_follows_crewai_convention() -> None:
    human = ScriptedHuman([approve()])
    fl = FunctionLayer(backend=human)

    @fl.require_approval()
    def divide(x: int, y: int) -> float:
        """Divide x by y."""
        return x / y

    llm_tools = tools([divide])
    with ScriptedModel([tool_call("divide", {"x": 1, "y": 0}), text("cannot")]) as model:
        llm = LLM(model="openai/gpt-4o", base_url=model.base_url, api_key="x")
        agent = Agent(role="r", goal="g", backstory="b", tools=llm_tools, llm=llm, max_iter=3)
        task = Task(description="divide 1 by 0", expected_output="a number", agent=agent)
        Crew(agents=[agent], tasks=[task]).kickoff()

    (shown,) = tool_results(model.requests[1])
    # Not disguised as an approval failure: CrewAI's own tool-error text with the real error.
    assert shown.content == "Error executing tool: division by zero"


def test_outside_the_agent_loop_a_fresh_id_is_used_and_a_warning_is_shown_once(
    call_id_warnings: list[warnings.WarningMessage],
) -> None:
    human = ScriptedHuman([approve(), approve()])
    calculator = Calculator(human)
    multiply = calculator.tools[0]
    assert multiply.run(x=2, y=5) == 10
    assert multiply.run(x=3, y=5) == 15

    [message] = call_id_warnings_in(call_id_warnings)
    assert f"CrewAI {importlib.metadata.version('crewai')}" in message  # the installed release
    assert "a retried turn will ask the human again" in message
    first, second = human.function_call_requests
    assert first.call_id and second.call_id and first.call_id != second.call_id


def test_an_unknown_executor_warns_once_and_falls_back_to_a_fresh_id(
    call_id_warnings: list[warnings.WarningMessage], monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a CrewAI release that renames its executor looks like to the adapter.
    monkeypatch.setattr(crewai_tool_module._CALL_IDS, "codes", frozenset())
    human = ScriptedHuman([approve(), approve()])
    multiply = Calculator(human).tools[0]
    _, available, _ = convert_tools_to_openai_schema([multiply])
    for call_id in ("call_1", "call_2"):
        outcome = execute_single_native_tool_call(
            {
                "id": call_id,
                "type": "function",
                "function": {"name": "multiply", "arguments": json.dumps({"x": 2, "y": 5})},
            },
            available_functions=available,
            original_tools=[multiply],
            structured_tools=None,
            tools_handler=None,
            agent=None,
            task=None,
            crew=None,
            event_source=object(),
        )
        assert outcome.result == "10"
    assert len(call_id_warnings_in(call_id_warnings)) == 1
    used = [r.call_id for r in human.function_call_requests]
    assert len(set(used)) == 2 and not set(used) & {"call_1", "call_2"}


def test_inside_the_executor_the_model_id_is_used_without_a_warning(
    call_id_warnings: list[warnings.WarningMessage],
) -> None:
    human = ScriptedHuman([approve()])
    multiply = Calculator(human).tools[0]
    _, available, _ = convert_tools_to_openai_schema([multiply])
    outcome = execute_single_native_tool_call(
        {
            "id": "call_known",
            "type": "function",
            "function": {"name": "multiply", "arguments": json.dumps({"x": 2, "y": 5})},
        },
        available_functions=available,
        original_tools=[multiply],
        structured_tools=None,
        tools_handler=None,
        agent=None,
        task=None,
        crew=None,
        event_source=object(),
    )
    assert outcome.result == "10"
    assert [r.call_id for r in human.function_call_requests] == ["call_known"]
    assert call_id_warnings_in(call_id_warnings) == []


def run_example(answers: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "FUNCTIONLAYER_"))}
    return _support.run_example(str(EXAMPLE.relative_to(ROOT / "examples")), answers, env)


def test_example_in_the_terminal_approved() -> None:
    done = run_example("y\n")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Using the scripted offline model")
    assert "multiply" in done.stdout and "x: 2" in done.stdout
    assert lines[-1] == "Result: 2 multiplied by 5 is 10, and adding 32 gives 42."


def test_example_in_the_terminal_rejected_with_feedback() -> None:
    done = run_example("n\nplease use 3 and 5\n")
    assert done.returncode == 0, done.stderr
    last = done.stdout.splitlines()[-1]
    assert last.startswith("Result: ")
    assert "User denied multiply with feedback: please use 3 and 5" in last
    assert "42" not in last
