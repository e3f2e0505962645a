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


# -- LangChain: the tools under create_agent, and the HumanInTheLoopMiddleware bridge ----------

LC_USER = "Pay the rent of 900 to the landlord"
LC_REASON = "The user asked for the monthly rent; wiring it now."


def _langchain_script(call_id: str) -> list[Any]:
    from functionlayer.testing.model import Reply, ScriptedToolCall, text

    wire = ScriptedToolCall("wire", {"amount": 900}, call_id)
    return [Reply(content=LC_REASON, tool_calls=(wire,)), text("done")]


def _chat(model: Any) -> Any:
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(model="scripted-model", base_url=model.base_url, api_key="unused")


def test_langchain_tools_send_the_last_human_message_and_the_ai_messages_text() -> None:
    from functionlayer.testing import ScriptedModel
    from functionlayer_langchain import tools
    from langchain.agents import create_agent

    human = ScriptedHuman([approve()])
    fl = FunctionLayer(backend=human, run_id="lc")

    @fl.require_approval()
    def wire(amount: int) -> str:
        """Irreversible: wires money to the account."""
        return "sent"

    with ScriptedModel(_langchain_script("lc-ctx-1")) as model:
        agent = create_agent(_chat(model), tools=tools([wire]))
        earlier = [
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": "Hello! How can I help?"},
        ]
        agent.invoke({"messages": [*earlier, {"role": "user", "content": LC_USER}]})
    [request] = human.function_call_requests
    assert request.call_id == "lc-ctx-1"
    assert request.spec.description == DOC
    assert request.spec.context is not None
    assert request.spec.context.user_request == LC_USER
    assert request.spec.context.reason == LC_REASON


def test_langchain_tool_called_directly_sends_no_context_and_still_runs() -> None:
    from functionlayer_langchain import tool

    human = ScriptedHuman([approve()])
    fl = FunctionLayer(backend=human, run_id="lc-direct")

    @fl.require_approval()
    def wire(amount: int) -> str:
        """Irreversible: wires money to the account."""
        return "sent"

    assert tool(wire).invoke({"amount": 5}) == "sent"
    [request] = human.function_call_requests
    assert request.spec.context is None and request.spec.kwargs == {"amount": 5}


def test_langchain_hitl_bridge_sends_the_paused_turns_context() -> None:
    from functionlayer.testing import ScriptedModel
    from functionlayer_langchain import HITLBridge
    from langchain.agents import create_agent
    from langchain.agents.middleware import HumanInTheLoopMiddleware
    from langgraph.checkpoint.memory import InMemorySaver

    ran: list[int] = []

    def wire(amount: int) -> str:
        """Irreversible: wires money to the account."""
        ran.append(amount)
        return "sent"

    human = ScriptedHuman([approve()])
    fl = FunctionLayer(backend=human, run_id="lc-hitl")
    with ScriptedModel(_langchain_script("lc-hitl-1")) as model:
        agent = create_agent(
            _chat(model),
            tools=[wire],
            middleware=[HumanInTheLoopMiddleware(interrupt_on={"wire": True})],
            checkpointer=InMemorySaver(),
        )
        config: Any = {"configurable": {"thread_id": "t-ctx"}}
        agent.invoke({"messages": [{"role": "user", "content": LC_USER}]}, config)
        agent.invoke(HITLBridge(fl).resume(agent, config), config)
    assert ran == [900]
    [request] = human.function_call_requests
    assert request.call_id == "hitl:lc-hitl-1"
    assert request.spec.context is not None
    assert request.spec.context.user_request == LC_USER
    assert request.spec.context.reason == LC_REASON


def test_google_adk_tools_send_the_users_message_and_the_models_text(
    monkeypatch: Any,
) -> None:
    import asyncio

    from functionlayer.testing import ScriptedModel
    from functionlayer_google_adk import tools
    from google.adk.agents import Agent
    from google.adk.models.google_llm import Gemini
    from google.adk.runners import InMemoryRunner
    from google.genai import types

    monkeypatch.setenv("GOOGLE_API_KEY", "unused")
    monkeypatch.delenv("GOOGLE_GENAI_USE_VERTEXAI", raising=False)
    human = ScriptedHuman([approve()])
    fl = FunctionLayer(backend=human, run_id="adk")

    @fl.require_approval()
    def wire(amount: int) -> str:
        """Irreversible: wires money to the account."""
        return "sent"

    async def run(model: Gemini) -> None:
        agent = Agent(name="pay", model=model, tools=tools([wire]))
        runner = InMemoryRunner(agent=agent, app_name="pay")
        session = await runner.session_service.create_session(app_name="pay", user_id="me")
        message = types.Content(role="user", parts=[types.Part(text=LC_USER)])
        async for _ in runner.run_async(user_id="me", session_id=session.id, new_message=message):
            pass

    with ScriptedModel(_langchain_script("adk-ctx-1")) as model:
        asyncio.run(run(Gemini(model="gemini-2.5-flash", base_url=model.gemini_base_url)))
    [request] = human.function_call_requests
    assert request.spec.context is not None
    assert request.spec.context.user_request == LC_USER
    assert request.spec.context.reason == LC_REASON


def test_openai_agents_tools_send_the_turns_user_message() -> None:
    from agents import Agent, OpenAIChatCompletionsModel, Runner, set_tracing_disabled
    from functionlayer.testing import ScriptedModel
    from functionlayer_openai_agents import tools
    from openai import AsyncOpenAI

    set_tracing_disabled(True)
    human = ScriptedHuman([approve()])
    fl = FunctionLayer(backend=human, run_id="oaa")

    @fl.require_approval()
    def wire(amount: int) -> str:
        """Irreversible: wires money to the account."""
        return "sent"

    with ScriptedModel(_langchain_script("oaa-ctx-1")) as model:
        client = AsyncOpenAI(base_url=model.base_url, api_key="unused", max_retries=0)
        agent = Agent(
            name="pay",
            model=OpenAIChatCompletionsModel("gpt-4o-mini", client),
            tools=tools([wire]),
        )
        Runner.run_sync(agent, LC_USER)
    [request] = human.function_call_requests
    assert request.spec.context is not None
    assert request.spec.context.user_request == LC_USER
    assert request.spec.context.reason is None  # the SDK gives tools no model text


# -- Haystack: the guarded tools read the Agent's State messages -----------------------------------


def test_haystack_tools_send_the_users_message_and_the_models_text() -> None:
    from functionlayer.testing import ScriptedModel
    from functionlayer_haystack import tools
    from haystack.components.agents import Agent
    from haystack.components.generators.chat import OpenAIChatGenerator
    from haystack.dataclasses import ChatMessage
    from haystack.utils import Secret

    human = ScriptedHuman([approve()])
    fl = FunctionLayer(backend=human, run_id="haystack")

    @fl.require_approval()
    def wire(amount: int) -> str:
        """Irreversible: wires money to the account."""
        return "sent"

    with ScriptedModel(_langchain_script("hs-ctx-1")) as model:
        generator = OpenAIChatGenerator(
            model="gpt-4o-mini",
            api_key=Secret.from_token("unused"),
            api_base_url=model.base_url,
            max_retries=0,
        )
        agent = Agent(chat_generator=generator, tools=tools([wire]))
        agent.run(messages=[ChatMessage.from_user("hello"), ChatMessage.from_user(LC_USER)])
    [request] = human.function_call_requests
    assert request.call_id == "hs-ctx-1"
    assert request.spec.context is not None
    assert request.spec.context.user_request == LC_USER
    assert request.spec.context.reason == LC_REASON


# -- LlamaIndex: the agent's memory and the current turn's scratchpad ------------------------------


def test_llamaindex_tools_send_the_users_message_and_the_models_text() -> None:
    import asyncio

    from functionlayer.testing import ScriptedModel
    from functionlayer_llamaindex import tools
    from llama_index.core.agent.workflow import FunctionAgent
    from llama_index.core.llms import ChatMessage
    from llama_index.llms.openai import OpenAI

    human = ScriptedHuman([approve()])
    fl = FunctionLayer(backend=human, run_id="llamaindex")

    @fl.require_approval()
    def wire(amount: int) -> str:
        """Irreversible: wires money to the account."""
        return "sent"

    with ScriptedModel(_langchain_script("li-ctx-1")) as model:
        llm = OpenAI(model="gpt-4o-mini", api_base=model.base_url, api_key="unused", max_retries=0)
        agent = FunctionAgent(tools=tools([wire]), llm=llm)
        history = [ChatMessage(role="user", content="hello")]

        async def run() -> None:
            await agent.run(LC_USER, chat_history=history)

        asyncio.run(run())
    [request] = human.function_call_requests
    assert request.call_id == "li-ctx-1"
    assert request.spec.context is not None
    assert request.spec.context.user_request == LC_USER
    assert request.spec.context.reason == LC_REASON


def test_llamaindex_tool_called_directly_sends_no_context() -> None:
    import asyncio

    from functionlayer_llamaindex import tool

    human = ScriptedHuman([approve()])
    fl = FunctionLayer(backend=human, run_id="llamaindex-direct")

    @fl.require_approval()
    def wire(amount: int) -> str:
        """Irreversible: wires money to the account."""
        return "sent"

    assert str(asyncio.run(tool(wire).acall(amount=5))) == "sent"
    [request] = human.function_call_requests
    assert request.spec.context is None


def test_llamaindex_react_agent_sends_the_thought_of_its_action() -> None:
    import asyncio

    from functionlayer.testing import ScriptedModel
    from functionlayer.testing.model import text
    from functionlayer_llamaindex import tools
    from llama_index.core.agent.workflow import ReActAgent
    from llama_index.llms.openai import OpenAI

    human = ScriptedHuman([approve()])
    fl = FunctionLayer(backend=human, run_id="llamaindex-react")

    @fl.require_approval()
    def wire(amount: int) -> str:
        """Irreversible: wires money to the account."""
        return "sent"

    script = [
        text(f'Thought: {LC_REASON}\nAction: wire\nAction Input: {{"amount": 900}}'),
        text("Thought: I can answer without using any more tools.\nAnswer: done"),
    ]
    with ScriptedModel(script) as model:
        llm = OpenAI(model="gpt-4o-mini", api_base=model.base_url, api_key="unused", max_retries=0)
        agent = ReActAgent(tools=tools([wire]), llm=llm)

        async def run() -> None:
            await agent.run(LC_USER)

        asyncio.run(run())
    [request] = human.function_call_requests
    assert request.spec.kwargs == {"amount": 900}
    assert request.spec.context is not None
    assert request.spec.context.user_request == LC_USER
    assert request.spec.context.reason == LC_REASON


# -- CrewAI: the task's description (CrewAI keeps no text of the model's turn) ----------------------


def test_crewai_tools_send_the_tasks_description() -> None:
    from crewai import LLM, Agent, Crew, Task
    from functionlayer.testing import ScriptedModel
    from functionlayer_crewai import tools

    human = ScriptedHuman([approve()])
    fl = FunctionLayer(backend=human, run_id="crewai")

    @fl.require_approval()
    def wire(amount: int) -> str:
        """Irreversible: wires money to the account."""
        return "sent"

    with ScriptedModel(_langchain_script("crew-ctx-1")) as model:
        llm = LLM(model="openai/gpt-4o", base_url=model.base_url, api_key="x")
        agent = Agent(
            role="Payer",
            goal="Pay bills.",
            backstory="You use tools.",
            tools=tools([wire]),
            llm=llm,
        )
        task = Task(description=LC_USER, expected_output="a confirmation", agent=agent)
        Crew(agents=[agent], tasks=[task]).kickoff()
    [request] = human.function_call_requests
    assert request.call_id == "crew-ctx-1"
    assert request.spec.context is not None
    assert request.spec.context.user_request == LC_USER
    assert request.spec.context.reason is None  # CrewAI drops the model's text of a tool call turn


# -- Agent Framework: the approvals bridge reads the paused response and the session's history -----


def test_agent_framework_approvals_send_the_users_message_and_the_models_text() -> None:
    import asyncio

    from agent_framework import Agent, tool
    from agent_framework.openai import OpenAIChatCompletionClient
    from functionlayer.testing import ScriptedModel
    from functionlayer_agent_framework import arun

    ran: list[int] = []

    @tool(approval_mode="always_require")
    def wire(amount: int) -> str:
        """Irreversible: wires money to the account."""
        ran.append(amount)
        return "sent"

    human = ScriptedHuman([approve()])
    fl = FunctionLayer(backend=human, run_id="af")
    with ScriptedModel(_langchain_script("af-ctx-1")) as model:
        client = OpenAIChatCompletionClient(
            model="gpt-4o-mini", base_url=model.base_url, api_key="unused"
        )
        agent = Agent(client=client, name="pay", tools=[wire])
        asyncio.run(arun(fl, agent, LC_USER))
    assert ran == [900]
    [request] = human.function_call_requests
    assert request.call_id == "af-ctx-1"
    assert request.spec.description == DOC
    assert request.spec.context is not None
    assert request.spec.context.user_request == LC_USER
    assert request.spec.context.reason == LC_REASON
