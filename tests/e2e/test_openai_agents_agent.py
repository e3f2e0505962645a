"""The OpenAI Agents SDK's real agent loop (``Runner`` with the Responses API, and with chat
completions) against the scripted model over HTTP: guarded tools from
``functionlayer_openai_agents``, and the SDK's own approvals (``needs_approval=True``
interruptions) decided through FunctionLayer, in the same process and paused in one process
then resumed in another after a person decided in the server's inbox."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from agents import (
    Agent,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)
from agents.models.interface import Model
from functionlayer import FunctionLayer, group_id_for
from functionlayer._feedback import rejection_message
from functionlayer.adapters import edits_unsupported_message
from functionlayer.testing import ScriptedHuman, approve, edit, reject
from functionlayer.testing.model import (
    ScriptedModel,
    math_script,
    text,
    tool_call,
    tool_calls,
    tool_results,
)
from functionlayer_openai_agents import adecide, decide, tools
from openai import AsyncOpenAI

from tests._support.servers import ServerProcess
from tests.e2e import _support
from tests.e2e._pause import (
    agent_env,
    approval_server,
    executions,
    person_decides,
    resume_while_person_decides,
    run_agent,
)
from tests.e2e._support import model_call_ids

set_tracing_disabled(True)  # the SDK would export traces to api.openai.com

TASK = "multiply 2 and 5, then add 32 to the result"
APIS = ["responses", "chat_completions"]
__all__ = ["approval_server"]  # the fixture, imported for this module's tests


def model_for(scripted: ScriptedModel, api: str) -> Model:
    client = AsyncOpenAI(base_url=scripted.base_url, api_key="unused", max_retries=0)
    if api == "responses":
        return OpenAIResponsesModel("gpt-4o-mini", client)
    return OpenAIChatCompletionsModel("gpt-4o-mini", client)


class Calculator(_support.Calculator):
    run_id = "openai-agents-e2e"
    make_tools = tools


def agent_for(scripted: ScriptedModel, api: str, agent_tools: list[Any]) -> Agent[Any]:
    return Agent(name="math", model=model_for(scripted, api), tools=agent_tools)


@pytest.mark.parametrize("api", APIS)
def test_approved_runs_once_and_answer_uses_result(api: str) -> None:
    human = ScriptedHuman([approve()])
    calculator = Calculator(human)
    with ScriptedModel(math_script()) as model:
        result = Runner.run_sync(agent_for(model, api, calculator.tools), TASK)
    assert calculator.multiplied == [(2, 5)]
    assert result.final_output == "2 multiplied by 5 is 10, and adding 32 gives 42."
    assert [(r.name, r.content) for r in tool_results(model.requests[-1])] == [
        ("multiply", "10"),
        ("add", "42"),
    ]
    [asked] = human.function_call_requests
    assert asked.call_id == model_call_ids(model.requests[1])[0]  # the model's own call id
    assert model.errors == []


@pytest.mark.parametrize("api", APIS)
def test_rejected_never_runs_and_model_gets_the_exact_feedback(api: str) -> None:
    human = ScriptedHuman([reject("use 3 instead of 2")])
    calculator = Calculator(human)
    with ScriptedModel(math_script()) as model:
        result = Runner.run_sync(agent_for(model, api, calculator.tools), TASK)
    assert calculator.multiplied == []
    expected = rejection_message("multiply", "use 3 instead of 2")
    [feedback] = tool_results(model.requests[1])
    assert (feedback.name, feedback.content) == ("multiply", expected)
    assert expected in result.final_output
    assert len(model.requests) == 2


def test_async_run_with_async_tool() -> None:
    human = ScriptedHuman([approve()])
    calculator = Calculator(human, use_async=True)
    with ScriptedModel(math_script()) as model:
        result = asyncio.run(Runner.run(agent_for(model, "responses", calculator.tools), TASK))
    assert calculator.multiplied == [(2, 5)]
    assert result.final_output.endswith("gives 42.")


def test_streamed_run_over_chat_completions() -> None:
    # The scripted model streams chat completions only (not the Responses API).
    human = ScriptedHuman([approve()])
    calculator = Calculator(human)

    async def run() -> str:
        streamed = Runner.run_streamed(agent_for(model, "chat_completions", calculator.tools), TASK)
        async for _ in streamed.stream_events():
            pass
        return str(streamed.final_output)

    with ScriptedModel(math_script()) as model:
        output = asyncio.run(run())
    assert calculator.multiplied == [(2, 5)]
    assert output.endswith("gives 42.")
    assert all(request.get("stream") for request in model.requests)


@pytest.mark.parametrize("api", APIS)
def test_several_calls_in_one_turn_each_get_their_own_decision(api: str) -> None:
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
        Runner.run_sync(agent_for(model, api, calculator.tools), "two products")
    assert calculator.multiplied == [(4, 5)]
    results = {r.call_id: r.content for r in tool_results(model.requests[1])}
    assert results == {
        "call_ok": "20",
        "call_no": rejection_message("multiply", "too many at once"),
    }


# -- the SDK's own approvals, decided through FunctionLayer -------------------------------------


class NativeCalculator:
    """``multiply`` with the SDK's ``needs_approval=True``: not guarded by FunctionLayer."""

    def __init__(self) -> None:
        self.multiplied: list[tuple[int, int]] = []

        @function_tool(needs_approval=True)
        def multiply(x: int, y: int) -> int:
            """Multiply two integers."""
            self.multiplied.append((x, y))
            return x * y

        @function_tool
        def add(x: int, y: int) -> int:
            """Add two integers."""
            return x + y

        self.tools = [multiply, add]


@pytest.mark.parametrize("api", APIS)
def test_interruptions_decided_through_functionlayer(api: str) -> None:
    human = ScriptedHuman(
        {"call_ok": approve(), "call_no": reject("not this one"), "call_edit": edit(x=1, y=1)}
    )
    fl = FunctionLayer(backend=human)
    calculator = NativeCalculator()
    script = [
        tool_calls(
            tool_call("multiply", {"x": 2, "y": 5}, id="call_ok"),
            tool_call("multiply", {"x": 7, "y": 7}, id="call_no"),
            tool_call("multiply", {"x": 9, "y": 9}, id="call_edit"),
        ),
        text(lambda request: " | ".join(r.content for r in tool_results(request))),
    ]
    with ScriptedModel(script) as model:
        agent = agent_for(model, api, calculator.tools)
        first = Runner.run_sync(agent, "three products")
        assert sorted(str(item.call_id) for item in first.interruptions) == [
            "call_edit",
            "call_no",
            "call_ok",
        ]
        assert calculator.multiplied == []
        Runner.run_sync(agent, decide(fl, first))
    assert calculator.multiplied == [(2, 5)]
    results = {r.call_id: r.content for r in tool_results(model.requests[1])}
    assert results == {
        "call_ok": "10",
        "call_no": rejection_message("multiply", "not this one"),
        # The SDK cannot run edited arguments: nothing runs, and the model learns why.
        "call_edit": edits_unsupported_message("multiply", {"x": 9, "y": 9}, {"x": 1, "y": 1}),
    }
    [asked] = [r for r in human.function_call_requests if r.call_id == "call_ok"]
    assert asked.spec.description == "Multiply two integers."
    # The turn's interruptions are one review group, every request out before the first wait.
    groups = {r.spec.group_id for r in human.function_call_requests}
    assert groups == {group_id_for(["call_ok", "call_no", "call_edit"])}


def test_adecide_fails_closed_when_no_decision_can_be_had() -> None:
    fl = FunctionLayer(backend=ScriptedHuman([]))
    calculator = NativeCalculator()

    async def run() -> Any:
        agent = agent_for(model, "responses", calculator.tools)
        first = await Runner.run(agent, TASK)
        return await Runner.run(agent, await adecide(fl, first))

    with ScriptedModel(math_script()) as model:
        result = asyncio.run(run())
    assert calculator.multiplied == []
    [told] = tool_results(model.requests[1])
    assert told.content.startswith("multiply was not run:"), told.content
    assert "Nothing was done" in result.final_output


# -- pause in one process, a person decides in the inbox, resume in another -----------------------


def test_pause_then_person_approves_in_inbox_then_another_process_resumes(
    approval_server: ServerProcess, tmp_path: Path
) -> None:
    state, ran = tmp_path / "paused.json", tmp_path / "executions.jsonl"
    args = [str(state), str(ran)]
    with ScriptedModel(math_script()) as model:
        env = agent_env(approval_server, model.base_url)
        first = run_agent("_openai_agents_pause_agent.py", ["pause", *args], env)
        assert first.returncode == 0, first.stderr
        [call_id] = first.stdout.split("PAUSED", 1)[1].split()
        assert len(model.requests) == 1  # the run stopped at the tool call
        early = run_agent("_openai_agents_pause_agent.py", ["resume", *args], env)
        assert early.returncode == 3, early.stderr  # a non-blocking check: still pending
        # Process 2 now waits for the decision; the person decides while it waits.
        resumed = resume_while_person_decides(
            "_openai_agents_pause_agent.py", args, env, approval_server, call_id
        )
        assert resumed.returncode == 0, resumed.stderr
        out = resumed.stdout
    assert out.strip() == "OUTPUT 2 multiplied by 5 is 10, and adding 32 gives 42."
    [ran_once] = executions(ran)
    assert (ran_once["x"], ran_once["y"]) == (2, 5)  # exactly once, with the approved arguments
    assert model_call_ids(model.requests[1]) == [call_id]
    assert [(r.name, r.content) for r in tool_results(model.requests[-1])] == [
        ("multiply", "10"),
        ("add", "42"),
    ]


def test_pause_rejected_in_inbox_resumes_with_the_feedback(
    approval_server: ServerProcess, tmp_path: Path
) -> None:
    state, ran = tmp_path / "paused.json", tmp_path / "executions.jsonl"
    args = [str(state), str(ran)]
    with ScriptedModel(math_script()) as model:
        env = agent_env(approval_server, model.base_url)
        first = run_agent("_openai_agents_pause_agent.py", ["pause", *args], env)
        assert first.returncode == 0, first.stderr
        [call_id] = first.stdout.split("PAUSED", 1)[1].split()
        person_decides(approval_server, call_id, "reject", feedback="use 3 instead of 2")
        second = run_agent("_openai_agents_pause_agent.py", ["resume", *args], env)
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
    return _support.run_example("openai_agents/math_example.py", answers, env)


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
        env = {
            **os.environ,
            "OPENAI_API_KEY": "sk-test",
            "OPENAI_BASE_URL": base_url,
            "OPENAI_AGENTS_DISABLE_TRACING": "1",  # a real key would also send traces
        }
        proc = run_example("y\n", env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == (
        f"Using the real model gpt-4o-mini at {base_url} (OPENAI_API_KEY is set)."
    )
    assert proc.stdout.splitlines()[-1].endswith("gives 42.")
    assert len(model.requests) == 3  # multiply, add, answer: all served by this model
    assert all("input" in request for request in model.requests)  # the Responses API
