"""The raw OpenAI client, asking for approval by hand with `fl.fetch_approval`.

    uv run --all-packages --all-groups python examples/openai_client/math_example_fetch_approval.py

No decorator: the loop itself decides which calls need a human. For `multiply` it sends the
proposed call with `fetch_approval` (under the model's tool call id) and waits for the decision;
`y` approves, `n` and then a line of feedback rejects. `add` runs without asking.

Without OPENAI_API_KEY it runs offline against FunctionLayer's scripted model.
"""

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for examples/_support.py
import openai
from _support import example_model
from functionlayer import FunctionCallSpec, FunctionLayer
from functionlayer.testing import math_script
from functionlayer_openai import tools

fl = FunctionLayer()


def multiply(x: int, y: int) -> int:
    """Multiply two numbers."""
    return x * y


def add(x: int, y: int) -> int:
    """Add two numbers."""
    return x + y


FUNCTIONS = {"multiply": multiply, "add": add}
NEEDS_APPROVAL = {"multiply"}


def run_tool_call(call: Any) -> str:
    name, args = call.function.name, json.loads(call.function.arguments)
    if name in NEEDS_APPROVAL:
        # Blocks until a human decides; the model's tool call id names the request.
        decision = fl.fetch_approval(FunctionCallSpec(fn=name, kwargs=args), call.id).as_completed()
        if not decision.approved:
            return f"User denied {name} with feedback: {decision.comment or 'none'}"
        args = decision.approved_kwargs  # the human may have edited the arguments
    return str(FUNCTIONS[name](**args))


def main() -> None:
    with example_model(math_script()) as model:
        client = openai.OpenAI(**model.openai_kwargs)
        definitions = tools(FUNCTIONS.values()).definitions  # schemas from the signatures
        messages: list[Any] = [
            {"role": "user", "content": "multiply 2 and 5, then add 32 to the result"}
        ]
        for _ in range(10):
            message = (
                client.chat.completions.create(
                    model=model.model, messages=messages, tools=definitions
                )
                .choices[0]
                .message
            )
            messages.append(message)
            if not message.tool_calls:
                break
            for call in message.tool_calls:
                content = run_tool_call(call)
                messages.append({"role": "tool", "tool_call_id": call.id, "content": content})
        print("Agent:", message.content)


if __name__ == "__main__":
    main()
