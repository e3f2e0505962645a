"""FunctionLayer guarded functions as LlamaIndex tools.

```python
from functionlayer import FunctionLayer
from functionlayer_llamaindex import tools
from llama_index.core.agent.workflow import FunctionAgent

fl = FunctionLayer()

@fl.require_approval()
def multiply(x: int, y: int) -> int:
    "Multiply two numbers."
    return x * y

agent = FunctionAgent(tools=tools([multiply]), llm=...)
```
"""

from functionlayer_llamaindex._tool import tool, tools

__version__ = "0.4.0"

__all__ = ["__version__", "tool", "tools"]
