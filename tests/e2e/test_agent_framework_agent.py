"""Microsoft Agent Framework's real agent loop (``Agent.run`` with its OpenAI chat-completions
client, and with its Responses client) against the scripted model over HTTP: guarded tools from
``functionlayer_agent_framework``, and the framework's own approvals
(``approval_mode="always_require"``) decided through FunctionLayer, in the same process and
paused in one process then resumed in another after a person decided in the server's inbox."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import pytest
from agent_framework import Agent, tool
from agent_framework.openai import OpenAIChatClient, OpenAIChatCompletionClient
from functionlayer import FunctionLayer
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
from functionlayer_agent_framework import (
    PausedRun,
    ResumeNotAppliedError,
    adecide,
    apause,
    aresume,
    arun,
    tools,
)

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

TASK = "multiply 2 and 5, then add 32 to the result"
APIS = ["chat_completions", "responses"]
# What the framework itself tells the model about a declined approval request.
DECLINED = "Error: Tool call invocation was rejected by user."
__all__ = ["approval_server"]  # the fixture, imported for this module's tests


def client_for(scripted: ScriptedModel, api: str) -> Any:
    if api == "responses":
        return OpenAIChatClient(model="gpt-4o-mini", base_url=scripted.base_url, api_key="unused")
    return OpenAIChatCompletionClient(
        model="gpt-4o-mini", base_url=scripted.base_url, api_key="unused"
    )


def agent_for(scripted: ScriptedModel, api: str, agent_tools: list[Any]) -> Agent[Any]:
    # The scripted model keeps no responses: the Responses client sends the whole history
    # (store=False) instead of a previous_response_id.
    options: Any = {"store": False} if api == "responses" else None
    return Agent(
        client=client_for(scripted, api), name="math", tools=agent_tools, default_options=options
    )


def results_text(request: dict[str, Any]) -> str:
    return " | ".join(f"{r.call_id}={r.content}" for r in tool_results(request))


class Calculator(_support.Calculator):
    run_id = "agent-framework-e2e"
    make_tools = tools


# -- guarded functions as tools -------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
def test_approved_runs_once_and_answer_uses_result(api: str) -> None:
    human = ScriptedHuman([approve()])
    calculator = Calculator(human)
    with ScriptedModel(math_script()) as model:
        response = asyncio.run(agent_for(model, api, calculator.tools).run(TASK))
    assert calculator.multiplied == [(2, 5)]
    assert response.text == "2 multiplied by 5 is 10, and adding 32 gives 42."
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
        response = asyncio.run(agent_for(model, api, calculator.tools).run(TASK))
    assert calculator.multiplied == []
    expected = rejection_message("multiply", "use 3 instead of 2")
    [feedback] = tool_results(model.requests[1])
    assert (feedback.name, feedback.content) == ("multiply", expected)
    assert expected in response.text
    assert len(model.requests) == 2


def test_async_tool_in_a_streamed_run() -> None:
    human = ScriptedHuman([approve()])
    calculator = Calculator(human, use_async=True)

    async def run() -> str:
        agent = agent_for(model, "chat_completions", calculator.tools)
        stream = agent.run(TASK, stream=True)
        async for _ in stream:
            pass
        final = await stream.get_final_response()
        return str(final.text)

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
        text(results_text),
    ]
    with ScriptedModel(script) as model:
        asyncio.run(agent_for(model, api, calculator.tools).run("two products"))
    assert calculator.multiplied == [(4, 5)]
    results = {r.call_id: r.content for r in tool_results(model.requests[1])}
    assert results == {
        "call_ok": "20",
        "call_no": rejection_message("multiply", "too many at once"),
    }


# -- the framework's own approvals, decided through FunctionLayer --------------------------------


class NativeCalculator:
    """``multiply`` with ``approval_mode="always_require"`` (not guarded by FunctionLayer) and a
    plain ``add`` (``never_require``), recording every time a body runs."""

    def __init__(self) -> None:
        self.multiplied: list[tuple[int, int]] = []
        self.added: list[tuple[int, int]] = []

        @tool(approval_mode="always_require")
        def multiply(x: int, y: int) -> int:
            """Multiply two integers."""
            self.multiplied.append((x, y))
            return x * y

        @tool(approval_mode="never_require")
        def add(x: int, y: int) -> int:
            """Add two integers."""
            self.added.append((x, y))
            return x + y

        self.tools = [multiply, add]


@pytest.mark.parametrize("api", APIS)
def test_approval_requests_decided_inline_through_functionlayer(api: str) -> None:
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
        text(results_text),
    ]
    with ScriptedModel(script) as model:
        response = asyncio.run(arun(fl, agent_for(model, api, calculator.tools), "products"))
    # Only the approved call ran; the declined and the edited ones never did.
    assert calculator.multiplied == [(2, 5)]
    results = {r.call_id: r.content for r in tool_results(model.requests[1])}
    assert results == {"call_ok": "10", "call_no": DECLINED, "call_edit": DECLINED}
    assert response.text == results_text(model.requests[1])
    assert sorted(r.call_id for r in human.function_call_requests) == [
        "call_edit",
        "call_no",
        "call_ok",
    ]
    [asked] = [r for r in human.function_call_requests if r.call_id == "call_ok"]
    assert asked.spec.description == "Multiply two integers."
    assert asked.spec.kwargs == {"x": 2, "y": 5}


@pytest.mark.parametrize("api", APIS)
def test_never_require_tools_in_a_mixed_batch_are_not_prompted(api: str) -> None:
    human = ScriptedHuman({"call_m": approve()})  # a question about call_a would fail closed
    fl = FunctionLayer(backend=human)
    calculator = NativeCalculator()
    script = [
        tool_calls(
            tool_call("multiply", {"x": 2, "y": 5}, id="call_m"),
            tool_call("add", {"x": 1, "y": 1}, id="call_a"),
        ),
        text(results_text),
    ]
    with ScriptedModel(script) as model:
        asyncio.run(arun(fl, agent_for(model, api, calculator.tools), "both"))
    assert [r.call_id for r in human.requests] == ["call_m"]
    assert (calculator.multiplied, calculator.added) == ([(2, 5)], [(1, 1)])
    assert {r.call_id: r.content for r in tool_results(model.requests[1])} == {
        "call_m": "10",
        "call_a": "2",
    }


def test_never_require_calls_the_framework_asks_about_are_approved_without_asking() -> None:
    """Without a session the framework turns every call of a mixed batch into an approval
    request (older releases always do): the bridge asks only about the tools that need it."""
    human = ScriptedHuman({"call_m": reject("no")})
    fl = FunctionLayer(backend=human)
    calculator = NativeCalculator()
    script = [
        tool_calls(
            tool_call("multiply", {"x": 2, "y": 5}, id="call_m"),
            tool_call("add", {"x": 1, "y": 1}, id="call_a"),
        )
    ]

    async def scenario() -> Any:
        agent = agent_for(model, "chat_completions", calculator.tools)
        response = await agent.run("both")  # no session
        asked = sorted(str(r.function_call.call_id) for r in response.user_input_requests)
        assert asked == ["call_a", "call_m"]
        return await adecide(fl, agent, response)

    with ScriptedModel(script) as model:
        message = asyncio.run(scenario())
    answers = {str(c.function_call.call_id): c.approved for c in message.contents}
    assert answers == {"call_m": False, "call_a": True}
    assert [r.call_id for r in human.requests] == ["call_m"]
    assert calculator.multiplied == calculator.added == []


@pytest.mark.parametrize("other", ["multiply", "add"])
def test_a_call_id_two_requests_share_is_declined_and_nobody_is_asked(other: str) -> None:
    """One approval must not run two calls, and a call that needs approval must not pass as
    the never_require call that shares its id: when the framework asks about two calls under
    one id (1.23 does; 1.0 folds them into one request), each is declined and nobody is asked."""
    human = ScriptedHuman([approve(), approve()])  # would approve anything it is asked
    fl = FunctionLayer(backend=human)
    calculator = NativeCalculator()
    batch = tool_calls(
        tool_call("multiply", {"x": 2, "y": 5}, id="call_dup"),
        tool_call(other, {"x": 2, "y": 5}, id="call_dup"),  # the same arguments
    )

    async def scenario() -> tuple[int, Any]:
        agent = agent_for(model, "chat_completions", calculator.tools)
        response = await agent.run("twice")  # no session: the framework asks about both
        asked = len(response.user_input_requests)
        message = await adecide(fl, agent, response)
        await arun(fl, agent, "twice")  # the whole loop, in a session
        return asked, message

    with ScriptedModel([batch, batch, text(results_text)]) as model:
        asked, message = asyncio.run(scenario())
    if asked == 2:
        assert [c.approved for c in message.contents] == [False, False]
    # Never more runs than approvals asked for, and never once per request under one approval.
    assert len(calculator.multiplied) <= min(1, len(human.function_call_requests))


def test_adecide_fails_closed_when_no_decision_can_be_had() -> None:
    fl = FunctionLayer(backend=ScriptedHuman([]))
    calculator = NativeCalculator()
    with ScriptedModel(math_script()) as model:
        response = asyncio.run(
            arun(fl, agent_for(model, "chat_completions", calculator.tools), TASK)
        )
    assert calculator.multiplied == []
    [told] = tool_results(model.requests[1])
    assert told.content == DECLINED
    assert DECLINED in response.text


def test_a_resume_the_framework_ignores_is_loud() -> None:
    """Resuming in a session that no longer holds the pending request: releases that bind
    answers to the session's requests (1.23) drop the answer with a log line and would go on;
    the bridge raises instead. Older releases act on the answer (here a decline: the approval
    was used). Never silent: an error, or the model is told what became of the call."""
    fl = FunctionLayer(backend=ScriptedHuman([approve()]))
    calculator = NativeCalculator()
    step = text(results_text)

    async def scenario() -> Any:
        agent = agent_for(model, "chat_completions", calculator.tools)
        session = agent.create_session()
        response = await agent.run(TASK, session=session)
        paused = await apause(fl, agent, response, session)
        await aresume(fl, agent, paused, session=session)  # consumes the pending request
        try:
            await aresume(fl, agent, paused, session=session)
        except ResumeNotAppliedError as exc:
            return exc
        return None

    with ScriptedModel([tool_call("multiply", {"x": 2, "y": 5}, id="call_m"), step, step]) as model:
        raised = asyncio.run(scenario())
    assert calculator.multiplied == [(2, 5)]
    if raised is None:
        told = [r.content for r in tool_results(model.requests[-1]) if r.call_id == "call_m"]
        assert told[-1] == DECLINED
    else:
        assert "did not act on the approval responses for call id(s) call_m" in str(raised)


def test_a_tampered_pause_is_refused() -> None:
    fl = FunctionLayer(backend=ScriptedHuman([approve()]))
    calculator = NativeCalculator()

    async def scenario() -> None:
        agent = agent_for(model, "chat_completions", calculator.tools)
        session = agent.create_session()
        paused = await apause(fl, agent, await agent.run(TASK, session=session), session)
        [saved] = paused.approvals
        saved["function_call"]["arguments"] = '{"x": 2000, "y": 5}'
        with pytest.raises(ValueError, match="does not match its FunctionLayer requests"):
            await aresume(fl, agent, PausedRun.from_json(paused.to_json()))

    with ScriptedModel(math_script()) as model:
        asyncio.run(scenario())
    assert calculator.multiplied == []


# -- pause in one process, a person decides in the inbox, resume in another -----------------------


def test_pause_then_person_approves_in_inbox_then_another_process_resumes(
    approval_server: ServerProcess, tmp_path: Path
) -> None:
    state, ran = tmp_path / "paused.json", tmp_path / "executions.jsonl"
    args = [str(state), str(ran)]
    with ScriptedModel(math_script()) as model:
        env = agent_env(approval_server, model.base_url)
        first = run_agent("_agent_framework_pause_agent.py", ["pause", *args], env)
        assert first.returncode == 0, first.stderr
        [call_id] = first.stdout.split("PAUSED", 1)[1].split()
        assert len(model.requests) == 1  # the run stopped at the tool call
        early = run_agent("_agent_framework_pause_agent.py", ["resume", *args], env)
        assert early.returncode == 3, early.stderr  # a non-blocking check: still pending
        # Process 2 now waits for the decision; the person decides while it waits.
        resumed = resume_while_person_decides(
            "_agent_framework_pause_agent.py", args, env, approval_server, call_id
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


def test_pause_rejected_in_inbox_resumes_declined_and_never_runs(
    approval_server: ServerProcess, tmp_path: Path
) -> None:
    state, ran = tmp_path / "paused.json", tmp_path / "executions.jsonl"
    args = [str(state), str(ran)]
    with ScriptedModel(math_script()) as model:
        env = agent_env(approval_server, model.base_url)
        first = run_agent("_agent_framework_pause_agent.py", ["pause", *args], env)
        assert first.returncode == 0, first.stderr
        [call_id] = first.stdout.split("PAUSED", 1)[1].split()
        person_decides(approval_server, call_id, "reject", feedback="use 3 instead of 2")
        second = run_agent("_agent_framework_pause_agent.py", ["resume", *args], env)
        assert second.returncode == 0, second.stderr
    assert executions(ran) == []
    assert [(r.name, r.content) for r in tool_results(model.requests[-1])] == [
        ("multiply", DECLINED)
    ]


# -- the example --------------------------------------------------------------------------------


def run_example(answers: str) -> subprocess.CompletedProcess[str]:
    return _support.run_example("agent_framework/math_example.py", answers)


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
