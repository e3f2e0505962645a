"""A person decides: who they are (the authority, audited when refused), what their decision
does (``_policy.apply_decision`` / ``answer_contact``), stored by the ledger's compare-and-set.
Quorum counts distinct persons; any rejection rejects at once; the first decision wins."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Required, TypedDict, Unpack

from functionlayer.models import FunctionCall, FunctionCallStatus, HumanContact, HumanContactStatus

from functionlayer_server import _policy as policy
from functionlayer_server import _schema
from functionlayer_server._errors import AlreadyDecidedError, InvalidDecisionError
from functionlayer_server._policy import Decision, Identity, Person
from functionlayer_server._store import AuditRow, RequestRecord

from ._authority import policy_error
from ._events import Change
from ._part import Part
from ._records import (
    FUNCTION_CALL,
    HUMAN_CONTACT,
    AmbiguousCallIdError,
    audit_row,
    call_from,
    contact_from,
    dt,
    identity,
    model,
)
from ._validate import check_via

__all__ = ["DecidedBy", "Decider"]


async def _check_edits_off_loop(call: FunctionCall, decision: Decision) -> None:
    """Validate an edit against the agent's schema in a worker thread, within a time limit,
    before the policy does (same check, same message; the policy reuses the cached result):
    the agent's schema never stalls the event loop."""
    edits = decision.edited_kwargs
    if (
        not isinstance(edits, dict)
        or not call.spec.parameters
        or decision.approved is not True
        or decision.response is not None
        or (call.status is not None and call.status.approved is not None)
        or _schema.decision_kind(call.spec, approved=True, edited_kwargs=edits, response=None)
        not in _schema.allowed(call.spec)
    ):
        return  # nothing to validate, or the policy refuses it without validating
    merged = _schema.merge_edits(call.spec, edits)
    problems = await _schema.edit_problems_off_loop(call.spec, merged)
    if problems:
        raise InvalidDecisionError(_schema.describe(problems))


class DecidedBy(TypedDict, total=False):
    """Who decides, and through what."""

    responder: Required[Identity | str]
    """How the channel knows the person (an ``Identity``, or text such as ``slack:U1``)."""
    via: Required[str]
    """The channel or surface (checked by ``check_via``)."""
    project: str | None
    """The request's project; None: found among the person's projects by call id."""
    via_identities: Sequence[Identity] | None
    """The allow-list of the target the decision came through, if it has one."""


def _by(by: DecidedBy) -> tuple[Identity | str, str, str | None, Sequence[Identity] | None]:
    """``by``'s values (its via checked), in the order the deciding code reads them."""
    check_via(by["via"])
    return by["responder"], by["via"], by.get("project"), by.get("via_identities")


class Decider(Part):
    """Persons' decisions and answers (``ApprovalService.authorize``, ``respond_*``)."""

    async def authorize(
        self,
        kind: str,
        call_id: str,
        responder: Identity | str,
        *,
        via: str,
        via_identities: Sequence[Identity] | None = None,
    ) -> Person:
        """The person behind ``responder`` if the policy lets them decide this request through
        a target whose own allow-list is ``via_identities``; else ``ForbiddenError`` (audited).
        Channels call it before showing a form; the decision itself checks again."""
        check_via(via)
        record = await self._record(kind, call_id, None, responder)
        person, _ = await self.authority.decider(
            model(record), record, responder, via_identities, via
        )
        return person

    async def _record(
        self, kind: str, call_id: str, project: str | None, responder: Identity | str
    ) -> RequestRecord:
        """The request a person decides. A channel that knows no project finds it by call id
        among the projects the person belongs to (the only ones they may decide in): if that
        leaves several, nothing is decided (``AmbiguousCallIdError``)."""
        if project is not None:
            return await self.ledger.read(kind, call_id, project)
        try:
            return await self.ledger.read(kind, call_id, None)
        except AmbiguousCallIdError:
            person = await self.authority.accounts.resolve(identity(responder))
            among = person.projects if person is not None else frozenset()
            return await self.ledger.read(kind, call_id, None, among=among)

    async def respond_function_call(
        self, call_id: str, decision: FunctionCallStatus | Decision, **by: Unpack[DecidedBy]
    ) -> FunctionCall:
        """A person's decision; see ``decide_function_call`` (which answers with the record)."""
        return call_from(await self.decide_function_call(call_id, decision, **by))

    async def decide_function_call(
        self, call_id: str, decision: FunctionCallStatus | Decision, **by: Unpack[DecidedBy]
    ) -> RequestRecord:
        """A person's decision: approve, reject, approve with edits, or answer instead.

        ``responder`` is how the channel knows them (an :class:`Identity`, or text such as
        ``slack:U1``/``email:a@b``/an inbox login); it must resolve to a person of the
        directory allowed by the policy (``_policy``), else ``ForbiddenError``. The record says
        that person's name and ``via``, whatever the request body claimed. Quorum counts
        distinct persons; any rejection rejects at once.
        """
        responder, via, project, via_identities = _by(by)
        wanted = decision if isinstance(decision, Decision) else Decision.from_status(decision)
        for _ in range(20):  # retries only when a concurrent quorum approval won the race
            record = await self._record(FUNCTION_CALL, call_id, project, responder)
            call = call_from(record)
            # Who is asking first: someone who may not decide learns nothing (not even that,
            # or by whom, it was decided).
            person, effective = await self.authority.decider(
                call, record, responder, via_identities, via
            )
            await _check_edits_off_loop(call, wanted)
            try:
                change = policy.apply_decision(call, effective, person, wanted)
            except policy.PolicyError as exc:
                raise policy_error(exc) from None
            status = change.status
            assert isinstance(status, FunctionCallStatus)
            audit = self._audit(record, person, responder, via, change)
            if change.completed:
                status.responded_at = dt(audit.at)
                status.responded_by = person.name
                status.responded_via = via
            event: Change = "decided" if change.completed else "updated"
            changed = await self.ledger.commit(record, status.model_dump_json(), audit, event)
            if changed:
                return changed
        raise AlreadyDecidedError(f"function call {call_id!r} kept changing; try again")

    async def respond_human_contact(
        self,
        call_id: str,
        *,
        response: str | None,
        response_option_name: str | None = None,
        **by: Unpack[DecidedBy],
    ) -> HumanContact:
        """A person's answer to a human contact (same authority rules as decisions)."""
        responder, via, project, via_identities = _by(by)
        record = await self._record(HUMAN_CONTACT, call_id, project, responder)
        contact = contact_from(record)
        person, _ = await self.authority.decider(contact, record, responder, via_identities, via)
        try:
            change = policy.answer_contact(contact, response, response_option_name)
        except policy.PolicyError as exc:
            raise policy_error(exc) from None
        audit = self._audit(record, person, responder, via, change)
        status = change.status
        assert isinstance(status, HumanContactStatus)
        status.responded_at = dt(audit.at)
        status.responded_by = person.name
        status.responded_via = via
        changed = await self.ledger.commit(record, status.model_dump_json(), audit, "decided")
        if changed is None:
            fresh = await self.ledger.read(HUMAN_CONTACT, call_id, record.project)
            raise AlreadyDecidedError(policy.decided_message(contact_from(fresh)))
        return contact_from(changed)

    def _audit(
        self,
        record: RequestRecord,
        person: Person,
        responder: Identity | str,
        via: str,
        change: policy.Transition,
    ) -> AuditRow:
        details = {**change.details, "identity": str(identity(responder))}
        return audit_row(record, self.ledger.clock.now(), person.name, via, change.action, details)
