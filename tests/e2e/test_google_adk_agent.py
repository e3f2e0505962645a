"""Google ADK's real agent loop (``Runner.run_async`` on an ``LlmAgent`` with ADK's ``Gemini``
model, through ``google-genai``) against the scripted model over HTTP, in the Gemini API's wire
format: guarded tools from ``functionlayer_google_adk``, and ADK's own tool confirmations
(``require_confirmation=`` / ``tool_context.request_confirmation()``) decided through
FunctionLayer, in the same process and paused in one process then resumed in another after a
person decided in the server's inbox."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from functionlayer import FunctionLayer
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
from functionlayer_google_adk import ConfirmationPlugin, adecide, arun, tools
from google.adk.agents import Agent
from google.adk.events import Event
from google.adk.models.google_llm import Gemini
from google.adk.plugins import BasePlugin
from google.adk.runners import InMemoryRunner
from google.adk.tools import FunctionTool
from google.adk.tools.tool_context import ToolContext
from google.genai import types

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

TASK = "multiply 2 and 5, then add 32 to the result"
ANSWER = "2 multiplied by 5 is 10, and adding 32 gives 42."
__all__ = ["approval_server"]  # the fixture, imported for this module's tests


@pytest.fixture(autouse=True)
def _gemini_key(monkeypatch: pytest.MonkeyPatch) -> None:
    # google-genai wants a key; the scripted model ignores it.
    monkeypatch.setenv("GOOGLE_API_KEY", "unused")
    monkeypatch.delenv("GOOGLE_GENAI_USE_VERTEXAI", raising=False)


def gemini(scripted: ScriptedModel) -> Gemini:
    return Gemini(model="gemini-2.5-flash", base_url=scripted.gemini_base_url)


class Calculator(_support.Calculator):
    run_id = "google-adk-e2e"
    make_tools = tools


class NativeCalculator:
    """``multiply`` declared the ADK way (``require_confirmation=True``), not guarded."""

    def __init__(self) -> None:
        self.multiplied: list[tuple[int, int]] = []

        def multiply(x: int, y: int) -> int:
            """Multiply two integers."""
            self.multiplied.append((x, y))
            return x * y

        def add(x: int, y: int) -> int:
            """Add two integers."""
            return x + y

        self.tools: list[Any] = [FunctionTool(multiply, require_confirmation=True), add]


def final_text(events: Sequence[Event]) -> str:
    texts = [
        "".join(part.text or "" for part in event.content.parts)
        for event in events
        if event.is_final_response() and event.content and event.content.parts
    ]
    return texts[-1] if texts else ""


async def run_agent_loop(
    scripted: ScriptedModel,
    agent_tools: list[Any],
    task: str = TASK,
    *,
    fl: FunctionLayer | None = None,
    plugins: Sequence[BasePlugin] = (),
) -> list[Event]:
    """One user turn: with ``fl``, every confirmation pause is decided and resumed (``arun``)."""
    agent = Agent(name="math", model=gemini(scripted), tools=agent_tools)
    runner = InMemoryRunner(agent=agent, app_name="math", plugins=list(plugins))
    session = await runner.session_service.create_session(app_name="math", user_id="me")
    message = types.Content(role="user", parts=[types.Part(text=task)])
    if fl is None:
        stream = runner.run_async(user_id="me", session_id=session.id, new_message=message)
    else:
        stream = arun(runner, fl, user_id="me", session_id=session.id, new_message=message)
    return [event async for event in stream]


def model_call_ids(request: dict[str, Any]) -> list[str]:
    """The function call ids the model made, as the next request replays them."""
    return [c["id"] for m in request["messages"] for c in m.get("tool_calls") or []]


# -- guarded functions as ADK tools ---------------------------------------------------------------


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_approved_runs_once_and_answer_uses_result(use_async: bool) -> None:
    calculator = Calculator(ScriptedHuman([approve()]), use_async=use_async)
    with ScriptedModel(math_script()) as model:
        events = asyncio.run(run_agent_loop(model, calculator.tools))
    assert final_text(events) == ANSWER
    assert calculator.multiplied == [(2, 5)]
    [request] = calculator.fl.backend.function_call_requests  # type: ignore[attr-defined]
    assert [request.call_id] == model_call_ids(model.requests[1])[:1]  # the model's own id
    assert request.call_id.startswith("call_")
    assert [(r.name, r.content) for r in tool_results(model.requests[-1])] == [
        ("multiply", "10"),
        ("add", "42"),
    ]
    assert model.errors == []


def test_rejected_never_runs_and_model_gets_the_exact_feedback() -> None:
    calculator = Calculator(ScriptedHuman([reject("use smaller numbers")]))
    with ScriptedModel(math_script()) as model:
        events = asyncio.run(run_agent_loop(model, calculator.tools))
    assert calculator.multiplied == []
    expected = rejection_message("multiply", "use smaller numbers")
    assert [(r.name, r.content) for r in tool_results(model.requests[-1])] == [
        ("multiply", expected)
    ]
    assert final_text(events).endswith(expected)


def test_several_calls_in_one_turn_each_get_their_own_decision() -> None:
    human = ScriptedHuman({"call_a": approve(), "call_b": reject("not this one")})
    calculator = Calculator(human)
    script = [
        tool_calls(
            tool_call("multiply", {"x": 2, "y": 3}, id="call_b"),
            tool_call("multiply", {"x": 4, "y": 5}, id="call_a"),
        ),
        text("done"),
    ]
    with ScriptedModel(script) as model:
        events = asyncio.run(run_agent_loop(model, calculator.tools))
    assert final_text(events) == "done"
    assert calculator.multiplied == [(4, 5)]
    results = {r.call_id: r.content for r in tool_results(model.requests[-1])}
    assert results == {"call_a": "20", "call_b": rejection_message("multiply", "not this one")}
    assert sorted(r.call_id for r in human.function_call_requests) == ["call_a", "call_b"]


# -- ADK's own confirmations, decided through FunctionLayer ---------------------------------------


def test_require_confirmation_decided_inline_through_functionlayer() -> None:
    human = ScriptedHuman([approve()])
    fl = FunctionLayer(backend=human)
    calculator = NativeCalculator()
    with ScriptedModel(math_script()) as model:
        events = asyncio.run(
            run_agent_loop(model, calculator.tools, fl=fl, plugins=[ConfirmationPlugin()])
        )
    assert final_text(events) == ANSWER
    assert calculator.multiplied == [(2, 5)]
    [request] = human.function_call_requests
    assert request.call_id == model_call_ids(model.requests[1])[0]  # the model's call id
    assert (request.spec.fn, request.spec.kwargs) == ("multiply", {"x": 2, "y": 5})
    assert len(model.requests) == 3  # multiply, add, answer: the pause asked the model nothing


def test_require_confirmation_denied_gives_the_model_the_feedback() -> None:
    fl = FunctionLayer(backend=ScriptedHuman([reject("use 3 instead of 2")]))
    calculator = NativeCalculator()
    with ScriptedModel(math_script()) as model:
        asyncio.run(run_agent_loop(model, calculator.tools, fl=fl, plugins=[ConfirmationPlugin()]))
    assert calculator.multiplied == []
    expected = rejection_message("multiply", "use 3 instead of 2")
    assert [(r.name, r.content) for r in tool_results(model.requests[-1])] == [
        ("multiply", expected)
    ]


def test_approval_with_edits_is_a_denial_naming_the_arguments() -> None:
    fl = FunctionLayer(backend=ScriptedHuman([edit(x=3, y=5)]))
    calculator = NativeCalculator()
    with ScriptedModel(math_script()) as model:
        asyncio.run(run_agent_loop(model, calculator.tools, fl=fl, plugins=[ConfirmationPlugin()]))
    assert calculator.multiplied == []  # ADK cannot run other arguments than the model's
    expected = edits_unsupported_message("multiply", {"x": 2, "y": 5}, {"x": 3, "y": 5})
    assert [r.content for r in tool_results(model.requests[-1])] == [expected]


def test_tool_asking_for_confirmation_itself_is_decided_through_functionlayer() -> None:
    human = ScriptedHuman([approve()])
    fl = FunctionLayer(backend=human)
    ran: list[tuple[int, int]] = []
    payloads: list[Any] = []

    def multiply(x: int, y: int, tool_context: ToolContext) -> Any:
        """Multiply two integers."""
        confirmation = tool_context.tool_confirmation
        if confirmation is None:
            tool_context.request_confirmation(hint="multiply big numbers?", payload={"max": 100})
            return {"status": "waiting for confirmation"}
        if not confirmation.confirmed:
            return {"status": "not confirmed"}
        ran.append((x, y))
        payloads.append(confirmation.payload)
        return x * y

    def add(x: int, y: int) -> int:
        """Add two integers."""
        return x + y

    with ScriptedModel(math_script()) as model:
        events = asyncio.run(run_agent_loop(model, [multiply, add], fl=fl))
    assert final_text(events) == ANSWER
    assert ran == [(2, 5)]
    [request] = human.function_call_requests
    assert request.spec.description == "multiply big numbers?"  # the tool's hint, shown
    assert payloads == [{"max": 100}]  # the payload the tool asked for, given back unchanged


def test_adecide_fails_closed_when_no_decision_can_be_had() -> None:
    fl = FunctionLayer(backend=ScriptedHuman([]))
    calculator = NativeCalculator()

    async def first_run(model: ScriptedModel) -> list[Event]:
        return await run_agent_loop(model, calculator.tools)

    with ScriptedModel(math_script()) as model:
        events = asyncio.run(first_run(model))
        answers = asyncio.run(adecide(fl, events))
    assert answers is not None and answers.parts
    [part] = answers.parts
    assert part.function_response is not None
    response = part.function_response.response or {}
    assert response["confirmed"] is False
    assert response["payload"]["functionlayer"]["message"].startswith("multiply was not run:")
    assert calculator.multiplied == []


# -- pause in one process, a person decides in the inbox, resume in another -----------------------


@pytest.fixture
def adk_env(approval_server: ServerProcess) -> Iterator[tuple[ScriptedModel, dict[str, str]]]:
    with ScriptedModel(math_script()) as model:
        env = agent_env(approval_server, model.base_url)
        env.update(GEMINI_BASE_URL=model.gemini_base_url, GOOGLE_API_KEY="unused")
        env.pop("GOOGLE_GENAI_USE_VERTEXAI", None)
        yield model, env


def test_pause_then_person_approves_in_inbox_then_another_process_resumes(
    approval_server: ServerProcess,
    adk_env: tuple[ScriptedModel, dict[str, str]],
    tmp_path: Path,
) -> None:
    model, env = adk_env
    state, ran = tmp_path / "paused.json", tmp_path / "executions.jsonl"
    args = [str(state), str(ran)]
    first = run_agent("_google_adk_pause_agent.py", ["pause", *args], env)
    assert first.returncode == 0, first.stderr
    [call_id] = first.stdout.split("PAUSED", 1)[1].split()
    assert len(model.requests) == 1  # the run stopped at the tool call
    early = run_agent("_google_adk_pause_agent.py", ["resume", *args], env)
    assert early.returncode == 3, early.stderr  # a non-blocking check: still pending
    # Process 2 now waits for the decision; the person decides while it waits.
    resumed = resume_while_person_decides(
        "_google_adk_pause_agent.py", args, env, approval_server, call_id
    )
    assert resumed.returncode == 0, resumed.stderr
    out = resumed.stdout
    assert out.strip() == f"OUTPUT {ANSWER}"
    [ran_once] = executions(ran)
    assert (ran_once["x"], ran_once["y"]) == (2, 5)
    assert model_call_ids(model.requests[1])[0] == call_id
    assert [(r.name, r.content) for r in tool_results(model.requests[-1])] == [
        ("multiply", "10"),
        ("add", "42"),
    ]
    # The same saved pause resumed again (another process): the approval was used once.
    again = run_agent("_google_adk_pause_agent.py", ["resume", *args], env)
    assert again.returncode == 0, again.stderr
    assert len(executions(ran)) == 1


def test_pause_rejected_in_inbox_resumes_with_the_feedback(
    approval_server: ServerProcess,
    adk_env: tuple[ScriptedModel, dict[str, str]],
    tmp_path: Path,
) -> None:
    model, env = adk_env
    state, ran = tmp_path / "paused.json", tmp_path / "executions.jsonl"
    args = [str(state), str(ran)]
    first = run_agent("_google_adk_pause_agent.py", ["pause", *args], env)
    assert first.returncode == 0, first.stderr
    [call_id] = first.stdout.split("PAUSED", 1)[1].split()
    person_decides(approval_server, call_id, "reject", feedback="use 3 instead of 2")
    second = run_agent("_google_adk_pause_agent.py", ["resume", *args], env)
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
    if env is None:
        env = {k: v for k, v in os.environ.items() if k != "GOOGLE_API_KEY"}
    return _support.run_example("google_adk/math_example.py", answers, env)


def test_terminal_example_approved() -> None:
    proc = run_example("y\n")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("Using the scripted offline model at http://127.0.0.1:")
    assert "wants to call multiply" in proc.stdout
    assert lines[-1].endswith(f"Agent: {ANSWER}")


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
