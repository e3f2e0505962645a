"""Grants of future calls made by persons (see ``functionlayer_server._grants``): made, listed,
revoked at once. A grant's use is counted with the request it approves
(``RequestRepository.insert_decided_request``)."""

from __future__ import annotations

from functionlayer_server._store._engine import Engine
from functionlayer_server._store._rows import GRANT_FIELDS, AuditRow, GrantRow
from functionlayer_server._store._sql import GRANT_COLUMNS, audit_statement, where_clause

__all__ = ["GrantRepository"]


class GrantRepository(Engine):
    """Grants: made by persons, used by calls, revoked at once."""

    async def add_grant(self, grant: GrantRow, audit: AuditRow) -> None:
        await self._transaction(
            [
                (
                    f"INSERT INTO fl_grants ({GRANT_COLUMNS}) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    tuple(getattr(grant, name) for name in GRANT_FIELDS),
                ),
                audit_statement(audit),
            ],
            guard_first=False,
        )

    async def get_grant(self, grant_id: str) -> GrantRow | None:
        rows = await self._fetch(f"SELECT {GRANT_COLUMNS} FROM fl_grants WHERE id = ?", (grant_id,))
        return GrantRow.from_row(rows[0]) if rows else None

    async def list_grants(
        self,
        *,
        project: str | None = None,
        fn: str | None = None,
        person: str | None = None,
        live_at: float | None = None,
        limit: int = 1000,
    ) -> list[GrantRow]:
        """Newest first; ``live_at``: only those neither revoked, expired nor used up then."""
        live = "revoked_at IS NULL AND expires_at > ? AND uses < max_uses"
        clause, params = where_clause(
            {"project": project, "fn": fn, "person": person},
            (live, (live_at,)) if live_at is not None else None,
        )
        params.append(limit)
        rows = await self._fetch_many(
            f"SELECT {GRANT_COLUMNS} FROM fl_grants {clause}ORDER BY created_at DESC, id LIMIT ?",
            params,
        )
        return [GrantRow.from_row(r) for r in rows]

    async def revoke_grant(self, grant_id: str, *, now: float, by: str, audit: AuditRow) -> bool:
        """Revoke (once; False if unknown or already revoked), with its audit entry."""
        return await self._transaction(
            [
                (
                    "UPDATE fl_grants SET revoked_at = ?, revoked_by = ? "
                    "WHERE id = ? AND revoked_at IS NULL",
                    (now, by, grant_id),
                ),
                audit_statement(audit),
            ],
            guard_first=True,
        )
