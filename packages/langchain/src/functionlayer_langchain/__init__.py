"""FunctionLayer guarded functions as LangChain tools, and FunctionLayer decisions for
LangChain's own ``HumanInTheLoopMiddleware`` pauses.

>>> from functionlayer import FunctionLayer
>>> from functionlayer_langchain import tool
>>> fl = FunctionLayer()
>>> @fl.require_approval()
... def multiply(x: int, y: int) -> int:
...     "Multiply two numbers."
...     return x * y
>>> multiply_tool = tool(multiply)  # a StructuredTool: pass it to create_agent or bind_tools

With ``create_agent(..., middleware=[HumanInTheLoopMiddleware(...)], checkpointer=...)``,
``HITLBridge(fl).resume(agent, config)`` asks FunctionLayer's humans about every paused tool
call and returns the ``Command`` that resumes the agent with their decisions.
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
