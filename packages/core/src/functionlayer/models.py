"""The wire models of the FunctionLayer protocol, for servers, channels and adapters.

What a request, its decision, its execution and a human contact look like on the wire, and
where a request goes. The server and every channel build on these names; :mod:`functionlayer`
itself exports them all too. Stable: a change here is a protocol change.
"""

from __future__ import annotations

from functionlayer import _channel_models, _models
from functionlayer._channel_models import *  # noqa: F403  # the names listed in its __all__
from functionlayer._models import *  # noqa: F403  # the names listed in its __all__

# One list of the names per module that defines them (where they are written).
__all__: list[str] = []
__all__ += _channel_models.__all__
__all__ += _models.__all__
