"""The audit trail: one row per thing that happened to a request, written in the transaction of
the change it records."""

from __future__ import annotations

import json
from typing import Any

from functionlayer_server._store._engine import Engine
from functionlayer_server._store._rows import AuditRow
from functionlayer_server._store._sql import audit_statement

__all__ = ["AuditRepository"]


class AuditRepository(Engine):
    """Audit entries: appended, listed in order."""

    async def add_audit(self, audit: AuditRow) -> None:
        await self._transaction([audit_statement(audit)], guard_first=False)

    async def list_audit(
        self, call_id: str | None = None, *, kind: str | None = None, project: str | None = None
    ) -> list[AuditRow]:
        where: list[str] = []
        params: list[Any] = []
        if call_id is not None:
            where.append("call_id = ?")
            params.append(call_id)
        if project is not None:
            where.append("project = ?")
            params.append(project)
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        rows = await self._fetch_many(
            "SELECT kind, call_id, at, actor, via, action, details, project FROM fl_audit "
            f"{clause}ORDER BY id",
            params,
        )
        return [
            AuditRow(
                kind=r[0],
                call_id=r[1],
                at=r[2],
                actor=r[3],
                via=r[4],
                action=r[5],
                details=json.loads(r[6]),
                project=r[7],
            )
            for r in rows
        ]
