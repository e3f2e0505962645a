"""FunctionLayer approvals for any MCP tool: a gating proxy and a permission-prompt tool."""

__version__ = "0.4.0"

__all__ = ["__version__"]
