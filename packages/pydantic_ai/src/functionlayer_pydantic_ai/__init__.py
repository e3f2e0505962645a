"""FunctionLayer guarded functions as Pydantic AI tools, and Pydantic AI's own approvals
(``requires_approval=True``) decided through FunctionLayer.

>>> from functionlayer import FunctionLayer
>>> from functionlayer_pydantic_ai import tools
>>> fl = FunctionLayer()
>>> @fl.require_approval()
... def multiply(x: int, y: int) -> int:
...     "Multiply two numbers."
...     return x * y
>>> agent_tools = tools([multiply])  # pydantic_ai.Tool objects: Agent(model, tools=agent_tools)
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
