"""Pydantic AI's ``RequestInput`` answered by FunctionLayer persons, through Pydantic AI's real
agent loop against the scripted model and a real ``functionlayer-server``: the agent holds an
agent token; a person decides (or answers) with their own approver token; ``answered_by`` is the
person the server reports, never anything the agent or the model sent.

``RequestInput`` exists in newer pydantic-ai-slim releases only (2.68 has it): on older ones
these tests check that ``request_input`` refuses with a clear error instead.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from functionlayer import ConfigurationError, FunctionLayer
from functionlayer._feedback import expired_message, rejection_message
from functionlayer.testing.model import ScriptedModel, text, tool_call, tool_calls, tool_results
from functionlayer_pydantic_ai import request_input
from pydantic_ai import Agent, Tool
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from tests._support.servers import APPROVER, ServerProcess, in_thread

try:
    from pydantic_ai.capabilities import RequestInput  # noqa: F401
    from pydantic_ai.exceptions import CallDeferred
    from pydantic_ai.messages import DeferredToolResultsEvent
except ImportError:  # an older pydantic-ai-slim: only the refusal is tested
    HAS_REQUEST_INPUT = False
else:
    HAS_REQUEST_INPUT = True

needs_request_input = pytest.mark.skipif(
    not HAS_REQUEST_INPUT, reason="this pydantic-ai-slim has no RequestInput"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("request-input")
    process = ServerProcess(f"sqlite:///{directory / 'server.sqlite3'}", directory / "server.log")
    process.start()
    try:
        yield process
    finally:
        process.kill()


def chat_model(model: ScriptedModel) -> OpenAIChatModel:
    return OpenAIChatModel(
        "gpt-4o-mini", provider=OpenAIProvider(base_url=model.base_url, api_key="unused")
    )


def agent_client(server: ServerProcess) -> FunctionLayer:
    """What the agent holds: the server and an agent token (it cannot decide)."""
    return FunctionLayer(api_base=server.api_base, api_token=server.token, timeout=30)


def wait_pending(server: ServerProcess, path: str, call_id: str) -> dict[str, Any]:
    with server.client() as agent:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            response = agent.get(f"/{path}/{call_id}")
            if response.status_code == 200:
                return dict(response.json())
            time.sleep(0.05)
    raise AssertionError(f"{call_id} was never asked")


def person(server: ServerProcess, path: str, call_id: str, body: dict[str, Any]) -> None:
    """The person (approver token, never the agent's) decides or answers."""
    wait_pending(
        server, "function_calls" if path == "function_calls" else "contact_requests", call_id
    )
    with server.approver_client() as client:
        response = client.post(f"/agent/{path}/{call_id}/respond", json=body)
        assert response.status_code == 200, response.text


class Bank:
    def __init__(self) -> None:
        self.transfers: list[tuple[str, int]] = []

    def transfer(self, to: str, amount: int) -> str:
        """Send money."""
        self.transfers.append((to, amount))
        return f"sent {amount} to {to}"


def run_agent(fl: FunctionLayer, model: ScriptedModel, tools: list[Any]) -> Any:
    events: list[Any] = []

    async def on_events(ctx: Any, stream: Any) -> None:
        async for event in stream:
            if isinstance(event, DeferredToolResultsEvent):
                events.append(event)

    agent = Agent(chat_model(model), tools=tools, capabilities=[request_input(fl)])
    result = asyncio.run(agent.run("do it", event_stream_handler=on_events))
    return result, events


def results_text(request: dict[str, Any]) -> str:
    return " | ".join(f"{r.name}={r.content}" for r in tool_results(request))


@needs_request_input
def test_approved_by_a_person_runs_once_and_answered_by_is_the_server_s_person(
    server: ServerProcess,
) -> None:
    bank = Bank()
    # The model claims an approver of its own in the arguments: inert data.
    script = [
        tool_call("transfer", {"to": "bob", "amount": 5}, id="ri-approve"),
        text(results_text),
    ]
    with ScriptedModel(script) as model:
        join = in_thread(
            lambda: run_agent(
                agent_client(server), model, [Tool(bank.transfer, requires_approval=True)]
            )
        )
        person(server, "function_calls", "ri-approve", {"approved": True})
        result, events = join(60)
    assert bank.transfers == [("bob", 5)]
    assert result.output == "transfer=sent 5 to bob"
    [event] = events
    assert event.results.answered_by == {"ri-approve": APPROVER}


@needs_request_input
def test_rejected_never_runs_and_the_model_gets_the_feedback(server: ServerProcess) -> None:
    bank = Bank()
    script = [tool_call("transfer", {"to": "eve", "amount": 9}, id="ri-reject"), text(results_text)]
    with ScriptedModel(script) as model:
        join = in_thread(
            lambda: run_agent(
                agent_client(server), model, [Tool(bank.transfer, requires_approval=True)]
            )
        )
        person(server, "function_calls", "ri-reject", {"approved": False, "comment": "not eve"})
        result, events = join(60)
    assert bank.transfers == []
    assert result.output == f"transfer={rejection_message('transfer', 'not eve')}"
    assert events[0].results.answered_by == {"ri-reject": APPROVER}


@needs_request_input
def test_a_question_is_answered_by_a_person_through_the_server(server: ServerProcess) -> None:
    def ask_user(question: str) -> str:
        """Ask the user."""
        raise CallDeferred(kind="question")

    script = [
        tool_calls(
            tool_call("ask_user", {"question": "Which account?"}, id="ri-question"),
            tool_call("transfer", {"to": "bob", "amount": 1}, id="ri-both"),
        ),
        text(results_text),
    ]
    bank = Bank()
    with ScriptedModel(script) as model:
        join = in_thread(
            lambda: run_agent(
                agent_client(server),
                model,
                [Tool(ask_user), Tool(bank.transfer, requires_approval=True)],
            )
        )
        stored = wait_pending(server, "contact_requests", "ri-question")
        assert stored["spec"]["msg"] == "Which account?"
        person(server, "human_contacts", "ri-question", {"response": "savings"})
        person(server, "function_calls", "ri-both", {"approved": True})
        result, events = join(60)
    assert "ask_user=savings" in result.output
    assert bank.transfers == [("bob", 1)]
    assert events[0].results.answered_by == {"ri-question": APPROVER, "ri-both": APPROVER}


@needs_request_input
def test_the_agent_token_cannot_answer_and_expiry_fails_closed(server: ServerProcess) -> None:
    bank = Bank()
    fl = FunctionLayer(api_base=server.api_base, api_token=server.token, timeout=1.5)
    script = [tool_call("transfer", {"to": "eve", "amount": 7}, id="ri-agent"), text(results_text)]
    with ScriptedModel(script) as model:
        join = in_thread(
            lambda: run_agent(fl, model, [Tool(bank.transfer, requires_approval=True)])
        )
        wait_pending(server, "function_calls", "ri-agent")
        with server.client() as agent:  # the agent's own token tries to approve
            refused = agent.post("/agent/function_calls/ri-agent/respond", json={"approved": True})
        assert refused.status_code in (401, 403), refused.text
        result, events = join(60)
    assert bank.transfers == []
    assert result.output == f"transfer={expired_message('transfer', 1.5)}"
    assert events[0].results.answered_by == {}


@pytest.mark.skipif(HAS_REQUEST_INPUT, reason="this pydantic-ai-slim has RequestInput")
def test_older_pydantic_ai_gets_a_clear_error() -> None:
    with pytest.raises(ConfigurationError, match="RequestInput"):
        request_input(FunctionLayer(backend=None, api_base="http://127.0.0.1:9", api_token="x"))
