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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from functionlayer._models import (
    ContactChannel,
    FunctionCall,
    FunctionCallStatus,
    HumanContact,
    HumanContactStatus,
    ResponseOption,
)

from functionlayer_server._auth import (
    ApiClient,
    User,
    hash_password,
    hash_token,
    new_token,
    verify_password,
)
from functionlayer_server._errors import (
    AlreadyDecidedError,
    ConflictError,
    InvalidDecisionError,
    InvalidRequestError,
    NotFoundError,
)
from functionlayer_server._scheduler import Clock, JobHandler, Scheduler, SystemClock
from functionlayer_server._settings import Settings
from functionlayer_server._store import AuditRow, RequestRecord, Store

__all__ = [
    "FUNCTION_CALL",
    "HUMAN_CONTACT",
    "ApprovalService",
    "AuditEntry",
    "EventType",
    "Listener",
    "ServiceEvent",
]

log = logging.getLogger("functionlayer_server.service")

FUNCTION_CALL = "function_call"
HUMAN_CONTACT = "human_contact"

EventType = Literal["created", "updated", "decided"]
Request = FunctionCall | HumanContact
_R = TypeVar("_R", FunctionCall, HumanContact)

MAX_CALL_ID_LENGTH = 256
MAX_TIMEOUT_SECONDS = 10 * 365 * 24 * 3600.0


def _is_name(value: str) -> bool:
    """Identifiers stored in their own columns: 1-256 printable characters (no NUL, which
    PostgreSQL text cannot hold, and no control characters)."""
    return 0 < len(value) <= MAX_CALL_ID_LENGTH and value.isprintable()


def _check_responder(responder: str, via: str) -> None:
    if not _is_name(responder):
        raise InvalidRequestError(
            f"responded_by must be 1-{MAX_CALL_ID_LENGTH} printable characters"
        )
    if not _is_name(via):
        raise InvalidRequestError(
            f"responded_via must be 1-{MAX_CALL_ID_LENGTH} printable characters"
        )


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
    """Given to listeners: ``created`` (a new request), ``updated`` (quorum progress) or
    ``decided`` (approved, rejected, answered or expired)."""

    type: EventType
    kind: str
    project: str
    request: Request
    audit: AuditEntry | None = None


Listener = Callable[[ServiceEvent], Awaitable[None] | None]


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


def _option(options: Sequence[ResponseOption] | None, name: str, what: str) -> ResponseOption:
    for option in options or ():
        if option.name == name:
            return option
    known = ", ".join(repr(o.name) for o in options or ()) or "none"
    raise InvalidDecisionError(f"unknown {what} {name!r} (this request offers: {known})")


def _channel_names(channel: ContactChannel, user: User) -> bool:
    email = user.email.lower() if user.email else None
    if channel.users and user.username in channel.users:
        return True
    if email and channel.email is not None:
        addresses = [channel.email.address] + [
            r.address for r in channel.email.additional_recipients or ()
        ]
        if any(a.lower() == email for a in addresses):
            return True
    if user.slack_user_id and channel.slack is not None:
        allowed = channel.slack.allowed_responder_ids or ()
        if user.slack_user_id in allowed:
            return True
    return False


class ApprovalService:
    """See the module docstring. Create with a store (not yet opened) and settings, then
    ``await service.start()``; ``await service.stop()`` on shutdown."""

    def __init__(self, store: Store, settings: Settings, *, clock: Clock | None = None) -> None:
        self.store = store
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.scheduler = Scheduler(self, self.clock, max_sleep=settings.scheduler_interval_seconds)
        self._listeners: list[Listener] = []
        self._waiters: dict[tuple[str, str], list[asyncio.Future[RequestRecord | None]]] = {}
        self._tokens: dict[str, ApiClient] = {}
        self._changes = 0
        self._change_event = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = False

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self, *, scheduler: bool = True) -> None:
        await self.store.open()
        await self.store.listen(self._on_notify)
        if scheduler:
            self.scheduler.start()
        self._started = True

    async def stop(self) -> None:
        await self.scheduler.stop()
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

    # -- listeners --------------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> None:
        """``listener(event)`` (sync or async) runs after each change, off the request path;
        its exceptions are logged and never reach the caller."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def _emit(self, event: ServiceEvent) -> None:
        # One task per event, listeners in order: they should return quickly and leave long
        # work to their own tasks or to scheduled jobs.
        if self._listeners:
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

    def _wake(self, kind: str, call_id: str, record: RequestRecord | None = None) -> None:
        """Release the long-polls on this request, handing them the new record if known."""
        for fut in self._waiters.pop((kind, call_id), ()):
            if not fut.done():
                fut.set_result(record)

    def _on_notify(self, payload: str) -> None:
        """A change made by another server process (PostgreSQL NOTIFY)."""
        if payload == "*":
            for key in list(self._waiters):
                self._wake(*key)
        else:
            _, _, rest = payload.partition("|")
            kind, _, call_id = rest.partition("|")
            self._wake(kind, call_id)
        self._bump()

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

    # -- tokens and users -------------------------------------------------------------------

    async def create_token(self, name: str, *, project: str = "default") -> str:
        """A new API token for ``project``; only its hash is stored, so show it once."""
        if not name.strip() or not project.strip():
            raise InvalidRequestError("token name and project must not be empty")
        token = new_token()
        await self.store.add_token(project, name, hash_token(token), self.clock.now())
        return token

    async def authenticate_token(self, token: str) -> ApiClient | None:
        digest = hash_token(token)
        client = self._tokens.get(digest)
        if client is not None:
            return client
        row = await self.store.find_token(digest)
        if row is None:
            return None
        client = ApiClient(project=row.project, token_name=row.name)
        self._tokens[digest] = client
        return client

    async def create_user(
        self,
        username: str,
        password: str,
        *,
        email: str | None = None,
        slack_user_id: str | None = None,
    ) -> User:
        """Create the user, or update an existing one's password and details."""
        if not username.strip():
            raise InvalidRequestError("username must not be empty")
        if not password:
            raise InvalidRequestError("password must not be empty")
        hashed = await asyncio.to_thread(hash_password, password)
        await self.store.add_user(
            username,
            email=email,
            slack_user_id=slack_user_id,
            password_hash=hashed,
            now=self.clock.now(),
        )
        return User(username=username, email=email, slack_user_id=slack_user_id)

    async def authenticate_user(self, username: str, password: str) -> User | None:
        row = await self.store.get_user(username)
        if row is None:
            # Same work as a real check, so timing does not reveal which usernames exist.
            await asyncio.to_thread(verify_password, password, _DUMMY_HASH)
            return None
        if not await asyncio.to_thread(verify_password, password, row.password_hash):
            return None
        return User(username=row.username, email=row.email, slack_user_id=row.slack_user_id)

    async def get_user(self, username: str) -> User | None:
        row = await self.store.get_user(username)
        if row is None:
            return None
        return User(username=row.username, email=row.email, slack_user_id=row.slack_user_id)

    async def list_users(self) -> list[User]:
        return [
            User(username=r.username, email=r.email, slack_user_id=r.slack_user_id)
            for r in await self.store.list_users()
        ]

    # -- visibility -------------------------------------------------------------------------

    def is_visible_to(self, request: Request, user: User) -> bool:
        """Unrouted requests are visible to every inbox user; routed ones only to the users
        their channel(s) or responder list name."""
        spec = request.spec
        policy = spec.policy
        channels: list[ContactChannel] = [spec.channel] if spec.channel is not None else []
        responders: list[str] = []
        if policy is not None:
            channels.extend(policy.channels)
            responders = list(policy.responders or ())
        if not channels and not responders:
            return True
        if any(_channel_names(channel, user) for channel in channels):
            return True
        email = user.email.lower() if user.email else None
        for who in responders:
            if who == user.username or (email and who.lower() == email):
                return True
            if user.slack_user_id and who == user.slack_user_id:
                return True
        return False

    # -- records <-> models -----------------------------------------------------------------

    @staticmethod
    def _record_json(record: RequestRecord) -> str:
        # spec and status are stored as JSON text: splice them rather than decode and re-encode.
        return (
            f'{{"run_id":{json.dumps(record.run_id)},"call_id":{json.dumps(record.call_id)},'
            f'"spec":{record.spec},"status":{record.status}}}'
        )

    @classmethod
    def _call_from(cls, record: RequestRecord) -> FunctionCall:
        return FunctionCall.model_validate_json(cls._record_json(record))

    @classmethod
    def _contact_from(cls, record: RequestRecord) -> HumanContact:
        return HumanContact.model_validate_json(cls._record_json(record))

    def _model(self, record: RequestRecord) -> Request:
        return (
            self._call_from(record) if record.kind == FUNCTION_CALL else self._contact_from(record)
        )

    # -- creating ---------------------------------------------------------------------------

    async def create_function_call(
        self, call: FunctionCall, *, project: str = "default", actor: str = "api", via: str = "api"
    ) -> tuple[FunctionCall, bool]:
        """Store a new request (the status the caller sent is ignored: the server owns it).
        Idempotent per call id; returns the stored call and whether it was created now."""
        record, created = await self._create(
            FUNCTION_CALL, call, project=project, actor=actor, via=via
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
    ) -> tuple[HumanContact, bool]:
        record, created = await self._create(
            HUMAN_CONTACT, contact, project=project, actor=actor, via=via
        )
        return self._contact_from(record), created

    async def _create(
        self, kind: str, request: Request, *, project: str, actor: str, via: str
    ) -> tuple[RequestRecord, bool]:
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
        now = self.clock.now()
        expires_at = now + spec.timeout_seconds if spec.timeout_seconds is not None else None
        status: FunctionCallStatus | HumanContactStatus
        if kind == FUNCTION_CALL:
            status = FunctionCallStatus(
                requested_at=_dt(now), expires_at=_dt(expires_at) if expires_at else None
            )
        else:
            status = HumanContactStatus(
                requested_at=_dt(now), expires_at=_dt(expires_at) if expires_at else None
            )
        spec_json = _canonical(spec.model_dump(mode="json"))
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
        )
        audit = AuditRow(
            kind=kind,
            call_id=call_id,
            at=now,
            actor=actor,
            via=via,
            action="created",
            details={"project": project, "run_id": request.run_id},
        )
        stored, created = await self.store.insert_request(
            record, audit, notify=f"created|{kind}|{call_id}"
        )
        if not created:
            if stored.project != project:
                raise ConflictError(
                    f"call_id {call_id!r} is already in use; choose another call id"
                )
            if stored.run_id != request.run_id or stored.spec != spec_json:
                raise ConflictError(
                    f"a different request already exists under call_id {call_id!r} "
                    "(same call id, different run_id or spec)"
                )
            stored = await self._expire_if_due(stored)
            return stored, False
        self._bump()
        if expires_at is not None:
            self.scheduler.wake()
        self._emit(
            ServiceEvent(
                type="created",
                kind=kind,
                project=project,
                request=self._model(stored),
                audit=self._entry(audit),
            )
        )
        return stored, True

    # -- reading ----------------------------------------------------------------------------

    async def _record(self, kind: str, call_id: str, project: str | None) -> RequestRecord:
        record = await self.store.get_request(kind, call_id)
        if record is None or (project is not None and record.project != project):
            noun = "function call" if kind == FUNCTION_CALL else "human contact"
            raise NotFoundError(f"no {noun} with call_id {call_id!r}")
        return await self._expire_if_due(record)

    async def _expire_if_due(self, record: RequestRecord) -> RequestRecord:
        """Past its deadline counts as expired even if the scheduler has not run yet."""
        if record.completed or record.expires_at is None or record.expires_at > self.clock.now():
            return record
        await self.expire(record.kind, record.call_id)
        fresh = await self.store.get_request(record.kind, record.call_id)
        assert fresh is not None
        return fresh

    async def get_function_call(self, call_id: str, *, project: str | None = None) -> FunctionCall:
        return self._call_from(await self._record(FUNCTION_CALL, call_id, project))

    async def get_human_contact(self, call_id: str, *, project: str | None = None) -> HumanContact:
        return self._contact_from(await self._record(HUMAN_CONTACT, call_id, project))

    async def get_project(self, kind: str, call_id: str) -> str | None:
        record = await self.store.get_request(kind, call_id)
        return record.project if record else None

    async def _wait(
        self, kind: str, call_id: str, timeout: float, project: str | None
    ) -> RequestRecord:
        record = await self._record(kind, call_id, project)
        if record.completed or timeout <= 0:
            return record
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        key = (kind, call_id)
        # Another process's NOTIFY wakes us without a record, for any change to this request
        # (its own creation echoed late, quorum progress): re-read, and keep waiting until it
        # is decided or the time is up.
        while True:
            fut: asyncio.Future[RequestRecord | None] = loop.create_future()
            self._waiters.setdefault(key, []).append(fut)
            try:
                if not self.store.ordered:
                    # Re-read after registering, so a decision made between the first read and
                    # the registration is not missed. A store that runs every statement in order
                    # on one thread (SQLite) does not need this: a decision committed after our
                    # read resumes its coroutine after ours, i.e. after we registered.
                    record = await self._record(kind, call_id, project)
                    if record.completed:
                        return record
                await asyncio.wait({fut}, timeout=max(0.0, deadline - loop.time()))
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
            record = await self._record(kind, call_id, project)
            if record.completed or loop.time() >= deadline:
                return record

    async def wait_function_call(
        self, call_id: str, timeout: float, *, project: str | None = None
    ) -> FunctionCall:
        """The call once decided, or its current state after ``timeout`` seconds."""
        return self._call_from(await self._wait(FUNCTION_CALL, call_id, timeout, project))

    async def wait_human_contact(
        self, call_id: str, timeout: float, *, project: str | None = None
    ) -> HumanContact:
        return self._contact_from(await self._wait(HUMAN_CONTACT, call_id, timeout, project))

    @property
    def waiting(self) -> int:
        """How many long-polls are open in this process."""
        return sum(len(v) for v in self._waiters.values())

    async def _list(
        self,
        kind: str,
        *,
        pending: bool | None,
        visible_to: User | None,
        project: str | None,
        run_id: str | None,
        limit: int,
    ) -> list[RequestRecord]:
        limit = max(1, min(limit, 1000))
        fetch = limit if visible_to is None else min(limit * 10, 5000)
        records = await self.store.list_requests(
            kind, project=project, pending=pending, run_id=run_id, limit=fetch
        )
        now = self.clock.now()
        result: list[RequestRecord] = []
        for record in records:
            if not record.completed and record.expires_at is not None and record.expires_at <= now:
                record = await self._expire_if_due(record)
                if pending is True:
                    continue
            if visible_to is not None and not self.is_visible_to(self._model(record), visible_to):
                continue
            result.append(record)
            if len(result) >= limit:
                break
        return result

    async def list_function_calls(
        self,
        *,
        pending: bool | None = None,
        visible_to: User | None = None,
        project: str | None = None,
        run_id: str | None = None,
        limit: int = 200,
    ) -> list[FunctionCall]:
        """Newest first."""
        records = await self._list(
            FUNCTION_CALL,
            pending=pending,
            visible_to=visible_to,
            project=project,
            run_id=run_id,
            limit=limit,
        )
        return [self._call_from(r) for r in records]

    async def list_human_contacts(
        self,
        *,
        pending: bool | None = None,
        visible_to: User | None = None,
        project: str | None = None,
        run_id: str | None = None,
        limit: int = 200,
    ) -> list[HumanContact]:
        records = await self._list(
            HUMAN_CONTACT,
            pending=pending,
            visible_to=visible_to,
            project=project,
            run_id=run_id,
            limit=limit,
        )
        return [self._contact_from(r) for r in records]

    # -- deciding ---------------------------------------------------------------------------

    async def respond_function_call(
        self,
        call_id: str,
        decision: FunctionCallStatus,
        *,
        responder: str,
        via: str,
        project: str | None = None,
    ) -> FunctionCall:
        """Approve, reject, approve with edits, or answer instead (``decision.response``).

        Quorum (``spec.policy.approvals_required`` = M > 1): each approval from a distinct
        responder is recorded; the call is approved once M have approved; any rejection
        rejects at once with that responder's feedback.
        """
        _check_responder(responder, via)
        for _ in range(20):  # retries only when a concurrent quorum approval won the race
            record = await self._record(FUNCTION_CALL, call_id, project)
            call = self._call_from(record)
            status, completed, action, details = self._decide_call(call, decision, responder)
            now = self.clock.now()
            if completed:
                status.responded_at = _dt(now)
                status.responded_by = responder
                status.responded_via = via
            audit = AuditRow(
                kind=FUNCTION_CALL,
                call_id=call_id,
                at=now,
                actor=responder,
                via=via,
                action=action,
                details=details,
            )
            changed = await self._commit(record, status.model_dump_json(), completed, audit)
            if changed:
                return self._call_from(changed)
        raise AlreadyDecidedError(f"function call {call_id!r} kept changing; try again")

    def _decide_call(
        self, call: FunctionCall, decision: FunctionCallStatus, responder: str
    ) -> tuple[FunctionCallStatus, bool, str, dict[str, Any]]:
        current = call.status or FunctionCallStatus()
        if current.approved is not None:
            raise AlreadyDecidedError(_decided_message(call))
        status = current.model_copy()  # fields are replaced, never mutated in place
        policy = call.spec.policy
        required = policy.approvals_required if policy is not None else 1
        comment = (
            decision.comment.strip() if decision.comment and decision.comment.strip() else None
        )
        if decision.response is not None:
            if decision.approved is True:
                raise InvalidDecisionError(
                    "a response in place of running the function cannot also approve it"
                )
            if decision.edited_kwargs is not None:
                raise InvalidDecisionError(
                    "give either edited_kwargs (approve with edits) or response, not both"
                )
            if not decision.response.strip():
                raise InvalidDecisionError("response must not be empty")
            status.approved = False
            status.response = decision.response
            status.comment = comment
            return status, True, "responded", {"response": decision.response}
        if decision.approved is None:
            raise InvalidDecisionError(
                "approved must be true or false (or give a response to answer instead of running)"
            )
        if decision.approved is False:
            if decision.edited_kwargs is not None:
                raise InvalidDecisionError("edited_kwargs only make sense with approved=true")
            option_name = decision.reject_option_name
            if option_name is not None:
                option = _option(call.spec.reject_options, option_name, "reject option")
                comment = (
                    comment
                    or option.prompt_fill
                    or option.description
                    or option.title
                    or option.name
                )
            if comment is None:
                raise InvalidDecisionError(
                    "a rejection needs a comment: it is the feedback the agent gets"
                )
            status.approved = False
            status.comment = comment
            status.reject_option_name = option_name
            return status, True, "rejected", {"comment": comment, "reject_option_name": option_name}
        if decision.reject_option_name is not None:
            raise InvalidDecisionError("reject_option_name only makes sense with approved=false")
        if required > 1:
            if decision.edited_kwargs is not None:
                raise InvalidDecisionError(
                    "this call needs several approvals; approving with edited arguments is not possible"
                )
            approvals = list(status.approvals or [])
            if responder in approvals:
                raise AlreadyDecidedError(
                    f"{responder} already approved function call {call.call_id!r} "
                    f"({len(approvals)} of {required} approvals)"
                )
            approvals.append(responder)
            status.approvals = approvals
            details: dict[str, Any] = {
                "approvals": len(approvals),
                "required": required,
                "comment": comment,
            }
            if len(approvals) < required:
                return status, False, "approval_recorded", details
            status.approved = True
            status.comment = comment
            return status, True, "approved", details
        if decision.edited_kwargs is not None and not isinstance(decision.edited_kwargs, dict):
            raise InvalidDecisionError("edited_kwargs must be an object")
        status.approved = True
        status.comment = comment
        status.edited_kwargs = decision.edited_kwargs
        return (
            status,
            True,
            "approved",
            {"comment": comment, "edited_kwargs": decision.edited_kwargs},
        )

    async def respond_human_contact(
        self,
        call_id: str,
        *,
        response: str | None,
        response_option_name: str | None = None,
        responder: str,
        via: str,
        project: str | None = None,
    ) -> HumanContact:
        _check_responder(responder, via)
        record = await self._record(HUMAN_CONTACT, call_id, project)
        contact = self._contact_from(record)
        current = contact.status or HumanContactStatus()
        if current.completed:
            raise AlreadyDecidedError(_decided_message(contact))
        if response_option_name is not None:
            option = _option(contact.spec.response_options, response_option_name, "response option")
            if response is None or not response.strip():
                response = option.prompt_fill or option.title or option.name
        if response is None or not response.strip():
            raise InvalidDecisionError("response must not be empty")
        now = self.clock.now()
        status = current.model_copy()  # fields are replaced, never mutated in place
        status.response = response
        status.response_option_name = response_option_name
        status.responded_at = _dt(now)
        status.responded_by = responder
        status.responded_via = via
        audit = AuditRow(
            kind=HUMAN_CONTACT,
            call_id=call_id,
            at=now,
            actor=responder,
            via=via,
            action="responded",
            details={"response": response, "response_option_name": response_option_name},
        )
        changed = await self._commit(record, status.model_dump_json(), True, audit)
        if changed is None:
            raise AlreadyDecidedError(_decided_message(await self.get_human_contact(call_id)))
        return self._contact_from(changed)

    async def expire(
        self,
        kind: str,
        call_id: str,
        *,
        reason: str | None = None,
        force: bool = False,
        actor: str = "functionlayer-server",
        via: str = "scheduler",
    ) -> bool:
        """Fail closed: a pending request past its deadline (or any pending one with
        ``force``, when the agent gives up waiting) becomes a rejection (function call) or an
        unanswered, expired contact. False if it was already decided or is not due."""
        _check_responder(actor, via)
        for _ in range(5):
            record = await self.store.get_request(kind, call_id)
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
            audit = AuditRow(
                kind=kind,
                call_id=call_id,
                at=now,
                actor=actor,
                via=via,
                action="expired",
                details={"reason": reason},
            )
            if await self._commit(record, status.model_dump_json(), True, audit) is not None:
                return True
        return False

    async def _commit(
        self, record: RequestRecord, status: str, completed: bool, audit: AuditRow
    ) -> RequestRecord | None:
        """Compare-and-set; on success wake waiters, tell listeners and return the new record."""
        event_type: EventType = "decided" if completed else "updated"
        ok = await self.store.update_request(
            record.kind,
            record.call_id,
            status=status,
            completed=completed,
            expected_version=record.version,
            audit=audit,
            notify=f"{event_type}|{record.kind}|{record.call_id}",
        )
        if not ok:
            return None
        new = RequestRecord(
            kind=record.kind,
            call_id=record.call_id,
            project=record.project,
            run_id=record.run_id,
            spec=record.spec,
            status=status,
            completed=completed,
            expires_at=record.expires_at,
            created_at=record.created_at,
            version=record.version + 1,
        )
        if completed:
            self._wake(record.kind, record.call_id, new)
        self._bump()
        self._emit(
            ServiceEvent(
                type=event_type,
                kind=record.kind,
                project=record.project,
                request=self._model(new),
                audit=self._entry(audit),
            )
        )
        return new

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
    ) -> AuditEntry:
        """For channels: note a delivery, an escalation, a refused answer, ..."""
        row = AuditRow(
            kind=kind,
            call_id=call_id,
            at=self.clock.now(),
            actor=who,
            via=via,
            action=action,
            details=details or {},
        )
        await self.store.add_audit(row)
        return self._entry(row)

    async def audit_trail(self, call_id: str | None = None) -> list[AuditEntry]:
        """Oldest first; every request when ``call_id`` is None (for export)."""
        return [self._entry(r) for r in await self.store.list_audit(call_id)]


def _decided_message(request: Request) -> str:
    status = request.status
    noun = "function call" if isinstance(request, FunctionCall) else "human contact"
    if status is not None and status.expired:
        return f"{noun} {request.call_id!r} has expired; it can no longer be answered"
    by = f" by {status.responded_by}" if status is not None and status.responded_by else ""
    if isinstance(request, FunctionCall) and request.status is not None:
        if request.status.response is not None:
            what = "answered"
        else:
            what = "approved" if request.status.approved else "rejected"
    else:
        what = "answered"
    return f"{noun} {request.call_id!r} was already {what}{by}"


_DUMMY_HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
