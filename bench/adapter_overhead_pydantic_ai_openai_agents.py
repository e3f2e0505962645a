"""What the Pydantic AI and OpenAI Agents adapters' tools add over each framework's plain tool,
on the auto-run path.

    uv run python bench/adapter_overhead_pydantic_ai_openai_agents.py [--calls N]

The same function runs as the framework's plain tool and as FunctionLayer's tool guarded with
``when=`` false (no human is asked: what is measured is the adapter plus the guard), both
called the way the framework's agent loop calls them, side by side in one process:

- Pydantic AI: the tool's argument validator, then ``function_schema.call(args, ctx)`` with a
  ``RunContext`` carrying the tool call id (what its tool manager does for each call).
- OpenAI Agents: ``agents.tool.invoke_function_tool`` with a ``ToolContext`` (what the runner
  calls for each function tool call).

Both frameworks run tools on an event loop, so each call is awaited inside one running loop.
Figures are the best of several rounds, in microseconds per call, in the same format as
``bench/adapter_overhead.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")

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

Call = Callable[[], Awaitable[Any]]


def side_by_side(plain: Call, ours: Call, calls: int, rounds: int = 7) -> tuple[float, float]:
    """Best per-call time of each, in microseconds; rounds alternate so both see the same load."""

    async def measure() -> tuple[float, float]:
        await plain(), await ours()  # warm caches (schemas, validators)
        best = [float("inf"), float("inf")]
        for _ in range(rounds):
            for index, fn in enumerate((plain, ours)):
                start = time.perf_counter()
                for _ in range(calls):
                    await fn()
                best[index] = min(best[index], (time.perf_counter() - start) / calls)
        return best[0] * 1e6, best[1] * 1e6

    return asyncio.run(measure())


def pydantic_ai(calls: int) -> tuple[float, float]:
    from functionlayer_pydantic_ai import tool
    from pydantic_ai import RunContext, Tool
    from pydantic_ai.models.test import TestModel
    from pydantic_ai.usage import RunUsage

    ctx: RunContext[None] = RunContext(
        deps=None, model=TestModel(), usage=RunUsage(), tool_call_id="call_1"
    )
    arguments = '{"x": 2, "y": 40}'

    def invoker(tool_: Tool[Any]) -> Call:
        schema = tool_.function_schema

        async def invoke() -> Any:
            validated = schema.validator.validate_json(arguments)
            return await schema.call(validated, ctx)

        return invoke

    plain, ours = invoker(Tool(add)), invoker(tool(guarded_add))

    async def check() -> None:
        assert await plain() == await ours() == 42

    asyncio.run(check())
    return side_by_side(plain, ours, calls)


def openai_agents(calls: int) -> tuple[float, float]:
    from agents import FunctionTool, function_tool
    from agents.tool import invoke_function_tool
    from agents.tool_context import ToolContext
    from functionlayer_openai_agents import tool

    arguments = '{"x": 2, "y": 40}'

    def invoker(tool_: FunctionTool) -> Call:
        async def invoke() -> Any:
            context: ToolContext[None] = ToolContext(
                context=None, tool_name="add", tool_call_id="call_1", tool_arguments=arguments
            )
            return await invoke_function_tool(
                function_tool=tool_, context=context, arguments=arguments
            )

        return invoke

    plain, ours = invoker(function_tool(add)), invoker(tool(guarded_add))

    async def check() -> None:
        assert await plain() == await ours() == 42

    asyncio.run(check())
    return side_by_side(plain, ours, calls)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    args = parser.parse_args()
    print(f"{'framework':<14} {'plain tool':>12} {'FunctionLayer':>14} {'added':>10} {'ratio':>7}")
    for name, bench in (("pydantic-ai", pydantic_ai), ("openai-agents", openai_agents)):
        plain, ours = bench(args.calls)
        print(
            f"{name:<14} {plain:>10.1f}us {ours:>12.1f}us {ours - plain:>8.1f}us {ours / plain:>6.2f}x"
        )


if __name__ == "__main__":
    main()
