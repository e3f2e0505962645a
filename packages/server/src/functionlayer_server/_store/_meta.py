"""A small durable key-value table (channels' records: email Message-IDs, used links, replay
claims)."""

from __future__ import annotations

import json
from typing import Any

from functionlayer_server._store._engine import Engine
from functionlayer_server._store._rows import AuditRow
from functionlayer_server._store._sql import audit_statement

__all__ = ["MetaRepository"]


class MetaRepository(Engine):
    """Keys written once (first write wins), read back."""

    async def remember(self, key: str, value: dict[str, Any]) -> None:
        """Store ``value`` under ``key`` unless the key exists (first write wins)."""
        await self._execute(
            "INSERT INTO fl_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
            (key, json.dumps(value, sort_keys=True)),
        )

    async def recall(self, key: str) -> dict[str, Any] | None:
        rows = await self._fetch("SELECT value FROM fl_meta WHERE key = ?", (key,))
        if not rows:
            return None
        value = json.loads(rows[0][0])
        return value if isinstance(value, dict) else {"value": value}

    async def claim_once(self, key: str, value: dict[str, Any], audit: AuditRow) -> bool:
        """Store ``value`` under ``key`` together with ``audit``, atomically; False (and no
        audit entry) when the key was already taken: a single-use claim."""
        return await self._transaction(
            [
                (
                    "INSERT INTO fl_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                    (key, json.dumps(value, sort_keys=True)),
                ),
                audit_statement(audit),
            ],
            guard_first=True,
        )
