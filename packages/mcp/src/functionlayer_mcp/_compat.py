"""Where the ``mcp`` SDK's 1.x and 2.x APIs differ, the one place that knows.

The gateway and the permission-prompt tool are written once, against plain handlers
``(params, request_id) -> result``. This module registers them on a low-level ``Server`` and
sends requests on a ``ClientSession`` the way the installed SDK wants:

- 1.x: handlers live in ``Server.request_handlers``, keyed by request class, receive the whole
  request and return a ``ServerResult``; the request id is ``server.request_context.request_id``;
  ``ClientSession.send_request`` takes a ``ClientRequest`` root model.
- 2.x: handlers are registered by method name with their params class
  (``Server.add_request_handler``), receive ``(ctx, params)`` and return the result model; the
  request id is ``ctx.request_id``; ``send_request`` takes the request model itself, and
  ``ClientRequest`` is a plain union.

Nothing here changes what a handler decides: the same params object reaches it under both.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from importlib.metadata import version
from typing import Any

from mcp import types
from mcp.client.session import ClientSession

__all__ = [
    "MCP_MAJOR",
    "ParamsHandler",
    "field",
    "input_required",
    "register",
    "request_state",
    "send",
    "speaks_input_required",
]

MCP_MAJOR = int(version("mcp").split(".")[0])
"""The installed ``mcp`` SDK's major version (1 or 2)."""

ParamsHandler = Callable[[Any, "types.RequestId | None"], Awaitable[Any]]
"""A handler written once: ``(params, request_id) -> result model``."""


def register(
    server: Any,
    request_type: type[Any],
    params_type: type[Any],
    handler: ParamsHandler,
) -> None:
    """Serve ``request_type`` (e.g. ``types.CallToolRequest``) on ``server`` with ``handler``."""
    if MCP_MAJOR >= 2:
        method = request_type.model_fields["method"].default

        async def modern(ctx: Any, params: Any) -> Any:
            return await handler(params, ctx.request_id)

        server.add_request_handler(method, params_type, modern)
        return

    async def legacy(request: Any) -> Any:
        result = await handler(request.params, server.request_context.request_id)
        return types.ServerResult(result)

    server.request_handlers[request_type] = legacy


async def send(
    session: ClientSession, request_type: type[Any], params: Any, result_type: type[Any]
) -> Any:
    """Send ``request_type(params=params)`` to the upstream: method and params, nothing else.

    The reserved ``io.modelcontextprotocol/*`` keys of ``_meta`` are not sent on: on the
    2026-07-28 protocol they are the envelope of one hop (the client's protocol version, info and
    capabilities, as it told the gateway); the gateway's own connection to the upstream has its
    own, and an upstream on the handshake protocol refuses requests that carry one.
    """
    params = _own_hop(params)
    request = request_type(method=request_type.model_fields["method"].default, params=params)
    if MCP_MAJOR >= 2:
        return await session.send_request(request, result_type)
    return await session.send_request(types.ClientRequest(request), result_type)


_RESERVED_META = "io.modelcontextprotocol/"


def _own_hop(params: Any) -> Any:
    meta = getattr(params, "meta", None)
    if not meta or not any(str(key).startswith(_RESERVED_META) for key in meta):
        return params
    kept = {k: v for k, v in meta.items() if not str(k).startswith(_RESERVED_META)}
    return params.model_copy(update={"meta": kept or None})


def field(model: Any, name: str) -> Any:
    """A protocol field read by its wire name (``isError``): 1.x models spell their attributes
    as the wire does, 2.x models in snake case (``is_error``)."""
    if MCP_MAJOR >= 2:
        return getattr(model, _snake(name))
    return getattr(model, name)


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


# -- the 2026-07-28 protocol's multi-round-trip result ---------------------------------------------

_INPUT_REQUIRED_SINCE = "2026-07-28"
_PROTOCOL_VERSION_KEY = _RESERVED_META + "protocolVersion"


def speaks_input_required(params: Any) -> bool:
    """Whether the client that sent ``params`` takes an ``InputRequiredResult`` (it is on the
    2026-07-28 protocol or later: the version is in the request's own envelope). Clients on
    the handshake protocol, and every client with the 1.x SDK, do not."""
    if MCP_MAJOR < 2:
        return False
    meta = getattr(params, "meta", None)
    version = meta.get(_PROTOCOL_VERSION_KEY) if isinstance(meta, Mapping) else None
    return isinstance(version, str) and version >= _INPUT_REQUIRED_SINCE


def request_state(params: Any) -> str | None:
    """The ``requestState`` a client echoed back on a retry (2026-07-28), as sent: untrusted."""
    value = getattr(params, "request_state", None)
    return value if isinstance(value, str) else None


def input_required(state: str) -> Any:
    """An ``InputRequiredResult`` carrying only ``state``: the client retries the same request
    with it (after a short back-off), as the 2026-07-28 protocol says."""
    result_type = getattr(types, "InputRequiredResult")  # noqa: B009 - absent from mcp 1.x
    return result_type(request_state=state)
