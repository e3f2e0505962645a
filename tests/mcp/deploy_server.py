"""An upstream MCP server (FastMCP) with nested arguments and a tool list that changes.

``deploy`` takes ``target`` as an object (``target.region`` in a gate's condition); every call it
receives is appended to ``BANK_LOG`` as the upstream understood it, so a test sees which region it
acted on. ``pay`` takes an optional amount. ``enable_rollback`` adds a ``rollback`` tool that was not listed at start-up.
"""

from __future__ import annotations

import json
import os

try:
    from mcp.server.fastmcp import FastMCP
except ImportError:  # mcp 2.x renamed FastMCP to MCPServer
    from mcp.server.mcpserver import MCPServer as FastMCP  # type: ignore[no-redef]
from pydantic import BaseModel

app = FastMCP("deployer", log_level="WARNING")


class Target(BaseModel):
    region: str
    cluster: str = "main"


def _log(tool: str, arguments: dict[str, object]) -> None:
    with open(os.environ["BANK_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps({"tool": tool, "arguments": arguments}) + "\n")


@app.tool()
def deploy(env: str, target: Target) -> str:
    """Deploy to a region."""
    _log("deploy", {"env": env, "target": target.model_dump()})
    return f"deployed {env} to {target.region}"


@app.tool()
def pay(to: str, amount: float | None = None) -> str:
    """Pay someone; without an amount, the whole balance."""
    _log("pay", {"to": to, "amount": amount})
    return f"paid {'everything' if amount is None else amount} to {to}"


def rollback(env: str) -> str:
    """Roll an environment back."""
    _log("rollback", {"env": env})
    return f"rolled back {env}"


@app.tool()
def enable_rollback() -> str:
    """Make the rollback tool available (the tool list changes)."""
    _log("enable_rollback", {})
    app.add_tool(rollback)
    return "rollback enabled"


if __name__ == "__main__":
    app.run("stdio")
