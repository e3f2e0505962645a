"""FunctionLayer functions as Pydantic AI ``Tool``s.

All approval logic lives in ``functionlayer``: this module maps a ``ToolSpec`` onto
``pydantic_ai.Tool`` and passes the model's tool call id, which Pydantic AI hands every tool in
``RunContext.tool_call_id``, to the approval explicitly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from functionlayer import ToolSpec, tool_spec
from pydantic import ValidationError
from pydantic_ai import ModelRetry, RunContext, Tool
from pydantic_ai.toolsets import FunctionToolset

__all__ = ["tool", "tools", "toolset"]


def tool(
    fn: Callable[..., Any], *, name: str | None = None, description: str | None = None
) -> Tool[Any]:
    """Turn ``fn`` (guarded by ``fl.require_approval()``, plain, or ``fl.human_as_tool()``) into a
    Pydantic AI tool with its name, docstring and argument schema; sync and ``async def`` both work.

    The approval is asked under the model's tool call id. A rejected call returns the human's
    feedback as the tool result, so the run goes on; invalid arguments ask the model to retry
    (``ModelRetry``) before anyone is asked; an exception raised by an approved function
    propagates as it would from any Pydantic AI tool.
    """
    spec = tool_spec(fn, name=name, description=description)
    return _build(spec)


def tools(fns: Iterable[Callable[..., Any]]) -> list[Tool[Any]]:
    """:func:`tool` for each function: pass as ``Agent(..., tools=tools([...]))``."""
    return [tool(fn) for fn in fns]


def toolset(fns: Iterable[Callable[..., Any]], *, id: str | None = None) -> FunctionToolset[Any]:
    """The functions as one ``FunctionToolset``: pass as ``Agent(..., toolsets=[...])``."""
    return FunctionToolset(tools(fns), id=id)


def _check(spec: ToolSpec, arguments: dict[str, Any]) -> None:
    """Invalid arguments ask the model to try again, before anyone is asked."""
    try:
        spec.validate(arguments)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'arguments'}: {error['msg']}"
            for error in exc.errors()
        )
        raise ModelRetry(
            f"Invalid arguments for {spec.name}: {problems}. Nothing was run."
        ) from exc


def _build(spec: ToolSpec) -> Tool[Any]:
    function: Callable[..., Any]
    if spec.is_async:

        async def arun(ctx: RunContext[Any], **arguments: Any) -> Any:
            _check(spec, arguments)
            return await spec.arun(arguments, call_id=ctx.tool_call_id)

        function = arun
    else:
        # Pydantic AI runs sync tools in a worker thread, so a human's decision never blocks
        # the event loop; the call id travels explicitly, not through the thread's context.
        def run(ctx: RunContext[Any], **arguments: Any) -> Any:
            _check(spec, arguments)
            return spec.run(arguments, call_id=ctx.tool_call_id)

        function = run
    return Tool.from_schema(
        function,
        name=spec.name,
        description=spec.description,
        json_schema=spec.parameters,
        takes_ctx=True,
    )
