"""One agent process of the OpenAI Agents pause/resume test (not collected by pytest).

    python _openai_agents_pause_agent.py pause       STATE EXECUTIONS  # run until interrupted
    python _openai_agents_pause_agent.py resume      STATE EXECUTIONS  # exit 3 while pending
    python _openai_agents_pause_agent.py resume-wait STATE EXECUTIONS  # wait for the decision

The server comes from FUNCTIONLAYER_API_BASE/FUNCTIONLAYER_API_TOKEN, the scripted model from
MODEL_BASE_URL (Responses API). ``multiply`` needs approval (``needs_approval=True``); every
time its body runs it appends a line to EXECUTIONS.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled
from functionlayer import FunctionLayer
from functionlayer_openai_agents import PausedRun, pause, resume
from openai import AsyncOpenAI

TASK = "multiply 2 and 5, then add 32 to the result"


def main(mode: str, state: Path, ran: Path) -> int:
    set_tracing_disabled(True)

    @function_tool(needs_approval=True)
    def multiply(x: int, y: int) -> int:
        """Multiply two integers."""
        with ran.open("a") as log:
            log.write(json.dumps({"pid": os.getpid(), "x": x, "y": y}) + "\n")
        return x * y

    @function_tool
    def add(x: int, y: int) -> int:
        """Add two integers."""
        return x + y

    client = AsyncOpenAI(base_url=os.environ["MODEL_BASE_URL"], api_key="unused")
    agent = Agent(
        name="math",
        model=OpenAIResponsesModel("gpt-4o-mini", client),
        tools=[multiply, add],
    )
    fl = FunctionLayer(agent_name="openai-agents-pause")
    if mode == "pause":
        result = Runner.run_sync(agent, TASK)
        paused = pause(fl, result)
        state.write_text(paused.to_json())
        print("PAUSED", " ".join(paused.call_ids), flush=True)
        return 0
    paused = PausedRun.from_json(state.read_text())
    run_state = resume(fl, agent, paused, wait=mode == "resume-wait")
    if run_state is None:
        print("PENDING", " ".join(paused.call_ids), flush=True)
        return 3
    resumed = Runner.run_sync(agent, run_state)
    print("OUTPUT", resumed.final_output, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])))
