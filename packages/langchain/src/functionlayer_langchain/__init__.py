"""FunctionLayer guarded functions as LangChain tools (``tool(fn)``: a ``StructuredTool`` for
``create_agent`` or ``bind_tools``), and FunctionLayer decisions for LangChain's own
``HumanInTheLoopMiddleware`` pauses.

With ``create_agent(..., middleware=[HumanInTheLoopMiddleware(...)], checkpointer=...)``,
``HITLBridge(fl).resume(agent, config)`` asks FunctionLayer's humans about every paused tool
call and returns the ``Command`` that resumes the agent with their decisions. The package README
has a worked example.
"""

from functionlayer_langchain._automode import AutoModeEscalation
from functionlayer_langchain._hitl import DecisionNotAllowedError, HITLBridge, PendingAction
from functionlayer_langchain._tool import FunctionLayerTool, tool, tools

__version__ = "0.4.0"

__all__ = [
    "AutoModeEscalation",
    "DecisionNotAllowedError",
    "FunctionLayerTool",
    "HITLBridge",
    "PendingAction",
    "__version__",
    "tool",
    "tools",
]
