"""Create-time checks: what a new request must be before anything is stored or sent (pure, no
I/O). Each failure is an ``InvalidRequestError`` saying what to fix."""

from __future__ import annotations

import json
from typing import Any

from functionlayer.models import FunctionCallSpec

from functionlayer_server import _schema
from functionlayer_server._errors import InvalidRequestError

from ._records import FUNCTION_CALL, Request

__all__ = [
    "MAX_CALL_ID_LENGTH",
    "MAX_TIMEOUT_SECONDS",
    "check_group_id",
    "check_request",
    "check_via",
    "same_request",
]

MAX_CALL_ID_LENGTH = 256
MAX_TIMEOUT_SECONDS = 10 * 365 * 24 * 3600.0


def _is_name(value: str) -> bool:
    """Identifiers stored in their own columns: 1-256 printable characters (no NUL, which
    PostgreSQL text cannot hold, and no control characters)."""
    return 0 < len(value) <= MAX_CALL_ID_LENGTH and value.isprintable()


def check_via(via: str) -> None:
    if not _is_name(via):
        raise InvalidRequestError(f"via must be 1-{MAX_CALL_ID_LENGTH} printable characters")


def check_group_id(spec: FunctionCallSpec) -> None:
    group = spec.group_id
    if group is not None and not (0 < len(group) <= 128 and group.isprintable()):
        raise InvalidRequestError("group_id must be 1-128 printable characters")


def check_request(request: Request) -> None:
    """Everything about ``request`` itself (its ids, arguments, schema, timeouts, policy
    shape); routing against the directory is the authority's check."""
    call_id = request.call_id
    if (
        not call_id
        or len(call_id) > MAX_CALL_ID_LENGTH
        or "/" in call_id
        or not call_id.isprintable()
    ):
        raise InvalidRequestError(
            f"call_id must be 1-{MAX_CALL_ID_LENGTH} printable characters without '/'"
        )
    if not _is_name(request.run_id):
        raise InvalidRequestError(f"run_id must be 1-{MAX_CALL_ID_LENGTH} printable characters")
    spec = request.spec
    if _schema.non_finite(getattr(spec, "kwargs", None)) or _schema.non_finite(spec.state):
        # JSON has no NaN or Infinity: stored, they would silently become null, and the
        # human would approve arguments other than the ones that run.
        raise InvalidRequestError(
            "arguments must be JSON numbers: NaN, Infinity and numbers too large for JSON "
            "are refused"
        )
    if isinstance(spec, FunctionCallSpec):
        try:
            _schema.check_schema(spec)
        except _schema.SchemaProblem as exc:
            raise InvalidRequestError(exc.message) from None
        check_group_id(spec)
    if spec.timeout_seconds is not None and spec.timeout_seconds > MAX_TIMEOUT_SECONDS:
        raise InvalidRequestError(
            f"timeout_seconds must be at most {MAX_TIMEOUT_SECONDS:.0f} seconds (ten years); omit it for no expiry"
        )
    escalate = spec.policy.escalate_after_seconds if spec.policy is not None else None
    if escalate is not None and not 0 < escalate <= MAX_TIMEOUT_SECONDS:
        raise InvalidRequestError(
            "policy.escalate_after_seconds must be a positive number of seconds"
        )
    if spec.policy is not None and spec.policy.mode == "escalate":
        if not spec.policy.channels:
            raise InvalidRequestError(
                "policy.mode 'escalate' needs at least one entry in policy.channels"
            )
        if escalate is None:  # would silently never escalate
            raise InvalidRequestError("policy.mode 'escalate' needs policy.escalate_after_seconds")


def _canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


def same_request(kind: str, stored_spec: str, spec_json: str) -> bool:
    """Whether a create under an existing call id asks for the same request: the same function
    and arguments (a function call), the same spec (a human contact)."""
    if stored_spec == spec_json:
        return True
    if kind != FUNCTION_CALL:
        return False
    old, new = json.loads(stored_spec), json.loads(spec_json)
    # Compared as canonical JSON: true and 1, or 1 and 1.0, are different arguments.
    return bool(
        old.get("fn") == new.get("fn")
        and _canonical(old.get("kwargs")) == _canonical(new.get("kwargs"))
    )
