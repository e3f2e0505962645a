"""FunctionLayer guarded functions as native ControlFlow tools.

```python
import controlflow as cf
from functionlayer import FunctionLayer
from functionlayer_controlflow import tools

fl = FunctionLayer()

@fl.require_approval()
def multiply(x: int, y: int) -> int:
    return x * y

cf.run("multiply 2 and 5", tools=tools([multiply]))
```
"""

from functionlayer_controlflow._tool import tool, tools

__version__ = "0.4.0"

__all__ = ["__version__", "tool", "tools"]
