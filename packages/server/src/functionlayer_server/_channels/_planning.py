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
the operator's escalation targets get it (audit ``escalated``, details ``source: operator``);
a failed reminder or escalation delivery is retried with backoff like a first delivery, and a
target it reached is not sent it again (its delivery record names the step and target).
Delivery records live in the audit trail (action ``delivered``, details
``{"channel", "tier", "target", "data"}``), which is durable and shared by every server process
on the database.
"""

from __future__ import annotations

from functionlayer.models import ContactChannel, FunctionCall

from functionlayer_server._channels._base import ChannelRequest
from functionlayer_server._policy import OperatorPolicy, Reminders
from functionlayer_server._service import FUNCTION_CALL, HUMAN_CONTACT
from functionlayer_server._store import NewJob

__all__ = [
    "DELIVER_TOPIC",
    "REMIND_TOPIC",
    "SERVER_ACTOR",
    "UPDATE_TOPIC",
    "delivery_jobs",
    "delivery_tiers",
    "escalation_targets",
    "inbox_only",
    "reminder_jobs",
    "request_kind",
]

DELIVER_TOPIC = "channels.deliver"
UPDATE_TOPIC = "channels.update"
REMIND_TOPIC = "channels.remind"
SERVER_ACTOR = "functionlayer-server"


def request_kind(request: ChannelRequest) -> str:
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


def inbox_only(target: ContactChannel) -> bool:
    """A target that only names inbox users needs no delivery: the inbox shows it."""
    return (
        target.slack is None
        and target.email is None
        and target.sms is None
        and target.whatsapp is None
        and target.discord is None
        and target.teams is None
    )
