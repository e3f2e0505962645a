"""The directory of persons (identities, project memberships) and their inbox sessions, kept
server-side so logout and revocation are effective at once."""

from __future__ import annotations

from functionlayer_server._store._engine import Engine
from functionlayer_server._store._rows import IdentityTakenError, PersonRow, SessionRow, UserRow
from functionlayer_server._store._sql import Statement

__all__ = ["PersonRepository"]


class PersonRepository(Engine):
    """Persons, their identities and projects, and their inbox sessions."""

    async def upsert_person(self, name: str, *, password_hash: str | None, now: float) -> bool:
        """Create the person, or update the password when one is given. True when new."""
        existing = await self.get_user(name)
        if existing is None:
            return await self._execute(
                "INSERT INTO fl_users (username, email, slack_user_id, password_hash, "
                "created_at, disabled) VALUES (?, NULL, NULL, ?, ?, 0) "
                "ON CONFLICT (username) DO NOTHING",
                (name, password_hash or "", now),
                guard=True,
            )
        if password_hash is not None:
            await self._transaction(
                [
                    (
                        "UPDATE fl_users SET password_hash = ? WHERE username = ?",
                        (password_hash, name),
                    ),
                    ("DELETE FROM fl_sessions WHERE username = ?", (name,)),
                ],
                guard_first=False,
            )
        return False

    async def set_person_disabled(self, name: str, disabled: bool) -> bool:
        statements: list[Statement] = [
            ("UPDATE fl_users SET disabled = ? WHERE username = ?", (int(disabled), name))
        ]
        if disabled:
            statements.append(("DELETE FROM fl_sessions WHERE username = ?", (name,)))
        return await self._transaction(statements, guard_first=True)

    async def link_identity(self, name: str, kind: str, value: str) -> None:
        """Link an identity to a person; an identity belongs to one person only."""
        owner = await self.find_identity(kind, value)
        if owner is not None and owner != name:
            raise IdentityTakenError(f"{kind} {value!r} already belongs to {owner!r}")
        if owner is None:
            await self._execute(
                "INSERT INTO fl_identities (kind, value, username) VALUES (?, ?, ?) "
                "ON CONFLICT (kind, value) DO NOTHING",
                (kind, value, name),
            )

    async def add_membership(self, name: str, project: str) -> None:
        await self._execute(
            "INSERT INTO fl_memberships (username, project) VALUES (?, ?) "
            "ON CONFLICT (username, project) DO NOTHING",
            (name, project),
        )

    async def find_identity(self, kind: str, value: str) -> str | None:
        rows = await self._fetch(
            "SELECT username FROM fl_identities WHERE kind = ? AND value = ?", (kind, value)
        )
        return str(rows[0][0]) if rows else None

    async def get_person(self, name: str) -> PersonRow | None:
        # One statement (it is on every decision's path): the person's row, then one row per
        # linked identity and per project.
        rows = await self._fetch(
            "SELECT 'u', password_hash, disabled FROM fl_users WHERE username = ? "
            "UNION ALL SELECT 'i:' || kind, value, 0 FROM fl_identities WHERE username = ? "
            "UNION ALL SELECT 'p', project, 0 FROM fl_memberships WHERE username = ?",
            (name, name, name),
        )
        head = [r for r in rows if r[0] == "u"]
        if not head:
            return None
        return PersonRow(
            name=name,
            password_hash=head[0][1] or "",
            disabled=bool(head[0][2]),
            identities=tuple(
                sorted((str(r[0])[2:], str(r[1])) for r in rows if r[0] != "u" and r[0] != "p")
            ),
            projects=tuple(sorted(str(r[1]) for r in rows if r[0] == "p")),
        )

    async def list_person_names(self) -> list[str]:
        rows = await self._fetch_many("SELECT username FROM fl_users ORDER BY username")
        return [str(r[0]) for r in rows]

    async def get_user(self, username: str) -> UserRow | None:
        rows = await self._fetch(
            "SELECT username, email, slack_user_id, password_hash, disabled FROM fl_users "
            "WHERE username = ?",
            (username,),
        )
        if not rows:
            return None
        r = rows[0]
        return UserRow(r[0], r[1], r[2], r[3] or "", bool(r[4]))

    # -- inbox sessions (server-side, so logout and revocation are effective at once) ---------

    async def add_session(
        self, session_hash: str, username: str, now: float, expires_at: float
    ) -> None:
        await self._execute(
            "INSERT INTO fl_sessions (session_hash, username, created_at, expires_at) "
            "VALUES (?, ?, ?, ?)",
            (session_hash, username, now, expires_at),
        )

    async def get_session(self, session_hash: str) -> SessionRow | None:
        rows = await self._fetch(
            "SELECT username, created_at, expires_at FROM fl_sessions WHERE session_hash = ?",
            (session_hash,),
        )
        return SessionRow(rows[0][0], rows[0][1], rows[0][2]) if rows else None

    async def delete_sessions(
        self, *, username: str | None = None, session_hash: str | None = None
    ) -> None:
        if username is not None:
            stmt: Statement = ("DELETE FROM fl_sessions WHERE username = ?", (username,))
        elif session_hash is not None:
            stmt = ("DELETE FROM fl_sessions WHERE session_hash = ?", (session_hash,))
        else:
            raise ValueError("give username or session_hash")
        await self._transaction([stmt], guard_first=False)
