"""FunctionLayer guarded functions as native CrewAI tools.

```python
from functionlayer import FunctionLayer
from functionlayer_crewai import tools

fl = FunctionLayer()

@fl.require_approval()
def multiply(x: int, y: int) -> int:
    return x * y

agent = Agent(role=..., goal=..., backstory=..., tools=tools([multiply]))
```
"""

from functionlayer_crewai._tool import FunctionLayerTool, tool, tools

__version__ = "0.4.0"

__all__ = ["FunctionLayerTool", "__version__", "tool", "tools"]
