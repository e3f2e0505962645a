"""FunctionLayer guarded functions as Haystack tools (``tools([...])`` for
``Agent(chat_generator=..., tools=...)``), and a Haystack confirmation strategy backed by
FunctionLayer: keep Haystack's own ``ConfirmationHook`` and let FunctionLayer's people decide,
``ConfirmationHook(confirmation_strategies={"multiply": FunctionLayerConfirmation()})``. The
package README has a worked example.
"""

from functionlayer_haystack._confirmation import FunctionLayerConfirmation
from functionlayer_haystack._tool import tool, tools

__version__ = "0.4.0"

__all__ = ["FunctionLayerConfirmation", "__version__", "tool", "tools"]
