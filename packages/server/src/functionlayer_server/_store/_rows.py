"""The rows the store reads and writes: plain frozen dataclasses, no SQL."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = [
    "AUDIT_FIELDS",
    "GRANT_FIELDS",
    "OUTBOX_FIELDS",
    "REQUEST_FIELDS",
    "AuditRow",
    "GrantFields",
    "GrantRow",
    "IdentityTakenError",
    "JobRow",
    "NewJob",
    "OutboxRow",
    "PersonRow",
    "RequestRecord",
    "SessionRow",
    "TokenRow",
    "UserRow",
]

ScopeT = TypeVar("ScopeT")

# The stored columns of each row type, in the order the store reads them (the field names).
REQUEST_FIELDS = (
    "kind",
    "call_id",
    "project",
    "run_id",
    "spec",
    "status",
    "completed",
    "expires_at",
    "created_at",
    "version",
    "created_by",
    "created_by_token",
)
AUDIT_FIELDS = ("kind", "call_id", "at", "actor", "via", "action", "details", "project")
GRANT_FIELDS = (
    "id",
    "project",
    "fn",
    "scope",
    "token_id",
    "person",
    "created_at",
    "expires_at",
    "max_uses",
    "uses",
    "revoked_at",
    "revoked_by",
    "source_call_id",
    "token_name",
)
OUTBOX_FIELDS = (
    "id",
    "event_id",
    "type",
    "kind",
    "call_id",
    "url",
    "payload",
    "created_at",
    "attempts",
    "next_attempt_at",
    "delivered_at",
    "failed_at",
    "last_error",
)


def _text(value: Any) -> str:
    return value or ""


def _values(
    names: Sequence[str], row: Sequence[Any], **convert: Callable[[Any], Any]
) -> dict[str, Any]:
    """A row's values by field name, those named in ``convert`` converted."""
    values = dict(zip(names, row, strict=True))
    for name, how in convert.items():
        values[name] = how(values[name])
    return values


@dataclass(frozen=True)
class RequestRecord:
    kind: str
    """``function_call`` or ``human_contact``."""
    call_id: str
    project: str
    run_id: str
    spec: str
    status: str
    completed: bool
    expires_at: float | None
    created_at: float
    version: int
    created_by: str = ""
    """The name of the agent token that created the request (for people: the audit says
    ``agent:<name>``). Names are labels, never ownership: see ``created_by_token``."""
    created_by_token: str = ""
    """The immutable id of the agent token that created the request: only that token may give
    it up, claim its execution or report the outcome (``_ownership``). Empty for a request
    created without an agent token, or (with a ``created_by`` name) before ids were recorded."""

    def changed(self, status: str, *, completed: bool) -> RequestRecord:
        """This record after a compare-and-set that stored ``status``."""
        return RequestRecord(
            self.kind,
            self.call_id,
            self.project,
            self.run_id,
            self.spec,
            status,
            completed,
            self.expires_at,
            self.created_at,
            self.version + 1,
            self.created_by,
            self.created_by_token,
        )

    def to_json(self) -> str:
        """The request as the protocol's JSON (``FunctionCall`` / ``HumanContact``): spec and
        status are stored as the models' JSON, so they are spliced in, not decoded and
        re-encoded."""
        return (
            f'{{"run_id":{json.dumps(self.run_id)},"call_id":{json.dumps(self.call_id)},'
            f'"spec":{self.spec},"status":{self.status}}}'
        )

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> RequestRecord:
        """From the columns ``REQUEST_FIELDS`` in order."""
        texts = {"created_by": _text, "created_by_token": _text}
        return cls(**_values(REQUEST_FIELDS, row, completed=bool, **texts))


@dataclass(frozen=True)
class AuditRow:
    kind: str
    call_id: str
    at: float
    actor: str
    via: str
    action: str
    details: dict[str, Any]
    project: str | None = None
    """The request's project (call ids are unique per project only). None on entries written
    before projects were recorded whose request could not be told apart."""

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> AuditRow:
        """From the columns ``AUDIT_FIELDS`` in order (``details`` as stored JSON)."""
        return cls(**_values(AUDIT_FIELDS, row, details=json.loads))


@dataclass(frozen=True)
class TokenRow:
    project: str
    name: str
    role: str = "agent"
    """``agent`` (creates and reads requests, gives up its own) or ``approver`` (decides as
    the person ``approver``)."""
    approver: str | None = None
    created_at: float = 0.0
    revoked_at: float | None = None
    token_id: str = ""
    """Immutable and unique: what owns the requests the token creates (names may repeat over
    time, e.g. revoke then re-issue)."""


@dataclass(frozen=True)
class GrantFields(Generic[ScopeT]):
    """A person's grant of future calls, as stored (``scope``: JSON) and as the rules read it
    (``_grants.Grant``, its scope parsed into conditions): one list of fields for both."""

    id: str
    project: str
    fn: str
    scope: ScopeT
    token_id: str | None
    """The one agent token it serves; None: every agent token of the project."""
    person: str
    created_at: float
    expires_at: float
    max_uses: int
    uses: int = 0
    """How many calls it approved so far."""
    revoked_at: float | None = None
    revoked_by: str | None = None
    source_call_id: str = ""
    token_name: str = ""
    """The served token's name when it was made (a label for people; ``token_id`` decides)."""


@dataclass(frozen=True)
class GrantRow(GrantFields[str]):
    """A grant's row (``_grants.Grant`` is its model; ``scope`` is JSON)."""

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> GrantRow:
        """From the columns ``GRANT_FIELDS`` in order."""
        return cls(
            **_values(
                GRANT_FIELDS, row, max_uses=int, uses=int, source_call_id=_text, token_name=_text
            )
        )


@dataclass(frozen=True)
class UserRow:
    username: str
    email: str | None
    slack_user_id: str | None
    password_hash: str
    disabled: bool = False


@dataclass(frozen=True)
class PersonRow:
    """A person of the directory with every linked identity and project."""

    name: str
    password_hash: str
    """Empty when the person has no inbox login."""
    disabled: bool
    identities: tuple[tuple[str, str], ...]
    """``(kind, value)``: ``email``, ``slack``, ``discord``."""
    projects: tuple[str, ...]


@dataclass(frozen=True)
class SessionRow:
    username: str
    created_at: float
    expires_at: float


@dataclass(frozen=True)
class JobRow:
    id: int
    topic: str
    payload: dict[str, Any]
    due_at: float


@dataclass(frozen=True)
class NewJob:
    """A scheduler job to store. The service writes the jobs a change needs (a channel
    delivery, a channel update) in the transaction that makes the change, like outbox rows:
    the change is stored with its jobs or not at all."""

    topic: str
    payload: dict[str, Any]
    due_at: float


@dataclass(frozen=True)
class OutboxRow:
    """One webhook delivery waiting in (or done with) the outbox: an event for one URL.

    The service writes it in the transaction that makes the change it announces; the webhook
    worker claims it (a compare-and-set on ``attempts``), POSTs ``payload`` and records the
    outcome. Rows are kept after delivery or final failure (``delivered_at`` / ``failed_at``).
    """

    event_id: str
    """The delivery id: the same for every URL and every retry of one event."""
    type: str
    """The webhook event type, e.g. ``function_call.completed``."""
    kind: str
    call_id: str
    url: str
    payload: str
    """The JSON body, as sent (signed byte for byte)."""
    created_at: float
    id: int = 0
    attempts: int = 0
    next_attempt_at: float = 0.0
    """When the row is due; while claimed, when the claim goes stale."""
    delivered_at: float | None = None
    failed_at: float | None = None
    last_error: str | None = None

    @property
    def pending(self) -> bool:
        return self.delivered_at is None and self.failed_at is None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> OutboxRow:
        """From the columns ``OUTBOX_FIELDS`` in order."""
        return cls(**_values(OUTBOX_FIELDS, row, id=int, attempts=int))


class IdentityTakenError(ValueError):
    """The identity is already linked to another person."""
