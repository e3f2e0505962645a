"""FunctionLayer functions as OpenAI tool definitions, plus a runner for the model's tool calls.

All approval logic lives in ``functionlayer``; this module builds the definitions from
``tool_spec(fn)`` and runs each tool call under its ``tool_call_id`` as the approval's call id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from functionlayer import RequestContext, ToolSpec, group_scope, request_context_scope, tool_spec
from pydantic import ValidationError

__all__ = ["FunctionTool", "Toolset", "tool", "tools"]


class FunctionTool:
    """One function as an OpenAI tool: its definitions and a runner for its calls."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        strict: bool = False,
    ) -> None:
        self.spec: ToolSpec = tool_spec(fn, name=name, description=description)
        self.strict = strict
        if strict:
            _check_strict(self.spec)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def definition(self) -> dict[str, Any]:
        """The chat-completions form: ``{"type": "function", "function": {...}}``."""
        return {"type": "function", "function": self._function()}

    @property
    def responses_definition(self) -> dict[str, Any]:
        """The Responses API's flat form: ``{"type": "function", "name": ..., ...}``."""
        return {"type": "function", **self._function()}

    def _function(self) -> dict[str, Any]:
        return {
            "name": self.spec.name,
            "description": self.spec.description,
            "parameters": self.spec.parameters,
            "strict": self.strict,
        }

    def __repr__(self) -> str:
        return f"FunctionTool({self.name!r})"


@dataclass(frozen=True)
class _Call:
    id: str
    name: str
    arguments: str | Mapping[str, Any] | None


class Toolset:
    """Tools to pass to the model, and a runner for the tool calls it makes.

    >>> toolset = tools([multiply, add])
    >>> reply = client.chat.completions.create(model=..., messages=messages, tools=toolset.definitions)
    >>> messages.append(reply.choices[0].message)
    >>> messages.extend(toolset.run(reply.choices[0].message.tool_calls))

    Each call runs under its ``tool_call_id`` as the approval's call id, so every call in a turn
    gets its own decision, and a retried turn reuses the decision instead of asking again; an
    approval runs the function once, so a repeated tool call id gets "already ran" instead.
    A rejection, a fail-closed message, malformed arguments or an unknown tool name become the
    tool message's content; an exception raised by an approved function propagates.

    Pass the conversation as ``messages=`` (and the assistant message itself, or the Responses
    output) and the approver also reads, labelled as the agent's untrusted words, the last user
    message and the model's text before its tool calls (``RequestContext``).
    """

    def __init__(
        self, fns: Iterable[Callable[..., Any] | FunctionTool], *, strict: bool = False
    ) -> None:
        self._tools: dict[str, FunctionTool] = {}
        for fn in fns:
            item = fn if isinstance(fn, FunctionTool) else FunctionTool(fn, strict=strict)
            if item.name in self._tools:
                raise ValueError(f"two tools are named {item.name!r}; tool names must be unique")
            self._tools[item.name] = item

    @property
    def names(self) -> list[str]:
        return list(self._tools)

    def __getitem__(self, name: str) -> FunctionTool:
        return self._tools[name]

    def __len__(self) -> int:
        return len(self._tools)

    def __repr__(self) -> str:
        return f"Toolset({self.names!r})"

    @property
    def definitions(self) -> list[dict[str, Any]]:
        """Pass as ``tools=`` to ``client.chat.completions.create``."""
        return [t.definition for t in self._tools.values()]

    @property
    def responses_definitions(self) -> list[dict[str, Any]]:
        """Pass as ``tools=`` to ``client.responses.create``."""
        return [t.responses_definition for t in self._tools.values()]

    # -- chat completions ----------------------------------------------------------------------
    def run(self, tool_calls: Any, *, messages: Any = None) -> list[dict[str, Any]]:
        """Run the model's tool calls one after another; one tool message per call, in order.

        ``tool_calls`` is ``message.tool_calls`` (SDK objects or dicts), or the message itself;
        ``None`` gives ``[]``. ``messages``: the conversation so far, for the approver's context.
        """
        calls = _chat_calls(tool_calls)
        contents = self._run_turn(calls, _chat_context(tool_calls, messages))
        return [_tool_message(call, content) for call, content in zip(calls, contents, strict=True)]

    async def arun(self, tool_calls: Any, *, messages: Any = None) -> list[dict[str, Any]]:
        """Run the model's tool calls concurrently (each waits for its own human decision)."""
        calls = _chat_calls(tool_calls)
        contents = await self._arun_turn(calls, _chat_context(tool_calls, messages))
        return [_tool_message(call, content) for call, content in zip(calls, contents, strict=True)]

    # -- Responses API ---------------------------------------------------------------------------
    def run_responses(self, output: Any, *, input: Any = None) -> list[dict[str, Any]]:
        """Run the ``function_call`` items of a Responses API output (``response.output``);
        returns the ``function_call_output`` items to send back as input. ``input``: what was
        sent as ``input=`` (a string or items), for the approver's context."""
        calls = _responses_calls(output)
        contents = self._run_turn(calls, _responses_context(output, input))
        return [_call_output(call, content) for call, content in zip(calls, contents, strict=True)]

    async def arun_responses(self, output: Any, *, input: Any = None) -> list[dict[str, Any]]:
        """:meth:`run_responses`, with the calls running concurrently."""
        calls = _responses_calls(output)
        contents = await self._arun_turn(calls, _responses_context(output, input))
        return [_call_output(call, content) for call, content in zip(calls, contents, strict=True)]

    # -- running -------------------------------------------------------------------------------
    def _run_turn(self, calls: list[_Call], context: RequestContext | None) -> list[str]:
        """Run a turn's calls one after another, under the turn's context for the approver."""
        with request_context_scope(context), self._turn(calls):
            return [self._run_one(call) for call in calls]

    async def _arun_turn(self, calls: list[_Call], context: RequestContext | None) -> list[str]:
        """Run a turn's calls concurrently (each waits for its own human decision)."""
        with request_context_scope(context):  # set first: the turn's requests carry it
            async with self._aturn(calls):
                return await self._gather(calls)

    @contextlib.contextmanager
    def _turn(self, calls: list[_Call]) -> Iterator[None]:
        """Several calls in one turn: one review group, every request created before the
        first waits (a person reviews them together; each keeps its own decision)."""
        if len(calls) < 2:
            yield
            return
        with group_scope():
            for call in calls:
                prepared = self._prepare(call)
                if not isinstance(prepared, str):
                    prepared[0].spec.announce(prepared[1], call_id=call.id)
            yield

    @contextlib.asynccontextmanager
    async def _aturn(self, calls: list[_Call]) -> AsyncIterator[None]:
        if len(calls) < 2:
            yield
            return
        with group_scope():
            for call in calls:
                prepared = self._prepare(call)
                if not isinstance(prepared, str):
                    await prepared[0].spec.aannounce(prepared[1], call_id=call.id)
            yield

    def _prepare(self, call: _Call) -> tuple[FunctionTool, dict[str, Any]] | str:
        """The tool and its decoded arguments, or the message telling the model what was wrong."""
        item = self._tools.get(call.name)
        if item is None:
            known = ", ".join(self._tools) or "none"
            return f"Error: there is no tool named {call.name!r} (available tools: {known}). Nothing was run."
        arguments = _decode_arguments(call)
        if isinstance(arguments, str):
            return arguments
        return item, arguments

    def _run_one(self, call: _Call) -> str:
        prepared = self._prepare(call)
        if isinstance(prepared, str):
            return prepared
        item, arguments = prepared
        try:
            result = item.spec.run(arguments, call_id=call.id)
        except ValidationError as exc:
            return _invalid(call.name, exc)
        return _content(result)

    async def _arun_one(self, call: _Call) -> str:
        prepared = self._prepare(call)
        if isinstance(prepared, str):
            return prepared
        item, arguments = prepared
        try:
            result = await item.spec.arun(arguments, call_id=call.id)
        except ValidationError as exc:
            return _invalid(call.name, exc)
        return _content(result)

    async def _gather(self, calls: list[_Call]) -> list[str]:
        # Let every call finish (each may be waiting on a human) before re-raising a failure.
        results = await asyncio.gather(*(self._arun_one(c) for c in calls), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return [r for r in results if isinstance(r, str)]


def tool(
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    description: str | None = None,
    strict: bool = False,
) -> FunctionTool:
    """One function as an OpenAI tool (``.definition``, ``.responses_definition``)."""
    return FunctionTool(fn, name=name, description=description, strict=strict)


def tools(fns: Iterable[Callable[..., Any] | FunctionTool], *, strict: bool = False) -> Toolset:
    """A :class:`Toolset` of guarded (or plain, or ``fl.human_as_tool()``) functions."""
    return Toolset(fns, strict=strict)


# -- helpers ---------------------------------------------------------------------------------------
def _field(obj: Any, name: str) -> Any:
    if type(obj) is dict:  # the common case, without the slower Mapping ABC check
        return obj.get(name)
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _text(content: Any) -> str | None:
    """The text of a message's content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list | tuple):
        parts = [_field(part, "text") for part in content]
        joined = "\n".join(p for p in parts if isinstance(p, str))
        return joined or None
    return None


def _last_user_text(messages: Any) -> str | None:
    if isinstance(messages, str):
        return messages
    if not isinstance(messages, list | tuple):
        return None
    for message in reversed(messages):
        if _field(message, "role") == "user":
            return _text(_field(message, "content"))
    return None


def _chat_context(tool_calls: Any, messages: Any) -> RequestContext | None:
    """The last user message and the model's text before its tool calls (from the assistant
    message when given, else the last assistant message of ``messages``): the agent's words,
    shown to the approver as such."""
    reason = None
    if not isinstance(tool_calls, list | tuple) and _field(tool_calls, "role") == "assistant":
        reason = _text(_field(tool_calls, "content"))
    elif isinstance(messages, list | tuple) and messages:
        last = messages[-1]
        if _field(last, "role") == "assistant":
            reason = _text(_field(last, "content"))
    return RequestContext.bounded(user_request=_last_user_text(messages), reason=reason)


def _responses_context(output: Any, given: Any) -> RequestContext | None:
    items = _field(output, "output") if not isinstance(output, list | tuple) else output
    said = [
        _text(_field(item, "content"))
        for item in items or []
        if _field(item, "type") == "message" and _field(item, "role") in (None, "assistant")
    ]
    reason = "\n".join(t for t in said if t) or None
    return RequestContext.bounded(user_request=_last_user_text(given), reason=reason)


def _chat_calls(tool_calls: Any) -> list[_Call]:
    if tool_calls is None:
        return []
    if not isinstance(tool_calls, list | tuple) and _field(tool_calls, "role") == "assistant":
        tool_calls = _field(tool_calls, "tool_calls") or []  # a whole assistant message
    calls = []
    for raw in tool_calls:
        call_id = _field(raw, "id")
        function = _field(raw, "function")
        name = _field(function, "name") if function is not None else None
        if not isinstance(call_id, str) or not call_id or not isinstance(name, str):
            raise ValueError(
                "each tool call needs an 'id' and a 'function' with a 'name' "
                f"(chat-completions form), got {raw!r}"
            )
        calls.append(_Call(call_id, name, _field(function, "arguments")))
    return calls


def _responses_calls(output: Any) -> list[_Call]:
    if output is None:
        return []
    items = _field(output, "output") if not isinstance(output, list | tuple) else output
    calls = []
    for raw in items or []:
        if _field(raw, "type") != "function_call":
            continue  # messages, reasoning items: nothing to run
        call_id = _field(raw, "call_id")
        name = _field(raw, "name")
        if not isinstance(call_id, str) or not call_id or not isinstance(name, str):
            raise ValueError(f"a function_call item needs a 'call_id' and a 'name', got {raw!r}")
        calls.append(_Call(call_id, name, _field(raw, "arguments")))
    return calls


def _decode_arguments(call: _Call) -> dict[str, Any] | str:
    raw = call.arguments
    if raw is None or raw == "":
        return {}
    if isinstance(raw, Mapping):
        return dict(raw)
    try:
        decoded = json.loads(raw)
    except (TypeError, ValueError) as exc:
        return (
            f"Error: the arguments for {call.name} are not valid JSON ({exc}). "
            "Nothing was run; call the tool again with a JSON object."
        )
    if not isinstance(decoded, dict):
        return (
            f"Error: the arguments for {call.name} must be a JSON object, got "
            f"{type(decoded).__name__}. Nothing was run."
        )
    return decoded


def _invalid(name: str, exc: ValidationError) -> str:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in error['loc']) or 'arguments'}: {error['msg']}"
        for error in exc.errors()
    )
    return f"Error: invalid arguments for {name}: {problems}. Nothing was run."


def _content(result: Any) -> str:
    if isinstance(result, str):
        return result
    try:
        return json.dumps(result)
    except (TypeError, ValueError):
        return str(result)


def _tool_message(call: _Call, content: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call.id, "content": content}


def _call_output(call: _Call, content: str) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call.id, "output": content}


def _check_strict(spec: ToolSpec) -> None:
    params = spec.parameters
    missing = set(params.get("properties", {})) - set(params.get("required", []))
    if missing:
        raise ValueError(
            f"strict mode needs every parameter of {spec.name} to be required; "
            f"these have defaults: {sorted(missing)}"
        )
