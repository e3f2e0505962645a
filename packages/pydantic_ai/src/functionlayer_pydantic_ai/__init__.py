"""FunctionLayer guarded functions as Pydantic AI tools (``tools([...])``, the ``pydantic_ai.Tool``
list for ``Agent(model, tools=...)``), and Pydantic AI's own approvals (``requires_approval=True``)
decided through FunctionLayer (``approval_handler``, ``decide``, ``pause`` / ``collect``). The
package README has a worked example.
"""

from functionlayer_pydantic_ai._deferred import (
    PausedRun,
    acollect,
    adecide,
    apause,
    approval_handler,
    collect,
    decide,
    pause,
)
from functionlayer_pydantic_ai._request_input import request_input
from functionlayer_pydantic_ai._tool import tool, tools, toolset

__version__ = "0.4.0"

__all__ = [
    "PausedRun",
    "__version__",
    "acollect",
    "adecide",
    "apause",
    "approval_handler",
    "collect",
    "decide",
    "pause",
    "request_input",
    "tool",
    "tools",
    "toolset",
]
