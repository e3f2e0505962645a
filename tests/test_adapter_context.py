"""Adapters attach what the framework knows about a call for the approver: the user's last
message and the model's text before the tool call (``RequestContext``, the agent's untrusted
words), and the tool's docstring. Real Pydantic AI agent loop (FunctionModel) and the real
OpenAI toolset runner, against the scripted human backend."""

from __future__ import annotations

from typing import Any

from functionlayer import FunctionLayer
from functionlayer.testing import ScriptedHuman, approve

DOC = "Irreversible: wires money to the account."


def test_pydantic_ai_deferred_path_sends_the_docstring_and_the_context() -> None:
    from functionlayer_pydantic_ai import approval_handler
    from pydantic_ai import Agent
    from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
    from pydantic_ai.models.function import AgentInfo, FunctionModel

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if len(messages) == 1:
            return ModelResponse(
                parts=[
                    TextPart("The user asked for the monthly rent; wiring it now."),
                    ToolCallPart("wire", {"amount": 900}, tool_call_id="pyd-ctx-1"),
                ]
            )
        return ModelResponse(parts=[TextPart("done")])

    human = ScriptedHuman([approve()])
    fl = FunctionLayer(backend=human, run_id="pyd")
    ran: list[int] = []
    agent = Agent(FunctionModel(model), capabilities=[approval_handler(fl)])

    @agent.tool_plain(requires_approval=True)
    def wire(amount: int) -> str:
        """Irreversible: wires money to the account."""
        ran.append(amount)
        return "sent"

    result = agent.run_sync("Pay the rent of 900 to the landlord")
    assert result.output == "done" and ran == [900]
    [request] = human.function_call_requests
    assert request.call_id == "pyd-ctx-1"
    assert request.spec.description == DOC
    context = request.spec.context
    assert context is not None
    assert context.user_request == "Pay the rent of 900 to the landlord"
    assert context.reason == "The user asked for the monthly rent; wiring it now."


def test_openai_toolset_sends_the_last_user_message_and_the_models_text() -> None:
    from functionlayer_openai import tools

    human = ScriptedHuman([approve()])
    fl = FunctionLayer(backend=human, run_id="oai")

    @fl.require_approval()
    def wire(amount: int) -> str:
        """Irreversible: wires money to the account."""
        return "sent"

    toolset = tools([wire])
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You pay bills."},
        {"role": "user", "content": "Pay 900 to the landlord"},
    ]
    assistant = {
        "role": "assistant",
        "content": "Wiring the rent now.",
        "tool_calls": [
            {
                "id": "oai-ctx-1",
                "type": "function",
                "function": {"name": "wire", "arguments": '{"amount": 900}'},
            }
        ],
    }
    [reply] = toolset.run(assistant, messages=messages)
    assert reply["content"] == "sent"
    [request] = human.function_call_requests
    assert request.spec.description == DOC
    assert request.spec.context is not None
    assert request.spec.context.user_request == "Pay 900 to the landlord"
    assert request.spec.context.reason == "Wiring the rent now."
