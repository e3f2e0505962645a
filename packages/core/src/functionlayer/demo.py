"""An offline demo that needs only ``pip install functionlayer-ai``: ``python -m functionlayer.demo``.

A tiny agent loop over plain HTTP (httpx, the OpenAI chat-completions API) talks to
FunctionLayer's scripted model (:mod:`functionlayer.testing.model`) on 127.0.0.1. The model is
asked to "multiply 2 and 5, then add 32 to the result". ``multiply`` is guarded: before its body
runs, FunctionLayer asks you at the terminal. Answer ``y`` to approve, or ``n`` and a line of
feedback to reject it; the feedback goes back to the model as the tool result. ``add`` is not
guarded. No API key, no network, no framework.

With ``FUNCTIONLAYER_API_BASE`` set, the approval goes to that FunctionLayer server instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from functionlayer import FunctionLayer, call_id_scope
from functionlayer.testing.model import ScriptedModel, math_script

__all__ = ["main"]

TASK = "multiply 2 and 5, then add 32 to the result"


def _tool_definition(fn: Callable[..., Any]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": fn.__name__,
            "description": fn.__doc__ or "",
            "parameters": {
                "type": "object",
                "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}},
                "required": ["x", "y"],
            },
        },
    }


def main() -> int:
    """Run the demo; returns the exit status."""
    import httpx

    fl = FunctionLayer()  # the terminal, or the server in FUNCTIONLAYER_API_BASE

    @fl.require_approval()
    def multiply(x: int, y: int) -> int:
        """Multiply two numbers."""
        print(f"[multiply ran: {x} * {y}]")
        return x * y

    def add(x: int, y: int) -> int:
        """Add two numbers."""
        return x + y

    functions: dict[str, Callable[..., Any]] = {"multiply": multiply, "add": add}
    definitions = [_tool_definition(fn) for fn in functions.values()]
    with ScriptedModel(math_script()) as model, httpx.Client(timeout=30) as http:
        print(f"FunctionLayer demo: the scripted offline model at {model.base_url}.")
        print(f"User: {TASK}", flush=True)
        messages: list[dict[str, Any]] = [{"role": "user", "content": TASK}]
        for _ in range(10):  # a bound on the loop: the scripted model finishes in three turns
            response = http.post(
                f"{model.base_url}/chat/completions",
                json={"model": "scripted-model", "messages": messages, "tools": definitions},
            )
            response.raise_for_status()
            message = response.json()["choices"][0]["message"]
            messages.append(message)
            calls = message.get("tool_calls") or []
            if not calls:
                print(f"Agent: {message.get('content')}")
                return 0
            for call in calls:
                name = call["function"]["name"]
                arguments = json.loads(call["function"]["arguments"] or "{}")
                print(f"The model calls {name}({arguments}).", flush=True)
                # The model's tool call id is the approval's call id: a retried turn asks once.
                with call_id_scope(call["id"]):
                    result = functions[name](**arguments)
                print(f"{name} -> {result}", flush=True)
                messages.append(
                    {"role": "tool", "tool_call_id": call["id"], "content": str(result)}
                )
    print("The agent did not finish within 10 turns.")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
