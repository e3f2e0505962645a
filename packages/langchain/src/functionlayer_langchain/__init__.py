"""FunctionLayer guarded functions as LangChain tools.

>>> from functionlayer import FunctionLayer
>>> from functionlayer_langchain import tool
>>> fl = FunctionLayer()
>>> @fl.require_approval()
... def multiply(x: int, y: int) -> int:
...     "Multiply two numbers."
...     return x * y
>>> multiply_tool = tool(multiply)  # a StructuredTool: pass it to create_agent or bind_tools
"""

from functionlayer_langchain._tool import FunctionLayerTool, tool, tools

__version__ = "0.4.0"

__all__ = ["FunctionLayerTool", "__version__", "tool", "tools"]
