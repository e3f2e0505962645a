"""What an adapter's tool adds over the same framework's plain tool, on the auto-run path.

    uv run python bench/adapter_overhead.py [--calls N]

For each framework this file covers (LangChain, the raw OpenAI client, LlamaIndex, Haystack), the same function runs
as the framework's plain tool and as FunctionLayer's tool guarded with ``when=`` false (so no
human is asked, and what is measured is the adapter plus the guard). Both run side by side in
one process; the figures are the best of several rounds, in microseconds per call.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

from functionlayer import FunctionLayer
from functionlayer.testing import ScriptedHuman

fl = FunctionLayer(backend=ScriptedHuman([]))  # never asked: when= is false


def add(x: int, y: int) -> int:
    """Add two integers."""
    return x + y


@fl.require_approval(when=lambda x, y: False)
def guarded_add(x: int, y: int) -> int:
    """Add two integers."""
    return x + y


guarded_add.__name__ = "add"


def side_by_side(
    plain: Callable[[], Any], ours: Callable[[], Any], calls: int, rounds: int = 7
) -> tuple[float, float]:
    """Best per-call time of each, in microseconds; rounds alternate so both see the same load."""
    plain(), ours()  # warm caches (schemas, validators)
    best = [float("inf"), float("inf")]
    for _ in range(rounds):
        for index, fn in enumerate((plain, ours)):
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            best[index] = min(best[index], (time.perf_counter() - start) / calls)
    return best[0] * 1e6, best[1] * 1e6


def langchain(calls: int) -> tuple[float, float]:
    from functionlayer_langchain import tool
    from langchain_core.tools import StructuredTool

    plain = StructuredTool.from_function(add)
    ours = tool(guarded_add)
    call = {"type": "tool_call", "id": "call_1", "name": "add", "args": {"x": 2, "y": 40}}
    assert plain.invoke(call).content == ours.invoke(call).content == "42"
    return side_by_side(lambda: plain.invoke(call), lambda: ours.invoke(call), calls)


def openai_client(calls: int) -> tuple[float, float]:
    from functionlayer_openai import tools

    functions = {"add": add}
    toolset = tools([guarded_add])
    batch: list[dict[str, Any]] = [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "add", "arguments": '{"x": 2, "y": 40}'},
        }
    ]

    def plain() -> list[dict[str, Any]]:
        # What a hand-written loop does: decode, call, wrap as a tool message.
        return [
            {
                "role": "tool",
                "tool_call_id": c["id"],
                "content": str(
                    functions[c["function"]["name"]](**json.loads(c["function"]["arguments"]))
                ),
            }
            for c in batch
        ]

    assert plain() == toolset.run(batch)
    return side_by_side(plain, lambda: toolset.run(batch), calls)


def llamaindex(calls: int) -> tuple[float, float]:
    import asyncio

    from functionlayer_llamaindex import tool
    from llama_index.core.tools import FunctionTool

    plain = FunctionTool.from_defaults(fn=add)
    ours = tool(guarded_add)
    loop = asyncio.new_event_loop()

    def run(tool_: FunctionTool) -> str:
        # LlamaIndex's agents await ``acall`` with the model's arguments.
        return str(loop.run_until_complete(tool_.acall(x=2, y=40)).content)

    try:
        assert run(plain) == run(ours) == "42"
        return side_by_side(lambda: run(plain), lambda: run(ours), calls)
    finally:
        loop.close()


def haystack(calls: int) -> tuple[float, float]:
    from functionlayer_haystack import tool
    from haystack.components.agents.state import State
    from haystack.components.agents.tool_calling import _prepare_tool_args
    from haystack.dataclasses import ChatMessage, ToolCall
    from haystack.tools import Tool, create_tool_from_function

    plain = create_tool_from_function(add)
    ours = tool(guarded_add)
    arguments = {"x": 2, "y": 40}
    # The Agent's State during a step: the question, then the pending call.
    state = State(schema={})
    state.set(
        "messages",
        [
            ChatMessage.from_user("add 2 and 40"),
            ChatMessage.from_assistant(
                tool_calls=[ToolCall(tool_name="add", arguments=arguments, id="call_1")]
            ),
        ],
    )

    def run(tool_: Tool) -> Any:
        # What Agent.run does per call: arguments plus what the tool reads from State, then invoke.
        return tool_.invoke(
            **_prepare_tool_args(tool=tool_, tool_call_arguments=arguments, state=state)
        )

    assert run(plain) == run(ours) == 42
    return side_by_side(lambda: run(plain), lambda: run(ours), calls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    args = parser.parse_args()
    # Pydantic AI and OpenAI Agents run tools on an event loop: their harness lives beside this
    # file (it can also run alone); CrewAI and ControlFlow have theirs too (slow imports).
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from adapter_overhead_pydantic_ai_openai_agents import openai_agents, pydantic_ai

    print(f"{'framework':<13} {'plain tool':>12} {'FunctionLayer':>14} {'added':>10} {'ratio':>7}")
    for name, bench in (
        ("langchain", langchain),
        ("openai", openai_client),
        ("llamaindex", llamaindex),
        ("haystack", haystack),
        ("pydantic-ai", pydantic_ai),
        ("openai-agents", openai_agents),
    ):
        plain, ours = bench(args.calls)
        print(
            f"{name:<13} {plain:>10.1f}us {ours:>12.1f}us {ours - plain:>8.1f}us {ours / plain:>6.2f}x"
        )


if __name__ == "__main__":
    main()
