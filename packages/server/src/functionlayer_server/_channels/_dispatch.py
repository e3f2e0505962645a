"""Runs the jobs ``_planning`` plans: deliveries (with retries and escalation tiers), the
operator's reminders and escalations (retried the same way), and telling the channels how a
request was decided. Also the channels' delivery records (``DeliveryStore``): each saved
delivery is the request's ``delivered`` audit entry, durable and shared by every server process.
"""

from __future__ import annotations

import contextvars
import logging
from typing import Any

from functionlayer.models import ContactChannel

from functionlayer_server._channels._base import Channel, ChannelRequest
from functionlayer_server._channels._planning import (
    DELIVER_TOPIC,
    REMIND_TOPIC,
    SERVER_ACTOR,
    UPDATE_TOPIC,
    delivery_jobs,
    delivery_tiers,
    escalation_targets,
    inbox_only,
    reminder_jobs,
    request_kind,
)
from functionlayer_server._errors import NotFoundError
from functionlayer_server._service import FUNCTION_CALL, HUMAN_CONTACT, ApprovalService
from functionlayer_server._store import NewJob

__all__ = [
    "DELIVER_TOPIC",
    "REMIND_TOPIC",
    "SERVER_ACTOR",
    "UPDATE_TOPIC",
    "Dispatcher",
    "delivery_jobs",
    "delivery_tiers",
    "escalation_targets",
    "reminder_jobs",
    "request_kind",
]

log = logging.getLogger("functionlayer_server.channels")

MAX_ATTEMPTS = 6
"""Deliveries, reminders and escalations are tried this often, with backoff."""
RETRY_BASE_SECONDS = 5.0

# Which delivery is running ({"tier", "target"} or {"reminder", "target"}), so save_delivery
# can record it.
_current: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "fl_channel_delivery", default=None
)
# The project of the request being delivered or updated: call ids are unique per project only,
# and channels name requests by call id.
_project: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "fl_channel_project", default=None
)


class Dispatcher:
    """Runs the delivery and update jobs the service stores with each change (see
    ``delivery_jobs``). Also the channels' :class:`~functionlayer_server._channels._base.DeliveryStore`."""

    def __init__(self, service: ApprovalService) -> None:
        self.service = service
        self.channels: list[Channel] = []

    def add_channel(self, channel: Channel) -> None:
        self.channels.append(channel)

    def install(self) -> None:
        self.service.add_job_planner(delivery_jobs)
        self.service.add_job_planner(self._reminder_jobs)
        self.service.register_job_handler(DELIVER_TOPIC, self.run_job)
        self.service.register_job_handler(UPDATE_TOPIC, self.run_update)
        self.service.register_job_handler(REMIND_TOPIC, self.run_reminder)

    def _reminder_jobs(
        self, event_type: str, kind: str, project: str, request: ChannelRequest, now: float
    ) -> list[NewJob]:
        reminders = self.service.rules.for_project(project).reminders
        return reminder_jobs(reminders, event_type, kind, project, request, now)

    # -- reminders and escalation (operator-set) ---------------------------------------------

    async def run_reminder(self, payload: dict[str, Any]) -> None:
        """A due reminder or escalation: sent only while the request is pending (a request
        past its deadline is expired by the read, and gets nothing). A failed delivery is
        retried with backoff like a first delivery; a target it reached is not sent again."""
        kind, call_id = str(payload["kind"]), str(payload["call_id"])
        project = str(payload["project"])
        what = "escalate" if payload.get("what") == "escalate" else "remind"
        attempt = int(payload.get("attempt", 0))
        request = await self._load(kind, call_id, project)
        if request is None or request.completed:
            return
        if what == "escalate":
            reminders = self.service.rules.for_project(project).reminders
            targets = list(reminders.escalate_to) if reminders is not None else []
            action, details = "escalated", {"source": "operator"}
        else:
            tiers = delivery_tiers(request)
            targets = tiers[0] if tiers else []
            action, details = "reminded", {}
        if attempt == 0:
            await self._note(
                kind,
                call_id,
                action,
                via="scheduler",
                details={**details, "to": [t.describe() for t in targets]},
                project=project,
            )
        done = {
            d["target"]
            for d in await self._records(call_id, kind=kind, project=project)
            if d.get("reminder") == what and isinstance(d.get("target"), int)
        }
        scope = _project.set(project)
        try:
            failed = await self._deliver_each(
                request, kind, project, targets, {"reminder": what}, done, attempt
            )
        finally:
            _project.reset(scope)
        if failed and attempt + 1 < MAX_ATTEMPTS:
            await self.service.schedule(
                REMIND_TOPIC,
                {"kind": kind, "call_id": call_id, "project": project, "what": what}
                | {"attempt": attempt + 1},
                delay=RETRY_BASE_SECONDS * 2**attempt,
            )

    async def _deliver_each(
        self,
        request: ChannelRequest,
        kind: str,
        project: str | None,
        targets: list[ContactChannel],
        mark: dict[str, Any],
        done: set[int],
        attempt: int,
    ) -> bool:
        """Deliver to each target not in ``done`` (indexes); every saved delivery and audit
        entry carries ``mark`` and the target's index. True when one failed (audited)."""
        failed = False
        for index, target in enumerate(targets):
            if index in done:
                continue
            where = {**mark, "target": index}
            channel = self.channel_for(target)
            if channel is None:
                if attempt == 0 and not inbox_only(target):
                    await self._note(
                        kind,
                        request.call_id,
                        "not_delivered",
                        via="channels",
                        details={
                            **where,
                            "reason": f"no channel is configured for {target.describe()}",
                        },
                        project=project,
                    )
                continue
            token = _current.set(where)
            try:
                await channel.deliver(request, target, tier=int(mark.get("tier", 0)))
            except Exception as exc:
                failed = True
                log.warning("%s: delivering %s failed: %s", channel.name, request.call_id, exc)
                await self._note(
                    kind,
                    request.call_id,
                    "delivery_failed",
                    via=channel.name,
                    details={**where, "attempt": attempt + 1, "error": _describe(exc)},
                    project=project,
                )
            finally:
                _current.reset(token)
        return failed

    async def _note(
        self,
        kind: str,
        call_id: str,
        action: str,
        *,
        via: str,
        details: dict[str, Any],
        project: str | None,
    ) -> None:
        """The server's own audit entry for a request (a delivery, a failure, an escalation)."""
        await self.service.record_audit(
            kind,
            call_id,
            who=SERVER_ACTOR,
            via=via,
            action=action,
            details=details,
            project=project,
        )

    def channel_for(self, target: ContactChannel) -> Channel | None:
        for channel in self.channels:
            if channel.handles(target):
                return channel
        return None

    # -- after the decision -----------------------------------------------------------------

    async def run_update(self, payload: dict[str, Any]) -> None:
        project = payload.get("project")
        project = project if isinstance(project, str) else None
        if project is None:  # a job stored before projects were recorded: the one request
            project = await self.service.get_project(str(payload["kind"]), str(payload["call_id"]))
        request = await self._load(str(payload["kind"]), str(payload["call_id"]), project)
        if request is not None and request.completed:
            await self.update(request, project=project)

    async def update(self, request: ChannelRequest, *, project: str | None = None) -> None:
        """Tell every channel that delivered the request how it was decided."""
        kind = request_kind(request)
        scope = _project.set(project)
        try:
            await self._update(request, kind, project)
        finally:
            _project.reset(scope)

    async def _update(self, request: ChannelRequest, kind: str, project: str | None) -> None:
        for channel in self.channels:
            deliveries = await self.load_deliveries(
                request.call_id, channel=channel.name, kind=kind
            )
            if not deliveries:
                continue
            try:
                await channel.update(request, deliveries)
            except Exception as exc:
                log.exception("%s: updating %s failed", channel.name, request.call_id)
                await self._note(
                    kind,
                    request.call_id,
                    "update_failed",
                    via=channel.name,
                    details={"error": _describe(exc)},
                    project=project,
                )

    # -- delivery jobs ----------------------------------------------------------------------

    async def _load(self, kind: str, call_id: str, project: str | None) -> ChannelRequest | None:
        try:
            if kind == FUNCTION_CALL:
                return await self.service.get_function_call(call_id, project=project)
            return await self.service.get_human_contact(call_id, project=project)
        except NotFoundError:  # also several projects' requests under an old, project-less job
            return None

    async def run_job(self, payload: dict[str, Any]) -> None:
        # Jobs stored before projects were recorded have none: the one request of that id.
        project = payload.get("project")
        project = project if isinstance(project, str) else None
        if project is None:
            project = await self.service.get_project(str(payload["kind"]), str(payload["call_id"]))
        scope = _project.set(project)
        try:
            await self._run_job(payload, project)
        finally:
            _project.reset(scope)

    async def _run_job(self, payload: dict[str, Any], project: str | None) -> None:
        kind = str(payload["kind"])
        call_id = str(payload["call_id"])
        tier = int(payload.get("tier", 0))
        attempt = int(payload.get("attempt", 0))
        request = await self._load(kind, call_id, project)
        if request is None or request.completed:
            return  # decided (or expired) before this tier was due: nothing to send
        tiers = delivery_tiers(request)
        if tier >= len(tiers):
            return
        if tier > 0 and attempt == 0:
            await self._note(
                kind,
                call_id,
                "escalated",
                via="scheduler",
                details={"tier": tier, "to": [t.describe() for t in tiers[tier]]},
                project=project,
            )
        done = {
            d["target"]
            for d in await self._records(call_id, kind=kind, project=project)
            if d.get("tier") == tier and isinstance(d.get("target"), int)
        }
        failed = await self._deliver_each(
            request, kind, project, tiers[tier], {"tier": tier}, done, attempt
        )
        if failed and attempt + 1 < MAX_ATTEMPTS:
            await self.service.schedule(
                DELIVER_TOPIC,
                {
                    "kind": kind,
                    "call_id": call_id,
                    "project": project,
                    "tier": tier,
                    "attempt": attempt + 1,
                },
                delay=RETRY_BASE_SECONDS * 2**attempt,
            )

    # -- delivery records (DeliveryStore) ----------------------------------------------------

    async def _kind_of(self, call_id: str) -> str:
        if await self.service.store.find_requests(FUNCTION_CALL, call_id):
            return FUNCTION_CALL
        return HUMAN_CONTACT

    async def save_delivery(
        self, call_id: str, channel: str, data: dict[str, Any], *, kind: str | None = None
    ) -> None:
        """Remember a delivery (and audit it as ``delivered``)."""
        where = _current.get()
        details: dict[str, Any] = {"channel": channel, "data": data}
        if where is not None:
            details.update(where)
        kind = kind or await self._kind_of(call_id)
        await self._note(
            kind, call_id, "delivered", via=channel, details=details, project=_project.get()
        )

    async def _records(
        self, call_id: str, *, kind: str, project: str | None
    ) -> list[dict[str, Any]]:
        """The request's ``delivered`` entries: of ``project`` (the one being delivered or
        updated); without one, of the one project with that call id (several: none, so a
        channel never acts on another project's deliveries)."""
        if project is None:
            project = await self.service.get_project(kind, call_id)
            if project is None:
                return []
        return [
            e.details
            for e in await self.service.audit_trail(call_id, project=project)
            if e.kind == kind and e.action == "delivered" and isinstance(e.details, dict)
        ]

    async def load_deliveries(
        self, call_id: str, *, channel: str | None = None, kind: str | None = None
    ) -> list[dict[str, Any]]:
        """The ``data`` dicts saved for the request, oldest first (only ``channel``'s if given)."""
        records = await self._records(
            call_id, kind=kind or await self._kind_of(call_id), project=_project.get()
        )
        return [
            dict(r.get("data") or {})
            for r in records
            if channel is None or r.get("channel") == channel
        ]


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:500]
