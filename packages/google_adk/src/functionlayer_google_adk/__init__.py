"""FunctionLayer guarded functions as Google ADK tools, and ADK's own tool confirmations
(``require_confirmation=`` / ``tool_context.request_confirmation()``) decided through
FunctionLayer.

>>> from functionlayer import FunctionLayer
>>> from functionlayer_google_adk import tools
>>> fl = FunctionLayer()
>>> @fl.require_approval()
... def multiply(x: int, y: int) -> int:
...     "Multiply two numbers."
...     return x * y
>>> agent_tools = tools([multiply])  # ADK tools: Agent(name=..., model=..., tools=agent_tools)
"""

from functionlayer_google_adk._confirmations import (
    ConfirmationPlugin,
    ConfirmationRequest,
    PausedRun,
    acollect,
    adecide,
    apause,
    arun,
    collect,
    decide,
    pause,
    requests_in,
)
from functionlayer_google_adk._tool import FunctionLayerTool, tool, tools

__version__ = "0.4.0"

__all__ = [
    "ConfirmationPlugin",
    "ConfirmationRequest",
    "FunctionLayerTool",
    "PausedRun",
    "__version__",
    "acollect",
    "adecide",
    "apause",
    "arun",
    "collect",
    "decide",
    "pause",
    "requests_in",
    "tool",
    "tools",
]
