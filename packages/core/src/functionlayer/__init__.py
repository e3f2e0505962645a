"""FunctionLayer: let AI agents call high-stakes functions safely.

A human approves, rejects (with feedback that goes back to the LLM) or answers, over the channel
that reaches them. The guarantee: a guarded function's body never runs unless a human approved
that exact call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
from functionlayer.models import (
    ApprovalPolicy,
    ClaimedCall,
    CompletedFunctionCall,
    CompletedHumanContact,
    ContactChannel,
    DecisionKind,
    DiscordContactChannel,
    EmailContactChannel,
    EmailRecipient,
    Execution,
    ExecutionClaim,
    ExecutionReport,
    FunctionCall,
    FunctionCallSpec,
    FunctionCallStatus,
    HumanContact,
    HumanContactSpec,
    HumanContactStatus,
    RequestContext,
    ResponseOption,
    SlackContactChannel,
    SMSContactChannel,
    TeamsContactChannel,
    WhatsAppContactChannel,
)

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
    "ApprovalPolicy",
    "ApprovalTimeoutError",
    "Backend",
    "BackendError",
    "BackendUnavailableError",
    "ClaimedCall",
    "CompletedFunctionCall",
    "CompletedHumanContact",
    "ConfigurationError",
    "ConflictError",
    "ContactChannel",
    "DecisionKind",
    "DiscordContactChannel",
    "EmailContactChannel",
    "EmailRecipient",
    "Execution",
    "ExecutionClaim",
    "ExecutionReport",
    "FunctionCall",
    "FunctionCallSpec",
    "FunctionCallStatus",
    "FunctionLayer",
    "FunctionLayerError",
    "HttpBackend",
    "HumanContact",
    "HumanContactSpec",
    "HumanContactStatus",
    "InMemoryBackend",
    "InvalidEditError",
    "MalformedResponseError",
    "NoHumanAvailableError",
    "NotFoundError",
    "RequestContext",
    "ResponseOption",
    "SMSContactChannel",
    "SlackContactChannel",
    "TeamsContactChannel",
    "TerminalBackend",
    "ToolSpec",
    "WhatsAppContactChannel",
    "__version__",
    "call_id_scope",
    "group_id_for",
    "group_scope",
    "request_context_scope",
    "tool_spec",
]
