"""One agent process of the Agent Framework pause/resume test (not collected by pytest).

    python _agent_framework_pause_agent.py pause       STATE EXECUTIONS  # run until it asks
    python _agent_framework_pause_agent.py resume      STATE EXECUTIONS  # exit 3 while pending
    python _agent_framework_pause_agent.py resume-wait STATE EXECUTIONS  # wait for the decision

The server comes from FUNCTIONLAYER_API_BASE/FUNCTIONLAYER_API_TOKEN, the scripted model from
MODEL_BASE_URL (chat completions). ``multiply`` needs approval
(``approval_mode="always_require"``); every time its body runs it appends a line to EXECUTIONS.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from agent_framework import Agent, tool
from agent_framework.openai import OpenAIChatCompletionClient
from functionlayer import FunctionLayer
from functionlayer_agent_framework import PausedRun, apause, aresume

TASK = "multiply 2 and 5, then add 32 to the result"


def build(ran: Path) -> tuple[FunctionLayer, Agent[Any]]:
    @tool(approval_mode="always_require")
    def multiply(x: int, y: int) -> int:
        """Multiply two integers."""
        with ran.open("a") as log:
            log.write(json.dumps({"pid": os.getpid(), "x": x, "y": y}) + "\n")
        return x * y

    @tool
    def add(x: int, y: int) -> int:
        """Add two integers."""
        return x + y

    client = OpenAIChatCompletionClient(
        model="gpt-4o-mini", base_url=os.environ["MODEL_BASE_URL"], api_key="unused"
    )
    agent = Agent(client=client, name="math", tools=[multiply, add])
    return FunctionLayer(agent_name="agent-framework-pause"), agent


async def pause(fl: FunctionLayer, agent: Agent[Any]) -> PausedRun:
    session = agent.create_session()
    response = await agent.run(TASK, session=session)
    return await apause(fl, agent, response, session)


def main(mode: str, state: Path, ran: Path) -> int:
    fl, agent = build(ran)
    if mode == "pause":
        paused = asyncio.run(pause(fl, agent))
        state.write_text(paused.to_json())
        print("PAUSED", " ".join(paused.call_ids), flush=True)
        return 0
    paused = PausedRun.from_json(state.read_text())
    resumed = asyncio.run(aresume(fl, agent, paused, wait=mode == "resume-wait"))
    if resumed is None:
        print("PENDING", " ".join(paused.call_ids), flush=True)
        return 3
    print("OUTPUT", resumed.text, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])))
