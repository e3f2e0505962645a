"""Service errors. Each carries a human-readable message, a machine code and the HTTP status
the API maps it to (``{"detail": message, "code": code}``)."""

from __future__ import annotations

from typing import Any, ClassVar

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

    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"

    def __init_subclass__(
        cls, *, status_code: int | None = None, code: str | None = None, **kwargs: Any
    ) -> None:
        """``class NotFoundError(ServerError, status_code=404, code="not_found")``."""
        super().__init_subclass__(**kwargs)
        if status_code is not None:
            cls.status_code = status_code
        if code is not None:
            cls.code = code

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(ServerError, status_code=404, code="not_found"):
    """No request with that call id (or not one this caller may see)."""


class AlreadyDecidedError(ServerError, status_code=409, code="already_decided"):
    """The request was already decided, answered or expired: it cannot change again."""


class ConflictError(ServerError, status_code=409, code="conflict"):
    """A different request already exists under that call id."""


class InvalidDecisionError(ServerError, status_code=422, code="invalid_decision"):
    """The decision does not make sense (no verdict, a rejection without feedback, ...)."""


class ConfirmationRequiredError(InvalidDecisionError, code="confirmation_required"):
    """An approval of an irreversible function without its deliberate second step."""


class AuthenticationError(ServerError, status_code=401, code="unauthorized"):
    """Missing or wrong API token."""


class InvalidRequestError(ServerError, status_code=422, code="invalid_request"):
    """The request itself is unusable (for example an empty or malformed call id)."""


class ForbiddenError(ServerError, status_code=403, code="forbidden"):
    """The credential is valid but may not do this: an agent token deciding, a person the
    policy does not allow, an agent giving up a request another agent created."""


class RoutingRefusedError(ServerError, status_code=422, code="routing_refused"):
    """The request is routed outside what the operator allows (an address, channel or
    responder the directory and routing rules do not admit). Nothing was stored or sent."""


class QuotaExceededError(ServerError, status_code=429, code="quota_exceeded"):
    """An agent token is over one of the operator's quotas (pending requests, open
    long-polls). Nothing was stored; the same call may succeed after ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
