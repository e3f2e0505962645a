"""Webhook events as outbox rows: what the service writes, in the transaction that makes a
change, so that the change and its announcement are stored together or not at all.

Pure (no I/O): the ledger (``_requests._ledger``) builds rows here and hands them to the store
with the change; ``_webhooks`` delivers them. One row per (event, URL): each URL keeps its own
attempts, backoff and outcome, so a dead receiver never holds back a live one, and a claim (a
compare-and-set on one row) covers exactly one HTTP attempt. The event id (the delivery id receivers
de-duplicate on) is shared by the rows of one event and stays the same across retries.

Event names, given to ``webhook_event``:

- ``created``: a new request (``{kind}.created``);
- ``decided``: approved, rejected or answered (``{kind}.completed``, the predecessor's name);
- ``expired``: the deadline passed, or the agent gave up (``{kind}.expired``); the service
  emits these as ``decided`` events whose audit action is ``expired`` (or ``abandoned``: the
  agent stopped waiting, e.g. Ctrl-C);
- any other service event type ``X`` (``executed``, ...) becomes ``{kind}.X``;
- ``updated`` (quorum progress) sends no webhook.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from functionlayer_server._store import OutboxRow

__all__ = ["SILENT_EVENTS", "new_event_id", "outbox_rows", "webhook_event", "wire_type"]

SILENT_EVENTS = frozenset({"updated"})
"""Service event types that are not announced by webhook."""


def webhook_event(event_type: str, action: str | None) -> str | None:
    """The webhook event for a service event (``None``: none is sent). ``action`` is the
    audit action of the change (``approved``, ``expired``, ...)."""
    if event_type in SILENT_EVENTS:
        return None
    if event_type == "decided" and action in ("expired", "abandoned"):
        return "expired"
    return event_type


def wire_type(kind: str, event: str) -> str:
    """``function_call.completed``, ``human_contact.created``, ... (``kind`` is
    ``function_call`` or ``human_contact``)."""
    return f"{kind}.{'completed' if event == 'decided' else event}"


def new_event_id() -> str:
    return f"evt_{uuid.uuid4().hex}"


def outbox_rows(
    urls: Sequence[str],
    *,
    event: str,
    kind: str,
    project: str,
    request: dict[str, Any],
    action: str | None,
    now: float,
    event_id: str | None = None,
) -> list[OutboxRow]:
    """The rows announcing one event to every URL (none without URLs). ``request`` is the
    request as JSON (``FunctionCall`` or ``HumanContact``) after the change."""
    if not urls:
        return []
    event_id = event_id or new_event_id()
    type_ = wire_type(kind, event)
    payload = json.dumps(
        {
            "id": event_id,
            "type": type_,
            "occurred_at": datetime.fromtimestamp(now, UTC).isoformat(),
            "project": project,
            "action": action,
            "event": request,
        },
        separators=(",", ":"),
    )
    call_id = str(request.get("call_id", ""))
    return [
        OutboxRow(event_id, type_, kind, call_id, url, payload, created_at=now)
        for url in dict.fromkeys(urls)  # a URL listed twice gets one delivery
    ]
