"""A small upstream MCP server for the gateway's tests (FastMCP).

Every call it receives is appended as one JSON line to the file named by ``BANK_LOG``, so a test
can prove what reached it, and what did not. ``--http PORT`` serves streamable HTTP instead of
stdio.
"""

from __future__ import annotations

import json
import os
import sys

try:
    from mcp.server.fastmcp import FastMCP
except ImportError:  # mcp 2.x renamed FastMCP to MCPServer
    from mcp.server.mcpserver import MCPServer as FastMCP  # type: ignore[no-redef]

port = int(sys.argv[sys.argv.index("--http") + 1]) if "--http" in sys.argv else 8000
http = {"host": "127.0.0.1", "port": port}
# mcp 1.x takes the HTTP address when the server is made, 2.x when it runs.
legacy = FastMCP.__name__ == "FastMCP"
bank = FastMCP("bank", log_level="WARNING", **(http if legacy else {}))


def _log(tool: str, arguments: dict[str, object]) -> None:
    with open(os.environ["BANK_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps({"tool": tool, "arguments": arguments}) + "\n")


@bank.tool()
def transfer_money(to: str, amount: float) -> str:
    """Transfer money to an account."""
    _log("transfer_money", {"to": to, "amount": amount})
    return f"sent {amount:g} to {to}"


@bank.tool()
def read_balance(account: str) -> str:
    """Read an account's balance."""
    _log("read_balance", {"account": account})
    return f"{account}: 1000"


if __name__ == "__main__":
    if "--http" not in sys.argv:
        bank.run("stdio")
    else:
        bank.run("streamable-http", **({} if legacy else http))
