"""One agent process of the Pydantic AI pause/resume test (not collected by pytest).

    python _pydantic_ai_pause_agent.py pause  STATE EXECUTIONS   # run until approval is needed
    python _pydantic_ai_pause_agent.py resume STATE EXECUTIONS   # exit 3 while still pending

The server comes from FUNCTIONLAYER_API_BASE/FUNCTIONLAYER_API_TOKEN, the scripted model from
MODEL_BASE_URL. ``multiply`` needs approval (Pydantic AI's ``requires_approval=True``); every
time its body runs it appends a line to EXECUTIONS.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from functionlayer import FunctionLayer
from functionlayer_pydantic_ai import PausedRun, collect, pause
from pydantic_ai import Agent, Tool
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider
from pydantic_ai.tools import DeferredToolRequests

TASK = "multiply 2 and 5, then add 32 to the result"


def main(mode: str, state: Path, ran: Path) -> int:
    def multiply(x: int, y: int) -> int:
        """Multiply two integers."""
        with ran.open("a") as log:
            log.write(json.dumps({"pid": os.getpid(), "x": x, "y": y}) + "\n")
        return x * y

    def add(x: int, y: int) -> int:
        """Add two integers."""
        return x + y

    model = OpenAIChatModel(
        "gpt-4o-mini",
        provider=OpenAIProvider(base_url=os.environ["MODEL_BASE_URL"], api_key="unused"),
    )
    agent = Agent(
        model,
        tools=[Tool(multiply, requires_approval=True), add],
        output_type=[str, DeferredToolRequests],
    )
    fl = FunctionLayer(agent_name="pydantic-ai-pause")
    if mode == "pause":
        result = agent.run_sync(TASK)
        paused = pause(fl, result)
        state.write_text(paused.to_json())
        print("PAUSED", " ".join(paused.call_ids), flush=True)
        return 0
    paused = PausedRun.from_json(state.read_text())
    results = collect(fl, paused)  # no waiting: None while a human has not decided
    if results is None:
        print("PENDING", " ".join(paused.call_ids), flush=True)
        return 3
    resumed = agent.run_sync(message_history=paused.message_history, deferred_tool_results=results)
    print("OUTPUT", resumed.output, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])))
