"""What every rule module shares: the refusal error and the request types the rules read."""

from __future__ import annotations

from functionlayer import FunctionCall, FunctionCallSpec, HumanContact, HumanContactSpec

__all__ = ["PolicyError", "Request", "Spec"]


Spec = FunctionCallSpec | HumanContactSpec
Request = FunctionCall | HumanContact


class PolicyError(Exception):
    """A rule refused something. ``code`` says which kind of refusal (the service maps it to
    an HTTP status): ``routing_refused``, ``forbidden``, ``invalid_decision``,
    ``already_decided``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
