"""The OpenAI wire format of the scripted model server: chat completions (whole and streamed),
the Responses API and model cards, built from a script's :class:`Reply`."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

from functionlayer.testing._script import Reply, Request, ScriptedToolCall

__all__ = ["chat_body", "chat_chunks", "chunks", "model_card", "response_body", "usage"]


def usage(request: Request, reply: Reply) -> dict[str, int]:
    # Rough token counts (4 characters a token): clients only need plausible numbers.
    prompt = max(1, len(json.dumps(request.get("messages") or request.get("input") or "")) // 4)
    completion = (
        len(reply.content or "") // 4
        + sum(len(c.name) + len(c.arguments_json()) for c in reply.tool_calls) // 4
    )
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def chunks(value: str, parts: int) -> list[str]:
    """Split ``value`` into up to ``parts`` non-empty pieces (streamed arguments arrive split)."""
    if not value:
        return []
    size = max(1, -(-len(value) // parts))
    return [value[i : i + size] for i in range(0, len(value), size)]


def model_card(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "functionlayer"}


def chat_body(
    name: str, request: Request, reply: Reply, calls: list[tuple[str, ScriptedToolCall]]
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": None}
    if calls:
        message["tool_calls"] = [
            {
                "id": cid,
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments_json()},
            }
            for cid, c in calls
        ]
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": name,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if calls else "stop",
            }
        ],
        "usage": usage(request, reply),
    }


def chat_chunks(
    name: str, request: Request, reply: Reply, calls: list[tuple[str, ScriptedToolCall]]
) -> Iterator[dict[str, Any]]:
    base = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": name,
        "system_fingerprint": None,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            **base,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    yield chunk({"role": "assistant", "content": ""})
    for piece in re.findall(r"\S+\s*|\s+", reply.content or ""):  # word by word
        yield chunk({"content": piece})
    for index, (cid, call) in enumerate(calls):
        head = {
            "index": index,
            "id": cid,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        yield chunk({"tool_calls": [head]})
        for piece in chunks(call.arguments_json(), 3):
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    yield chunk({}, "tool_calls" if calls else "stop")
    if (request.get("stream_options") or {}).get("include_usage"):
        yield {**base, "choices": [], "usage": usage(request, reply)}


def response_body(
    name: str, request: Request, reply: Reply, calls: list[tuple[str, ScriptedToolCall]]
) -> dict[str, Any]:
    output: list[dict[str, Any]] = []
    if reply.content is not None:
        output.append(
            {
                "type": "message",
                "id": f"msg_{uuid.uuid4().hex[:24]}",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": reply.content, "annotations": []}],
            }
        )
    for cid, call in calls:
        output.append(
            {
                "type": "function_call",
                "id": f"fc_{uuid.uuid4().hex[:24]}",
                "call_id": cid,
                "name": call.name,
                "arguments": call.arguments_json(),
                "status": "completed",
            }
        )
    counts = usage(request, reply)
    return {
        "id": f"resp_{uuid.uuid4().hex[:24]}",
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed",
        "model": name,
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": request.get("tool_choice", "auto"),
        "tools": request.get("tools") or [],
        "usage": {
            "input_tokens": counts["prompt_tokens"],
            "output_tokens": counts["completion_tokens"],
            "total_tokens": counts["total_tokens"],
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        },
    }
