"""FunctionLayer functions as OpenAI Agents SDK ``FunctionTool``s.

All approval logic lives in ``functionlayer``: this module maps a ``ToolSpec`` onto
``agents.FunctionTool`` and passes the model's tool call id, which the SDK hands every tool in
``ToolContext.tool_call_id``, to the approval explicitly.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterable
from typing import Any

from agents import FunctionTool, RunContextWrapper, default_tool_error_function
from agents.strict_schema import ensure_strict_json_schema
from agents.tool_context import ToolContext
from functionlayer import RequestContext, ToolSpec, request_context_scope, tool_spec
from pydantic import ValidationError

__all__ = ["tool", "tools"]

ErrorFunction = Callable[[RunContextWrapper[Any], Exception], Any]

_DEFAULT: Any = default_tool_error_function


def tool(
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    description: str | None = None,
    strict: bool | None = None,
    failure_error_function: ErrorFunction | None = _DEFAULT,
) -> FunctionTool:
    """Turn ``fn`` (guarded by ``fl.require_approval()``, plain, or ``fl.human_as_tool()``) into
    an Agents SDK ``FunctionTool`` with its name, docstring and argument schema.

    Sync and ``async def`` functions both work (a sync one waits for its human in a worker
    thread). The approval is asked under the model's tool call id; a rejected call returns the
    human's feedback as the tool result. Malformed or invalid arguments are reported to the
    model before anyone is asked. An exception raised by an approved function goes to
    ``failure_error_function`` as with ``@function_tool`` (by default the SDK's message to the
    model); pass ``None`` to let it propagate and fail the run.

    ``strict``: the SDK's strict JSON schema; by default on when every parameter is required.
    """
    spec = tool_spec(fn, name=name, description=description)
    return _build(spec, strict=strict, failure_error_function=failure_error_function)


def tools(fns: Iterable[Callable[..., Any]], *, strict: bool | None = None) -> list[FunctionTool]:
    """:func:`tool` for each function: pass as ``Agent(..., tools=tools([...]))``."""
    return [tool(fn, strict=strict) for fn in fns]


def _invalid(spec: ToolSpec, exc: ValidationError) -> str:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in error['loc']) or 'arguments'}: {error['msg']}"
        for error in exc.errors()
    )
    return f"Error: invalid arguments for {spec.name}: {problems}. Nothing was run."


def _arguments(spec: ToolSpec, raw: str) -> dict[str, Any] | str:
    if not raw or not raw.strip():
        return {}
    try:
        decoded = json.loads(raw)
    except ValueError as exc:
        return (
            f"Error: the arguments for {spec.name} are not valid JSON ({exc}). "
            "Nothing was run; call the tool again with a JSON object."
        )
    if not isinstance(decoded, dict):
        return f"Error: the arguments for {spec.name} must be a JSON object. Nothing was run."
    return decoded


def _build(
    spec: ToolSpec, *, strict: bool | None, failure_error_function: ErrorFunction | None
) -> FunctionTool:
    schema = spec.parameters
    if strict is None:
        strict = set(schema.get("properties", {})) == set(schema.get("required", []))
    if strict:
        schema = ensure_strict_json_schema(schema)

    async def on_invoke_tool(ctx: ToolContext[Any], input_json: str) -> Any:
        arguments = _arguments(spec, input_json)
        if isinstance(arguments, str):
            return arguments
        try:
            spec.validate(arguments)  # report bad arguments before anyone is asked
        except ValidationError as exc:
            return _invalid(spec, exc)
        try:
            with request_context_scope(_context(ctx)):
                return await spec.arun(arguments, call_id=ctx.tool_call_id)
        except Exception as exc:  # raised by the approved function itself, after approval
            if failure_error_function is None:
                raise
            message = failure_error_function(ctx, exc)
            return await message if inspect.isawaitable(message) else message

    return FunctionTool(
        name=spec.name,
        description=spec.description,
        params_json_schema=schema,
        on_invoke_tool=on_invoke_tool,
        strict_json_schema=strict,
    )


def _context(ctx: ToolContext[Any]) -> RequestContext | None:
    """The user's last message of the turn (``turn_input``), for the approver. The SDK hands a
    tool no model text of the turn, so there is no stated reason to attach."""
    user = None
    for item in reversed(list(getattr(ctx, "turn_input", None) or [])):
        if isinstance(item, dict) and item.get("role") == "user":
            user = _text(item.get("content"))
            break
    return RequestContext.bounded(user_request=user)


def _text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict)]
        return "\n".join(t for t in texts if isinstance(t, str)) or None
    return None
