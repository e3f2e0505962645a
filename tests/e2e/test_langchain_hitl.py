"""LangChain's own HumanInTheLoopMiddleware, answered by FunctionLayer through ``HITLBridge``.

The real agent loop (``create_agent`` + ``ChatOpenAI`` + an in-memory checkpointer) runs against
the scripted model over HTTP; ``ScriptedHuman`` decides. The tools are plain functions: the
middleware gates them, and they record every time their bodies run.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any, Literal

import pytest
from functionlayer import FunctionLayer, group_id_for
from functionlayer.testing import ScriptedHuman, approve, edit, never, reject, respond
from functionlayer.testing.model import ScriptedModel, text, tool_call, tool_calls, tool_results
from functionlayer_langchain import DecisionNotAllowedError, HITLBridge
from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware, InterruptOnConfig
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.memory import InMemorySaver

GATED_NODE = "HumanInTheLoopMiddleware.after_model"
_threads = itertools.count(1)


class Tools:
    """multiply (gated by the middleware in these tests) and add, recording their runs."""

    def __init__(self) -> None:
        self.multiplied: list[tuple[int, int]] = []
        self.added: list[tuple[int, int]] = []

        def multiply(x: int, y: int) -> int:
            """Multiply two integers."""
            self.multiplied.append((x, y))
            return x * y

        def add(x: int, y: int) -> int:
            """Add two integers."""
            self.added.append((x, y))
            return x + y

        self.all = [multiply, add]


def results_text(request: dict[str, Any]) -> str:
    return " | ".join(r.content for r in tool_results(request))


def agent_for(
    model: ScriptedModel,
    tools: Tools,
    interrupt_on: dict[str, bool | InterruptOnConfig] | None = None,
    *,
    mode: Literal["batched", "per_call"] = "batched",
) -> tuple[Any, dict[str, Any]]:
    llm = ChatOpenAI(
        model="gpt-4o-mini",
        base_url=model.base_url,
        api_key="unused",  # type: ignore[arg-type]
        max_retries=0,
    )
    agent = create_agent(
        llm,
        tools=tools.all,
        middleware=[
            HumanInTheLoopMiddleware(interrupt_on or {"multiply": True}, interrupt_mode=mode)
        ],
        checkpointer=InMemorySaver(),
    )
    return agent, {"configurable": {"thread_id": f"thread-{next(_threads)}"}}


def one_multiply(call_id: str = "call_m") -> list[Any]:
    return [tool_call("multiply", {"x": 2, "y": 5}, id=call_id), text(results_text)]


def paused_then_resumed(
    human: ScriptedHuman, script: list[Any], interrupt_on: Any = None
) -> tuple[Tools, ScriptedModel, Any]:
    """Run until the middleware pauses, resume with the bridge's Command, run to the end."""
    tools = Tools()
    with ScriptedModel(script) as model:
        agent, config = agent_for(model, tools, interrupt_on)
        paused = agent.invoke({"messages": [("user", "multiply 2 and 5")]}, config)
        assert paused["__interrupt__"], "the middleware did not pause"
        assert tools.multiplied == []  # nothing runs before a decision
        command = HITLBridge(FunctionLayer(backend=human)).resume(agent, config)
        result = agent.invoke(command, config)
    assert model.errors == []
    assert not agent.get_state(config).interrupts
    return tools, model, result


def test_approve_runs_the_tool_once_under_the_tool_call_id() -> None:
    human = ScriptedHuman({"hitl:call_m": approve()})
    tools, model, result = paused_then_resumed(human, one_multiply())

    assert tools.multiplied == [(2, 5)]
    assert [(r.call_id, r.content) for r in tool_results(model.requests[1])] == [("call_m", "10")]
    assert result["messages"][-1].content == "10"
    [asked] = human.function_call_requests
    assert asked.call_id == "hitl:call_m"
    assert (asked.spec.fn, asked.spec.kwargs) == ("multiply", {"x": 2, "y": 5})
    assert asked.run_id.startswith("langgraph-thread:thread-")
    assert asked.spec.state is not None and asked.spec.state["tool_call_id"] == "call_m"


def test_edit_runs_the_tool_with_the_edited_arguments() -> None:
    human = ScriptedHuman({"hitl:call_m": edit(x=3, y=5)})
    tools, model, _ = paused_then_resumed(human, one_multiply())

    assert tools.multiplied == [(3, 5)]
    [shown] = tool_results(model.requests[1])
    # LangChain's own notice of an edited call, then the real result.
    assert "a human reviewer replaced this tool call" in shown.content
    assert '"x": 3' in shown.content and shown.content.endswith("15")


def test_reject_never_runs_and_the_model_gets_the_feedback() -> None:
    human = ScriptedHuman({"hitl:call_m": reject("use 3 instead of 2")})
    tools, model, _ = paused_then_resumed(human, one_multiply())

    assert tools.multiplied == []
    [shown] = tool_results(model.requests[1])
    assert (shown.call_id, shown.content) == (
        "call_m",
        "User rejected the tool call for `multiply` with reason: use 3 instead of 2",
    )


def test_respond_never_runs_and_the_model_gets_the_answer() -> None:
    human = ScriptedHuman({"hitl:call_m": respond("it is 10, I checked by hand")})
    tools, model, _ = paused_then_resumed(human, one_multiply())

    assert tools.multiplied == []
    [shown] = tool_results(model.requests[1])
    assert (shown.call_id, shown.content) == ("call_m", "it is 10, I checked by hand")


def test_several_actions_in_one_interrupt_are_matched_by_tool_call_id() -> None:
    # Decided by id, in the reverse order of the calls; an ungated add sits between them.
    human = ScriptedHuman({"hitl:call_b": reject("not this one"), "hitl:call_a": approve()})
    script = [
        tool_calls(
            tool_call("multiply", {"x": 2, "y": 5}, id="call_a"),
            tool_call("add", {"x": 1, "y": 1}, id="call_add"),
            tool_call("multiply", {"x": 3, "y": 7}, id="call_b"),
        ),
        text(results_text),
    ]
    tools, model, _ = paused_then_resumed(human, script)

    assert tools.multiplied == [(2, 5)]
    assert tools.added == [(1, 1)]
    shown = {r.call_id: r.content for r in tool_results(model.requests[1])}
    assert shown == {
        "call_a": "10",
        "call_add": "2",
        "call_b": "User rejected the tool call for `multiply` with reason: not this one",
    }
    assert {r.call_id for r in human.function_call_requests} == {"hitl:call_a", "hitl:call_b"}
    # One interrupt, one model turn: one review group.
    assert {r.spec.group_id for r in human.function_call_requests} == {
        group_id_for(["hitl:call_a", "hitl:call_b"])
    }


def test_a_decision_the_config_does_not_allow_is_never_sent() -> None:
    human = ScriptedHuman({"hitl:call_m": edit(x=3, y=5)})
    tools = Tools()
    only = {"multiply": InterruptOnConfig(allowed_decisions=["approve", "reject"])}
    with ScriptedModel(one_multiply()) as model:
        agent, config = agent_for(model, tools, only)
        agent.invoke({"messages": [("user", "multiply 2 and 5")]}, config)
        with pytest.raises(DecisionNotAllowedError) as raised:
            HITLBridge(FunctionLayer(backend=human)).resume(agent, config)

    message = str(raised.value)
    assert "'edit'" in message and "['approve', 'reject']" in message and "stays paused" in message
    assert tools.multiplied == []
    assert agent.get_state(config).next == (GATED_NODE,)  # still paused, nothing resumed
    # The approver was told which decisions count.
    [asked] = human.function_call_requests
    assert asked.spec.description is not None
    assert asked.spec.description.endswith("Allowed decisions: approve, reject.")


def test_identical_calls_only_some_gated_are_refused_rather_than_guessed() -> None:
    human = ScriptedHuman([approve(), approve()])
    tools = Tools()
    first_only = {
        "multiply": InterruptOnConfig(
            allowed_decisions=["approve", "reject"],
            when=lambda request: request.tool_call["id"] == "call_1",
        )
    }
    script = [
        tool_calls(
            tool_call("multiply", {"x": 2, "y": 5}, id="call_1"),
            tool_call("multiply", {"x": 2, "y": 5}, id="call_2"),
        ),
        text(results_text),
    ]
    with ScriptedModel(script) as model:
        agent, config = agent_for(model, tools, first_only)
        agent.invoke({"messages": [("user", "twice")]}, config)
        with pytest.raises(ValueError, match="cannot be told apart"):
            HITLBridge(FunctionLayer(backend=human)).resume(agent, config)
    assert human.function_call_requests == []
    assert tools.multiplied == []


def test_async_resume_with_the_async_agent_loop() -> None:
    human = ScriptedHuman({"hitl:call_m": approve()})
    tools = Tools()

    async def main() -> Any:
        with ScriptedModel(one_multiply()) as model:
            agent, config = agent_for(model, tools)
            await agent.ainvoke({"messages": [("user", "multiply 2 and 5")]}, config)
            command = await HITLBridge(FunctionLayer(backend=human)).aresume(agent, config)
            return await agent.ainvoke(command, config)

    result = asyncio.run(main())
    assert tools.multiplied == [(2, 5)]
    assert result["messages"][-1].content == "10"


def test_submit_returns_at_once_and_collect_waits_for_every_decision() -> None:
    human = ScriptedHuman(lambda request: never())  # decides only when told to, below
    tools = Tools()
    script = [
        tool_calls(
            tool_call("multiply", {"x": 2, "y": 5}, id="call_a"),
            tool_call("multiply", {"x": 3, "y": 7}, id="call_b"),
        ),
        text(results_text),
    ]
    with ScriptedModel(script) as model:
        agent, config = agent_for(model, tools)
        agent.invoke({"messages": [("user", "two products")]}, config)
        bridge = HITLBridge(FunctionLayer(backend=human))

        sent = bridge.submit(agent, config)
        assert [call.call_id for call in sent] == ["hitl:call_a", "hitl:call_b"]
        assert not any(call.completed for call in sent)
        assert bridge.collect(agent, config) is None

        human.respond("hitl:call_b", approved=True, responded_by="alice")
        assert bridge.collect(agent, config) is None  # call_a is still pending

        human.respond("hitl:call_a", approved=False, comment="no", responded_by="alice")
        command = bridge.collect(agent, config)
        assert command is not None
        assert command.resume == {
            "decisions": [
                {"type": "reject", "message": "no"},
                {"type": "approve"},
            ]
        }
        agent.invoke(command, config)
    assert tools.multiplied == [(3, 7)]
    assert len(human.function_call_requests) == 2  # submit and collect sent nothing twice


def test_a_thread_that_is_not_paused_has_nothing_to_decide() -> None:
    tools = Tools()
    with ScriptedModel([text("hello")]) as model:
        agent, config = agent_for(model, tools)
        agent.invoke({"messages": [("user", "hi")]}, config)
        bridge = HITLBridge(FunctionLayer(backend=ScriptedHuman()))
        assert bridge.pending(agent, config) == []
        with pytest.raises(ValueError, match="not paused by HumanInTheLoopMiddleware"):
            bridge.resume(agent, config)


def test_per_call_mode_answers_each_interrupt_by_id() -> None:
    human = ScriptedHuman({"hitl:call_b": reject("not this one"), "hitl:call_a": edit(x=4, y=5)})
    tools = Tools()
    script = [
        tool_calls(
            tool_call("multiply", {"x": 2, "y": 5}, id="call_a"),
            tool_call("multiply", {"x": 3, "y": 7}, id="call_b"),
        ),
        text(results_text),
    ]
    with ScriptedModel(script) as model:
        agent, config = agent_for(model, tools, mode="per_call")
        paused = agent.invoke({"messages": [("user", "two products")]}, config)
        ids = {i.value["tool_call_id"]: i.id for i in paused["__interrupt__"]}
        command = HITLBridge(FunctionLayer(backend=human)).resume(agent, config)
        assert command.resume == {
            ids["call_a"]: {
                "type": "edit",
                "edited_action": {"name": "multiply", "args": {"x": 4, "y": 5}},
            },
            ids["call_b"]: {"type": "reject", "message": "not this one"},
        }
        agent.invoke(command, config)
    assert tools.multiplied == [(4, 5)]
    shown = {r.call_id: r.content for r in tool_results(model.requests[1])}
    assert shown["call_a"].endswith("20")
    assert shown["call_b"] == "User rejected the tool call for `multiply` with reason: not this one"


def test_per_call_mode_respects_the_response_schema() -> None:
    human = ScriptedHuman({"hitl:call_m": respond("it is 10")})
    tools = Tools()
    only = {"multiply": InterruptOnConfig(allowed_decisions=["approve", "reject"])}
    with ScriptedModel(one_multiply()) as model:
        agent, config = agent_for(model, tools, only, mode="per_call")
        agent.invoke({"messages": [("user", "multiply 2 and 5")]}, config)
        bridge = HITLBridge(FunctionLayer(backend=human))
        assert [a.allowed_decisions for a in bridge.pending(agent, config)] == [
            ("approve", "reject")
        ]
        with pytest.raises(DecisionNotAllowedError, match="'respond'"):
            bridge.resume(agent, config)
        assert agent.get_state(config).interrupts  # still paused
    assert tools.multiplied == []
