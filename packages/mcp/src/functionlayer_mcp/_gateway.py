"""The gateway: an MCP server (stdio) in front of an upstream MCP server, gating chosen tools.

Tools, prompts and resources are forwarded unchanged (the upstream's own request and result
objects pass through). A ``tools/call`` that a ``[[gate]]`` matches is first sent to
FunctionLayer for approval; the upstream sees it only once a person approved it, with exactly
the approved (possibly edited) arguments, and at most once per approval: the execution is
claimed before the call is forwarded (``functionlayer.adapters.aclaim``, in ``_approval.ask``),
and what the upstream answered (its text, or the error it raised) is reported after, so a later
"already ran" can tell the model how it ended.

Call ids. The approval's call id is ``mcp-<session>-<JSON-RPC request id>``. The request id ties
the approval to the very request in the client's log, but it is only unique within one MCP
session: clients number their requests from 0 or 1 on every connection. ``<session>`` is 64
random bits drawn when the gateway starts (each stdio connection is one gateway process, so one
session). Without it, two sessions' request 7 would share a call id, and since creating a
request is idempotent per call id, the second session would receive the first one's decision:
an approval used twice. Process ids and clocks repeat across machines and restarts; random
bits do not. The run id is ``mcp-<session>``, so the inbox groups one session's calls.

What is gated (when the configuration has at least one ``[[gate]]``). At start-up the gateway
lists the upstream's tools and refuses to start when a gate names none of them
(:meth:`GatewayConfig.unknown_tools`). A call to a tool the upstream does not list is refused. A
call to a tool a gate names first has its arguments checked against the tool's ``inputSchema``
(keys the schema does not declare are refused, :mod:`functionlayer_mcp._schema`), then the gates'
conditions are read from the arguments as the schema shapes them. A tool the upstream lists only
later (its tools changed after start-up) was not in the list the configuration was checked
against: every call to it is gated. Only the start-up tools no gate names pass straight through.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any

import anyio
from functionlayer import FunctionLayer, InvalidEditError, adapters
from mcp import types
from mcp.client.session import ClientSession
from mcp.server.lowlevel import Server

from functionlayer_mcp import _compat
from functionlayer_mcp._approval import ask, make_backend, warn
from functionlayer_mcp._arguments import finite, schema_problem
from functionlayer_mcp._config import ConfigError, Gate, GatewayConfig
from functionlayer_mcp._held import HeldCalls, held_key, pending_message
from functionlayer_mcp._lifetime import Outstanding, serve
from functionlayer_mcp._results import edited_result, error, result_text, shown_name, text
from functionlayer_mcp._schema import shown
from functionlayer_mcp._upstream import connect_upstream, startup_tools

__all__ = ["Gateway", "connect_upstream", "run_gateway"]

Handler = Callable[[Any, Any], Awaitable[Any]]

# The gate of a tool the upstream added after start-up: every call asks, with [approval]'s
# timeout and users.
_LATER_TOOL = Gate(tools=["*"])

# Requests forwarded as they are when the upstream offers the capability:
# (request, its params, its result).
_PASSTHROUGH: dict[str, list[tuple[type[Any], type[Any], type[Any]]]] = {
    "prompts": [
        (types.ListPromptsRequest, types.PaginatedRequestParams, types.ListPromptsResult),
        (types.GetPromptRequest, types.GetPromptRequestParams, types.GetPromptResult),
    ],
    "resources": [
        (types.ListResourcesRequest, types.PaginatedRequestParams, types.ListResourcesResult),
        (
            types.ListResourceTemplatesRequest,
            types.PaginatedRequestParams,
            types.ListResourceTemplatesResult,
        ),
        (types.ReadResourceRequest, types.ReadResourceRequestParams, types.ReadResourceResult),
    ],
    "completions": [(types.CompleteRequest, types.CompleteRequestParams, types.CompleteResult)],
}


class Gateway:
    """The request handlers of one gateway session."""

    def __init__(
        self,
        config: GatewayConfig,
        upstream: ClientSession,
        upstream_info: types.InitializeResult,
        client: FunctionLayer,
        *,
        startup_tools: Collection[str],
        session_tag: str | None = None,
        hold_seconds: float | None = None,
        outstanding: Outstanding | None = None,
    ) -> None:
        self.config = config
        self.outstanding = outstanding if outstanding is not None else Outstanding(client)
        """The requests this session created that nobody decided yet: abandoned when the
        gateway ends, kept while a call is held between the client's retries."""
        self.startup_tools = frozenset(startup_tools)
        """The tools the upstream listed at start-up, which the configuration was checked against."""
        self._announced: set[str] = set()
        self.upstream = upstream
        self.upstream_info = upstream_info
        self.client = client
        self.session_tag = session_tag or secrets.token_hex(8)
        self.tools: dict[str, types.Tool] = {}
        self.hold_seconds = hold_seconds
        """How long a gated call waits for a person before answering "pending" (None: until
        decided). A pending call is remembered (``held``), so the same call made again
        resumes the same request instead of asking anew."""
        self.held = HeldCalls()
        info = _compat.field(upstream_info, "serverInfo")
        self.server: Server[Any, Any] = Server(
            info.name, version=info.version, instructions=upstream_info.instructions
        )
        caps = upstream_info.capabilities
        server = self.server
        if caps.tools is not None:
            _compat.register(
                server, types.ListToolsRequest, types.PaginatedRequestParams, self._list_tools
            )
            _compat.register(
                server, types.CallToolRequest, types.CallToolRequestParams, self._call_tool
            )
        for capability, rows in _PASSTHROUGH.items():
            if getattr(caps, capability, None) is not None:
                for request_type, params_type, result_type in rows:
                    forward = self._forwarder(request_type, result_type)
                    _compat.register(server, request_type, params_type, forward)

    def call_id(self, request_id: types.RequestId) -> str:
        return f"mcp-{self.session_tag}-{request_id}"

    # -- forwarding --------------------------------------------------------------------------

    def _forwarder(self, request_type: type[Any], result_type: type[Any]) -> Handler:
        async def forward(params: Any, _request_id: Any) -> Any:
            return await _compat.send(self.upstream, request_type, params, result_type)

        return forward

    async def _list_tools(
        self, params: types.PaginatedRequestParams | None, _request_id: Any
    ) -> types.ListToolsResult:
        return await self._list_page(params)

    async def _list_page(
        self, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        result: types.ListToolsResult = await _compat.send(
            self.upstream, types.ListToolsRequest, params, types.ListToolsResult
        )
        for tool in result.tools:
            self.tools[tool.name] = tool
        return result

    async def _tool(self, name: str) -> types.Tool | None:
        """The upstream's definition of ``name`` (fetched when this session has not listed it)."""
        cursor: str | None = None
        while name not in self.tools:
            params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
            page = await self._list_page(params)
            if not _compat.field(page, "nextCursor"):
                break
            cursor = _compat.field(page, "nextCursor")
        return self.tools.get(name)

    async def _forward_call(self, params: types.CallToolRequestParams) -> types.CallToolResult:
        result: types.CallToolResult = await _compat.send(
            self.upstream, types.CallToolRequest, params, types.CallToolResult
        )
        return result

    # -- the gate ----------------------------------------------------------------------------

    async def _call_tool(
        self, params: types.CallToolRequestParams, request_id: types.RequestId | None
    ) -> Any:
        name = params.name
        arguments = params.arguments or {}
        if not self.config.gate:  # a plain proxy, as configured (said on stderr at start-up)
            return await self._forward_call(params)
        tool = await self._tool(name)
        if tool is None:
            reason = "the upstream lists no tool by this name"
            return error(adapters.not_run_message(shown_name(name), reason))
        gate: Gate | None
        if name not in self.startup_tools:
            if name not in self._announced:
                self._announced.add(name)
                warn(f"tool {shown(name)} appeared after start-up: every call to it is gated")
            gate = _LATER_TOOL
        elif not self.config.mentions(name):
            return await self._forward_call(params)
        else:
            gate = None
        if not finite(arguments):
            # NaN and Infinity are not JSON (mcp 1.x turns them into null, 2.x keeps them): no
            # condition can judge them and no request can record them. Refused, not asked.
            reason = "the arguments hold a number JSON cannot carry (NaN or Infinity)"
            return error(adapters.not_run_message(name, reason))
        problem = schema_problem(tool, arguments)
        if problem is not None:
            reason = f"the arguments do not match the tool's input schema: {problem}"
            return error(adapters.not_run_message(name, reason))
        # From here on the upstream receives the name, the arguments the gate judged (and a
        # person approved) and the protocol's _meta: no extra fields the client added to params.
        judged = types.CallToolRequestParams(name=name, arguments=arguments, _meta=params.meta)
        if gate is None:
            gate = self.config.gate_for(name, arguments)
            if gate is None:
                return await self._forward_call(judged)
        assert request_id is not None  # tools/call is a request, never a notification
        return await self._gated(params, judged, tool, gate, request_id)

    async def _gated(
        self,
        sent: types.CallToolRequestParams,
        params: types.CallToolRequestParams,
        tool: types.Tool,
        gate: Gate,
        request_id: types.RequestId,
    ) -> Any:
        """Ask for approval of a gated call (``params``, as judged), or resume the request
        the same call made before; run it on the upstream only once approved."""
        name, arguments = params.name, params.arguments or {}
        echoed = _compat.request_state(sent)  # a retry's requestState (2026-07-28): untrusted
        timeout = gate.timeout_seconds or self.config.approval.timeout_seconds
        hold = self.hold_seconds
        key = held_key(name, arguments)
        handle = None if echoed is None else self.held.redeem(echoed)  # redeemed once
        resumed = self.held.resumed(key) if hold is not None else None
        if echoed is not None:
            # A retry names its pending request by the handle this session handed out: an
            # unknown or used handle, or one for another call, resumes nothing and runs nothing.
            if handle is None or handle[0] != key:
                reason = (
                    "the requestState names no pending approval of this call in this session "
                    "(unknown, already used, or issued for other arguments)"
                )
                return error(adapters.not_run_message(name, reason))
            _, call_id, deadline = handle
        elif resumed is not None:  # the same call again: the same request, the same deadline
            call_id, deadline = resumed
        else:
            call_id, deadline = self.call_id(request_id), time.monotonic() + timeout

        def validate_edits(edits: dict[str, Any]) -> None:
            edit_problem = schema_problem(tool, edits)
            if edit_problem is not None:
                raise InvalidEditError(edit_problem)

        self.outstanding.add(call_id)
        try:
            verdict = await ask(
                self.client,
                name=name,
                arguments=arguments,
                call_id=call_id,
                timeout=timeout,
                description=tool.description,
                users=gate.users or self.config.approval.users,
                validate_edits=validate_edits,
                hold=hold,
                deadline=deadline if hold is not None else None,
            )
        except anyio.get_cancelled_exc_class():
            self.held.forget(key, call_id)
            if self.outstanding.ending:  # the gateway ends: abandoned with the others
                raise
            await self._withdraw(call_id)
            raise
        if verdict.kind == "pending":
            self.held.remember(key, call_id, deadline)
            if _compat.speaks_input_required(sent):  # 2026-07-28: "retry with this state"
                return _compat.input_required(self.held.hand_out(key, call_id, deadline))
            return error(pending_message(name, call_id))
        self.held.forget(key, call_id)  # decided: the same call made later asks afresh
        self.outstanding.discard(call_id)
        if verdict.kind == "refuse":
            return error(verdict.text)
        if verdict.kind == "answer":
            return types.CallToolResult(content=[text(verdict.text)], isError=False)
        assert verdict.claim is not None  # a run verdict holds the claim
        approved = params.model_copy(update={"arguments": verdict.arguments})
        try:
            result = await self._forward_call(approved)
        except Exception as exc:
            await adapters.areport(self.client, verdict.claim, exc, raised=True)
            raise
        await adapters.areport(
            self.client,
            verdict.claim,
            result,
            raised=bool(_compat.field(result, "isError")),
            redact=result_text,
        )
        if verdict.edited:
            return edited_result(result, lambda ran: verdict.edited_text(name, ran))
        return result

    async def _withdraw(self, call_id: str) -> None:
        """The client gave up on the call: withdraw the request so nobody approves a call
        that can no longer run. Best effort, bounded, and never on the upstream."""
        self.outstanding.discard(call_id)
        with (
            anyio.CancelScope(shield=True),
            anyio.move_on_after(5),
            contextlib.suppress(Exception),
        ):
            await self.client.backend.aexpire_function_call(
                call_id, "the MCP client cancelled the call"
            )


async def run_gateway(
    config: GatewayConfig,
    *,
    streams: tuple[Any, Any] | None = None,
) -> int | None:
    """Serve the gateway on stdio (or on ``streams``) until the client disconnects or a SIGINT
    or SIGTERM arrives (returned); what still waits for a person is then abandoned
    (:mod:`functionlayer_mcp._lifetime`)."""
    backend = make_backend(
        config.approval.backend, tty_path=config.approval.tty
    )  # fail before starting anything else
    tag = secrets.token_hex(8)
    client = FunctionLayer(backend=backend, run_id=f"mcp-{tag}")
    refusal: str | None = None
    stopped_by: int | None = None
    try:
        async with connect_upstream(config.upstream) as (session, init):
            listed = await startup_tools(session, init) if config.gate else {}
            refusal = config.unknown_tools(listed) if config.gate else None
            if refusal is None:
                _announce(config, listed)
                outstanding = Outstanding(client)
                gateway = Gateway(
                    config,
                    session,
                    init,
                    client,
                    session_tag=tag,
                    startup_tools=listed,
                    hold_seconds=_hold_seconds(config, backend),
                    outstanding=outstanding,
                )
                stopped_by = await serve(gateway.server, outstanding, streams)
    finally:
        await client.aclose()
    if refusal is not None:  # raised here, outside the upstream's task groups, as itself
        raise ConfigError(refusal)
    return stopped_by


def _hold_seconds(config: GatewayConfig, backend: Any) -> float | None:
    """``[approval] hold_seconds``, which needs a request that outlives one tools/call: the
    server's. A terminal prompt belongs to the call that asked, so it is held until answered."""
    from functionlayer import HttpBackend

    hold = config.approval.hold_seconds
    if hold is not None and not isinstance(backend, HttpBackend):
        warn("hold_seconds is ignored with the terminal backend: calls wait for the answer")
        return None
    return hold


def _announce(config: GatewayConfig, listed: Collection[str]) -> None:
    """Say on stderr which tools are gated and which pass straight through."""
    if not config.gate:
        return
    gated = sorted(name for name in listed if config.mentions(name))
    passing = sorted(name for name in listed if not config.mentions(name))
    warn(
        f"gating {', '.join(gated)}; passing straight through: {', '.join(passing) or '(none)'};"
        " tools the upstream adds later are gated"
    )
