"""Decided at creation: an operator rule (reject rules first) or a person's live grant decides a
new function call before anyone is asked. The rules are ``_grants``'s; the facts (the grant as
stored now, its person, the policy) are read at this moment, nothing is cached; the grant's use
is a compare-and-set in the ledger's transaction that stores the decided request."""

from __future__ import annotations

from typing import Any

from functionlayer.models import FunctionCall, FunctionCallStatus

from functionlayer_server import _grants, _schema
from functionlayer_server._policy import Identity
from functionlayer_server._store import AuditRow, GrantRow, RequestRecord

from ._part import Part
from ._records import audit_row, dt

__all__ = ["AtCreation"]


class AtCreation(Part):
    """Decides a new function call by an operator rule or a live grant, or leaves it to a person."""

    async def decide(
        self, record: RequestRecord, call: FunctionCall, created: AuditRow
    ) -> RequestRecord | None:
        """Store ``record`` already decided when an operator rule decides it or a person's
        live grant covers it now; None when a person must decide (or the call id exists: the
        caller's path finds it)."""
        project, fn, kwargs = record.project, call.spec.fn, call.spec.kwargs
        rules = self.authority.rules.for_project(project)
        rule = _grants.rule_decision(rules, fn, kwargs)
        if rule is not None:
            approve = rule.action == "approve"
            if approve and "approve" not in _schema.allowed(call.spec):
                return None  # the function accepts no plain approval: a person decides
            return await self._store(
                record,
                created,
                approved=approve,
                responded_by=f"rule:{rule.name}",
                via="policy",
                comment=rule.reason
                if not approve
                else f"approved by the operator's rule {rule.name!r}",
                details={"rule": rule.name, **({} if approve else {"comment": rule.reason})},
            )
        if "approve" not in _schema.allowed(call.spec):
            return None
        store = self.ledger.store
        for _ in range(10):  # another call used the grant first: read it again
            now = self.ledger.clock.now()
            rows = await store.list_grants(project=project, fn=fn, live_at=now, limit=200)
            if not rows:
                return None
            chosen = await self._usable(record, call, rows, now)
            if chosen is None:
                return None
            use = chosen.uses + 1
            text = (
                f"approved under {chosen.person}'s grant {chosen.id} "
                f"(use {use} of {chosen.max_uses})"
            )
            stored = await self._store(
                record,
                created,
                approved=True,
                responded_by=chosen.person,
                via="grant",
                comment=f"approved under grant {chosen.id}",
                details={"grant": chosen.id, "use": use, "max_uses": chosen.max_uses, "text": text},
                grant_use=(chosen.id, chosen.uses, now),
            )
            if stored is not None:
                return stored
            if await store.get_request(record.kind, record.call_id, project) is not None:
                return None  # the call id exists: the caller's path answers with it
        return None

    async def _usable(
        self, record: RequestRecord, call: FunctionCall, rows: list[GrantRow], now: float
    ) -> _grants.Grant | None:
        """The oldest live grant that covers ``call`` now (its person may still decide it)."""
        project = record.project
        effective, directory = await self.authority.effective(
            call, project, [Identity("user", r.person) for r in rows]
        )
        rules = self.authority.rules.for_project(project)
        for row in reversed(rows):  # the oldest live grant first
            grant = _grants.Grant.from_row(row)
            person = directory.resolve(Identity("user", grant.person))
            if person is not None and person.name != grant.person:
                person = None
            refusal = _grants.grant_refusal(
                grant,
                call,
                project,
                record.created_by_token,
                now,
                person,
                effective,
                directory,
                rules,
            )
            if refusal is None:
                return grant
        return None

    async def _store(
        self,
        record: RequestRecord,
        created: AuditRow,
        *,
        approved: bool,
        responded_by: str,
        via: str,
        comment: str | None,
        details: dict[str, Any],
        grant_use: tuple[str, int, float] | None = None,
    ) -> RequestRecord | None:
        now = self.ledger.clock.now()
        status = FunctionCallStatus.model_validate_json(record.status)
        status.approved = approved
        status.comment = comment
        status.responded_at = dt(now)
        status.responded_by = responded_by
        status.responded_via = via
        decided = record.changed(status.model_dump_json(), completed=True)
        action = "approved" if approved else "rejected"
        audit = audit_row(record, now, responded_by, via, action, details)
        if not await self.ledger.insert_decided(decided, [created, audit], grant_use=grant_use):
            return None
        return decided
