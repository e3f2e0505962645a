"""Events and listeners: what a change is called (``EventType``), the audit entry and event
given to listeners, the job planners whose jobs are written with a change, and the emitter.

Listeners run after the commit, off the request path, so a crash may skip them: work a change
must not lose is planned (``Events.add_job_planner``) and written in its transaction."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Literal

from functionlayer_server._store import AuditRow, NewJob, RequestRecord

from ._records import Request, dt, model

__all__ = [
    "AuditEntry",
    "Change",
    "EventType",
    "Events",
    "JobPlanner",
    "Listener",
    "ServiceEvent",
    "audit_entry",
]

log = logging.getLogger("functionlayer_server.service")

EventType = Literal["created", "updated", "decided", "executed"]
Change = EventType | Literal["claimed"]
"""What a write does to a request: an announced ``EventType``, or ``claimed`` (an execution
claim: stored, never announced, planned or emitted)."""


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


def audit_entry(row: AuditRow) -> AuditEntry:
    """The entry as stored: each field of the same name, ``at`` as a time, ``who`` its actor."""
    same = {f.name: getattr(row, f.name) for f in fields(row) if f.name not in ("at", "actor")}
    return AuditEntry(**same, at=dt(row.at), who=row.actor)


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


class Events:
    """The listeners and planners, and the tasks running listeners (and other background
    work: ``spawn``), cancelled by ``close``."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._planners: list[JobPlanner] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    def add_listener(self, listener: Listener) -> None:
        """``listener(event)`` (sync or async) runs after each change, off the request path;
        its exceptions are logged and never reach the caller. It runs after the commit, so a
        crash may skip it: work a change must not lose is planned (``add_job_planner``)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def add_job_planner(self, planner: JobPlanner) -> None:
        """Have ``planner`` say which jobs each change needs (the channels' deliveries and
        updates). They are written in the change's own transaction: a change committed is a
        change whose jobs are stored, whatever happens to this process right after."""
        self._planners.append(planner)

    def plan(
        self, event_type: EventType, record: RequestRecord, now: float
    ) -> tuple[list[NewJob], Request | None]:
        """The jobs the planners want for ``record`` as it is after a change, and its model
        (built only when someone plans: reused for the listeners)."""
        if not self._planners:
            return [], None
        request = model(record)
        jobs: list[NewJob] = []
        for planner in self._planners:
            jobs.extend(planner(event_type, record.kind, record.project, request, now))
        return jobs, request

    def emit(
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
            request=request if request is not None else model(record),
            audit=audit_entry(audit),
            webhook_event_id=webhook_event_id,
        )
        self.spawn(self._call_listeners(list(self._listeners), event))

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

    def spawn(self, coro: Awaitable[Any]) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Cancel the running tasks and wait for them to end."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
