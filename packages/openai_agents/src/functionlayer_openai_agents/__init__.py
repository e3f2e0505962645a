"""FunctionLayer guarded functions as OpenAI Agents SDK tools, and the SDK's own approvals
(``needs_approval=True`` interruptions) decided through FunctionLayer.

>>> from functionlayer import FunctionLayer
>>> from functionlayer_openai_agents import tools
>>> fl = FunctionLayer()
>>> @fl.require_approval()
... def multiply(x: int, y: int) -> int:
...     "Multiply two numbers."
...     return x * y
>>> agent_tools = tools([multiply])  # agents.FunctionTool objects: Agent(..., tools=agent_tools)
"""

from functionlayer_openai_agents._approvals import (
    PausedRun,
    StickyApprovalError,
    adecide,
    apause,
    aresume,
    decide,
    pause,
    resume,
)
from functionlayer_openai_agents._tool import tool, tools

__version__ = "0.4.0"

__all__ = [
    "PausedRun",
    "StickyApprovalError",
    "__version__",
    "adecide",
    "apause",
    "aresume",
    "decide",
    "pause",
    "resume",
    "tool",
    "tools",
]
