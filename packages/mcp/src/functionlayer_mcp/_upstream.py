"""The gateway's upstream: starting or reaching it, and the tools it lists at start-up."""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import AsyncIterator
from typing import Any

from mcp import types
from mcp.client.session import ClientSession

from functionlayer_mcp import _compat
from functionlayer_mcp._config import ConfigError, UpstreamConfig

__all__ = ["connect_upstream", "startup_tools", "upstream_environment"]


def upstream_environment(extra: dict[str, str]) -> dict[str, str]:
    """The upstream's environment: ours, minus FunctionLayer's credentials, plus ``extra``.

    The upstream is the thing being guarded: it must not hold the token that talks to the
    approval server.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUNCTIONLAYER_API_")}
    env.update(extra)
    return env


@contextlib.asynccontextmanager
async def connect_upstream(
    upstream: UpstreamConfig,
) -> AsyncIterator[tuple[ClientSession, types.InitializeResult]]:
    """An initialized client session with the upstream server (stdio subprocess or HTTP)."""
    async with contextlib.AsyncExitStack() as stack:
        if upstream.url is not None:
            from mcp.client.streamable_http import streamable_http_client

            # mcp 2.x takes an httpx2 client and yields (read, write); 1.x httpx and a triple.
            http_lib: Any = importlib.import_module("httpx2" if _compat.MCP_MAJOR >= 2 else "httpx")
            timeout = http_lib.Timeout(30.0, read=300.0)
            http = await stack.enter_async_context(
                http_lib.AsyncClient(headers=upstream.headers, timeout=timeout)
            )
            streams = await stack.enter_async_context(
                streamable_http_client(upstream.url, http_client=http)
            )
            read, write = streams[0], streams[1]
        else:
            from mcp.client.stdio import StdioServerParameters, stdio_client

            if not upstream.command:
                raise ValueError("no upstream: give a command after -- or --url")
            params = StdioServerParameters(
                command=upstream.command[0],
                args=upstream.command[1:],
                env=upstream_environment(upstream.env),
                cwd=upstream.cwd,
            )
            read, write = await stack.enter_async_context(stdio_client(params))
        session = await stack.enter_async_context(ClientSession(read, write))
        init = await session.initialize()
        yield session, init


async def startup_tools(
    session: ClientSession, init: types.InitializeResult
) -> dict[str, dict[str, Any]]:
    """Every tool the upstream lists now (all pages), name -> inputSchema; none without tools."""
    if init.capabilities.tools is None:
        return {}
    tools: dict[str, dict[str, Any]] = {}
    cursor: str | None = None
    for _ in range(1000):  # a bound on pages: an upstream cannot keep the gateway listing forever
        params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
        page = await session.list_tools(params=params)
        tools.update((tool.name, _compat.field(tool, "inputSchema")) for tool in page.tools)
        cursor = _compat.field(page, "nextCursor")
        if not cursor:
            return tools
    raise ConfigError("the upstream's tool list did not end after 1000 pages")
