"""Service errors. Each carries a human-readable message, a machine code and the HTTP status
the API maps it to (``{"detail": message, "code": code}``)."""

from __future__ import annotations

__all__ = [
    "AlreadyDecidedError",
    "AuthenticationError",
    "ConfirmationRequiredError",
    "ConflictError",
    "ForbiddenError",
    "InvalidDecisionError",
    "InvalidRequestError",
    "NotFoundError",
    "QuotaExceededError",
    "RoutingRefusedError",
    "ServerError",
]


class ServerError(Exception):
    """Base class of every error the service raises on purpose."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(ServerError):
    """No request with that call id (or not one this caller may see)."""

    status_code = 404
    code = "not_found"


class AlreadyDecidedError(ServerError):
    """The request was already decided, answered or expired: it cannot change again."""

    status_code = 409
    code = "already_decided"


class ConflictError(ServerError):
    """A different request already exists under that call id."""

    status_code = 409
    code = "conflict"


class InvalidDecisionError(ServerError):
    """The decision does not make sense (no verdict, a rejection without feedback, ...)."""

    status_code = 422
    code = "invalid_decision"


class ConfirmationRequiredError(InvalidDecisionError):
    """An approval of an irreversible function without its deliberate second step."""

    code = "confirmation_required"


class AuthenticationError(ServerError):
    """Missing or wrong API token."""

    status_code = 401
    code = "unauthorized"


class InvalidRequestError(ServerError):
    """The request itself is unusable (for example an empty or malformed call id)."""

    status_code = 422
    code = "invalid_request"


class ForbiddenError(ServerError):
    """The credential is valid but may not do this: an agent token deciding, a person the
    policy does not allow, an agent giving up a request another agent created."""

    status_code = 403
    code = "forbidden"


class RoutingRefusedError(ServerError):
    """The request is routed outside what the operator allows (an address, channel or
    responder the directory and routing rules do not admit). Nothing was stored or sent."""

    status_code = 422
    code = "routing_refused"


class QuotaExceededError(ServerError):
    """An agent token is over one of the operator's quotas (pending requests, open
    long-polls). Nothing was stored; the same call may succeed after ``retry_after`` seconds."""

    status_code = 429
    code = "quota_exceeded"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
