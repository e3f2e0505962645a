"""Exceptions. Every failure to get a decision is a :class:`FunctionLayerError`; the guarded
function never runs on one (fail closed)."""

from __future__ import annotations

__all__ = [
    "ApprovalPendingError",
    "ApprovalTimeoutError",
    "BackendError",
    "BackendUnavailableError",
    "ConfigurationError",
    "ConflictError",
    "FunctionLayerError",
    "InvalidEditError",
    "MalformedResponseError",
    "NoHumanAvailableError",
    "NotFoundError",
]


class FunctionLayerError(Exception):
    """Base class: no human decision could be had."""


class ApprovalPendingError(FunctionLayerError):
    """The request has no decision yet."""


class ApprovalTimeoutError(FunctionLayerError):
    """Nobody answered before the deadline; the request is rejected for good."""


class BackendError(FunctionLayerError):
    """The backend answered with an error that retrying will not fix (4xx)."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class ConfigurationError(BackendError):
    """The client is set up wrong, so no request can reach a person: a missing, wrong or revoked
    token (401), an approver token used by an agent (403 on create), a URL that is not the API
    (404 on create). A mistake of the developer, not a decision: the message says the fix."""


class NotFoundError(BackendError):
    """No request with that call id."""


class ConflictError(BackendError):
    """A different request already exists under that call id."""


class BackendUnavailableError(FunctionLayerError):
    """The backend could not be reached (after retries); the request may still exist there.

    ``never_reached``: this process never got any answer from that server (a wrong URL, or a
    server that is not running): a setup mistake, reported like a :class:`ConfigurationError`.
    """

    def __init__(self, message: str, *, never_reached: bool = False) -> None:
        super().__init__(message)
        self.never_reached = never_reached


class MalformedResponseError(FunctionLayerError):
    """The backend's answer did not parse as the protocol says."""


class NoHumanAvailableError(FunctionLayerError):
    """No human can be asked (for example the terminal has no input)."""


class InvalidEditError(FunctionLayerError):
    """The human approved with edited arguments that do not fit the function's signature."""
