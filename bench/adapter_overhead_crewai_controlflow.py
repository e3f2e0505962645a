"""Added cost of the CrewAI and ControlFlow adapters' tools over each framework's plain tool.

    uv run --no-sync python bench/adapter_overhead_crewai_controlflow.py [--number N]

Every call is an auto-run call: the function is guarded with ``when=`` returning false, so no
human is asked and the figure is pure adapter + core overhead. For each framework the same
function is wrapped as the framework's own plain tool and as FunctionLayer's tool, and both
are called the way the framework's agent loop calls them, side by side in one run:

- CrewAI: ``execute_single_native_tool_call`` (its native tool-call executor) and ``tool.run``.
- ControlFlow: ``tool.fn(**arguments)``, what ``Tool.run`` calls inside its Prefect task (the
  Prefect task itself costs milliseconds and is the same for both, so it is left out).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import timeit
from collections.abc import Callable
from typing import Any

os.environ.setdefault("HOME", tempfile.mkdtemp(prefix="functionlayer-bench-home-"))
for _name, _value in {
    "OTEL_SDK_DISABLED": "true",
    "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_TRACING_ENABLED": "false",
    "CREWAI_TESTING": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "CONTROLFLOW_ENABLE_DEFAULT_PRINT_HANDLER": "false",
}.items():
    os.environ.setdefault(_name, _value)

from functionlayer import FunctionLayer  # noqa: E402
from functionlayer.testing import ScriptedHuman  # noqa: E402


def multiply(x: int, y: int) -> int:
    """Multiply two integers."""
    return x * y


fl = FunctionLayer(backend=ScriptedHuman([]))
guarded_multiply = fl.require_approval(when=lambda **kwargs: False)(multiply)


def per_call_us(fn: Callable[[], Any], number: int) -> float:
    timer = timeit.Timer(fn)
    return min(timer.repeat(repeat=5, number=number)) / number * 1e6


def row(label: str, plain: float, ours: float) -> None:
    print(
        f"{label:<44} plain {plain:9.2f} us   functionlayer {ours:9.2f} us   "
        f"added {ours - plain:8.2f} us   ratio {ours / plain:5.2f}x"
    )


def bench_crewai(number: int) -> None:
    from crewai.tools import tool as crewai_tool
    from crewai.utilities.agent_utils import (
        convert_tools_to_openai_schema,
        execute_single_native_tool_call,
    )
    from functionlayer_crewai import tool

    plain = crewai_tool("multiply")(multiply)
    ours = tool(guarded_multiply)
    assert plain.run(x=2, y=5) == ours.run(x=2, y=5) == 10

    def via_executor(tool_: Any) -> Callable[[], Any]:
        _, available, _ = convert_tools_to_openai_schema([tool_])
        call = {
            "id": "call_1",
            "type": "function",
            "function": {"name": "multiply", "arguments": json.dumps({"x": 2, "y": 5})},
        }

        def run() -> Any:
            outcome = execute_single_native_tool_call(
                call,
                available_functions=available,
                original_tools=[tool_],
                structured_tools=None,
                tools_handler=None,
                agent=None,
                task=None,
                crew=None,
                event_source=None,
            )
            assert outcome.result == "10", outcome.result
            return outcome

        return run

    row(
        "CrewAI tool.run",
        per_call_us(lambda: plain.run(x=2, y=5), number),
        per_call_us(lambda: ours.run(x=2, y=5), number),
    )
    row(
        "CrewAI native tool-call executor",
        per_call_us(via_executor(plain), number // 4),
        per_call_us(via_executor(ours), number // 4),
    )


def bench_controlflow(number: int) -> None:
    from controlflow.tools import Tool
    from functionlayer_controlflow import tool

    plain = Tool.from_function(multiply)
    ours = tool(guarded_multiply)
    arguments = {"x": 2, "y": 5}
    assert plain.fn(**arguments) == ours.fn(**arguments) == 10
    row(
        "ControlFlow tool.fn(**arguments)",
        per_call_us(lambda: plain.fn(**arguments), number),
        per_call_us(lambda: ours.fn(**arguments), number),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20_000, help="calls per timing")
    args = parser.parse_args()
    print(f"auto-run calls (when= false), best of 5 x {args.number} calls\n")
    baseline = per_call_us(lambda: multiply(2, 5), args.number)
    core = per_call_us(lambda: guarded_multiply(2, 5), args.number)
    row("(reference) bare function vs guarded", baseline, core)
    bench_crewai(args.number)
    bench_controlflow(args.number)


if __name__ == "__main__":
    main()
