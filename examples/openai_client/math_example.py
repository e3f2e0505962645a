"""The raw OpenAI client with a guarded `multiply` tool (decorator style).

    uv run --all-packages --all-groups python examples/openai_client/math_example.py

The model is asked to "multiply 2 and 5, then add 32 to the result". Before `multiply` runs,
FunctionLayer asks you: `y` approves; `n` and then a line of feedback rejects, and the model
gets your feedback as the tool result. `add` is not guarded.

Without OPENAI_API_KEY it runs offline against FunctionLayer's scripted model.
"""

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for examples/_support.py
import openai
from _support import example_model
from functionlayer import FunctionLayer
from functionlayer.testing import math_script
from functionlayer_openai import tools

fl = FunctionLayer()


@fl.require_approval()
def multiply(x: int, y: int) -> int:
    """Multiply two numbers."""
    return x * y


def add(x: int, y: int) -> int:
    """Add two numbers."""
    return x + y


def main() -> None:
    with example_model(math_script()) as model:
        client = openai.OpenAI(**model.openai_kwargs)
        toolset = tools([multiply, add])
        messages: list[Any] = [
            {"role": "user", "content": "multiply 2 and 5, then add 32 to the result"}
        ]
        # The usual tool-calling loop; toolset.run asks for approval where a tool needs it.
        for _ in range(10):
            message = (
                client.chat.completions.create(
                    model=model.model, messages=messages, tools=toolset.definitions
                )
                .choices[0]
                .message
            )
            messages.append(message)
            if not message.tool_calls:
                break
            messages.extend(toolset.run(message.tool_calls))
        print("Agent:", message.content)


if __name__ == "__main__":
    main()
