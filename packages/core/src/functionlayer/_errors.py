"""Exceptions. Every failure to get a decision is a :class:`FunctionLayerError`; the guarded
function never runs on one (fail closed)."""

from __future__ import annotations

__all__ = [
    "ApprovalPendingError",
    "ApprovalTimeoutError",
    "BackendError",
    "BackendUnavailableError",
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


class NotFoundError(BackendError):
    """No request with that call id."""


class ConflictError(BackendError):
    """A different request already exists under that call id."""


class BackendUnavailableError(FunctionLayerError):
    """The backend could not be reached (after retries); the request may still exist there."""


class MalformedResponseError(FunctionLayerError):
    """The backend's answer did not parse as the protocol says."""


class NoHumanAvailableError(FunctionLayerError):
    """No human can be asked (for example the terminal has no input)."""


class InvalidEditError(FunctionLayerError):
    """The human approved with edited arguments that do not fit the function's signature."""
