"""A LangChain agent that can ask a human a question (FunctionLayer's human-as-tool).

    uv run python examples/langchain/human_as_tool.py

The agent is asked to write a short welcome note but does not know the customer's name, so it
calls the `contact_human` tool. You type the answer in this terminal (or, with
FUNCTIONLAYER_API_BASE set, answer on the server), and the agent uses it.

Without OPENAI_API_KEY it runs offline against FunctionLayer's scripted model.
"""

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for examples/_support.py
from _support import example_model
from functionlayer import FunctionLayer
from functionlayer.testing import text, tool_call, tool_results
from functionlayer_langchain import tool
from langchain.agents import create_agent
from langchain_openai import ChatOpenAI

fl = FunctionLayer()
ask_a_human = fl.human_as_tool()  # a function (message: str) -> the human's answer

TASK = "Write a one-line welcome note for our newest customer. Ask a human for their name."


def welcome(request: dict[str, Any]) -> str:
    # The scripted model's last turn: use whatever the human answered.
    name = tool_results(request)[-1].content
    return f"Welcome aboard, {name}! We are glad to have you with us."


# What the scripted model does: ask the human, then write the note with the answer.
SCRIPT = [
    tool_call(ask_a_human.__name__, {"message": "What is the name of our newest customer?"}),
    text(welcome),
]


def main() -> None:
    with example_model(SCRIPT) as model:
        llm = ChatOpenAI(model=model.model, **model.openai_kwargs)
        agent = create_agent(llm, tools=[tool(ask_a_human)])
        result = agent.invoke({"messages": [("user", TASK)]})
        print("Agent:", result["messages"][-1].content)


if __name__ == "__main__":
    main()
