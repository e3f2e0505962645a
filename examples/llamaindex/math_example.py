"""A LlamaIndex agent whose `multiply` tool needs a human's approval.

    uv run --all-packages --all-groups python examples/llamaindex/math_example.py

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
from functionlayer import FunctionLayer
from functionlayer.testing import math_script
from functionlayer_llamaindex import tools
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.llms.openai import OpenAI

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
        llm = OpenAI(model=model.model, api_base=model.base_url, api_key=model.api_key)
        agent = FunctionAgent(tools=tools([multiply, add]), llm=llm)
        result = await agent.run("multiply 2 and 5, then add 32 to the result")
        print("Agent:", result)


if __name__ == "__main__":
    asyncio.run(main())
