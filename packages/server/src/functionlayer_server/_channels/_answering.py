"""What every chat channel does the same way with an answer (a click, a form, a typed reply)
before and while it decides: the person must be someone the policy lets decide at the target
the message was delivered to, and the service's refusals become a message for that person.

A refusal is raised as :class:`Refused` (its message is shown to the person only) after it is
audited: by the service for a decision it refuses, by the channel (``audit``) for a refusal
found here first. Nothing here decides; the service decides each request once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar

from functionlayer.models import ResponseOption

from functionlayer_server._channels._base import ChannelRequest, find_delivery
from functionlayer_server._channels._planning import request_kind
from functionlayer_server._errors import (
    AlreadyDecidedError,
    ConfirmationRequiredError,
    ForbiddenError,
    InvalidDecisionError,
)
from functionlayer_server._policy import Identity, IdentityKind
from functionlayer_server._service import ApprovalService

__all__ = [
    "NOT_ALLOWED",
    "NeedsConfirmation",
    "Refused",
    "allowed_identities",
    "audit_refused",
    "authorize_person",
    "chosen_option",
    "delivered_to",
    "refusals",
]

NOT_ALLOWED = "You are not allowed to answer this request."

Audit = Callable[[str], Awaitable[None]]
"""Records a refusal (its reason) on the request, the channel's way."""


class Refused(Exception):
    """An answer that must not decide anything; the message is shown to the person only."""


class NeedsConfirmation(Exception):
    """Approve on an irreversible function: nothing was decided; the clicker is asked to
    confirm with a second, deliberate click."""


def chosen_option(options: Sequence[ResponseOption] | None, index: int) -> str:
    """The name of the option a button stands for (its place in the request's ``options``),
    or :class:`Refused` when the request has no such option."""
    listed = options or []
    if index >= len(listed):
        raise Refused("This option is not part of the request.")
    return listed[index].name


class _Target(Protocol):
    @property
    def allowed_responder_ids(self) -> list[str] | None: ...


Target = TypeVar("Target", bound=_Target)


class _Delivered(Protocol):
    async def deliveries_of(self, request: ChannelRequest) -> list[dict[str, Any]]: ...


async def delivered_to(
    channel: _Delivered,
    request: ChannelRequest,
    place: dict[str, str],
    target_of: Callable[[str], Target | None],
    *,
    wait: bool = True,
) -> Target | None:
    """The target of the delivery of ``request`` whose message is at ``place`` (the saved
    delivery has each of its fields), or None when no delivery of ``request`` is there."""
    delivery = await find_delivery(
        lambda: channel.deliveries_of(request),
        lambda d: all(d.get(field) == value for field, value in place.items()),
        wait=wait,
    )
    return None if delivery is None else target_of(str(delivery.get("target")))


async def audit_refused(
    service: ApprovalService,
    request: ChannelRequest,
    via: str,
    user: str,
    reason: str,
    **details: Any,
) -> None:
    """Record on ``request`` that ``via:user`` (or an unknown person) was refused, and why."""
    await service.record_audit(
        request_kind(request),
        request.call_id,
        who=f"{via}:{user}" if user else "unknown",
        via=via,
        action="refused",
        details={"reason": reason, **details},
    )


def allowed_identities(via: IdentityKind, target: _Target) -> list[Identity] | None:
    """The target's own allow-list (``allowed_responder_ids``) as identities, if any."""
    allowed = target.allowed_responder_ids
    return None if allowed is None else [Identity(via, rid) for rid in allowed]


async def authorize_person(
    service: ApprovalService,
    request: ChannelRequest,
    user: str,
    target: Target | None,
    *,
    via: IdentityKind,
    unknown: tuple[str, str],
    audit: Audit,
) -> Target:
    """``target`` (where the answered message was delivered), if ``user`` may answer there.

    Who may decide is the policy's call (the directory, the operator's rules, the request's
    responders, and this target's ``allowed_responder_ids``): a person it refuses is audited by
    the service. No user, or a message that is not a delivery of ``request`` (``target`` None),
    is refused with the reason ``unknown[0]`` or ``unknown[1]``, audited by ``audit``."""
    reason = unknown[0] if not user else unknown[1] if target is None else None
    if reason is None and target is not None:
        try:
            await service.authorize(
                request_kind(request),
                request.call_id,
                Identity(via, user),
                via=via,
                via_identities=allowed_identities(via, target),
            )
        except ForbiddenError as exc:  # audited by the service
            raise Refused(NOT_ALLOWED) from exc
        return target
    await audit(reason or "not allowed")
    raise Refused(NOT_ALLOWED)


@asynccontextmanager
async def refusals(
    already: Callable[[], Awaitable[None]] | None = None, *, confirm: bool = False
) -> AsyncIterator[None]:
    """The service's refusals of a decision or an answer, as messages for the person:
    already decided (then ``already`` audits it, where the channel does), not allowed (audited
    by the service), not a valid decision; with ``confirm``, an Approve that needs the
    deliberate second click raises :class:`NeedsConfirmation`."""
    try:
        yield
    except AlreadyDecidedError as exc:
        if already is not None:
            await already()
        raise Refused(f"Already decided: {exc.message}") from exc
    except ForbiddenError as exc:  # audited by the service
        raise Refused(NOT_ALLOWED) from exc
    except InvalidDecisionError as exc:
        if confirm and isinstance(exc, ConfirmationRequiredError):
            raise NeedsConfirmation(exc.message) from exc
        raise Refused(exc.message) from exc
