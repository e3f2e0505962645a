"""The approval service: the one place that creates, lists, decides and expires requests, wakes
waiting agents, records the audit trail and tells listeners (webhooks, channels, the inbox).

Decisions are compare-and-set on a version column, so the first answer wins and a request is
decided at most once, whichever process, channel or human answers. Waiting agents are woken by
in-process futures, and across processes by PostgreSQL NOTIFY; nothing polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import uuid
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from functionlayer.models import (
    Execution,
    ExecutionClaim,
    ExecutionReport,
    FunctionCall,
    FunctionCallSpec,
    FunctionCallStatus,
    HumanContact,
    HumanContactStatus,
)

from functionlayer_server import _grants, _schema
from functionlayer_server import _policy as policy
from functionlayer_server._accounts import Accounts
from functionlayer_server._auth import ApiClient
from functionlayer_server._errors import (
    AlreadyDecidedError,
    ConfirmationRequiredError,
    ConflictError,
    ForbiddenError,
    InvalidDecisionError,
    InvalidRequestError,
    NotFoundError,
    RoutingRefusedError,
    ServerError,
)
from functionlayer_server._outbox import outbox_rows, webhook_event
from functionlayer_server._ownership import check_owner
from functionlayer_server._policy import Decision, Directory, Identity, Person
from functionlayer_server._quotas import PendingQuota
from functionlayer_server._scheduler import Clock, JobHandler, Scheduler, SystemClock
from functionlayer_server._settings import Settings
from functionlayer_server._store import (
    AuditRow,
    GrantRow,
    NewJob,
    OutboxRow,
    RequestRecord,
    Store,
)

__all__ = [
    "FUNCTION_CALL",
    "HUMAN_CONTACT",
    "ApprovalService",
    "AuditEntry",
    "EventType",
    "JobPlanner",
    "Listener",
    "ServiceEvent",
]

log = logging.getLogger("functionlayer_server.service")

FUNCTION_CALL = "function_call"
HUMAN_CONTACT = "human_contact"

EventType = Literal["created", "updated", "decided", "executed"]
Request = FunctionCall | HumanContact
_R = TypeVar("_R", FunctionCall, HumanContact)

MAX_CALL_ID_LENGTH = 256
AGENT_SEEN_WRITE_SECONDS = 10.0  # how often an agent's polls of one request are noted, at most
AGENT_SEEN_FLUSH_SECONDS = 1.0  # noted polls are written down together, this often
MAX_TIMEOUT_SECONDS = 10 * 365 * 24 * 3600.0


def _is_name(value: str) -> bool:
    """Identifiers stored in their own columns: 1-256 printable characters (no NUL, which
    PostgreSQL text cannot hold, and no control characters)."""
    return 0 < len(value) <= MAX_CALL_ID_LENGTH and value.isprintable()


def _check_via(via: str) -> None:
    if not _is_name(via):
        raise InvalidRequestError(f"via must be 1-{MAX_CALL_ID_LENGTH} printable characters")


def _non_finite(value: Any) -> bool:
    """True if a NaN, an infinity (or a number too large for JSON, parsed as one) hides in it."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_non_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_non_finite(v) for v in value)
    return False


def _identity(responder: Identity | str) -> Identity:
    """``Identity`` as given, or text such as ``slack:U1``, ``email:a@b``, ``user:alice`` or a
    bare inbox login."""
    if isinstance(responder, Identity):
        return responder.normalized()
    kind, sep, value = responder.partition(":")
    if sep and kind in ("user", "email", "slack", "discord", "teams") and value:
        return Identity(kind, value).normalized()  # type: ignore[arg-type]
    return Identity("user", responder)


def _policy_error(exc: policy.PolicyError) -> ServerError:
    if exc.code == "already_decided":
        return AlreadyDecidedError(exc.message)
    if exc.code == "forbidden":
        return ForbiddenError(exc.message)
    if exc.code == "routing_refused":
        return RoutingRefusedError(exc.message)
    if exc.code == "confirmation_required":
        return ConfirmationRequiredError(exc.message)
    return InvalidDecisionError(exc.message)


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


class AmbiguousCallIdError(NotFoundError):
    """A path that knows no project asked for a call id that several projects use: it is not
    guessed (fail closed)."""


@dataclass(frozen=True)
class AuditEntry:
    """One thing that happened to a request: who did what, when, through which channel."""

    call_id: str
    kind: str
    at: datetime
    who: str
    via: str
    action: str
    """``created``, ``approved``, ``rejected``, ``responded``, ``approval_recorded`` (quorum
    progress), ``expired``, or whatever a channel records (``delivered``, ``escalated``, ...)."""
    details: dict[str, Any] = field(default_factory=dict)
    project: str | None = None
    """The request's project (call ids are unique per project only)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "kind": self.kind,
            "at": self.at.isoformat(),
            "who": self.who,
            "via": self.via,
            "action": self.action,
            "details": self.details,
        }


@dataclass(frozen=True)
class ServiceEvent:
    """Given to listeners: ``created`` (a new request), ``updated`` (quorum progress),
    ``decided`` (approved, rejected, answered or expired) or ``executed`` (the approved call
    ran and the agent reported its outcome, see ``_executions``)."""

    type: EventType
    kind: str
    project: str
    request: Request
    audit: AuditEntry | None = None
    webhook_event_id: str | None = None
    """The id of the webhook event stored with the change (see ``_outbox``); ``None`` when
    no webhook rows were written with it (webhooks off, or an emitter that does not write
    any: the webhook dispatcher then enqueues the event itself, after the fact)."""


Listener = Callable[[ServiceEvent], Awaitable[None] | None]

JobPlanner = Callable[[EventType, str, str, Request, float], Sequence[NewJob]]
"""``planner(event_type, kind, project, request, now)``: the scheduler jobs a change needs
(``request`` of ``project`` as it is after the change, ``now`` its time). Pure: it runs before the change is written, and
its jobs are written with it (see ``ApprovalService.add_job_planner``)."""


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


def _same_request(kind: str, stored_spec: str, spec_json: str) -> bool:
    """Whether a create under an existing call id asks for the same request: the same function
    and arguments (a function call), the same spec (a human contact)."""
    if stored_spec == spec_json:
        return True
    if kind != FUNCTION_CALL:
        return False
    old, new = json.loads(stored_spec), json.loads(spec_json)
    # Compared as canonical JSON: true and 1, or 1 and 1.0, are different arguments.
    return bool(
        old.get("fn") == new.get("fn")
        and _canonical(old.get("kwargs")) == _canonical(new.get("kwargs"))
    )


class ApprovalService:
    """See the module docstring. Create with a store (not yet opened) and settings, then
    ``await service.start()``; ``await service.stop()`` on shutdown."""

    def __init__(self, store: Store, settings: Settings, *, clock: Clock | None = None) -> None:
        self.store = store
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.scheduler = Scheduler(
            store, self.clock, self._expire_due, max_sleep=settings.scheduler_interval_seconds
        )
        self._listeners: list[Listener] = []
        self._planners: list[JobPlanner] = []
        # Keyed by (project, kind, call_id): call ids are unique per project only.
        self._waiters: dict[tuple[str, str, str], list[asyncio.Future[RequestRecord | None]]] = {}
        self.accounts = Accounts(store, self.clock)
        # One agent token cannot fill the inbox for everyone (see _quotas).
        self.pending_quota = PendingQuota(store, settings.max_pending_per_token)
        self._seen: dict[tuple[str, str, str], float] = {}
        self._seen_unwritten: dict[tuple[str, str, str], float] = {}
        self._seen_flush: asyncio.TimerHandle | None = None
        # When an agent's long-poll on a request ended by its connection closing (agent_left).
        self._left: dict[tuple[str, str, str], float] = {}
        self.rules: policy.OperatorPolicy = settings.operator_policy()
        self._changes = 0
        self._change_event = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = False
        self._stopping = False

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self, *, scheduler: bool = True) -> None:
        await self.store.open()
        await self.store.listen(self._on_notify)
        if scheduler:
            self.scheduler.start()
        self._started = True

    async def stop(self) -> None:
        self._stopping = True
        await self.scheduler.stop()
        if self._seen_flush is not None:
            self._seen_flush.cancel()
            self._seen_flush = None
        await self._write_seen()  # what is left (it logs its own failure)
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for futures in self._waiters.values():
            for fut in futures:
                if not fut.done():
                    fut.set_result(None)
        self._waiters.clear()
        await self.store.close()
        self._started = False
        self._stopping = False

    # -- listeners --------------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> None:
        """``listener(event)`` (sync or async) runs after each change, off the request path;
        its exceptions are logged and never reach the caller. It runs after the commit, so a
        crash may skip it: work a change must not lose is planned (``add_job_planner``)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def _emit(
        self,
        event_type: EventType,
        record: RequestRecord,
        audit: AuditRow,
        webhook_event_id: str | None,
        request: Request | None = None,
    ) -> None:
        """Tell the listeners about ``record`` as it is after a change (``request``: its model,
        if the caller has it). Nothing is built when nobody listens (a hot path). One task per
        event, listeners in order: they should return quickly and leave long work to their
        own tasks or to scheduled jobs."""
        if not self._listeners:
            return
        event = ServiceEvent(
            type=event_type,
            kind=record.kind,
            project=record.project,
            request=request if request is not None else self._model(record),
            audit=self._entry(audit),
            webhook_event_id=webhook_event_id,
        )
        self._spawn(self._call_listeners(list(self._listeners), event))

    async def _call_listeners(self, listeners: list[Listener], event: ServiceEvent) -> None:
        for listener in listeners:
            try:
                result = listener(event)
                if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                    await result
            except Exception:
                log.exception(
                    "listener %r failed on %s %s", listener, event.type, event.request.call_id
                )

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- scheduling -------------------------------------------------------------------------

    def add_job_planner(self, planner: JobPlanner) -> None:
        """Have ``planner`` say which jobs each change needs (the channels' deliveries and
        updates). They are written in the change's own transaction: a change committed is a
        change whose jobs are stored, whatever happens to this process right after."""
        self._planners.append(planner)

    def _jobs(
        self, event_type: EventType, record: RequestRecord, now: float
    ) -> tuple[list[NewJob], Request | None]:
        """The jobs the planners want for ``record`` as it is after a change, and its model
        (built only when someone plans: reused for the listeners)."""
        if not self._planners:
            return [], None
        request = self._model(record)
        jobs: list[NewJob] = []
        for planner in self._planners:
            jobs.extend(planner(event_type, record.kind, record.project, request, now))
        return jobs, request

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

    # -- change notification ----------------------------------------------------------------

    def _bump(self) -> None:
        self._changes += 1
        event, self._change_event = self._change_event, asyncio.Event()
        event.set()

    def _wake(
        self, project: str, kind: str, call_id: str, record: RequestRecord | None = None
    ) -> None:
        """Release the long-polls on this request, handing them the new record if known."""
        for fut in self._waiters.pop((project, kind, call_id), ()):
            if not fut.done():
                fut.set_result(record)

    def _on_notify(self, payload: str) -> None:
        """A change made by another server process (PostgreSQL NOTIFY), or this process's own
        notification coming back. Only a decision releases long-polls: waking them on a
        ``created`` or ``updated`` (quorum progress) notification made them answer early with a
        stale "pending"."""
        if payload == "*":
            for key in list(self._waiters):
                self._wake(*key)
        else:
            with contextlib.suppress(ValueError, TypeError):
                event, kind, project, call_id = json.loads(payload)
                if event == "decided":
                    self._wake(str(project), str(kind), str(call_id))
        self._bump()

    @staticmethod
    def _notice(event: str, record: RequestRecord) -> str:
        """The NOTIFY payload telling other processes about a change to ``record``."""
        return json.dumps([event, record.kind, record.project, record.call_id])

    @property
    def change_counter(self) -> int:
        return self._changes

    async def wait_for_change(self, since: int, timeout: float) -> int:
        """Return the global change counter once it differs from ``since`` (or after
        ``timeout`` seconds). Any create/decide/expire, in any process, counts."""
        if self._changes != since:
            return self._changes
        event = self._change_event
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout=max(timeout, 0.0))
        return self._changes

    # -- credentials and persons (see _accounts) ---------------------------------------------

    async def create_token(
        self, name: str, *, project: str = "default", approver: str | None = None
    ) -> str:
        return await self.accounts.create_token(name, project=project, approver=approver)

    async def authenticate_token(self, token: str) -> ApiClient | None:
        return await self.accounts.authenticate_token(token)

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

    async def get_person(self, name: str) -> Person | None:
        return await self.accounts.get_person(name)

    async def list_persons(self) -> list[Person]:
        return await self.accounts.list_persons()

    # -- who may see and decide (rules in _policy) ------------------------------------------

    async def _directory(
        self, spec: Any, project: str, extra: Sequence[Identity] = ()
    ) -> Directory:
        rules = self.rules.for_project(project)
        texts: list[str] = list(rules.deciders or ())
        rule = rules.functions.get(getattr(spec, "fn", "")) if hasattr(spec, "fn") else None
        if rule is not None and rule.responders:
            texts.extend(rule.responders)
        if spec.policy is not None and spec.policy.responders:
            texts.extend(spec.policy.responders)
        for op_rule in rules.rules:  # routing rules' responders (whatever their conditions)
            if op_rule.responders and op_rule.fn == getattr(spec, "fn", None):
                texts.extend(op_rule.responders)
        identities = list(policy.routing_identities(spec)) + list(extra)
        for channel in policy.channels_of(spec):
            if channel.slack is not None:
                identities.append(Identity("slack", channel.slack.channel_or_user_id))
        return await self.accounts.directory_for(texts, identities)

    async def _effective(
        self, request: Request, project: str, extra: Sequence[Identity] = ()
    ) -> tuple[policy.Effective, Directory]:
        directory = await self._directory(request.spec, project, extra)
        fn = request.spec.fn if isinstance(request, FunctionCall) else None
        effective = policy.effective_policy(
            request.spec, self.rules.for_project(project), directory, fn=fn
        )
        return effective, directory

    async def may_see(self, request: Request, person: Person, project: str) -> bool:
        effective, directory = await self._effective(
            request, project, [Identity("user", person.name)]
        )
        return policy.may_see(request, project, person, effective, directory)

    async def irreversible(self, request: Request, project: str) -> bool:
        """Whether approving takes the deliberate second step (the agent's mark or the
        operator's policy): channels ask before offering Approve."""
        if not isinstance(request, FunctionCall):
            return False
        effective, _ = await self._effective(request, project)
        return effective.irreversible

    async def approvals_required(self, request: Request, project: str) -> int:
        effective, _ = await self._effective(request, project)
        return effective.approvals_required

    # -- records <-> models -----------------------------------------------------------------

    @classmethod
    def _call_from(cls, record: RequestRecord) -> FunctionCall:
        return FunctionCall.model_validate_json(record.to_json())

    @classmethod
    def _contact_from(cls, record: RequestRecord) -> HumanContact:
        return HumanContact.model_validate_json(record.to_json())

    def _model(self, record: RequestRecord) -> Request:
        return (
            self._call_from(record) if record.kind == FUNCTION_CALL else self._contact_from(record)
        )

    # -- creating ---------------------------------------------------------------------------

    async def create_function_call(
        self,
        call: FunctionCall,
        *,
        project: str = "default",
        actor: str = "api",
        via: str = "api",
        created_by: str = "",
    ) -> tuple[FunctionCall, bool]:
        """Store a new request (the status the caller sent is ignored: the server owns it).
        Idempotent per call id; returns the stored call and whether it was created now.
        A request routed outside the operator's rules is refused (``RoutingRefusedError``)
        before anything is stored or sent."""
        record, created = await self.create_record(
            FUNCTION_CALL, call, project=project, actor=actor, via=via, created_by=created_by
        )
        model = self._call_from(record)
        return model, created

    async def create_human_contact(
        self,
        contact: HumanContact,
        *,
        project: str = "default",
        actor: str = "api",
        via: str = "api",
        created_by: str = "",
    ) -> tuple[HumanContact, bool]:
        record, created = await self.create_record(
            HUMAN_CONTACT, contact, project=project, actor=actor, via=via, created_by=created_by
        )
        return self._contact_from(record), created

    async def create_record(
        self,
        kind: str,
        request: Request,
        *,
        project: str = "default",
        actor: str = "api",
        via: str = "api",
        created_by: str = "",
        created_by_token: str = "",
    ) -> tuple[RequestRecord, bool]:
        """``create_function_call`` / ``create_human_contact`` answering with the stored record
        (the API renders its JSON with ``RequestRecord.to_json``, without a model round trip)."""
        call_id = request.call_id
        if (
            not call_id
            or len(call_id) > MAX_CALL_ID_LENGTH
            or "/" in call_id
            or not call_id.isprintable()
        ):
            raise InvalidRequestError(
                f"call_id must be 1-{MAX_CALL_ID_LENGTH} printable characters without '/'"
            )
        if not _is_name(request.run_id):
            raise InvalidRequestError(f"run_id must be 1-{MAX_CALL_ID_LENGTH} printable characters")
        spec = request.spec
        if _non_finite(getattr(spec, "kwargs", None)) or _non_finite(spec.state):
            # JSON has no NaN or Infinity: stored, they would silently become null, and the
            # human would approve arguments other than the ones that run.
            raise InvalidRequestError(
                "arguments must be JSON numbers: NaN, Infinity and numbers too large for JSON "
                "are refused"
            )
        if isinstance(spec, FunctionCallSpec):
            try:
                _schema.check_schema(spec)
            except _schema.SchemaProblem as exc:
                raise InvalidRequestError(exc.message) from None
            self._check_group_id(spec)
        if spec.timeout_seconds is not None and spec.timeout_seconds > MAX_TIMEOUT_SECONDS:
            raise InvalidRequestError(
                f"timeout_seconds must be at most {MAX_TIMEOUT_SECONDS:.0f} seconds (ten years); omit it for no expiry"
            )
        escalate = spec.policy.escalate_after_seconds if spec.policy is not None else None
        if escalate is not None and not 0 < escalate <= MAX_TIMEOUT_SECONDS:
            raise InvalidRequestError(
                "policy.escalate_after_seconds must be a positive number of seconds"
            )
        if spec.policy is not None and spec.policy.mode == "escalate":
            if not spec.policy.channels:
                raise InvalidRequestError(
                    "policy.mode 'escalate' needs at least one entry in policy.channels"
                )
            if escalate is None:  # would silently never escalate
                raise InvalidRequestError(
                    "policy.mode 'escalate' needs policy.escalate_after_seconds"
                )
        rules = self.rules.for_project(project)
        if policy.channels_of(spec) or (spec.policy is not None and spec.policy.responders):
            try:
                policy.check_routing(spec, project, rules, await self._directory(spec, project))
            except policy.PolicyError as exc:
                raise _policy_error(exc) from None
        now = self.clock.now()
        timeout = spec.timeout_seconds
        if timeout is None:
            timeout = rules.default_timeout_seconds
        expires_at = now + timeout if timeout is not None else None
        status: FunctionCallStatus | HumanContactStatus
        if kind == FUNCTION_CALL:
            status = FunctionCallStatus(
                requested_at=_dt(now), expires_at=_dt(expires_at) if expires_at else None
            )
        else:
            status = HumanContactStatus(
                requested_at=_dt(now), expires_at=_dt(expires_at) if expires_at else None
            )
        # Stored in the order the agent sent (signature order, which every channel shows);
        # a retry is the same request if it is equal as JSON, whatever its key order.
        spec_data = spec.model_dump(mode="json")
        spec_json = json.dumps(spec_data, separators=(",", ":"), default=str)
        record = RequestRecord(
            kind=kind,
            call_id=call_id,
            project=project,
            run_id=request.run_id,
            spec=spec_json,
            status=status.model_dump_json(),
            completed=False,
            expires_at=expires_at,
            created_at=now,
            version=0,
            created_by=created_by,
            created_by_token=created_by_token,
        )
        audit = AuditRow(
            kind=kind,
            call_id=call_id,
            at=now,
            actor=actor,
            via=via,
            action="created",
            details={"project": project, "run_id": request.run_id},
            project=project,
        )
        if kind == FUNCTION_CALL and isinstance(request, FunctionCall):
            # An operator rule or a person's live grant may decide it now (see _grants).
            decided = await self._decide_at_creation(record, request, audit)
            if decided is not None:
                return decided, True
        outbox, event_id = self._outbox("created", record, audit)
        jobs, model = self._jobs("created", record, now)
        # Call ids are unique per project: another project's request under the same id is
        # another request (nothing about it is seen, nothing of it is reused).
        async with self.pending_quota.creating(
            kind, call_id, project, created_by_token, created_by
        ):
            stored, created = await self.store.insert_request(
                record,
                audit,
                notify=self._notice("created", record),
                outbox=outbox,
                jobs=jobs,
            )
        if not created:
            if not _same_request(kind, stored.spec, spec_json):
                raise ConflictError(
                    f"a different request already exists under call_id {call_id!r} "
                    "(same call id, different function or arguments)"
                )
            if stored.run_id != request.run_id:
                # A request is its call id, function and arguments: a restarted agent (a new
                # run id) resumes it, pending or decided. The stored run id stays.
                await self.store.add_audit(
                    AuditRow(
                        kind=kind,
                        call_id=call_id,
                        at=now,
                        actor=actor,
                        via=via,
                        action="resumed",
                        details={"run_id": request.run_id, "original_run_id": stored.run_id},
                        project=project,
                    )
                )
            stored = await self._expire_if_due(stored)
            return stored, False
        self._bump()
        if expires_at is not None or jobs:
            self.scheduler.wake()
        self._emit("created", stored, audit, event_id, model)
        return stored, True

    # -- reading ----------------------------------------------------------------------------

    async def _record(
        self,
        kind: str,
        call_id: str,
        project: str | None,
        *,
        among: Collection[str] | None = None,
    ) -> RequestRecord:
        """The request with this call id in ``project``. Call ids are unique per project only:
        without a project, the one request of that id (of a project in ``among``, if given);
        several fail closed (``AmbiguousCallIdError``), none is ``NotFoundError``."""
        noun = "function call" if kind == FUNCTION_CALL else "human contact"
        if project is not None:
            record = await self.store.get_request(kind, call_id, project)
        else:
            found = [
                r
                for r in await self.store.find_requests(kind, call_id)
                if among is None or r.project in among
            ]
            if len(found) > 1:
                raise AmbiguousCallIdError(
                    f"call_id {call_id!r} names a {noun} in several projects and this request "
                    "does not say which; nothing was done (open it from its project)"
                )
            record = found[0] if found else None
        if record is None:
            raise NotFoundError(f"no {noun} with call_id {call_id!r}")
        return await self._expire_if_due(record)

    async def _expire_if_due(self, record: RequestRecord) -> RequestRecord:
        """Past its deadline counts as expired even if the scheduler has not run yet."""
        if record.completed or record.expires_at is None or record.expires_at > self.clock.now():
            return record
        await self.expire(record.kind, record.call_id, project=record.project)
        fresh = await self.store.get_request(record.kind, record.call_id, record.project)
        assert fresh is not None
        return fresh

    async def get_function_call(
        self, call_id: str, *, project: str | None = None, among: Collection[str] | None = None
    ) -> FunctionCall:
        """``project``: the caller's; without it, see ``_record`` (``among``: the projects the
        caller may look in)."""
        return self._call_from(await self._record(FUNCTION_CALL, call_id, project, among=among))

    async def check_creator(self, kind: str, call_id: str, *, project: str, creator: str) -> None:
        """Refuse (``ForbiddenError``) unless the agent token ``creator`` made this request
        (``NotFoundError`` when there is none): checked before holding a claiming long-poll."""
        check_owner(await self._record(kind, call_id, project), creator, "claim its execution")

    def call_from_record(self, record: RequestRecord) -> FunctionCall:
        return self._call_from(record)

    async def get_human_contact(
        self, call_id: str, *, project: str | None = None, among: Collection[str] | None = None
    ) -> HumanContact:
        return self._contact_from(await self._record(HUMAN_CONTACT, call_id, project, among=among))

    async def requested_by(
        self, kind: str, call_id: str, *, among: Collection[str]
    ) -> tuple[str, str] | None:
        """The name of the agent token that created the one request with this call id (of a
        project in ``among``) and its project, for the people deciding it (a label: names are
        never ownership, see ``created_by_token``); None if there is none, or several."""
        found = [r for r in await self.store.find_requests(kind, call_id) if r.project in among]
        if len(found) != 1:
            return None
        return found[0].created_by, found[0].project

    async def get_project(
        self, kind: str, call_id: str, *, among: Collection[str] | None = None
    ) -> str | None:
        """The project of the one request with this call id (of a project in ``among``);
        None if there is none, or several."""
        found = [
            r
            for r in await self.store.find_requests(kind, call_id)
            if among is None or r.project in among
        ]
        return found[0].project if len(found) == 1 else None

    async def _wait(
        self, kind: str, call_id: str, timeout: float, project: str | None, *, agent: bool
    ) -> RequestRecord:
        """The record once decided, or as it is when ``timeout`` seconds have passed: never
        earlier with a stale "pending" (a wake-up that finds it still pending waits on).
        ``agent``: note the poll, once the request was found (in the caller's project)."""
        if timeout <= 0 or project is None:
            record = await self._record(kind, call_id, project)
            if agent:
                self._agent_seen(record)
                agent = False
            if timeout <= 0:
                return record
            project = record.project
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        key = (project, kind, call_id)
        while True:
            fut: asyncio.Future[RequestRecord | None] = loop.create_future()
            # Registered before the read: a decision committed after the read wakes ``fut``,
            # one committed before it is in the record. One read per round.
            self._waiters.setdefault(key, []).append(fut)
            try:
                record = await self._record(kind, call_id, project)
                if agent:
                    self._agent_seen(record)
                    agent = False
                if record.completed or self._stopping:
                    return record
                await asyncio.wait({fut}, timeout=max(deadline - loop.time(), 0.0))
            finally:
                waiters = self._waiters.get(key)
                if waiters is not None:
                    with contextlib.suppress(ValueError):
                        waiters.remove(fut)
                    if not waiters:
                        self._waiters.pop(key, None)
            if fut.done() and not fut.cancelled():
                decided = fut.result()
                if decided is not None:
                    return decided
            if self._stopping:  # shutting down: answer with what we know, the store is closing
                return record
            if loop.time() >= deadline:
                return await self._record(kind, call_id, project)

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
        return await self._wait(kind, call_id, timeout, project, agent=agent)

    async def wait_function_call(
        self, call_id: str, timeout: float, *, project: str | None = None, agent: bool = False
    ) -> FunctionCall:
        """The call once decided, or its current state after ``timeout`` seconds. ``agent``:
        the caller is the agent (noted, so the inbox can tell whether it still waits)."""
        return self._call_from(
            await self.wait_record(FUNCTION_CALL, call_id, timeout, project=project, agent=agent)
        )

    async def wait_human_contact(
        self, call_id: str, timeout: float, *, project: str | None = None, agent: bool = False
    ) -> HumanContact:
        return self._contact_from(
            await self.wait_record(HUMAN_CONTACT, call_id, timeout, project=project, agent=agent)
        )

    def _agent_seen(self, record: RequestRecord) -> None:
        """Note the agent's poll of ``record`` (found in its project). Written down in batches
        (one transaction a second at most, not one per poll: it is on the long-poll's path);
        ``agent_presence`` reads both."""
        now = self.clock.now()
        key = (record.project, record.kind, record.call_id)
        self._left.pop(key, None)
        if now - self._seen.get(key, 0.0) >= AGENT_SEEN_WRITE_SECONDS:
            self._seen[key] = now
            if len(self._seen) > 50_000:
                self._seen.clear()
            self._seen_unwritten[key] = now
            if self._seen_flush is None and not self._stopping:
                self._seen_flush = asyncio.get_running_loop().call_later(
                    AGENT_SEEN_FLUSH_SECONDS, self._spawn_write_seen
                )

    def _spawn_write_seen(self) -> None:
        self._seen_flush = None
        self._spawn(self._write_seen())

    async def _write_seen(self) -> None:
        batch, self._seen_unwritten = self._seen_unwritten, {}
        if not batch:
            return
        try:
            # One time for the batch (the latest poll): "last asked" is kept to the second.
            await self.store.touch_agents(list(batch), max(batch.values()))
        except Exception:
            log.warning("could not note %d agent polls", len(batch), exc_info=True)

    def agent_left(self, project: str, kind: str, call_id: str) -> None:
        """The agent's long-poll on this request ended by its connection closing (its process
        ended or it stopped waiting): the inbox says so at once, until it asks again."""
        if len(self._left) > 50_000:
            self._left.clear()
        self._left[(project, kind, call_id)] = self.clock.now()

    async def agent_presence(
        self, kind: str, call_id: str, project: str | None = None
    ) -> tuple[str, float | None]:
        """``("waiting", None)`` while the agent holds a long-poll here (or asked recently),
        ``("left", when)`` once its long-poll here was dropped by the client and nothing newer
        was heard of it, ``("gone", last seen)`` when it has not asked for a while (it may have
        stopped: the decision is kept for when it comes back), ``("unknown", None)`` if it
        never asked. Without ``project``: the one project with that call id (none or several:
        unknown)."""
        if project is None:
            project = await self.get_project(kind, call_id)
            if project is None:
                return "unknown", None
        key = (project, kind, call_id)
        if self._waiters.get(key):
            return "waiting", None
        unwritten = self._seen_unwritten.get(key)
        seen = (
            unwritten
            if unwritten is not None
            else await self.store.agent_seen_at(kind, call_id, project)
        )
        left = self._left.get(key)
        if left is not None and (seen is None or seen <= left):
            return "left", left  # another process may have heard it since: only if noted later
        if seen is None:
            return "unknown", None
        recent = self.settings.long_poll_max_seconds + AGENT_SEEN_WRITE_SECONDS + 30
        return ("waiting", seen) if self.clock.now() - seen <= recent else ("gone", seen)

    @property
    def waiting(self) -> int:
        """How many long-polls are open in this process."""
        return sum(len(v) for v in self._waiters.values())

    async def _list(
        self,
        kind: str,
        *,
        pending: bool | None,
        visible_to: Person | None,
        project: str | None,
        run_id: str | None,
        limit: int,
        offset: int = 0,
        every: bool = False,
    ) -> tuple[list[RequestRecord], int]:
        """A page of records, newest first, and how many match in all (``every``: all of them,
        no page). For a person: every request of their projects the policy lets them see
        (pending ones without any cap; decided ones from the most recent history)."""
        limit = max(1, min(limit, 1000))
        offset = max(0, offset)
        if visible_to is None:
            records = await self.store.list_requests(
                kind, project=project, pending=pending, run_id=run_id, limit=offset + limit
            )
        else:
            projects = sorted(visible_to.projects) if project is None else [project]
            bound = 1_000_000 if pending is True else (offset + limit) * 10
            records = []
            for proj in projects:
                records.extend(
                    await self.store.list_requests(
                        kind, project=proj, pending=pending, run_id=run_id, limit=bound
                    )
                )
            records.sort(key=lambda r: (-r.created_at, r.call_id))
        now = self.clock.now()
        result: list[RequestRecord] = []
        for record in records:
            if not record.completed and record.expires_at is not None and record.expires_at <= now:
                record = await self._expire_if_due(record)
                if pending is True:
                    continue
            if visible_to is not None and not await self.may_see(
                self._model(record), visible_to, record.project
            ):
                continue
            result.append(record)
        if every:
            return result, len(result)
        return result[offset : offset + limit], len(result)

    async def list_function_calls(
        self,
        *,
        pending: bool | None = None,
        visible_to: Person | None = None,
        project: str | None = None,
        run_id: str | None = None,
        limit: int = 200,
        offset: int = 0,
    ) -> list[FunctionCall]:
        """Newest first."""
        records, _ = await self._list(
            FUNCTION_CALL,
            pending=pending,
            visible_to=visible_to,
            project=project,
            run_id=run_id,
            limit=limit,
            offset=offset,
        )
        return [self._call_from(r) for r in records]

    async def list_human_contacts(
        self,
        *,
        pending: bool | None = None,
        visible_to: Person | None = None,
        project: str | None = None,
        run_id: str | None = None,
        limit: int = 200,
        offset: int = 0,
    ) -> list[HumanContact]:
        records, _ = await self._list(
            HUMAN_CONTACT,
            pending=pending,
            visible_to=visible_to,
            project=project,
            run_id=run_id,
            limit=limit,
            offset=offset,
        )
        return [self._contact_from(r) for r in records]

    async def inbox_page(
        self, kind: str, person: Person, *, pending: bool, limit: int, offset: int = 0
    ) -> tuple[list[Request], int]:
        """One page of what ``person`` may see, and the total (the inbox pages; nothing is
        silently dropped)."""
        records, total = await self._list(
            kind,
            pending=pending,
            visible_to=person,
            project=None,
            run_id=None,
            limit=limit,
            offset=offset,
        )
        return [self._model(r) for r in records], total

    async def inbox_pending(self, kind: str, person: Person) -> list[Request]:
        """Every pending request ``person`` may see, newest first, in one pass (the inbox
        sorts and pages them itself; how many there are is bounded by the agent tokens'
        pending quotas)."""
        records, _ = await self._list(
            kind,
            pending=True,
            visible_to=person,
            project=None,
            run_id=None,
            limit=1,
            every=True,
        )
        return [self._model(r) for r in records]

    # -- deciding ---------------------------------------------------------------------------

    async def _decider(
        self,
        request: Request,
        record: RequestRecord,
        responder: Identity | str,
        via_identities: Sequence[Identity] | None,
        via: str,
    ) -> tuple[Person, policy.Effective]:
        identity = _identity(responder)
        effective, directory = await self._effective(request, record.project, [identity])
        person = directory.resolve(identity)
        try:
            policy.may_decide(
                request,
                record.project,
                person,
                effective,
                directory,
                via_identities=[i.normalized() for i in via_identities]
                if via_identities is not None
                else None,
            )
        except policy.PolicyError as exc:
            await self._refused(record, str(identity), exc.message, via)
            raise _policy_error(exc) from None
        assert person is not None
        return person, effective

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
        _check_via(via)
        record = await self._decision_record(kind, call_id, None, responder)
        person, _ = await self._decider(self._model(record), record, responder, via_identities, via)
        return person

    async def _decision_record(
        self, kind: str, call_id: str, project: str | None, responder: Identity | str
    ) -> RequestRecord:
        """The request a person decides. A channel that knows no project finds it by call id
        among the projects the person belongs to (the only ones they may decide in): if that
        leaves several, nothing is decided (``AmbiguousCallIdError``)."""
        if project is not None:
            return await self._record(kind, call_id, project)
        try:
            return await self._record(kind, call_id, None)
        except AmbiguousCallIdError:
            person = await self.accounts.resolve(_identity(responder))
            among = person.projects if person is not None else frozenset()
            return await self._record(kind, call_id, None, among=among)

    async def _refused(self, record: RequestRecord, who: str, reason: str, via: str) -> None:
        await self.store.add_audit(
            AuditRow(
                kind=record.kind,
                call_id=record.call_id,
                at=self.clock.now(),
                actor=who,
                via=via,
                action="refused",
                details={"reason": reason},
                project=record.project,
            )
        )

    async def respond_function_call(
        self,
        call_id: str,
        decision: FunctionCallStatus | Decision,
        *,
        responder: Identity | str,
        via: str,
        project: str | None = None,
        via_identities: Sequence[Identity] | None = None,
    ) -> FunctionCall:
        """A person's decision; see ``decide_function_call`` (which answers with the record)."""
        return self._call_from(
            await self.decide_function_call(
                call_id,
                decision,
                responder=responder,
                via=via,
                project=project,
                via_identities=via_identities,
            )
        )

    async def decide_function_call(
        self,
        call_id: str,
        decision: FunctionCallStatus | Decision,
        *,
        responder: Identity | str,
        via: str,
        project: str | None = None,
        via_identities: Sequence[Identity] | None = None,
    ) -> RequestRecord:
        """A person's decision: approve, reject, approve with edits, or answer instead.

        ``responder`` is how the channel knows them (an :class:`Identity`, or text such as
        ``slack:U1``/``email:a@b``/an inbox login); it must resolve to a person of the
        directory allowed by the policy (``_policy``), else ``ForbiddenError``. The record says
        that person's name and ``via``, whatever the request body claimed. Quorum counts
        distinct persons; any rejection rejects at once.
        """
        _check_via(via)
        wanted = decision if isinstance(decision, Decision) else Decision.from_status(decision)
        for _ in range(20):  # retries only when a concurrent quorum approval won the race
            record = await self._decision_record(FUNCTION_CALL, call_id, project, responder)
            call = self._call_from(record)
            # Who is asking first: someone who may not decide learns nothing (not even that,
            # or by whom, it was decided).
            person, effective = await self._decider(call, record, responder, via_identities, via)
            await _check_edits_off_loop(call, wanted)
            try:
                change = policy.apply_decision(call, effective, person, wanted)
            except policy.PolicyError as exc:
                raise _policy_error(exc) from None
            status = change.status
            assert isinstance(status, FunctionCallStatus)
            now = self.clock.now()
            if change.completed:
                status.responded_at = _dt(now)
                status.responded_by = person.name
                status.responded_via = via
            audit = AuditRow(
                kind=FUNCTION_CALL,
                call_id=call_id,
                at=now,
                actor=person.name,
                via=via,
                action=change.action,
                details={**change.details, "identity": str(_identity(responder))},
                project=record.project,
            )
            changed = await self._commit(record, status.model_dump_json(), change.completed, audit)
            if changed:
                return changed
        raise AlreadyDecidedError(f"function call {call_id!r} kept changing; try again")

    async def respond_human_contact(
        self,
        call_id: str,
        *,
        response: str | None,
        response_option_name: str | None = None,
        responder: Identity | str,
        via: str,
        project: str | None = None,
        via_identities: Sequence[Identity] | None = None,
    ) -> HumanContact:
        """A person's answer to a human contact (same authority rules as decisions)."""
        _check_via(via)
        record = await self._decision_record(HUMAN_CONTACT, call_id, project, responder)
        contact = self._contact_from(record)
        person, _ = await self._decider(contact, record, responder, via_identities, via)
        try:
            change = policy.answer_contact(contact, response, response_option_name)
        except policy.PolicyError as exc:
            raise _policy_error(exc) from None
        now = self.clock.now()
        status = change.status
        assert isinstance(status, HumanContactStatus)
        status.responded_at = _dt(now)
        status.responded_by = person.name
        status.responded_via = via
        audit = AuditRow(
            kind=HUMAN_CONTACT,
            call_id=call_id,
            at=now,
            actor=person.name,
            via=via,
            action=change.action,
            details={**change.details, "identity": str(_identity(responder))},
            project=record.project,
        )
        changed = await self._commit(record, status.model_dump_json(), True, audit)
        if changed is None:
            raise AlreadyDecidedError(
                policy.decided_message(
                    await self.get_human_contact(call_id, project=record.project)
                )
            )
        return self._contact_from(changed)

    async def give_up(self, kind: str, call_id: str, client: ApiClient, reason: str) -> bool:
        """An agent stops waiting: only the token that created the request may expire it, and
        expiry is always a rejection (fail closed)."""
        record = await self._record(kind, call_id, client.project)
        check_owner(record, client.token_id, "give it up; agent tokens cannot decide")
        return await self.expire(
            kind,
            call_id,
            project=record.project,
            reason=reason,
            force=True,
            actor=f"agent:{client.token_name}",
            via="api",
        )

    async def abandon(self, kind: str, call_id: str, client: ApiClient) -> RequestRecord:
        """The agent stopped waiting (Ctrl-C, its program ending): only the token that created
        the request may say so. A pending request is expired for good with ``abandoned_at``
        set, audited ``abandoned``: nobody can approve it any more and nothing runs. One already
        abandoned is returned as it is (a retry); any other decided request stays decided
        (``AlreadyDecidedError``: abandoning never un-decides)."""
        record = await self._record(kind, call_id, client.project)
        check_owner(record, client.token_id, "abandon it; agent tokens cannot decide")
        if not record.completed:
            at = _dt(self.clock.now())
            await self.expire(
                kind,
                call_id,
                project=record.project,
                reason=(
                    f"The agent stopped waiting at {at:%Y-%m-%d %H:%M:%S} UTC (it was "
                    "interrupted or ended), so nothing was approved and nothing runs."
                ),
                force=True,
                actor=f"agent:{client.token_name}",
                via="api",
                abandoned=True,
            )
            fresh = await self.store.get_request(kind, call_id, record.project)
            assert fresh is not None
            record = fresh
        if json.loads(record.status).get("abandoned_at"):
            return record
        raise AlreadyDecidedError(policy.decided_message(self._model(record)))

    async def _expire_due(self, kind: str, call_id: str, project: str) -> bool:
        return await self.expire(kind, call_id, project=project)

    async def expire(
        self,
        kind: str,
        call_id: str,
        *,
        project: str | None = None,
        reason: str | None = None,
        force: bool = False,
        actor: str = "functionlayer-server",
        via: str = "scheduler",
        abandoned: bool = False,
    ) -> bool:
        """Fail closed: a pending request past its deadline (or any pending one with
        ``force``, when the agent gives up waiting) becomes a rejection (function call) or an
        unanswered, expired contact (``abandoned``: marked ``abandoned_at``, audited
        ``abandoned``). False if it was already decided or is not due.
        Without ``project``: the one request with that call id (none or several: False)."""
        _check_via(via)
        if project is None:
            project = await self.get_project(kind, call_id)
            if project is None:
                return False
        for _ in range(5):
            record = await self.store.get_request(kind, call_id, project)
            if record is None or record.completed:
                return False
            now = self.clock.now()
            if not force and (record.expires_at is None or record.expires_at > now):
                return False
            if reason is None:
                seconds = json.loads(record.spec).get("timeout_seconds")
                reason = (
                    f"Request expired: nobody answered within {seconds:g} seconds, so the call was not approved."
                    if isinstance(seconds, int | float)
                    else "Request expired: nobody answered before the deadline, so the call was not approved."
                )
            status: FunctionCallStatus | HumanContactStatus
            if kind == FUNCTION_CALL:
                status = FunctionCallStatus.model_validate_json(record.status)
                status.approved = False
                status.comment = reason
            else:
                status = HumanContactStatus.model_validate_json(record.status)
            status.expired = True
            status.responded_at = _dt(now)
            status.responded_by = actor
            status.responded_via = via
            if abandoned:
                status.abandoned_at = _dt(now)
            audit = AuditRow(
                kind=kind,
                call_id=call_id,
                at=now,
                actor=actor,
                via=via,
                action="abandoned" if abandoned else "expired",
                details={"reason": reason},
                project=project,
            )
            if await self._commit(record, status.model_dump_json(), True, audit) is not None:
                return True
        return False

    async def _commit(
        self, record: RequestRecord, status: str, completed: bool, audit: AuditRow
    ) -> RequestRecord | None:
        """Compare-and-set (with the change's webhook rows and jobs); on success wake waiters,
        tell listeners and return the new record."""
        event_type: EventType = "decided" if completed else "updated"
        new = record.changed(status, completed=completed)
        outbox, event_id = self._outbox(event_type, new, audit)
        jobs, model = self._jobs(event_type, new, audit.at)
        ok = await self.store.update_request(
            record.kind,
            record.call_id,
            project=record.project,
            status=status,
            completed=completed,
            expected_version=record.version,
            audit=audit,
            notify=self._notice(event_type, record),
            outbox=outbox,
            jobs=jobs,
        )
        if not ok:
            return None
        if completed:
            self._wake(record.project, record.kind, record.call_id, new)
        self._bump()
        if jobs:
            self.scheduler.wake()
        self._emit(event_type, new, audit, event_id, model)
        return new

    def _outbox(
        self, event_type: str, record: RequestRecord, audit: AuditRow
    ) -> tuple[list[OutboxRow], str | None]:
        """The webhook rows announcing ``event_type`` (any service event type) for ``record``
        as it is after the change, and their event id; none when webhooks are off or the
        type is silent. Give the rows to the store write that makes the change (one
        transaction: announced if and only if committed) and the id to the ``ServiceEvent``.
        """
        urls = self.settings.webhook_urls
        name = webhook_event(event_type, audit.action) if urls else None
        if name is None:
            return [], None
        rows = outbox_rows(
            urls,
            event=name,
            kind=record.kind,
            project=record.project,
            request=self._model(record).model_dump(mode="json"),
            action=audit.action,
            now=audit.at,
        )
        return rows, rows[0].event_id

    # -- review groups (a model turn's calls, reviewed on one page) ----------------------------
    #
    # ``spec.group_id`` is agent-supplied and inert: it only puts calls on one page. A group is
    # keyed by (project, creating token id, group id), so an agent can only add calls to its own
    # groups, and the same id used by another agent (or project) is another group. Each call is
    # still its own request, decided (with its own claim and audit) through
    # ``decide_function_call``; a page decides only the calls it showed.

    MAX_GROUP_SCAN = 2000
    """How many of the project's newest function calls a group lookup reads."""
    MAX_GROUP_SIZE = 50
    """At most this many calls are shown (and decidable) on one group page."""

    @staticmethod
    def _check_group_id(spec: FunctionCallSpec) -> None:
        group = spec.group_id
        if group is not None and not (0 < len(group) <= 128 and group.isprintable()):
            raise InvalidRequestError("group_id must be 1-128 printable characters")

    @staticmethod
    def _group_key(record: RequestRecord) -> tuple[str, str, str] | None:
        group = json.loads(record.spec).get("group_id")
        if not isinstance(group, str) or not group:
            return None
        return record.project, record.created_by_token, group

    async def group_members(
        self, call_id: str, *, project: str, person: Person | None = None
    ) -> list[FunctionCall]:
        """The calls of the review group of ``call_id`` in ``project`` (oldest first, that call
        included; just that call if it has no group): same project, same creating token, same
        group id. With ``person``: only those the person may see."""
        anchor = await self._record(FUNCTION_CALL, call_id, project)
        key = self._group_key(anchor)
        records = [anchor]
        if key is not None:
            found = await self.store.list_requests(
                FUNCTION_CALL, project=project, limit=self.MAX_GROUP_SCAN
            )
            records = [r for r in found if self._group_key(r) == key]
            if not any(r.call_id == anchor.call_id for r in records):
                records.append(anchor)
            records.sort(key=lambda r: (r.created_at, r.call_id))
            records = records[: self.MAX_GROUP_SIZE]
        members: list[FunctionCall] = []
        for record in records:
            record = await self._expire_if_due(record)
            call = self._call_from(record)
            if person is None or await self.may_see(call, person, project):
                members.append(call)
        return members

    # -- grants and operator rules (rules in _grants; the use is a compare-and-set) ------------

    async def _decide_at_creation(
        self, record: RequestRecord, call: FunctionCall, created: AuditRow
    ) -> RequestRecord | None:
        """Store ``record`` already decided when an operator rule decides it (reject rules
        first) or a person's live grant covers it now; None when a person must decide (or
        the call id exists: the caller's path finds it). Nothing is cached: the grant, its
        person and the policy are read at this moment."""
        project, fn, kwargs = record.project, call.spec.fn, call.spec.kwargs
        rules = self.rules.for_project(project)
        rule = _grants.rule_decision(rules, fn, kwargs)
        if rule is not None:
            approve = rule.action == "approve"
            if approve and "approve" not in _schema.allowed(call.spec):
                return None  # the function accepts no plain approval: a person decides
            return await self._store_decided(
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
        for _ in range(10):  # another call used the grant first: read it again
            now = self.clock.now()
            rows = await self.store.list_grants(project=project, fn=fn, live_at=now, limit=200)
            if not rows:
                return None
            effective, directory = await self._effective(
                call, project, [Identity("user", r.person) for r in rows]
            )
            chosen: _grants.Grant | None = None
            for row in reversed(rows):  # the oldest live grant first
                grant = self._grant(row)
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
                    chosen = grant
                    break
            if chosen is None:
                return None
            use = chosen.uses + 1
            text = (
                f"approved under {chosen.person}'s grant {chosen.id} "
                f"(use {use} of {chosen.max_uses})"
            )
            stored = await self._store_decided(
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
            if await self.store.get_request(record.kind, record.call_id, project) is not None:
                return None  # the call id exists: the caller's path answers with it
        return None

    async def _store_decided(
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
        now = self.clock.now()
        status = FunctionCallStatus.model_validate_json(record.status)
        status.approved = approved
        status.comment = comment
        status.responded_at = _dt(now)
        status.responded_by = responded_by
        status.responded_via = via
        decided = RequestRecord(
            kind=record.kind,
            call_id=record.call_id,
            project=record.project,
            run_id=record.run_id,
            spec=record.spec,
            status=status.model_dump_json(),
            completed=True,
            expires_at=record.expires_at,
            created_at=record.created_at,
            version=1,
            created_by=record.created_by,
            created_by_token=record.created_by_token,
        )
        audit = AuditRow(
            kind=record.kind,
            call_id=record.call_id,
            at=now,
            actor=responded_by,
            via=via,
            action="approved" if approved else "rejected",
            details=details,
            project=record.project,
        )
        outbox, event_id = self._outbox("decided", decided, audit)
        ok = await self.store.insert_decided_request(
            decided,
            [created, audit],
            notify=self._notice("decided", decided),
            outbox=outbox,
            grant_use=grant_use,
        )
        if not ok:
            return None
        self._bump()
        self._emit("decided", decided, audit, event_id)
        return decided

    @staticmethod
    def _grant(row: GrantRow) -> _grants.Grant:
        return _grants.Grant(
            id=row.id,
            project=row.project,
            fn=row.fn,
            scope=_grants.Grant.scope_from_json(row.scope),
            token_id=row.token_id,
            person=row.person,
            created_at=row.created_at,
            expires_at=row.expires_at,
            max_uses=row.max_uses,
            uses=row.uses,
            revoked_at=row.revoked_at,
            revoked_by=row.revoked_by,
            source_call_id=row.source_call_id,
            token_name=row.token_name,
        )

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
        _check_via(via)
        record = await self._record(FUNCTION_CALL, call_id, project)
        call = self._call_from(record)
        identity = Identity("user", person_name)
        effective, directory = await self._effective(call, project, [identity])
        person = directory.resolve(identity)
        refusal = _grants.may_grant(
            call, project, person, effective, directory, self.rules.for_project(project)
        )
        if refusal is not None:
            if not dry_run:
                await self._refused(record, str(identity), f"grant refused: {refusal}", via)
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
        now = self.clock.now()
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
        await self.store.add_grant(
            GrantRow(
                id=grant.id,
                project=grant.project,
                fn=grant.fn,
                scope=grant.scope_json(),
                token_id=grant.token_id,
                person=grant.person,
                created_at=grant.created_at,
                expires_at=grant.expires_at,
                max_uses=grant.max_uses,
                source_call_id=grant.source_call_id,
                token_name=grant.token_name,
            ),
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
        self._bump()
        return grant

    def is_admin(self, person: Person) -> bool:
        return person.active and person.name in self.rules.admins

    async def list_grants(
        self, person: Person, *, project: str | None = None, every: bool = False
    ) -> list[_grants.Grant]:
        """The person's own grants (``every``, for an admin: everyone's), newest first."""
        mine = None if every and self.is_admin(person) else person.name
        if every and mine is not None:
            raise ForbiddenError("only the operator's admins see every grant")
        rows = await self.store.list_grants(project=project, person=mine)
        return [self._grant(r) for r in rows]

    async def revoke_grant(
        self, grant_id: str, person: Person, *, via: str, project: str | None = None
    ) -> _grants.Grant:
        """Revoke at once (every process reads the grant at use time): by its own person or
        an admin. Unknown to this person and unknown are the same answer."""
        _check_via(via)
        row = await self.store.get_grant(grant_id)
        if (
            row is None
            or (project is not None and row.project != project)
            or (row.person != person.name and not self.is_admin(person))
            or not person.active
        ):
            raise NotFoundError(f"no grant {grant_id!r} of yours")
        return await self._revoke_grant(row, person.name, via)

    async def operator_revoke_grant(self, grant_id: str, *, via: str = "cli") -> _grants.Grant:
        """The operator (with the database: the CLI) revokes any grant."""
        row = await self.store.get_grant(grant_id)
        if row is None:
            raise NotFoundError(f"no grant {grant_id!r}")
        return await self._revoke_grant(row, "operator", via)

    async def operator_grants(
        self, *, project: str | None = None, person: str | None = None
    ) -> list[_grants.Grant]:
        """Every grant (the operator's CLI), newest first."""
        rows = await self.store.list_grants(project=project, person=person, limit=100_000)
        return [self._grant(r) for r in rows]

    async def _revoke_grant(self, row: GrantRow, by: str, via: str) -> _grants.Grant:
        grant_id = row.id
        now = self.clock.now()
        revoked = await self.store.revoke_grant(
            grant_id,
            now=now,
            by=by,
            audit=AuditRow(
                kind=FUNCTION_CALL,
                call_id=row.source_call_id,
                at=now,
                actor=by,
                via=via,
                action="grant_revoked",
                details={"grant": grant_id},
                project=row.project,
            ),
        )
        if not revoked:
            raise ConflictError(f"grant {grant_id!r} is already revoked")
        self._bump()
        fresh = await self.store.get_grant(grant_id)
        assert fresh is not None
        return self._grant(fresh)

    # -- executions (one approval, one execution; see _executions) ----------------------------

    async def claim_execution(
        self,
        call_id: str,
        claim: Execution,
        *,
        project: str,
        actor: str,
        via: str = "api",
        creator: str | None = None,
    ) -> ExecutionClaim:
        from functionlayer_server import _executions

        return await _executions.claim_execution(
            self, call_id, claim, project=project, actor=actor, via=via, creator=creator
        )

    async def report_execution(
        self,
        call_id: str,
        report: ExecutionReport,
        *,
        project: str,
        actor: str,
        via: str = "api",
        creator: str | None = None,
    ) -> FunctionCall:
        from functionlayer_server import _executions

        return await _executions.report_execution(
            self, call_id, report, project=project, actor=actor, via=via, creator=creator
        )

    # -- audit ------------------------------------------------------------------------------

    @staticmethod
    def _entry(row: AuditRow) -> AuditEntry:
        return AuditEntry(
            call_id=row.call_id,
            kind=row.kind,
            at=_dt(row.at),
            who=row.actor,
            via=row.via,
            action=row.action,
            details=row.details,
            project=row.project,
        )

    async def record_audit(
        self,
        kind: str,
        call_id: str,
        *,
        who: str,
        via: str,
        action: str,
        details: dict[str, Any] | None = None,
        project: str | None = None,
    ) -> AuditEntry:
        """For channels: note a delivery, an escalation, a refused answer, ... ``project``:
        the request's (without it, the one project with that call id, if only one)."""
        if project is None:
            project = await self.get_project(kind, call_id)
        row = AuditRow(
            kind=kind,
            call_id=call_id,
            at=self.clock.now(),
            actor=who,
            via=via,
            action=action,
            details=details or {},
            project=project,
        )
        await self.store.add_audit(row)
        return self._entry(row)

    async def audit_trail(
        self, call_id: str | None = None, *, project: str | None = None
    ) -> list[AuditEntry]:
        """Oldest first; every request when ``call_id`` is None (for export); only
        ``project``'s entries when given (call ids are unique per project only)."""
        return [self._entry(r) for r in await self.store.list_audit(call_id, project=project)]
