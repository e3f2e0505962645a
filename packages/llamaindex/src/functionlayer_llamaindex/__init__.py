"""FunctionLayer guarded functions as LlamaIndex tools: ``tools([...])`` gives the
``FunctionTool`` list for ``FunctionAgent(tools=..., llm=...)``, ``ReActAgent`` or
``AgentWorkflow``. The package README has a worked example.
"""

from functionlayer_llamaindex._tool import tool, tools

__version__ = "0.4.0"

__all__ = ["__version__", "tool", "tools"]
