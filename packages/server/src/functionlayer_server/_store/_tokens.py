"""API tokens: stored by hash, read on every request (never cached), revoked at once."""

from __future__ import annotations

from functionlayer_server._store._engine import Engine
from functionlayer_server._store._rows import TokenRow

__all__ = ["TokenRepository"]


class TokenRepository(Engine):
    """Agent and approver tokens."""

    async def add_token(
        self,
        project: str,
        name: str,
        token_hash: str,
        now: float,
        *,
        role: str = "agent",
        approver: str | None = None,
        token_id: str,
    ) -> bool:
        """Store a token; False (nothing stored) when a live token of ``project`` already has
        this ``name`` (a unique index, so concurrent creations cannot both win)."""
        return await self._execute(
            "INSERT INTO fl_tokens (token_hash, project, name, created_at, role, approver, "
            "token_id) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (token_hash, project, name, now, role, approver, token_id),
            guard=True,
        )

    async def live_token_named(self, project: str, name: str) -> bool:
        rows = await self._fetch(
            "SELECT 1 FROM fl_tokens WHERE project = ? AND name = ? AND revoked_at IS NULL",
            (project, name),
        )
        return bool(rows)

    async def find_token(self, token_hash: str) -> TokenRow | None:
        """The live (not revoked) token with this hash. Read on every request, never cached:
        a revocation by any process is effective at once."""
        rows = await self._fetch(
            "SELECT project, name, role, approver, created_at, token_id FROM fl_tokens "
            "WHERE token_hash = ? AND revoked_at IS NULL",
            (token_hash,),
        )
        if not rows:
            return None
        r = rows[0]
        return TokenRow(
            project=r[0],
            name=r[1],
            role=r[2] or "agent",
            approver=r[3],
            created_at=r[4],
            token_id=r[5] or "",
        )

    async def list_tokens(self) -> list[TokenRow]:
        rows = await self._fetch_many(
            "SELECT project, name, role, approver, created_at, revoked_at, token_id "
            "FROM fl_tokens ORDER BY created_at, name"
        )
        return [
            TokenRow(
                project=r[0],
                name=r[1],
                role=r[2] or "agent",
                approver=r[3],
                created_at=r[4],
                revoked_at=r[5],
                token_id=r[6] or "",
            )
            for r in rows
        ]

    async def revoke_tokens(self, name: str, now: float) -> int:
        """Revoke every live token called ``name``; how many were revoked."""
        before = [t for t in await self.list_tokens() if t.name == name and t.revoked_at is None]
        if before:
            await self._execute(
                "UPDATE fl_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                (now, name),
            )
        return len(before)
