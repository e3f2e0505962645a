"""The wire models of the FunctionLayer protocol, for servers, channels and adapters.

What a request, its decision, its execution and a human contact look like on the wire, and
where a request goes. The server and every channel build on these names; the most used ones are
also exported from :mod:`functionlayer` itself. Stable: a change here is a protocol change.
"""

from __future__ import annotations

from functionlayer._channel_models import (
    CONTEXT_FIELD_LIMIT,
    ApprovalPolicy,
    ContactChannel,
    DiscordContactChannel,
    EmailContactChannel,
    EmailRecipient,
    RequestContext,
    ResponseOption,
    SlackContactChannel,
    SMSContactChannel,
    TeamsContactChannel,
    WhatsAppContactChannel,
)
from functionlayer._models import (
    DECISION_KINDS,
    MAX_GROUP_ID_LENGTH,
    ClaimedCall,
    CompletedFunctionCall,
    CompletedHumanContact,
    DecisionKind,
    Execution,
    ExecutionClaim,
    ExecutionReport,
    FunctionCall,
    FunctionCallSpec,
    FunctionCallStatus,
    HumanContact,
    HumanContactSpec,
    HumanContactStatus,
)

__all__ = [
    "CONTEXT_FIELD_LIMIT",
    "DECISION_KINDS",
    "MAX_GROUP_ID_LENGTH",
    "ApprovalPolicy",
    "ClaimedCall",
    "CompletedFunctionCall",
    "CompletedHumanContact",
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
    "HumanContact",
    "HumanContactSpec",
    "HumanContactStatus",
    "RequestContext",
    "ResponseOption",
    "SMSContactChannel",
    "SlackContactChannel",
    "TeamsContactChannel",
    "WhatsAppContactChannel",
]
