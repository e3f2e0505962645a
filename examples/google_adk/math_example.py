"""A Google ADK agent whose `multiply` tool needs a human's approval.

    uv run --all-packages --all-groups python examples/google_adk/math_example.py

The agent is asked to "multiply 2 and 5, then add 32 to the result". Before `multiply` runs,
FunctionLayer asks you: answer `y` to approve, or `n` and then a line of feedback to reject
(the feedback goes back to the model as the tool's response). `add` is not guarded.

Without GOOGLE_API_KEY it runs offline against FunctionLayer's scripted model, which also speaks
the Gemini API (GEMINI_MODEL picks the real model, gemini-2.5-flash by default).
"""

import asyncio
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for examples/_support.py
from _support import approvals_destination
from functionlayer import FunctionLayer
from functionlayer.testing import ScriptedModel, math_script
from functionlayer_google_adk import tools
from google.adk.agents import Agent
from google.adk.models.google_llm import Gemini
from google.adk.runners import InMemoryRunner
from google.genai import types

# Approvals are asked in this terminal, or on a server when FUNCTIONLAYER_API_BASE is set.
fl = FunctionLayer()


@fl.require_approval()
def multiply(x: int, y: int) -> int:
    """Multiply two numbers."""
    return x * y


def add(x: int, y: int) -> int:
    """Add two numbers."""
    return x + y


async def ask(model: Gemini, task: str) -> str:
    agent = Agent(name="math", model=model, tools=tools([multiply, add]))
    runner = InMemoryRunner(agent=agent, app_name="math")
    session = await runner.session_service.create_session(app_name="math", user_id="me")
    message = types.Content(role="user", parts=[types.Part(text=task)])
    answer = ""
    async for event in runner.run_async(user_id="me", session_id=session.id, new_message=message):
        if event.is_final_response() and event.content and event.content.parts:
            answer = "".join(part.text or "" for part in event.content.parts)
    return answer


def main() -> None:
    task = "multiply 2 and 5, then add 32 to the result"
    if os.environ.get("GOOGLE_API_KEY"):
        name = os.environ.get("GEMINI_MODEL") or "gemini-2.5-flash"
        print(f"Using the real model {name} (GOOGLE_API_KEY is set).")
        print(approvals_destination(), flush=True)
        print("Agent:", asyncio.run(ask(Gemini(model=name), task)))
        return
    with ScriptedModel(math_script()) as scripted:
        print(
            f"Using the scripted offline model at {scripted.gemini_base_url} "
            "(set GOOGLE_API_KEY to use a real model)."
        )
        print(approvals_destination(), flush=True)
        os.environ["GOOGLE_API_KEY"] = "scripted-model-needs-no-key"  # the client wants one
        model = Gemini(model="gemini-2.5-flash", base_url=scripted.gemini_base_url)
        print("Agent:", asyncio.run(ask(model, task)))


if __name__ == "__main__":
    main()
