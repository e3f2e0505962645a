"""A demo upstream MCP server: a bank with one harmless and one dangerous tool (FastMCP, stdio)."""

from __future__ import annotations

try:
    from mcp.server.fastmcp import FastMCP
except ImportError:  # mcp 2.x renamed FastMCP to MCPServer
    from mcp.server.mcpserver import MCPServer as FastMCP  # type: ignore[no-redef]

bank = FastMCP("demo-bank", log_level="WARNING")


@bank.tool()
def read_balance(account: str) -> str:
    """Read an account's balance."""
    return f"{account}: 1000 EUR"


@bank.tool()
def transfer_money(to: str, amount: float) -> str:
    """Transfer money to an account."""
    return f"Transferred {amount:g} EUR to {to}."


if __name__ == "__main__":
    bank.run("stdio")
