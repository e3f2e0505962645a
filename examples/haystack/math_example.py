"""A Haystack agent whose `multiply` tool needs a human's approval.

    uv run --all-packages --all-groups python examples/haystack/math_example.py

The agent is asked to "multiply 2 and 5, then add 32 to the result". Before `multiply` runs,
FunctionLayer asks you: answer `y` to approve, or `n` and then a line of feedback to reject
(the feedback goes back to the model as the tool result). `add` is not guarded.

Without OPENAI_API_KEY it runs offline against FunctionLayer's scripted model.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for examples/_support.py
from _support import example_model
from functionlayer import FunctionLayer
from functionlayer.testing import math_script
from functionlayer_haystack import tools
from haystack.components.agents import Agent
from haystack.components.generators.chat import OpenAIChatGenerator
from haystack.dataclasses import ChatMessage
from haystack.utils import Secret

# Approvals are asked in this terminal, or on a server when FUNCTIONLAYER_API_BASE is set.
fl = FunctionLayer()


@fl.require_approval()
def multiply(x: int, y: int) -> int:
    """Multiply two numbers."""
    return x * y


def add(x: int, y: int) -> int:
    """Add two numbers."""
    return x + y


def main() -> None:
    # A real model if OPENAI_API_KEY is set, otherwise the scripted one (prints which).
    with example_model(math_script()) as model:
        generator = OpenAIChatGenerator(
            model=model.model,
            api_key=Secret.from_token(model.api_key),
            api_base_url=model.base_url,
        )
        agent = Agent(chat_generator=generator, tools=tools([multiply, add]))
        result = agent.run(
            messages=[ChatMessage.from_user("multiply 2 and 5, then add 32 to the result")]
        )
        print("Agent:", result["messages"][-1].text)


if __name__ == "__main__":
    main()
