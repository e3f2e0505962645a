"""A Microsoft Agent Framework agent whose `multiply` tool needs a human's approval.

    uv run --all-packages --all-groups python examples/agent_framework/math_example.py

The agent is asked to "multiply 2 and 5, then add 32 to the result". Before `multiply` runs,
FunctionLayer asks you: answer `y` to approve, or `n` and then a line of feedback to reject
(the feedback goes back to the model as the tool result). `add` is not guarded.

Without OPENAI_API_KEY it runs offline against FunctionLayer's scripted model.
"""

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for examples/_support.py
from _support import example_model
from agent_framework import Agent
from agent_framework.openai import OpenAIChatCompletionClient
from functionlayer import FunctionLayer
from functionlayer.testing import math_script
from functionlayer_agent_framework import tools

# Approvals are asked in this terminal, or on a server when FUNCTIONLAYER_API_BASE is set.
fl = FunctionLayer()


@fl.require_approval()
def multiply(x: int, y: int) -> int:
    """Multiply two numbers."""
    return x * y


def add(x: int, y: int) -> int:
    """Add two numbers."""
    return x + y


async def main() -> None:
    # A real model if OPENAI_API_KEY is set, otherwise the scripted one (prints which).
    with example_model(math_script()) as model:
        client = OpenAIChatCompletionClient(model=model.model, **model.openai_kwargs)
        agent = Agent(client=client, tools=tools([multiply, add]))
        response = await agent.run("multiply 2 and 5, then add 32 to the result")
        print("Agent:", response.text)


if __name__ == "__main__":
    asyncio.run(main())
