"""Grants offered in Slack, Discord and email: "Approve and allow similar calls…".

A channel offers a grant only where the operator's policy allows grants for the call
(``ApprovalService.grants_allowed``) and the call can be shown in full; the person then picks
from bounded presets (never free text): which arguments (each exactly as in this call, or one
numeric argument up to this call's value with the rest exact), which agents (the call's agent
token, or every agent of the project), a lifetime and a maximum number of uses. Every preset's
scope is shown in full before anything is made. :func:`approve_and_grant` then checks the grant
(the service's own rule: who may grant, the policy, the scope), approves the call and records
the grant with ``via`` = the channel; a refused grant approves nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from functionlayer.models import FunctionCall, FunctionCallStatus

from functionlayer_server._errors import InvalidRequestError
from functionlayer_server._grants import Grant, exact_scope
from functionlayer_server._policy import Identity, IdentityKind
from functionlayer_server._schema import allowed
from functionlayer_server._service import FUNCTION_CALL, ApprovalService

__all__ = [
    "AGENTS",
    "LIFETIMES",
    "USES",
    "GrantChoice",
    "approve_and_grant",
    "chat_grant",
    "describe_choice",
    "grant_offered",
    "scope_presets",
]

LIFETIMES: dict[str, tuple[float, str]] = {
    "1h": (3600.0, "1 hour"),
    "1d": (86400.0, "1 day"),
    "7d": (7 * 86400.0, "7 days"),
}
USES: dict[str, int] = {"1": 1, "5": 5, "25": 25}
AGENTS: dict[str, str] = {
    "token": "only the agent token that made this call",
    "project": "every agent of the project",
}
MAX_SCOPE_TEXT = 1500
"""A scope longer than this cannot be shown in full in a message or modal: no grant offered."""


def scope_presets(call: FunctionCall) -> dict[str, list[str]]:
    """The scopes a person may pick for ``call``, by preset id: ``exact`` (each argument as in
    this call) and ``upto:<name>`` for each numeric argument (that argument at most this call's
    value, the rest exact). Empty when the arguments cannot be granted exactly."""
    try:
        exact = [c.text() for c in exact_scope(call.spec.kwargs)]
    except ValueError:
        return {}
    presets = {"exact": exact}
    for index, (name, value) in enumerate(call.spec.kwargs.items()):
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        bounded = list(exact)
        bounded[index] = f"{name} <= {json.dumps(value)}"
        presets[f"upto:{name}"] = bounded
    return {key: lines for key, lines in presets.items() if _fits(lines)}


def _fits(lines: list[str]) -> bool:
    return sum(len(line) + 1 for line in lines) <= MAX_SCOPE_TEXT


@dataclass(frozen=True)
class GrantChoice:
    """A person's picks, each one of the presets (checked by :meth:`parse`)."""

    scope: str
    agents: str
    lifetime: str
    uses: str

    @classmethod
    def parse(cls, call: FunctionCall, values: dict[str, Any]) -> GrantChoice:
        """The picks in ``values`` (``scope``, ``agents``, ``lifetime``, ``uses``), each a
        known preset; else ``InvalidRequestError``."""
        choice = cls(
            scope=str(values.get("scope") or ""),
            agents=str(values.get("agents") or ""),
            lifetime=str(values.get("lifetime") or ""),
            uses=str(values.get("uses") or ""),
        )
        if (
            choice.scope not in scope_presets(call)
            or choice.agents not in AGENTS
            or choice.lifetime not in LIFETIMES
            or choice.uses not in USES
        ):
            raise InvalidRequestError("this grant is not one of the choices offered")
        return choice

    def body(self, call: FunctionCall) -> dict[str, Any]:
        """The grant request for the service (``_grants.check_grant_request``)."""
        return {
            "scope": scope_presets(call)[self.scope],
            "agents": self.agents,
            "lifetime_seconds": LIFETIMES[self.lifetime][0],
            "max_uses": USES[self.uses],
        }


def describe_choice(call: FunctionCall, choice: GrantChoice) -> str:
    """The grant in full, in words: what the person confirms."""
    scope = " AND ".join(scope_presets(call)[choice.scope]) or "(no arguments)"
    uses = USES[choice.uses]
    return (
        f"Future calls of {call.spec.fn} where {scope}, from {AGENTS[choice.agents]}, "
        f"for {LIFETIMES[choice.lifetime][1]}, at most {uses} use{'s' if uses != 1 else ''}"
    )


async def grant_offered(service: ApprovalService, call: FunctionCall, project: str | None) -> bool:
    """Whether a channel may offer "Approve and allow similar…" for ``call``: approvable, a
    scope that can be shown in full, and the operator's policy allows grants for it."""
    if project is None or "approve" not in allowed(call.spec) or not scope_presets(call):
        return False
    return await service.grants_allowed(call, project)


async def approve_and_grant(
    service: ApprovalService,
    call: FunctionCall,
    choice: GrantChoice,
    *,
    person: str,
    responder: str,
    via: str,
    via_identities: Sequence[Identity] | None = None,
) -> Grant:
    """Approve ``call`` as ``responder`` (if still pending) and grant calls like it as
    ``person``: the grant is checked first (``ServerError`` if refused), so a refused grant
    approves nothing. ``person`` is the directory name the channel's identity resolved to."""
    project = await service.get_project(FUNCTION_CALL, call.call_id)
    if project is None:
        raise InvalidRequestError("this request no longer exists")
    body = choice.body(call)
    await service.create_grant(
        call.call_id, body, person_name=person, project=project, via=via, dry_run=True
    )
    if call.status is None or call.status.approved is None:
        await service.respond_function_call(
            call.call_id,
            FunctionCallStatus(approved=True),
            responder=responder,
            via=via,
            project=project,
            via_identities=via_identities,
        )
    return await service.create_grant(
        call.call_id, body, person_name=person, project=project, via=via
    )


async def chat_grant(
    service: ApprovalService,
    call: FunctionCall,
    choice: GrantChoice,
    *,
    via: IdentityKind,
    user: str,
    via_identities: Sequence[Identity] | None,
) -> Grant:
    """A chat channel's "Approve and allow similar…": ``via:user`` must be someone the policy
    lets decide at this target (``ForbiddenError``, audited by the service, if not); the grant
    is made as the directory person that identity resolves to (``approve_and_grant``)."""
    person = await service.authorize(
        FUNCTION_CALL,
        call.call_id,
        Identity(via, user),
        via=via,
        via_identities=via_identities,
    )
    return await approve_and_grant(
        service,
        call,
        choice,
        person=person.name,
        responder=f"{via}:{user}",
        via=via,
        via_identities=via_identities,
    )
