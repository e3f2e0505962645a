"""Request kinds and the record ↔ model helpers, once: every part of the lifecycle turns a
stored ``RequestRecord`` into a ``FunctionCall`` or ``HumanContact`` here."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from functionlayer.models import FunctionCall, HumanContact

from functionlayer_server._errors import NotFoundError
from functionlayer_server._policy import Identity
from functionlayer_server._store import AuditRow, RequestRecord

__all__ = [
    "FUNCTION_CALL",
    "HUMAN_CONTACT",
    "AmbiguousCallIdError",
    "Request",
    "audit_row",
    "call_from",
    "contact_from",
    "dt",
    "identity",
    "model",
    "noun",
]

FUNCTION_CALL = "function_call"
HUMAN_CONTACT = "human_contact"

Request = FunctionCall | HumanContact


class AmbiguousCallIdError(NotFoundError):
    """A path that knows no project asked for a call id that several projects use: it is not
    guessed (fail closed)."""


def dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def audit_row(
    record: RequestRecord, at: float, actor: str, via: str, action: str, details: dict[str, Any]
) -> AuditRow:
    """An audit entry about ``record`` (its kind, call id and project)."""
    return AuditRow(record.kind, record.call_id, at, actor, via, action, details, record.project)


def noun(kind: str) -> str:
    return "function call" if kind == FUNCTION_CALL else "human contact"


def call_from(record: RequestRecord) -> FunctionCall:
    return FunctionCall.model_validate_json(record.to_json())


def contact_from(record: RequestRecord) -> HumanContact:
    return HumanContact.model_validate_json(record.to_json())


def model(record: RequestRecord) -> Request:
    return call_from(record) if record.kind == FUNCTION_CALL else contact_from(record)


def identity(responder: Identity | str) -> Identity:
    """``Identity`` as given, or text such as ``slack:U1``, ``email:a@b``, ``user:alice`` or a
    bare inbox login."""
    if isinstance(responder, Identity):
        return responder.normalized()
    kind, sep, value = responder.partition(":")
    if sep and kind in ("user", "email", "slack", "discord", "teams") and value:
        return Identity(kind, value).normalized()  # type: ignore[arg-type]
    return Identity("user", responder)
