"""FunctionLayer approvals for any MCP tool: a gating proxy and a permission-prompt tool.

- ``functionlayer-mcp proxy --config gateway.toml -- <upstream command>``: an MCP server that
  forwards an upstream server's tools unchanged and asks a person, through FunctionLayer, before
  a configured tool call reaches the upstream.
- ``functionlayer-mcp permission-prompt``: an MCP server with one tool, ``request_permission``,
  for clients that delegate permission prompts to an MCP tool (Claude Code).
"""

from functionlayer_mcp import _config
from functionlayer_mcp._approval import TerminalUnavailableError
from functionlayer_mcp._config import *  # noqa: F403  # the configuration, listed in its __all__
from functionlayer_mcp._gateway import run_gateway
from functionlayer_mcp._permission import run_permission_prompt
from functionlayer_mcp._version import __version__

__all__ = [
    "TerminalUnavailableError",
    "__version__",
    "run_gateway",
    "run_permission_prompt",
]
__all__ += _config.__all__
