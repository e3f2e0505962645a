"""A person's grants: made (only by a person who may decide the call, where the operator's
policy allows grants for it), listed and revoked. The rules are ``_grants``'s; the writes go
through the ledger. Callers authenticate the person: an agent token never reaches this."""

from __future__ import annotations

import uuid
from typing import Any

from functionlayer_server import _grants
from functionlayer_server._errors import (
    ConflictError,
    ForbiddenError,
    InvalidRequestError,
    NotFoundError,
)
from functionlayer_server._policy import Identity, Person
from functionlayer_server._store import AuditRow, GrantRow

from ._part import Part
from ._records import FUNCTION_CALL, call_from
from ._validate import check_via

__all__ = ["Granting"]


class Granting(Part):
    """Grants made, listed and revoked (``ApprovalService.*_grant*``)."""

    async def create_grant(
        self,
        call_id: str,
        data: dict[str, Any],
        *,
        person_name: str,
        project: str,
        via: str,
        dry_run: bool = False,
    ) -> _grants.Grant:
        """``person_name`` grants future calls like ``call_id`` (of ``project``) within
        ``data`` (scope, agents, lifetime_seconds, max_uses: ``_grants.check_grant_request``).
        Only a person who may decide that call may, where the operator's policy allows grants
        for it (``ForbiddenError`` otherwise, audited). Callers authenticate the person: an
        agent token never reaches this.
        ``dry_run``: check only (the same errors), store nothing."""
        check_via(via)
        record = await self.ledger.read(FUNCTION_CALL, call_id, project)
        call = call_from(record)
        identity = Identity("user", person_name)
        effective, directory = await self.authority.effective(call, project, [identity])
        person = directory.resolve(identity)
        rules = self.authority.rules.for_project(project)
        refusal = _grants.may_grant(call, project, person, effective, directory, rules)
        if refusal is not None:
            if not dry_run:
                await self.audit.refused(record, str(identity), f"grant refused: {refusal}", via)
            raise ForbiddenError(f"no grant: {refusal}")
        assert person is not None
        try:
            wanted = _grants.check_grant_request(data, call)
        except ValueError as exc:
            raise InvalidRequestError(str(exc)) from None
        if wanted.agents == "token" and not record.created_by_token:
            raise InvalidRequestError(
                "this call was made without an agent token: grant the whole project instead"
            )
        now = self.ledger.clock.now()
        grant = _grants.Grant(
            id=f"g_{uuid.uuid4().hex[:16]}",
            project=project,
            fn=call.spec.fn,
            scope=wanted.scope,
            token_id=record.created_by_token if wanted.agents == "token" else None,
            person=person.name,
            created_at=now,
            expires_at=now + wanted.lifetime_seconds,
            max_uses=wanted.max_uses,
            source_call_id=call_id,
            token_name=record.created_by if wanted.agents == "token" else "",
        )
        if dry_run:
            return grant
        await self.ledger.add_grant(
            grant.to_row(),
            AuditRow(
                kind=FUNCTION_CALL,
                call_id=call_id,
                at=now,
                actor=person.name,
                via=via,
                action="granted",
                details={"grant": grant.id, **grant.to_json(now)},
                project=project,
            ),
        )
        return grant

    async def list_grants(
        self, person: Person, *, project: str | None = None, every: bool = False
    ) -> list[_grants.Grant]:
        """The person's own grants (``every``, for an admin: everyone's), newest first."""
        mine = None if every and self.authority.is_admin(person) else person.name
        if every and mine is not None:
            raise ForbiddenError("only the operator's admins see every grant")
        rows = await self.ledger.store.list_grants(project=project, person=mine)
        return [_grants.Grant.from_row(r) for r in rows]

    async def revoke_grant(
        self, grant_id: str, person: Person, *, via: str, project: str | None = None
    ) -> _grants.Grant:
        """Revoke at once (every process reads the grant at use time): by its own person or
        an admin. Unknown to this person and unknown are the same answer."""
        check_via(via)
        row = await self.ledger.store.get_grant(grant_id)
        if (
            row is None
            or (project is not None and row.project != project)
            or (row.person != person.name and not self.authority.is_admin(person))
            or not person.active
        ):
            raise NotFoundError(f"no grant {grant_id!r} of yours")
        return await self._revoke(row, person.name, via)

    async def operator_revoke_grant(self, grant_id: str, *, via: str = "cli") -> _grants.Grant:
        """The operator (with the database: the CLI) revokes any grant."""
        row = await self.ledger.store.get_grant(grant_id)
        if row is None:
            raise NotFoundError(f"no grant {grant_id!r}")
        return await self._revoke(row, "operator", via)

    async def operator_grants(
        self, *, project: str | None = None, person: str | None = None
    ) -> list[_grants.Grant]:
        """Every grant (the operator's CLI), newest first."""
        rows = await self.ledger.store.list_grants(project=project, person=person, limit=100_000)
        return [_grants.Grant.from_row(r) for r in rows]

    async def _revoke(self, row: GrantRow, by: str, via: str) -> _grants.Grant:
        now = self.ledger.clock.now()
        audit = AuditRow(
            kind=FUNCTION_CALL,
            call_id=row.source_call_id,
            at=now,
            actor=by,
            via=via,
            action="grant_revoked",
            details={"grant": row.id},
            project=row.project,
        )
        if not await self.ledger.revoke_grant(row.id, now=now, by=by, audit=audit):
            raise ConflictError(f"grant {row.id!r} is already revoked")
        fresh = await self.ledger.store.get_grant(row.id)
        assert fresh is not None
        return _grants.Grant.from_row(fresh)
