"""The audit trail: entries that change no request (a refused answer, a delivery, an
escalation, a resumed run) and the trail's reads. Entries that go with a change are written by
the ledger, in the change's transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from functionlayer_server._store import AuditRow, RequestRecord

from ._events import AuditEntry, audit_entry
from ._ledger import Ledger
from ._records import audit_row

__all__ = ["AuditLog"]


@dataclass(eq=False)
class AuditLog:
    """Audit entries outside a change, and the trail."""

    ledger: Ledger

    async def add(self, row: AuditRow) -> None:
        await self.ledger.store.add_audit(row)

    async def refused(self, record: RequestRecord, who: str, reason: str, via: str) -> None:
        now = self.ledger.clock.now()
        await self.add(audit_row(record, now, who, via, "refused", {"reason": reason}))

    async def record_audit(
        self,
        kind: str,
        call_id: str,
        *,
        who: str,
        via: str,
        action: str,
        details: dict[str, Any] | None = None,
        project: str | None = None,
    ) -> AuditEntry:
        """For channels: note a delivery, an escalation, a refused answer, ... ``project``:
        the request's (without it, the one project with that call id, if only one)."""
        if project is None:
            project = await self.ledger.find_project(kind, call_id)
        row = AuditRow(
            kind=kind,
            call_id=call_id,
            at=self.ledger.clock.now(),
            actor=who,
            via=via,
            action=action,
            details=details or {},
            project=project,
        )
        await self.add(row)
        return audit_entry(row)

    async def audit_trail(
        self, call_id: str | None = None, *, project: str | None = None
    ) -> list[AuditEntry]:
        """Oldest first; every request when ``call_id`` is None (for export); only
        ``project``'s entries when given (call ids are unique per project only)."""
        return [
            audit_entry(r) for r in await self.ledger.store.list_audit(call_id, project=project)
        ]
