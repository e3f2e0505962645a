"""The permission-prompt tool: an MCP server whose one tool asks a person through FunctionLayer.

Clients that delegate permission prompts to an MCP tool (Claude Code's
``--permission-prompt-tool mcp__<server>__request_permission``, used with ``-p``) call
``request_permission(tool_name, input, tool_use_id)`` before running one of their own tools,
and read the answer from the result's one text block, a JSON object:

- allow: ``{"behavior": "allow", "updatedInput": {...}}`` (the input as approved, edits applied);
- deny: ``{"behavior": "deny", "message": "..."}`` (the text the model reads).

The approval's call id is the ``tool_use_id``, so the request in the inbox carries the id of
the tool use in the client's transcript; asking twice about the same tool use returns the same
decision (creation is idempotent per call id).
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from functionlayer import FunctionLayer
from mcp import types
from mcp.server.lowlevel import Server

from functionlayer_mcp import _compat
from functionlayer_mcp._approval import BackendChoice, Verdict, ask, make_backend
from functionlayer_mcp._lifetime import Outstanding, serve
from functionlayer_mcp._version import __version__

__all__ = ["TOOL_NAME", "permission_payload", "permission_server", "run_permission_prompt"]

TOOL_NAME = "request_permission"

_INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "tool_name": {"type": "string", "description": "The tool the agent wants to run."},
        "input": {"type": "object", "description": "The arguments it wants to run it with."},
        "tool_use_id": {"type": "string", "description": "The id of that tool use."},
    },
    "required": ["tool_name", "input"],
}

_DESCRIPTION = (
    "Ask a person, through FunctionLayer, whether the agent may run a tool with this input. "
    'Answers JSON: {"behavior": "allow", "updatedInput": {...}} or '
    '{"behavior": "deny", "message": "..."}.'
)


def permission_payload(verdict: Verdict) -> dict[str, Any]:
    """The permission-prompt contract's answer for a verdict."""
    if verdict.kind == "run":
        return {"behavior": "allow", "updatedInput": verdict.arguments}
    # A refusal carries the LLM-facing text from functionlayer.adapters; an answer given
    # instead of a decision is the person's own words.
    return {"behavior": "deny", "message": verdict.text}


def permission_server(
    client: FunctionLayer,
    *,
    timeout: float | None,
    users: list[str] | None = None,
    outstanding: Outstanding | None = None,
) -> Server[Any, Any]:
    """A low-level MCP server exposing ``request_permission``; the requests it waits on are in
    ``outstanding`` until decided (abandoned if the process ends first)."""
    waiting = outstanding if outstanding is not None else Outstanding(client)

    server: Server[Any, Any] = Server("functionlayer-permission-prompt", version=__version__)
    tag = secrets.token_hex(8)

    async def list_tools(_params: Any, _request_id: Any) -> types.ListToolsResult:
        tool = types.Tool(name=TOOL_NAME, description=_DESCRIPTION, inputSchema=_INPUT_SCHEMA)
        return types.ListToolsResult(tools=[tool])

    async def call_tool(
        params: types.CallToolRequestParams, request_id: types.RequestId | None
    ) -> types.CallToolResult:
        arguments = params.arguments or {}
        problem = _input_problem(params.name, arguments)
        if problem is not None:
            return types.CallToolResult(content=[_text(problem)], isError=True)
        tool_name = str(arguments["tool_name"])
        tool_input = arguments.get("input") or {}
        tool_use_id = arguments.get("tool_use_id")
        if not tool_use_id:
            tool_use_id = f"permission-{tag}-{request_id}"
        waiting.add(str(tool_use_id))
        verdict = await ask(
            client,
            name=tool_name,
            arguments=tool_input,
            call_id=str(tool_use_id),
            timeout=timeout,
            users=users,
        )
        waiting.discard(str(tool_use_id))
        text = json.dumps(permission_payload(verdict), ensure_ascii=False)
        return types.CallToolResult(content=[_text(text)])

    _compat.register(server, types.ListToolsRequest, types.PaginatedRequestParams, list_tools)
    _compat.register(server, types.CallToolRequest, types.CallToolRequestParams, call_tool)
    return server


async def run_permission_prompt(
    *,
    backend: BackendChoice = "auto",
    timeout: float | None = 600.0,
    users: list[str] | None = None,
    tty: str = "/dev/tty",
) -> int | None:
    """Serve the permission-prompt tool on stdio until the client disconnects or a SIGINT or
    SIGTERM arrives (returned); a request still waiting is then abandoned."""
    client = FunctionLayer(
        backend=make_backend(backend, tty_path=tty), run_id=f"mcp-permission-{secrets.token_hex(6)}"
    )
    outstanding = Outstanding(client)
    server = permission_server(client, timeout=timeout, users=users, outstanding=outstanding)
    try:
        return await serve(server, outstanding)
    finally:
        await client.aclose()


def _input_problem(name: str, arguments: dict[str, Any]) -> str | None:
    """Why a call cannot be asked about (checked against ``_INPUT_SCHEMA``), or ``None``."""
    if name != TOOL_NAME:
        return f"unknown tool {name[:128]!r}; this server has only {TOOL_NAME}"
    import jsonschema

    try:
        jsonschema.validate(instance=arguments, schema=_INPUT_SCHEMA)
    except jsonschema.ValidationError as exc:
        return f"Input validation error: {exc.message[:300]}"
    return None


def _text(text: str) -> types.TextContent:
    return types.TextContent(type="text", text=text)
