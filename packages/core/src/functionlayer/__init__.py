"""FunctionLayer: let AI agents call high-stakes functions safely.

A human approves, rejects (with feedback that goes back to the LLM) or answers, over the channel
that reaches them. The guarantee: a guarded function's body never runs unless a human approved
that exact call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from functionlayer import _channel_models, _models
from functionlayer import models as models  # the public module, loaded with the package
from functionlayer._channel_models import *  # noqa: F403  # wire models, in its __all__
from functionlayer._client import ApprovalMethod, FunctionLayer
from functionlayer._context import call_id_scope, group_id_for, group_scope, request_context_scope
from functionlayer._errors import (
    ApprovalPendingError,
    ApprovalTimeoutError,
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
    ConflictError,
    FunctionLayerError,
    InvalidEditError,
    MalformedResponseError,
    NoHumanAvailableError,
    NotFoundError,
)
from functionlayer._models import *  # noqa: F403  # wire models, in its __all__

if TYPE_CHECKING:
    from functionlayer._backends._base import Backend
    from functionlayer._backends._http import HttpBackend
    from functionlayer._backends._memory import InMemoryBackend
    from functionlayer._backends._terminal import TerminalBackend
    from functionlayer._tools import ToolSpec, tool_spec

from functionlayer._version import __version__

# Imported on first use: httpx and the tool machinery cost more than the whole core.
_LAZY = {
    "Backend": "functionlayer._backends._base",
    "HttpBackend": "functionlayer._backends._http",
    "InMemoryBackend": "functionlayer._backends._memory",
    "TerminalBackend": "functionlayer._backends._terminal",
    "ToolSpec": "functionlayer._tools",
    "tool_spec": "functionlayer._tools",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'functionlayer' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "ApprovalMethod",
    "ApprovalPendingError",
    "ApprovalTimeoutError",
    "Backend",
    "BackendError",
    "BackendUnavailableError",
    "ConfigurationError",
    "ConflictError",
    "FunctionLayer",
    "FunctionLayerError",
    "HttpBackend",
    "InMemoryBackend",
    "InvalidEditError",
    "MalformedResponseError",
    "NoHumanAvailableError",
    "NotFoundError",
    "TerminalBackend",
    "ToolSpec",
    "__version__",
    "call_id_scope",
    "group_id_for",
    "group_scope",
    "request_context_scope",
    "tool_spec",
]
__all__ += _channel_models.__all__  # the wire models: all of functionlayer.models
__all__ += _models.__all__
