"""Pydantic AI's real agent loop (``Agent`` + ``OpenAIChatModel``) against the scripted model
over HTTP: guarded tools from ``functionlayer_pydantic_ai``, and Pydantic AI's own approvals
(``requires_approval=True``) decided through FunctionLayer, inline, after the run, and paused
in one process and resumed in another after a person decided in the server's inbox."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path
from typing import Any

from functionlayer import FunctionLayer, group_id_for
from functionlayer._feedback import rejection_message
from functionlayer.testing import ScriptedHuman, approve, edit, reject
from functionlayer.testing.model import (
    ScriptedModel,
    math_script,
    text,
    tool_call,
    tool_calls,
    tool_results,
)
from functionlayer_pydantic_ai import approval_handler, decide, tools
from pydantic_ai import Agent, Tool
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider
from pydantic_ai.tools import DeferredToolRequests

from tests._support.servers import ServerProcess
from tests.e2e import _support
from tests.e2e._pause import (
    agent_env,
    approval_server,
    executions,
    person_decides,
    run_agent,
)

TASK = "multiply 2 and 5, then add 32 to the result"
__all__ = ["approval_server"]  # the fixture, imported for this module's tests


class Calculator(_support.Calculator):
    run_id = "pydantic-ai-e2e"
    make_tools = tools


def chat_model(model: ScriptedModel) -> OpenAIChatModel:
    return OpenAIChatModel(
        "gpt-4o-mini", provider=OpenAIProvider(base_url=model.base_url, api_key="unused")
    )


def call_ids(request: dict[str, Any]) -> list[str]:
    return [c["id"] for m in request["messages"] for c in m.get("tool_calls") or []]


def test_approved_runs_once_and_answer_uses_result() -> None:
    human = ScriptedHuman([approve()])
    calculator = Calculator(human)
    with ScriptedModel(math_script()) as model:
        result = Agent(chat_model(model), tools=calculator.tools).run_sync(TASK)
    assert calculator.multiplied == [(2, 5)]
    assert result.output == "2 multiplied by 5 is 10, and adding 32 gives 42."
    assert [(r.name, r.content) for r in tool_results(model.requests[-1])] == [
        ("multiply", "10"),
        ("add", "42"),
    ]
    [asked] = human.function_call_requests
    assert asked.call_id == call_ids(model.requests[1])[0]  # the model's own tool call id
    assert model.errors == []


def test_rejected_never_runs_and_model_gets_the_exact_feedback() -> None:
    human = ScriptedHuman([reject("use 3 instead of 2")])
    calculator = Calculator(human)
    with ScriptedModel(math_script()) as model:
        result = Agent(chat_model(model), tools=calculator.tools).run_sync(TASK)
    assert calculator.multiplied == []
    expected = rejection_message("multiply", "use 3 instead of 2")
    [feedback] = tool_results(model.requests[1])
    assert (feedback.name, feedback.content) == ("multiply", expected)
    assert expected in result.output
    assert len(model.requests) == 2


def test_async_run_with_async_tool() -> None:
    human = ScriptedHuman([approve()])
    calculator = Calculator(human, use_async=True)
    with ScriptedModel(math_script()) as model:
        result = asyncio.run(Agent(chat_model(model), tools=calculator.tools).run(TASK))
    assert calculator.multiplied == [(2, 5)]
    assert result.output.endswith("gives 42.")


def test_several_calls_in_one_turn_each_get_their_own_decision() -> None:
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
        Agent(chat_model(model), tools=calculator.tools).run_sync("two products")
    assert calculator.multiplied == [(4, 5)]
    results = {r.call_id: r.content for r in tool_results(model.requests[1])}
    assert results == {
        "call_ok": "20",
        "call_no": rejection_message("multiply", "too many at once"),
    }


# -- Pydantic AI's own approvals, decided through FunctionLayer ---------------------------------


class NativeCalculator:
    """``multiply`` with Pydantic AI's ``requires_approval=True``: not guarded by FunctionLayer."""

    def __init__(self) -> None:
        self.multiplied: list[tuple[int, int]] = []

        def multiply(x: int, y: int) -> int:
            """Multiply two integers."""
            self.multiplied.append((x, y))
            return x * y

        def add(x: int, y: int) -> int:
            """Add two integers."""
            return x + y

        self.tools = [Tool(multiply, requires_approval=True), Tool(add)]


def test_inline_handler_applies_edits_and_rejections_through_the_real_loop() -> None:
    human = ScriptedHuman({"call_edit": edit(x=3, y=5), "call_no": reject("not this one")})
    fl = FunctionLayer(backend=human)
    calculator = NativeCalculator()
    script = [
        tool_calls(
            tool_call("multiply", {"x": 2, "y": 5}, id="call_edit"),
            tool_call("multiply", {"x": 7, "y": 7}, id="call_no"),
        ),
        text(lambda request: " | ".join(r.content for r in tool_results(request))),
    ]
    with ScriptedModel(script) as model:
        agent = Agent(
            chat_model(model), tools=calculator.tools, capabilities=[approval_handler(fl)]
        )
        result = agent.run_sync("two products")
    assert calculator.multiplied == [(3, 5)]  # exactly the approved (edited) arguments
    results = {r.call_id: r.content for r in tool_results(model.requests[1])}
    assert results == {"call_edit": "15", "call_no": rejection_message("multiply", "not this one")}
    assert result.output == " | ".join(r.content for r in tool_results(model.requests[1]))
    assert sorted(r.call_id for r in human.function_call_requests) == ["call_edit", "call_no"]
    [edited] = [r for r in human.function_call_requests if r.call_id == "call_edit"]
    assert (edited.spec.fn, edited.spec.kwargs) == ("multiply", {"x": 2, "y": 5})
    # The turn's deferred calls are one review group.
    groups = {r.spec.group_id for r in human.function_call_requests}
    assert groups == {group_id_for(["call_edit", "call_no"])}


def test_decide_turns_deferred_requests_into_results_for_the_next_run() -> None:
    human = ScriptedHuman([approve()])
    fl = FunctionLayer(backend=human)
    calculator = NativeCalculator()
    with ScriptedModel(math_script()) as model:
        agent = Agent(
            chat_model(model), tools=calculator.tools, output_type=[str, DeferredToolRequests]
        )
        first = agent.run_sync(TASK)
        assert isinstance(first.output, DeferredToolRequests)
        assert calculator.multiplied == []
        second = agent.run_sync(
            message_history=first.all_messages(), deferred_tool_results=decide(fl, first)
        )
    assert calculator.multiplied == [(2, 5)]
    assert second.output == "2 multiplied by 5 is 10, and adding 32 gives 42."
    [asked] = human.function_call_requests
    assert asked.call_id == first.output.approvals[0].tool_call_id


def test_inline_handler_fails_closed_when_no_decision_can_be_had() -> None:
    fl = FunctionLayer(backend=ScriptedHuman([]))  # nobody to answer
    calculator = NativeCalculator()
    with ScriptedModel(math_script()) as model:
        agent = Agent(
            chat_model(model), tools=calculator.tools, capabilities=[approval_handler(fl)]
        )
        result = agent.run_sync(TASK)
    assert calculator.multiplied == []
    [told] = tool_results(model.requests[1])
    assert told.content.startswith("multiply was not run:"), told.content
    assert "Nothing was done" in result.output


# -- pause in one process, a person decides in the inbox, resume in another -----------------------


def test_pause_then_person_decides_in_inbox_then_another_process_resumes(
    approval_server: ServerProcess, tmp_path: Path
) -> None:
    state, ran = tmp_path / "paused.json", tmp_path / "executions.jsonl"
    args = [str(state), str(ran)]
    with ScriptedModel(math_script()) as model:
        env = agent_env(approval_server, model.base_url)
        first = run_agent("_pydantic_ai_pause_agent.py", ["pause", *args], env)
        assert first.returncode == 0, first.stderr
        [call_id] = first.stdout.split("PAUSED", 1)[1].split()
        assert len(model.requests) == 1  # the run stopped at the tool call
        # The request exists on the server, pending, and nothing ran.
        with approval_server.client() as api:
            pending = api.get(f"/function_calls/{call_id}").json()
        assert pending["spec"]["kwargs"] == {"x": 2, "y": 5}
        assert pending["status"]["approved"] is None
        # A non-blocking check from a second process finds it pending and changes nothing.
        early = run_agent("_pydantic_ai_pause_agent.py", ["resume", *args], env)
        assert early.returncode == 3, early.stderr
        assert executions(ran) == []
        person_decides(approval_server, call_id, "edit", edited_kwargs='{"x": 3, "y": 5}')
        second = run_agent("_pydantic_ai_pause_agent.py", ["resume", *args], env)
        assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "OUTPUT 2 multiplied by 5 is 15, and adding 32 gives 47."
    [ran_once] = executions(ran)
    assert (ran_once["x"], ran_once["y"]) == (3, 5)  # exactly once, with the approved arguments
    assert call_ids(model.requests[1]) == [call_id]  # the request's id is the model's tool call id
    assert [(r.name, r.content) for r in tool_results(model.requests[-1])] == [
        ("multiply", "15"),
        ("add", "47"),
    ]


def test_pause_rejected_in_inbox_resumes_with_the_feedback(
    approval_server: ServerProcess, tmp_path: Path
) -> None:
    state, ran = tmp_path / "paused.json", tmp_path / "executions.jsonl"
    args = [str(state), str(ran)]
    with ScriptedModel(math_script()) as model:
        env = agent_env(approval_server, model.base_url)
        first = run_agent("_pydantic_ai_pause_agent.py", ["pause", *args], env)
        assert first.returncode == 0, first.stderr
        [call_id] = first.stdout.split("PAUSED", 1)[1].split()
        person_decides(approval_server, call_id, "reject", feedback="use 3 instead of 2")
        second = run_agent("_pydantic_ai_pause_agent.py", ["resume", *args], env)
        assert second.returncode == 0, second.stderr
    assert executions(ran) == []
    expected = rejection_message("multiply", "use 3 instead of 2")
    assert [(r.name, r.content) for r in tool_results(model.requests[-1])] == [
        ("multiply", expected)
    ]


# -- the example --------------------------------------------------------------------------------


def run_example(
    answers: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return _support.run_example("pydantic_ai/math_example.py", answers, env)


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
    assert proc.stdout.splitlines()[-1].endswith(
        rejection_message("multiply", "please use 3 instead")
    )
    assert "gives 42" not in proc.stdout


def test_terminal_example_without_input_fails_closed() -> None:
    proc = run_example("")
    assert proc.returncode == 0, proc.stderr
    assert "multiply was not run:" in proc.stdout.splitlines()[-1]
    assert "gives 42" not in proc.stdout


def test_example_with_a_real_model_configuration() -> None:
    """OPENAI_API_KEY + OPENAI_BASE_URL: the example talks to that server, not its own."""
    with ScriptedModel(math_script()) as model:
        base_url = model.base_url
        env = {**os.environ, "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": base_url}
        proc = run_example("y\n", env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == (
        f"Using the real model gpt-4o-mini at {base_url} (OPENAI_API_KEY is set)."
    )
    assert proc.stdout.splitlines()[-1].endswith("gives 42.")
    assert len(model.requests) == 3  # multiply, add, answer: all served by this model
    assert model.requests[0]["model"] == "gpt-4o-mini"
