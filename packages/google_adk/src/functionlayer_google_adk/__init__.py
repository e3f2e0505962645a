"""FunctionLayer guarded functions as Google ADK tools (``tools([...])``, for
``Agent(name=..., model=..., tools=...)``), and ADK's own tool confirmations
(``require_confirmation=`` / ``tool_context.request_confirmation()``) decided through
FunctionLayer (``ConfirmationPlugin``, ``arun``, ``decide``, ``pause`` / ``collect``). The package
README has a worked example.
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
