"""FunctionLayer server: the open protocol, durable storage, push-speed waits and a web inbox.

Run it with ``functionlayer-server serve``, or embed it::

    from functionlayer_server import Settings, create_app
    app = create_app(Settings(database_url="sqlite:///./functionlayer.sqlite3"))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from functionlayer_server._auth import ApiClient, User
from functionlayer_server._errors import (
    AlreadyDecidedError,
    AuthenticationError,
    ConflictError,
    InvalidDecisionError,
    InvalidRequestError,
    NotFoundError,
    ServerError,
)
from functionlayer_server._scheduler import Clock, ManualClock, Scheduler, SystemClock
from functionlayer_server._service import (
    FUNCTION_CALL,
    HUMAN_CONTACT,
    ApprovalService,
    AuditEntry,
    ServiceEvent,
)
from functionlayer_server._settings import Settings

__version__ = "0.4.0"

if TYPE_CHECKING:
    from functionlayer_server._app import create_app
    from functionlayer_server._webhooks import sign as sign_webhook
    from functionlayer_server._webhooks import verify_signature as verify_webhook_signature

# Imported on first use: FastAPI and httpx take seconds to import, and the CLI's token and user
# commands need neither.
_LAZY = {
    "create_app": ("functionlayer_server._app", "create_app"),
    "sign_webhook": ("functionlayer_server._webhooks", "sign"),
    "verify_webhook_signature": ("functionlayer_server._webhooks", "verify_signature"),
}


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'functionlayer_server' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(target[0]), target[1])
    globals()[name] = value
    return value


__all__ = [
    "FUNCTION_CALL",
    "HUMAN_CONTACT",
    "AlreadyDecidedError",
    "ApiClient",
    "ApprovalService",
    "AuditEntry",
    "AuthenticationError",
    "Clock",
    "ConflictError",
    "InvalidDecisionError",
    "InvalidRequestError",
    "ManualClock",
    "NotFoundError",
    "Scheduler",
    "ServerError",
    "ServiceEvent",
    "Settings",
    "SystemClock",
    "User",
    "__version__",
    "create_app",
    "sign_webhook",
    "verify_webhook_signature",
]
