"""The audit trail: one row per thing that happened to a request, written in the transaction of
the change it records."""

from __future__ import annotations

from functionlayer_server._store._engine import Engine
from functionlayer_server._store._rows import AuditRow
from functionlayer_server._store._sql import AUDIT_COLUMNS, audit_statement, where_clause

__all__ = ["AuditRepository"]


class AuditRepository(Engine):
    """Audit entries: appended, listed in order."""

    async def add_audit(self, audit: AuditRow) -> None:
        await self._transaction([audit_statement(audit)], guard_first=False)

    async def list_audit(
        self, call_id: str | None = None, *, kind: str | None = None, project: str | None = None
    ) -> list[AuditRow]:
        clause, params = where_clause({"call_id": call_id, "project": project, "kind": kind})
        rows = await self._fetch_many(
            f"SELECT {AUDIT_COLUMNS} FROM fl_audit {clause}ORDER BY id", params
        )
        return [AuditRow.from_row(r) for r in rows]
