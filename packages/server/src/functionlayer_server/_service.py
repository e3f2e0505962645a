"""The approval service: the one place that creates, lists, decides and expires requests, wakes
waiting agents, records the audit trail and tells listeners (webhooks, channels, the inbox).

A façade over the lifecycle package ``_requests`` (one module per concept): its methods are
the parts' own, bound here under the names the API, the inbox, the channels and the CLI use.
Every write to a request goes through ``_requests._ledger.Ledger``: decisions are
compare-and-set on a version column, so the first answer wins and a request is decided at most
once, whichever process, channel or human answers; the change, its webhook rows and its
delivery jobs are one transaction. Waiting agents are woken by in-process futures, and across
processes by PostgreSQL NOTIFY; nothing polls.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from functionlayer.models import FunctionCall, HumanContact

from functionlayer_server._accounts import Accounts
from functionlayer_server._ownership import check_owner
from functionlayer_server._policy import OperatorPolicy, Person
from functionlayer_server._quotas import PendingQuota
from functionlayer_server._requests._at_creation import AtCreation
from functionlayer_server._requests._audit import AuditLog
from functionlayer_server._requests._authority import Authority
from functionlayer_server._requests._create import Creator
from functionlayer_server._requests._decide import Decider
from functionlayer_server._requests._ending import Ending
from functionlayer_server._requests._events import (
    AuditEntry,
    Events,
    EventType,
    JobPlanner,
    Listener,
    ServiceEvent,
)
from functionlayer_server._requests._executions import Executions
from functionlayer_server._requests._granting import Granting
from functionlayer_server._requests._groups import Groups
from functionlayer_server._requests._ledger import Ledger
from functionlayer_server._requests._listing import Listing
from functionlayer_server._requests._presence import Presence
from functionlayer_server._requests._records import (
    FUNCTION_CALL,
    HUMAN_CONTACT,
    AmbiguousCallIdError,
    Request,
    call_from,
    contact_from,
)
from functionlayer_server._requests._waiters import Waiters
from functionlayer_server._scheduler import Clock, JobHandler, SystemClock
from functionlayer_server._settings import Settings
from functionlayer_server._store import RequestRecord, Store

__all__ = [
    "FUNCTION_CALL",
    "HUMAN_CONTACT",
    "AmbiguousCallIdError",
    "ApprovalService",
    "AuditEntry",
    "EventType",
    "JobPlanner",
    "Listener",
    "Request",
    "ServiceEvent",
]


class ApprovalService:
    """See the module docstring. Create with a store (not yet opened) and settings, then
    ``await service.start()``; ``await service.stop()`` on shutdown."""

    def __init__(self, store: Store, settings: Settings, *, clock: Clock | None = None) -> None:
        self.store = store
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.accounts = Accounts(store, self.clock)
        # One agent token cannot fill the inbox for everyone (see _quotas).
        self.pending_quota = PendingQuota(store, settings.max_pending_per_token)
        self.events = Events()
        self.waiters = Waiters()
        self.presence = Presence(
            store, self.clock, self.waiters, self.events.spawn, settings.long_poll_max_seconds
        )
        self.ledger = Ledger(store, settings, self.clock, self.events, self.waiters, self.presence)
        self.scheduler = self.ledger.scheduler
        self.audit = AuditLog(self.ledger)
        self.authority = Authority(self.accounts, settings.operator_policy(), self.audit)
        part = (self.ledger, self.authority, self.audit)
        creator = Creator(*part, AtCreation(*part), self.pending_quota)
        decider = Decider(*part)
        ending = Ending(*part)
        listing = Listing(*part)
        granting = Granting(*part)
        executions = Executions(*part)
        groups = Groups(*part)

        # listeners and planners (_requests._events)
        self.add_listener = self.events.add_listener
        self.remove_listener = self.events.remove_listener
        self.add_job_planner = self.events.add_job_planner
        # wake-ups (_requests._waiters) and the agent's presence (_requests._presence)
        self.wait_for_change = self.waiters.wait_for_change
        self.agent_holding = self.presence.holding
        # who may see and decide (_requests._authority, rules in _policy)
        self.may_see = self.authority.may_see
        self.irreversible = self.authority.irreversible
        self.grants_allowed = self.authority.grants_allowed
        self.approvals_required = self.authority.approvals_required
        self.is_admin = self.authority.is_admin
        # creating (_requests._create, decided at once by _requests._at_creation)
        self.create_function_call = creator.create_function_call
        self.create_human_contact = creator.create_human_contact
        self.create_record = creator.create_record
        # reading, waiting and expiring (_requests._ledger), lists (_requests._listing)
        self.expire = self.ledger.expire
        self.list_function_calls = listing.list_function_calls
        self.list_human_contacts = listing.list_human_contacts
        self.inbox_page = listing.inbox_page
        self.inbox_pending = listing.inbox_pending
        self.requested_by = listing.requested_by
        self.group_members = groups.group_members
        # deciding (_requests._decide), the agent ending a request (_requests._ending)
        self.authorize = decider.authorize
        self.respond_function_call = decider.respond_function_call
        self.decide_function_call = decider.decide_function_call
        self.respond_human_contact = decider.respond_human_contact
        self.give_up = ending.give_up
        self.abandon = ending.abandon
        # grants (_requests._granting, rules in _grants)
        self.create_grant = granting.create_grant
        self.list_grants = granting.list_grants
        self.revoke_grant = granting.revoke_grant
        self.operator_revoke_grant = granting.operator_revoke_grant
        self.operator_grants = granting.operator_grants
        # executions (_requests._executions)
        self.claim_execution = executions.claim_execution
        self.report_execution = executions.report_execution
        # audit (_requests._audit)
        self.record_audit = self.audit.record_audit
        self.audit_trail = self.audit.audit_trail
        # credentials and persons (_accounts)
        self.authenticate_token = self.accounts.authenticate_token
        self.get_person = self.accounts.get_person
        self.list_persons = self.accounts.list_persons

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self, *, scheduler: bool = True) -> None:
        await self.store.open()
        await self.store.listen(self.waiters.on_notify)
        if scheduler:
            self.scheduler.start()

    async def stop(self) -> None:
        self.waiters.stopping = True
        await self.scheduler.stop()
        await self.presence.stop()
        await self.events.close()
        self.waiters.release_all()
        await self.store.close()
        self.waiters.stopping = False

    @property
    def rules(self) -> OperatorPolicy:
        """The operator's policy (``_policy``), read by every part at the moment it decides."""
        return self.authority.rules

    @rules.setter
    def rules(self, rules: OperatorPolicy) -> None:
        self.authority.rules = rules

    # -- scheduling -------------------------------------------------------------------------

    def register_job_handler(self, topic: str, handler: JobHandler) -> None:
        self.scheduler.register(topic, handler)

    async def schedule(
        self,
        topic: str,
        payload: dict[str, Any],
        *,
        delay: float | None = None,
        at: float | None = None,
    ) -> None:
        """Run the handler registered for ``topic`` with ``payload`` at unix time ``at`` (or
        ``delay`` seconds from now by the service clock). Stored: survives restarts."""
        due = at if at is not None else self.clock.now() + (delay or 0.0)
        await self.store.add_job(topic, payload, due)
        self.scheduler.wake()

    @property
    def change_counter(self) -> int:
        return self.waiters.change_counter

    @property
    def waiting(self) -> int:
        """How many long-polls are open in this process."""
        return self.waiters.waiting

    # -- credentials and persons (see _accounts) ---------------------------------------------

    async def create_token(
        self, name: str, *, project: str = "default", approver: str | None = None
    ) -> str:
        return await self.accounts.create_token(name, project=project, approver=approver)

    async def create_user(
        self,
        username: str,
        password: str | None,
        *,
        email: str | None = None,
        slack_user_id: str | None = None,
        projects: Sequence[str] = (),
    ) -> Person:
        """Create a person with an inbox login (or update their password and identities)."""
        return await self.accounts.create_person(
            username,
            password=password,
            emails=[email] if email else [],
            slack_ids=[slack_user_id] if slack_user_id else [],
            projects=projects,
        )

    # -- reading and waiting (the ledger's, as models) ----------------------------------------

    async def get_function_call(
        self, call_id: str, *, project: str | None = None, among: Collection[str] | None = None
    ) -> FunctionCall:
        """``project``: the caller's; without it, the one request of that id (``among``: the
        projects the caller may look in; several fail closed: ``AmbiguousCallIdError``)."""
        return call_from(await self.ledger.read(FUNCTION_CALL, call_id, project, among=among))

    async def get_human_contact(
        self, call_id: str, *, project: str | None = None, among: Collection[str] | None = None
    ) -> HumanContact:
        return contact_from(await self.ledger.read(HUMAN_CONTACT, call_id, project, among=among))

    def call_from_record(self, record: RequestRecord) -> FunctionCall:
        return call_from(record)

    async def get_project(
        self, kind: str, call_id: str, *, among: Collection[str] | None = None
    ) -> str | None:
        """The project of the one request with this call id (of a project in ``among``);
        None if there is none, or several."""
        return await self.ledger.find_project(kind, call_id, among=among)

    async def check_creator(self, kind: str, call_id: str, *, project: str, creator: str) -> None:
        """Refuse (``ForbiddenError``) unless the agent token ``creator`` made this request
        (``NotFoundError`` when there is none): checked before holding a claiming long-poll."""
        check_owner(await self.ledger.read(kind, call_id, project), creator, "claim its execution")

    async def wait_record(
        self,
        kind: str,
        call_id: str,
        timeout: float,
        *,
        project: str | None = None,
        agent: bool = False,
    ) -> RequestRecord:
        """The request once decided, or as it is after ``timeout`` seconds. ``agent``: the
        caller is the agent (noted, so the inbox can tell whether it still waits)."""
        return await self.ledger.wait(kind, call_id, timeout, project, agent=agent)

    async def wait_function_call(
        self, call_id: str, timeout: float, *, project: str | None = None, agent: bool = False
    ) -> FunctionCall:
        """The call once decided, or its current state after ``timeout`` seconds."""
        return call_from(
            await self.ledger.wait(FUNCTION_CALL, call_id, timeout, project, agent=agent)
        )

    async def wait_human_contact(
        self, call_id: str, timeout: float, *, project: str | None = None, agent: bool = False
    ) -> HumanContact:
        return contact_from(
            await self.ledger.wait(HUMAN_CONTACT, call_id, timeout, project, agent=agent)
        )

    def agent_left(self, project: str, kind: str, call_id: str) -> None:
        """The agent's long-poll on this request ended by its connection closing (its process
        ended or it stopped waiting): the inbox says so at once, until it asks again."""
        self.presence.left((project, kind, call_id))

    async def agent_presence(
        self, kind: str, call_id: str, project: str | None = None
    ) -> tuple[str, float | None]:
        """``("waiting", None)`` while the agent holds a long-poll here, ``("waiting", when)``
        while another process notes that it holds one (or it asked recently),
        ``("left", when)`` once its long-poll was dropped by the client (in any process) and
        nothing newer was heard of it, ``("gone", last seen)`` when it has not asked for a while
        or the process holding its long-poll stopped noting it (it may have stopped: the
        decision is kept for when it comes back), ``("unknown", None)`` if it never asked. Without ``project``: the one project with that call id (none or several:
        unknown)."""
        if project is None:
            project = await self.ledger.find_project(kind, call_id)
            if project is None:
                return "unknown", None
        return await self.presence.presence((project, kind, call_id))
