"""FunctionLayer functions as Google ADK tools.

All approval logic lives in ``functionlayer``: this module maps a ``ToolSpec`` onto an ADK
``BaseTool`` and passes the model's function call id, which ADK hands every tool in
``ToolContext.function_call_id``, to the approval explicitly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from functionlayer import ToolSpec, adapters, request_context_scope, tool_spec
from google.adk.tools.base_tool import BaseTool
from google.adk.tools.tool_context import ToolContext
from google.genai import types
from pydantic import ValidationError

from functionlayer_google_adk._context import context_of

__all__ = ["FunctionLayerTool", "tool", "tools"]


class FunctionLayerTool(BaseTool):
    """An ADK tool running a FunctionLayer function (guarded, plain or ``human_as_tool()``)."""

    def __init__(self, spec: ToolSpec) -> None:
        super().__init__(name=spec.name, description=spec.description)
        self.spec = spec

    def _get_declaration(self) -> types.FunctionDeclaration:
        return types.FunctionDeclaration(
            name=self.name,
            description=self.description,
            parameters_json_schema=self.spec.parameters,
        )

    async def run_async(self, *, args: dict[str, Any], tool_context: ToolContext) -> Any:
        try:
            self.spec.validate(args)  # report bad arguments before anyone is asked
        except ValidationError as exc:
            return adapters.invalid_arguments_message(self.name, _problems(exc))
        # A sync function waits for its human in a worker thread (ToolSpec.arun); the call id
        # travels explicitly, not through the thread's context.
        # The user's message and the model's text before the call, for the approver.
        with request_context_scope(context_of(tool_context)):
            return await self.spec.arun(args, call_id=tool_context.function_call_id)


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in error['loc']) or 'arguments'}: {error['msg']}"
        for error in exc.errors()
    )


def tool(
    fn: Callable[..., Any], *, name: str | None = None, description: str | None = None
) -> FunctionLayerTool:
    """Turn ``fn`` (guarded by ``fl.require_approval()``, plain, or ``fl.human_as_tool()``) into an
    ADK tool with its name, docstring and argument schema; sync and ``async def`` both work.

    The approval is asked under the model's function call id (``ToolContext.function_call_id``).
    A rejected call returns the human's feedback as the tool's response, so the run goes on;
    invalid arguments are reported to the model before anyone is asked; an exception raised by
    an approved function propagates as from any ADK tool (``on_tool_error_callback`` sees it).
    """
    return FunctionLayerTool(tool_spec(fn, name=name, description=description))


def tools(fns: Iterable[Callable[..., Any]]) -> list[FunctionLayerTool]:
    """:func:`tool` for each function: pass as ``Agent(..., tools=tools([...]))``."""
    return [tool(fn) for fn in fns]
