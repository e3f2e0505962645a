"""FunctionLayer guarded functions as OpenAI Agents SDK tools (``tools([...])``, the
``agents.FunctionTool`` list for ``Agent(..., tools=...)``), and the SDK's own approvals
(``needs_approval=True`` interruptions) decided through FunctionLayer (``decide``, ``pause`` /
``resume`` and their async twins). The package README has a worked example.
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
