"""FunctionLayer guarded functions as Microsoft Agent Framework tools, and the framework's own
tool approvals (``approval_mode="always_require"``) decided through FunctionLayer.

>>> from functionlayer import FunctionLayer
>>> from functionlayer_agent_framework import tools
>>> fl = FunctionLayer()
>>> @fl.require_approval()
... def multiply(x: int, y: int) -> int:
...     "Multiply two numbers."
...     return x * y
>>> agent_tools = tools([multiply])  # agent_framework.FunctionTool objects: Agent(..., tools=agent_tools)
"""

from functionlayer_agent_framework._approvals import (
    PausedRun,
    ResumeNotAppliedError,
    adecide,
    apause,
    aresume,
    arun,
)
from functionlayer_agent_framework._tool import tool, tools

__version__ = "0.4.0"

__all__ = [
    "PausedRun",
    "ResumeNotAppliedError",
    "__version__",
    "adecide",
    "apause",
    "aresume",
    "arun",
    "tool",
    "tools",
]
