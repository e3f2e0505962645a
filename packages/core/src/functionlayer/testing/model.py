"""A scripted, OpenAI-compatible model server for offline tests and examples.

``ScriptedModel`` serves the chat-completions API (``POST /v1/chat/completions``, streaming
and not), ``GET /v1/models``, a non-streaming Responses API (``POST /v1/responses``) and the Gemini
API's ``generateContent`` (see ``functionlayer.testing._gemini``) on 127.0.0.1. Point any OpenAI client (the ``openai`` SDK, LangChain's ``ChatOpenAI``, CrewAI,
ControlFlow) at ``model.base_url`` and it answers from a script instead of an LLM::

    from functionlayer.testing import ScriptedModel, text, tool_call

    with ScriptedModel([tool_call("multiply", {"x": 2, "y": 5}), text("It is 10.")]) as model:
        client = openai.OpenAI(base_url=model.base_url, api_key="unused")
        ...
        assert tool_results(model.requests[-1])[0].content == "10"

A script is a list of steps, used one per model request, or a single function
``(request) -> Reply`` called for every request. A step is a :class:`Reply` or a function
``(request) -> Reply``; ``request`` is the JSON body the client sent (``request["messages"]``,
``request["tools"]``). Every request is recorded in ``model.requests``. A request that finds
the script exhausted (or a step that raises) gets HTTP 500 with a message saying so, and the
message is kept in ``model.errors``; nothing hangs.

Run it standalone with ``python -m functionlayer.testing.model [--script steps.json]``.
Only the standard library is used, imported when a server starts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from functionlayer.testing._model_server import ScriptedModel
from functionlayer.testing._script import (
    ModelScript,
    Reply,
    ScriptedToolCall,
    Step,
    ToolResult,
    mark_task_successful,
    math_script,
    text,
    tool_call,
    tool_calls,
    tool_results,
)

__all__ = [
    "ModelScript",
    "Reply",
    "ScriptedModel",
    "ScriptedToolCall",
    "Step",
    "ToolResult",
    "mark_task_successful",
    "math_script",
    "text",
    "tool_call",
    "tool_calls",
    "tool_results",
]


# -- standalone ------------------------------------------------------------------------------
def _load_script(path: str) -> list[Step]:
    """A JSON list of steps: ``{"text": "..."}``, ``{"tool_call": {"name": ..., "arguments": {...}}}``
    or ``{"tool_calls": [{"name": ..., "arguments": {...}}, ...]}``."""
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data, list):
        raise ValueError(f"{path}: the script must be a JSON list of steps")
    steps: list[Step] = []
    for number, item in enumerate(data, 1):
        if not isinstance(item, dict):
            raise ValueError(f"{path}: step {number} must be an object")
        if "text" in item:
            steps.append(Reply(content=str(item["text"])))
        elif "tool_call" in item or "tool_calls" in item:
            raw = item.get("tool_calls") or [item.get("tool_call")]
            calls = []
            for call in raw:
                if not isinstance(call, dict) or "name" not in call:
                    raise ValueError(f"{path}: step {number}: a tool call needs a name")
                calls.append(
                    ScriptedToolCall(call["name"], call.get("arguments") or {}, call.get("id"))
                )
            steps.append(Reply(tool_calls=tuple(calls)))
        else:
            raise ValueError(f"{path}: step {number} needs 'text', 'tool_call' or 'tool_calls'")
    return steps


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m functionlayer.testing.model",
        description="Serve a scripted OpenAI-compatible model on 127.0.0.1 (default: the math example's script).",
    )
    parser.add_argument("--script", help="a JSON file with a list of steps")
    parser.add_argument(
        "--port", type=int, default=0, help="port to listen on (default: a free one)"
    )
    args = parser.parse_args(argv)
    script: ModelScript = _load_script(args.script) if args.script else math_script()
    with ScriptedModel(script, port=args.port) as model:
        print(model.base_url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
