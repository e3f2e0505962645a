"""Routing: which channels a request goes to, when, and what happens after the decision.

Targets come from ``spec.channel`` and ``spec.policy.channels``:

- ``any_of`` (the default): every target at once (tier 0); the first answer wins, since the
  service decides each request at most once.
- ``escalate``: tier 0 is ``spec.channel`` (if any) plus ``policy.channels[0]``; tier *n* is
  ``policy.channels[n]``, added ``n * escalate_after_seconds`` after the request was created if
  nobody has answered by then (audit ``escalated``). Without ``escalate_after_seconds`` only
  tier 0 is used.

Every delivery runs as a persisted scheduler job (topic ``channels.deliver``), and so does
telling the channels how a request was decided (topic ``channels.update``). ``delivery_jobs``
says which jobs a change needs, and the service writes them in the transaction that stores the
change (one job per tier on creation, tier *n* due ``n * escalate_after_seconds`` after it; one
update job on a decision or expiry). So a request committed just before a crash is still
delivered after the restart, escalations fire on time across restarts, and failed deliveries
are retried with backoff. Deliveries are idempotent per (tier, target): a job that runs twice
does not post twice. Reminders and escalation set by the operator (``remind_after_seconds``, ``escalate_after_seconds``
and ``escalate_to`` in the policy file, see ``_policy.Reminders``) are planned the same way:
``reminder_jobs`` adds one job each (topic ``channels.remind``) to the creation's transaction,
due that long after creation and only if that is before the request expires; when due and the
request is still pending, the request's tier-0 targets get it again (audit ``reminded``) or
the operator's escalation targets get it (audit ``escalated``, details ``source: operator``).
Delivery records live in the audit trail (action ``delivered``, details
``{"channel", "tier", "target", "data"}``), which is durable and shared by every server process
on the database.
"""

from __future__ import annotations

import contextvars
import logging
from typing import Any

from functionlayer.models import ContactChannel, FunctionCall, HumanContact

from functionlayer_server._channels._base import Channel, ChannelRequest
from functionlayer_server._errors import NotFoundError
from functionlayer_server._policy import OperatorPolicy, Reminders
from functionlayer_server._service import (
    FUNCTION_CALL,
    HUMAN_CONTACT,
    ApprovalService,
)
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
]

log = logging.getLogger("functionlayer_server.channels")

DELIVER_TOPIC = "channels.deliver"
UPDATE_TOPIC = "channels.update"
REMIND_TOPIC = "channels.remind"
SERVER_ACTOR = "functionlayer-server"
MAX_ATTEMPTS = 6
RETRY_BASE_SECONDS = 5.0

# Which (tier, target) the running delivery is for, so save_delivery can record it.
_current: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar(
    "fl_channel_delivery", default=None
)
# The project of the request being delivered or updated: call ids are unique per project only,
# and channels name requests by call id.
_project: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "fl_channel_project", default=None
)


def _kind(request: ChannelRequest) -> str:
    return FUNCTION_CALL if isinstance(request, FunctionCall) else HUMAN_CONTACT


def delivery_tiers(request: ChannelRequest) -> list[list[ContactChannel]]:
    """The request's targets grouped by escalation tier (see the module docstring)."""
    spec = request.spec
    first: list[ContactChannel] = [spec.channel] if spec.channel is not None else []
    policy = spec.policy
    if policy is None:
        return [first] if first else []
    if policy.mode == "escalate" and policy.channels:
        tiers = [first + policy.channels[:1]]
        if policy.escalate_after_seconds is not None:
            tiers.extend([c] for c in policy.channels[1:])
        return tiers
    every = first + list(policy.channels)
    return [every] if every else []


def delivery_jobs(
    event_type: str, kind: str, project: str, request: ChannelRequest, now: float
) -> list[NewJob]:
    """The jobs a change of ``request`` needs (the service's job planner; pure). ``created``:
    a delivery job per tier, tier *n* due ``n * escalate_after_seconds`` after ``now``;
    ``decided`` (answered or expired): one job telling the channels. Nothing for a request
    without targets, or for other changes."""
    tiers = delivery_tiers(request)
    if not tiers:
        return []
    call_id = request.call_id
    if event_type == "created":
        policy = request.spec.policy
        step = policy.escalate_after_seconds if policy is not None else None
        return [
            NewJob(
                DELIVER_TOPIC,
                {"kind": kind, "call_id": call_id, "project": project, "tier": tier},
                now + tier * (step or 0.0),
            )
            for tier in range(len(tiers))
        ]
    if event_type == "decided":
        return [NewJob(UPDATE_TOPIC, {"kind": kind, "call_id": call_id, "project": project}, now)]
    return []


def reminder_jobs(
    reminders: Reminders | None,
    event_type: str,
    kind: str,
    project: str,
    request: ChannelRequest,
    now: float,
) -> list[NewJob]:
    """The operator's reminder and escalation jobs for a request just created (pure): one
    per configured step, due that long after ``now``, left out if the request expires first."""
    if reminders is None or event_type != "created":
        return []
    status = request.status
    expires = status.expires_at.timestamp() if status and status.expires_at else None
    jobs: list[NewJob] = []
    for what, after in (
        ("remind", reminders.remind_after_seconds),
        ("escalate", reminders.escalate_after_seconds),
    ):
        if after is None or (expires is not None and now + after >= expires):
            continue
        payload = {"kind": kind, "call_id": request.call_id, "project": project, "what": what}
        jobs.append(NewJob(REMIND_TOPIC, payload, now + after))
    return jobs


def escalation_targets(rules: OperatorPolicy) -> list[ContactChannel]:
    """Every escalation target the operator configured (any project): channels accept an
    answer on a message delivered to one of them, like on the request's own targets (who may
    decide is still the policy's call)."""
    found: list[ContactChannel] = []
    for project_rules in [rules.default, *rules.projects.values()]:
        if project_rules.reminders is not None:
            found.extend(project_rules.reminders.escalate_to)
    return found


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
        past its deadline is expired by the read, and gets nothing)."""
        kind, call_id = str(payload["kind"]), str(payload["call_id"])
        project = str(payload["project"])
        request = await self._load(kind, call_id, project)
        if request is None or request.completed:
            return
        if payload.get("what") == "escalate":
            reminders = self.service.rules.for_project(project).reminders
            targets = list(reminders.escalate_to) if reminders is not None else []
            action, details = "escalated", {"source": "operator"}
        else:
            tiers = delivery_tiers(request)
            targets = tiers[0] if tiers else []
            action, details = "reminded", {}
        await self.service.record_audit(
            kind,
            call_id,
            who=SERVER_ACTOR,
            via="scheduler",
            action=action,
            details={**details, "to": [t.describe() for t in targets]},
            project=project,
        )
        scope = _project.set(project)
        try:
            for target in targets:
                await self._send_once(request, kind, project, target)
        finally:
            _project.reset(scope)

    async def _send_once(
        self, request: ChannelRequest, kind: str, project: str, target: ContactChannel
    ) -> None:
        """One delivery outside the tiers (a reminder or an escalation): not retried, a
        failure is audited."""
        channel = self.channel_for(target)
        if channel is None:
            if not _inbox_only(target):
                await self.service.record_audit(
                    kind,
                    request.call_id,
                    who=SERVER_ACTOR,
                    via="channels",
                    action="not_delivered",
                    details={"reason": f"no channel is configured for {target.describe()}"},
                    project=project,
                )
            return
        try:
            await channel.deliver(request, target, tier=0)
        except Exception as exc:
            log.warning("%s: reminding %s failed: %s", channel.name, request.call_id, exc)
            await self.service.record_audit(
                kind,
                request.call_id,
                who=SERVER_ACTOR,
                via=channel.name,
                action="delivery_failed",
                details={"error": _describe(exc)},
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
        kind = _kind(request)
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
                await self.service.record_audit(
                    kind,
                    request.call_id,
                    who=SERVER_ACTOR,
                    via=channel.name,
                    action="update_failed",
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
            await self.service.record_audit(
                kind,
                call_id,
                who=SERVER_ACTOR,
                via="scheduler",
                action="escalated",
                details={"tier": tier, "to": [t.describe() for t in tiers[tier]]},
                project=project,
            )
        done = {
            (d["tier"], d["target"])
            for d in await self._records(call_id, kind=kind, project=project)
            if isinstance(d.get("tier"), int) and isinstance(d.get("target"), int)
        }
        failed = False
        for index, target in enumerate(tiers[tier]):
            if (tier, index) in done:
                continue
            channel = self.channel_for(target)
            if channel is None:
                if attempt == 0 and not _inbox_only(target):
                    await self.service.record_audit(
                        kind,
                        call_id,
                        who=SERVER_ACTOR,
                        via="channels",
                        action="not_delivered",
                        details={
                            "tier": tier,
                            "target": index,
                            "reason": f"no channel is configured for {target.describe()}",
                        },
                        project=project,
                    )
                continue
            token = _current.set((tier, index))
            try:
                await channel.deliver(request, target, tier=tier)
            except Exception as exc:
                failed = True
                log.warning("%s: delivering %s failed: %s", channel.name, call_id, exc)
                await self.service.record_audit(
                    kind,
                    call_id,
                    who=SERVER_ACTOR,
                    via=channel.name,
                    action="delivery_failed",
                    details={
                        "tier": tier,
                        "target": index,
                        "attempt": attempt + 1,
                        "error": _describe(exc),
                    },
                    project=project,
                )
            finally:
                _current.reset(token)
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
            details["tier"], details["target"] = where
        await self.service.record_audit(
            kind or await self._kind_of(call_id),
            call_id,
            who=SERVER_ACTOR,
            via=channel,
            action="delivered",
            details=details,
            project=_project.get(),
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


def _inbox_only(target: ContactChannel) -> bool:
    """A target that only names inbox users needs no delivery: the inbox shows it."""
    return (
        target.slack is None
        and target.email is None
        and target.sms is None
        and target.whatsapp is None
        and target.discord is None
        and target.teams is None
    )


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:500]


def request_kind(request: HumanContact | FunctionCall) -> str:
    return _kind(request)
