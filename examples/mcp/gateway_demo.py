"""The MCP gateway, offline: an MCP client calls a bank's tools through ``functionlayer-mcp``.

    uv run --all-packages --all-groups python examples/mcp/gateway_demo.py

The client starts ``functionlayer-mcp proxy --config gateway.toml -- python demo_bank.py`` and
calls three tools. ``read_balance`` and a transfer of 20 pass straight through; the transfer of
5000 waits for you at this terminal: ``y`` approves, anything else rejects (your text goes back
to the model as feedback). With ``FUNCTIONLAYER_API_BASE``/``FUNCTIONLAYER_API_TOKEN`` set, the
gateway asks through that server's channels instead.

The gateway's stdin/stdout are the MCP stream, and the Python ``mcp`` SDK starts servers without
a controlling terminal, so this script tells the gateway which terminal to ask on (``--tty``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
from mcp import ClientSession, types
from mcp.client.stdio import StdioServerParameters, stdio_client

HERE = Path(__file__).parent


def gateway_command() -> list[str]:
    args = ["-m", "functionlayer_mcp", "proxy", "--config", str(HERE / "gateway.toml")]
    if not os.environ.get("FUNCTIONLAYER_API_BASE"):
        if not sys.stdin.isatty():
            sys.exit("Run this from a terminal (you approve there), or set FUNCTIONLAYER_API_BASE.")
        args += ["--tty", os.ttyname(sys.stdin.fileno())]
    return [*args, "--", sys.executable, str(HERE / "demo_bank.py")]


def show(label: str, result: types.CallToolResult) -> None:
    text = " ".join(c.text for c in result.content if isinstance(c, types.TextContent))
    failed = getattr(result, "is_error", None) or getattr(result, "isError", None)  # 2.x, 1.x
    print(f"{label}: {'ERROR ' if failed else ''}{text}", flush=True)


async def main() -> None:
    params = StdioServerParameters(
        command=sys.executable, args=gateway_command(), env=dict(os.environ)
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = await session.list_tools()
        print("tools:", ", ".join(t.name for t in tools.tools), flush=True)
        show("read_balance", await session.call_tool("read_balance", {"account": "acme"}))
        show(
            "small transfer", await session.call_tool("transfer_money", {"to": "bob", "amount": 20})
        )
        show(
            "large transfer",
            await session.call_tool("transfer_money", {"to": "mallory", "amount": 5000}),
        )


if __name__ == "__main__":
    anyio.run(main)
