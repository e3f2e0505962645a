"""One agent process of the Google ADK pause/resume test (not collected by pytest).

    python _google_adk_pause_agent.py pause       STATE EXECUTIONS  # run until ADK asks to confirm
    python _google_adk_pause_agent.py resume      STATE EXECUTIONS  # exit 3 while pending
    python _google_adk_pause_agent.py resume-wait STATE EXECUTIONS  # wait for the decision

The server comes from FUNCTIONLAYER_API_BASE/FUNCTIONLAYER_API_TOKEN, the scripted model from
GEMINI_BASE_URL (the Gemini API). ``multiply`` is an ADK ``FunctionTool`` with
``require_confirmation=True``; every time its body runs it appends a line to EXECUTIONS. The ADK
session lives in a SQLite file next to STATE (``SqliteSessionService``), so another process
resumes it.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from functionlayer import FunctionLayer
from functionlayer_google_adk import ConfirmationPlugin, PausedRun, apause, collect
from google.adk.agents import Agent
from google.adk.models.google_llm import Gemini
from google.adk.runners import Runner
from google.adk.sessions.sqlite_session_service import SqliteSessionService
from google.adk.tools import FunctionTool
from google.genai import types

TASK = "multiply 2 and 5, then add 32 to the result"


async def main(mode: str, state: Path, ran: Path) -> int:
    def multiply(x: int, y: int) -> int:
        """Multiply two integers."""
        with ran.open("a") as log:
            log.write(json.dumps({"pid": os.getpid(), "x": x, "y": y}) + "\n")
        return x * y

    def add(x: int, y: int) -> int:
        """Add two integers."""
        return x + y

    agent = Agent(
        name="math",
        model=Gemini(model="gemini-2.5-flash", base_url=os.environ["GEMINI_BASE_URL"]),
        tools=[FunctionTool(multiply, require_confirmation=True), add],
    )
    sessions = SqliteSessionService(str(state.with_suffix(".sessions.sqlite3")))
    runner = Runner(
        agent=agent, app_name="math", session_service=sessions, plugins=[ConfirmationPlugin()]
    )
    fl = FunctionLayer(agent_name="google-adk-pause")
    if mode == "pause":
        session = await sessions.create_session(app_name="math", user_id="me")
        message = types.Content(role="user", parts=[types.Part(text=TASK)])
        events = [
            event
            async for event in runner.run_async(
                user_id="me", session_id=session.id, new_message=message
            )
        ]
        paused = await apause(fl, events, app_name="math", user_id="me", session_id=session.id)
        await asyncio.to_thread(state.write_text, paused.to_json())
        print("PAUSED", " ".join(paused.call_ids), flush=True)
        return 0
    paused = PausedRun.from_json(await asyncio.to_thread(state.read_text))
    # collect() blocks while it waits: off the event loop.
    answers = await asyncio.to_thread(collect, fl, paused, wait=mode == "resume-wait")
    if answers is None:
        print("PENDING", " ".join(paused.call_ids), flush=True)
        return 3
    final = ""
    async for event in runner.run_async(
        user_id=paused.user_id, session_id=paused.session_id, new_message=answers
    ):
        if event.is_final_response() and event.content and event.content.parts:
            final = "".join(part.text or "" for part in event.content.parts)
    print("OUTPUT", final, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))))
