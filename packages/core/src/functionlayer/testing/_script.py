"""What the scripted model answers: scripts (steps of :class:`Reply`), their builders, and
helpers that read a request (see :mod:`functionlayer.testing.model`)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

__all__ = [
    "ModelScript",
    "Reply",
    "Request",
    "ScriptedToolCall",
    "Step",
    "ToolResult",
    "mark_task_successful",
    "math_script",
    "resolve",
    "text",
    "tool_call",
    "tool_calls",
    "tool_results",
]

Request: TypeAlias = dict[str, Any]


@dataclass(frozen=True)
class ScriptedToolCall:
    """One tool call the model makes. ``arguments`` may be a raw string (e.g. malformed JSON)."""

    name: str
    arguments: Mapping[str, Any] | str = field(default_factory=dict)
    id: str | None = None
    """The tool call id; a fresh unique ``call_...`` id when ``None``."""

    def arguments_json(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(dict(self.arguments))


@dataclass(frozen=True)
class Reply:
    """What the model answers to one request: text, tool calls, or both."""

    content: str | None = None
    tool_calls: tuple[ScriptedToolCall, ...] = ()


Step: TypeAlias = Reply | Callable[[Request], Reply]
"""A scripted reply, or a function of the request that builds one."""

ModelScript: TypeAlias = Sequence[Step] | Callable[[Request], "Reply | None"]


def resolve(step: Step, request: Request) -> Reply:
    reply = step(request) if callable(step) else step
    if not isinstance(reply, Reply):
        raise TypeError(f"a script step must give a Reply, got {type(reply).__name__}")
    return reply


def text(content: str | Callable[[Request], str]) -> Step:
    """A plain assistant message; ``content`` may be a function of the request."""
    if callable(content):
        build = content
        return lambda request: Reply(content=build(request))
    return Reply(content=content)


def tool_call(
    name: str,
    arguments: Mapping[str, Any] | str | Callable[[Request], Mapping[str, Any]] | None = None,
    *,
    id: str | None = None,
) -> Step:
    """One tool call. ``arguments`` may be a dict, a raw JSON string, or a function of the request."""
    if callable(arguments):
        build = arguments
        return lambda request: Reply(tool_calls=(ScriptedToolCall(name, build(request), id),))
    return Reply(
        tool_calls=(ScriptedToolCall(name, arguments if arguments is not None else {}, id),)
    )


def tool_calls(*steps: Step) -> Step:
    """Several tool calls in one model turn: ``tool_calls(tool_call("a", ...), tool_call("b", ...))``."""

    def merge(request: Request) -> Reply:
        calls: list[ScriptedToolCall] = []
        for step in steps:
            calls.extend(resolve(step, request).tool_calls)
        return Reply(tool_calls=tuple(calls))

    if any(callable(step) for step in steps):
        return merge
    return merge({})


_MARK_TASK = re.compile(r"^mark_task_.+_successful$")


def mark_task_successful(result: Any | Callable[[Request], Any] = None) -> Step:
    """ControlFlow: call the request's ``mark_task_<id>_successful`` tool with ``{"result": ...}``.

    ``result`` may be a function of the request. Fails (HTTP 500) if the request offers no
    such tool, so a misconfigured test says why instead of looping.
    """

    def build(request: Request) -> Reply:
        names = [_tool_name(t) for t in request.get("tools") or []]
        matches = [n for n in names if n and _MARK_TASK.match(n)]
        if not matches:
            raise LookupError(f"no mark_task_<id>_successful tool in the request; tools: {names}")
        value = result(request) if callable(result) else result
        return Reply(tool_calls=(ScriptedToolCall(matches[0], {"result": value}),))

    return build


def _tool_name(tool: Mapping[str, Any]) -> str | None:
    function = tool.get("function")
    if isinstance(function, Mapping):  # chat-completions form
        return function.get("name")
    return tool.get("name")  # Responses API flat form


@dataclass(frozen=True)
class ToolResult:
    """A tool result the client sent back to the model."""

    call_id: str
    name: str | None
    """The name of the tool the model called with that id, when the history shows it."""
    content: str


def tool_results(request: Request) -> list[ToolResult]:
    """The tool results in a chat-completions or Responses request, oldest first."""
    names: dict[str, str] = {}
    results: list[ToolResult] = []
    for message in request.get("messages") or []:
        for call in message.get("tool_calls") or []:
            names[call.get("id", "")] = call.get("function", {}).get("name")
        if message.get("role") == "tool":
            call_id = message.get("tool_call_id", "")
            results.append(ToolResult(call_id, names.get(call_id), _content_text(message)))
    inputs = request.get("input")
    if isinstance(inputs, list):
        for item in inputs:
            if item.get("type") == "function_call":
                names[item.get("call_id", "")] = item.get("name")
            elif item.get("type") == "function_call_output":
                call_id = item.get("call_id", "")
                output = item.get("output")
                results.append(
                    ToolResult(call_id, names.get(call_id), _content_text({"content": output}))
                )
    return results


def _content_text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):  # content parts
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, Mapping))
    return "" if content is None else str(content)


def _as_number(value: str) -> int | float | None:
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return int(number) if number.is_integer() else number


def math_script(*, finish: Callable[[str], Step] = text) -> Callable[[Request], Reply]:
    """The math example's model: "multiply 2 and 5, then add 32 to the result".

    It calls ``multiply(x=2, y=5)``, then ``add(x=<product>, y=32)`` with whatever multiply
    returned, then finishes with ``finish(answer)`` (a text reply by default; pass
    ``mark_task_successful`` for ControlFlow). If a tool result is not a number (a rejection,
    a fail-closed message), it finishes by reporting that result instead of going on.
    """

    def script(request: Request) -> Reply:
        results = tool_results(request)
        if not results:
            return resolve(tool_call("multiply", {"x": 2, "y": 5}), request)
        last = results[-1]
        number = _as_number(last.content)
        if number is None:
            answer = f"I could not finish the calculation. The {last.name or 'tool'} tool said: {last.content}"
        elif last.name == "multiply":
            return resolve(tool_call("add", {"x": number, "y": 32}), request)
        else:
            answer = f"2 multiplied by 5 is {_product(results)}, and adding 32 gives {number}."
        return resolve(finish(answer), request)

    return script


def _product(results: list[ToolResult]) -> str:
    return next((r.content for r in results if r.name == "multiply"), "?")
