"""FunctionLayer guarded functions as Haystack tools, and a Haystack confirmation strategy
backed by FunctionLayer.

```python
from functionlayer import FunctionLayer
from functionlayer_haystack import tools
from haystack.components.agents import Agent

fl = FunctionLayer()

@fl.require_approval()
def multiply(x: int, y: int) -> int:
    "Multiply two numbers."
    return x * y

agent = Agent(chat_generator=..., tools=tools([multiply]))
```

Or keep Haystack's own ``ConfirmationHook`` and let FunctionLayer's people decide:
``ConfirmationHook(confirmation_strategies={"multiply": FunctionLayerConfirmation()})``.
"""

from functionlayer_haystack._confirmation import FunctionLayerConfirmation
from functionlayer_haystack._tool import tool, tools

__version__ = "0.4.0"

__all__ = ["FunctionLayerConfirmation", "__version__", "tool", "tools"]
