"""CrewAI math agent whose `multiply` tool needs a human's approval.

    uv run --all-packages --all-groups python examples/crewai/crewai_math.py

"multiply 2 and 5, then add 32 to the result" -> 42. Offline against FunctionLayer's scripted
model unless OPENAI_API_KEY is set; approvals in this terminal unless FUNCTIONLAYER_API_BASE is set.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

# Keep the run offline and quiet: no CrewAI telemetry or tracing (set them to opt back in).
for _name, _value in {
    "OTEL_SDK_DISABLED": "true",
    "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_TRACING_ENABLED": "false",
}.items():
    os.environ.setdefault(_name, _value)

from crewai import LLM, Agent, Crew, Task  # noqa: E402
from functionlayer import FunctionLayer  # noqa: E402
from functionlayer.testing.model import math_script  # noqa: E402
from functionlayer_crewai import tools  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _support import example_model  # noqa: E402

# CrewAI warns on every request that it estimates token counts; nothing is wrong.
logging.getLogger("crewai.llms.base_llm").setLevel(logging.ERROR)

fl = FunctionLayer()


def add(x: int, y: int) -> int:
    """Add two integers."""
    return x + y


@fl.require_approval()
def multiply(x: int, y: int) -> int:
    """Multiply two integers."""
    return x * y


def main() -> None:
    with example_model(math_script()) as model:
        llm = LLM(model=model.litellm_model, base_url=model.base_url, api_key=model.api_key)
        agent = Agent(
            role="Mathematician",
            goal="Solve arithmetic problems with the tools you have, one step at a time.",
            backstory="You never do arithmetic in your head: you always use your tools.",
            tools=tools([add, multiply]),
            llm=llm,
            verbose=False,
        )
        task = Task(
            description="multiply 2 and 5, then add 32 to the result",
            expected_output="The final number, with a one-sentence explanation.",
            agent=agent,
        )
        result = Crew(agents=[agent], tasks=[task], verbose=False).kickoff()
        print(f"\nResult: {result.raw}")


if __name__ == "__main__":
    main()
