"""FunctionLayer guarded functions as Microsoft Agent Framework tools (``tools([...])``, the
``FunctionTool`` list to pass as ``Agent(..., tools=...)``), and the framework's own tool
approvals (``approval_mode="always_require"``) decided through FunctionLayer (``arun``,
``adecide``, ``apause`` / ``aresume``). The package README has a worked example.
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
