"""FunctionLayer guarded functions as OpenAI tools, with a runner for the model's tool calls.

>>> from functionlayer_openai import tools
>>> toolset = tools([multiply, add])
>>> reply = client.chat.completions.create(model=..., messages=messages, tools=toolset.definitions)
>>> messages.append(reply.choices[0].message)
>>> messages.extend(toolset.run(reply.choices[0].message.tool_calls))
"""

from functionlayer_openai._toolset import FunctionTool, Toolset, tool, tools

__version__ = "0.4.0"

__all__ = ["FunctionTool", "Toolset", "__version__", "tool", "tools"]
