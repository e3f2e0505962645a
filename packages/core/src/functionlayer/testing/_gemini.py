"""The Gemini API's ``generateContent`` wire format for the scripted model server.

``POST /v1beta/models/<model>:generateContent`` and ``:streamGenerateContent?alt=sse`` (as the
``google-genai`` client sends them, so Google's Agent Development Kit runs against the scripted
model with ``base_url=model.gemini_base_url``). Scripts stay shared with the OpenAI routes: a
Gemini request is handed to the script in the chat-completions shape (``request["messages"]``
with assistant ``tool_calls`` and ``tool`` results, ``request["tools"]`` as functions), with the
body the client sent under ``request["gemini"]``; the reply is written back as a Gemini
candidate whose ``functionCall`` parts carry the script's tool call ids.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from typing import Any

__all__ = ["as_script_request", "candidate_body", "route"]

_ROUTE = re.compile(r"^/(v1beta|v1alpha|v1)/models/(?P<model>[^/:]+):(?P<method>[A-Za-z]+)$")


def route(path: str) -> tuple[str, bool] | None:
    """``(model name, streamed)`` when ``path`` is a Gemini content-generation call."""
    match = _ROUTE.match(path)
    if match is None:
        return None
    method = match.group("method")
    if method not in ("generateContent", "streamGenerateContent"):
        return None
    return match.group("model"), method == "streamGenerateContent"


def _response_text(response: Any) -> str:
    if isinstance(response, Mapping) and set(response) == {"result"}:
        response = response["result"]
    if isinstance(response, str):
        return response
    return json.dumps(response)


def _text_of(parts: list[Any]) -> str | None:
    texts = [str(p["text"]) for p in parts if isinstance(p, Mapping) and "text" in p]
    return "".join(texts) if texts else None


def _messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    system = body.get("systemInstruction")
    if isinstance(system, Mapping):
        content = _text_of(list(system.get("parts") or []))
        if content:
            messages.append({"role": "system", "content": content})
    for turn in body.get("contents") or []:
        if not isinstance(turn, Mapping):
            continue
        parts = [p for p in turn.get("parts") or [] if isinstance(p, Mapping)]
        calls = [p["functionCall"] for p in parts if isinstance(p.get("functionCall"), Mapping)]
        results = [
            p["functionResponse"] for p in parts if isinstance(p.get("functionResponse"), Mapping)
        ]
        content = _text_of(parts)
        if turn.get("role") == "model":
            message: dict[str, Any] = {"role": "assistant", "content": content}
            if calls:
                message["tool_calls"] = [
                    {
                        "id": call.get("id") or "",
                        "type": "function",
                        "function": {
                            "name": call.get("name"),
                            "arguments": json.dumps(call.get("args") or {}),
                        },
                    }
                    for call in calls
                ]
            messages.append(message)
            continue
        for result in results:
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": result.get("id") or "",
                    "content": _response_text(result.get("response")),
                }
            )
        if content is not None:
            messages.append({"role": "user", "content": content})
    return messages


def _tools(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    for group in body.get("tools") or []:
        if not isinstance(group, Mapping):
            continue
        for declaration in group.get("functionDeclarations") or []:
            parameters = declaration.get("parametersJsonSchema") or declaration.get("parameters")
            tools.append(
                {
                    "type": "function",
                    "function": {
                        "name": declaration.get("name"),
                        "description": declaration.get("description"),
                        "parameters": parameters or {"type": "object", "properties": {}},
                    },
                }
            )
    return tools


def as_script_request(model: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """The request a script sees: the chat-completions shape, the Gemini body under ``gemini``."""
    return {
        "model": model,
        "messages": _messages(body),
        "tools": _tools(body),
        "gemini": dict(body),
    }


def candidate_body(model: str, reply: Any, calls: list[tuple[str, Any]]) -> dict[str, Any]:
    """A ``GenerateContentResponse`` for the scripted ``reply`` (calls with their ids)."""
    parts: list[dict[str, Any]] = []
    if reply.content is not None:
        parts.append({"text": reply.content})
    for call_id, call in calls:
        try:
            args = json.loads(call.arguments_json())
        except ValueError:
            args = {"arguments": call.arguments_json()}  # Gemini carries an object, not a string
        if not isinstance(args, dict):
            args = {"arguments": args}
        parts.append({"functionCall": {"id": call_id, "name": call.name, "args": args}})
    prompt = 1
    completion = max(1, sum(len(json.dumps(p)) for p in parts) // 4)
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": parts},
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": prompt,
            "candidatesTokenCount": completion,
            "totalTokenCount": prompt + completion,
        },
        "modelVersion": model,
        "responseId": uuid.uuid4().hex[:24],
    }
