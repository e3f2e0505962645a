"""The raw OpenAI client, with the approval request created and read back separately.

    uv run --all-packages --all-groups python examples/openai_client/math_example_create_get.py

`fl.create_function_call(spec, call_id=<the model's tool call id>)` sends the request without
waiting; `fl.get_function_call(call_id)` reads its state later. Between the two an agent could
do other work, or even restart: creating again under the same call id returns the same request.
In this terminal you answer when the request is created: `y` approves, `n` then feedback rejects.

Without OPENAI_API_KEY it runs offline against FunctionLayer's scripted model.
"""

import json
import sys
import time
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


def run_multiply(call: Any, args: dict[str, Any]) -> str:
    fl.create_function_call(FunctionCallSpec(fn="multiply", kwargs=args), call_id=call.id)
    # ... the agent is free to do other things here ...
    while True:  # poll until a human decides
        status = fl.get_function_call(call_id=call.id).status
        if status is not None and status.approved is not None:
            break
        time.sleep(1)
    if not status.approved:
        return f"User denied multiply with feedback: {status.comment or 'none'}"
    return str(multiply(**(status.edited_kwargs or args)))


def main() -> None:
    with example_model(math_script()) as model:
        client = openai.OpenAI(**model.openai_kwargs)
        definitions = tools(FUNCTIONS.values()).definitions
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
                args = json.loads(call.function.arguments)
                if call.function.name == "multiply":
                    content = run_multiply(call, args)
                else:
                    content = str(FUNCTIONS[call.function.name](**args))
                messages.append({"role": "tool", "tool_call_id": call.id, "content": content})
        print("Agent:", message.content)


if __name__ == "__main__":
    main()
