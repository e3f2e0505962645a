"""Who may see and decide a request: the directory and the effective policy loaded here, the
rules applied by ``_policy`` (one pure module). A refusal to decide is audited."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from functionlayer.models import FunctionCall

from functionlayer_server import _policy as policy
from functionlayer_server._accounts import Accounts
from functionlayer_server._errors import (
    AlreadyDecidedError,
    ConfirmationRequiredError,
    ForbiddenError,
    InvalidDecisionError,
    RoutingRefusedError,
    ServerError,
)
from functionlayer_server._grants import grants_refusal
from functionlayer_server._policy import Directory, Identity, Person
from functionlayer_server._store import RequestRecord

from ._audit import AuditLog
from ._records import Request, identity

__all__ = ["Authority", "policy_error"]


def policy_error(exc: policy.PolicyError) -> ServerError:
    if exc.code == "already_decided":
        return AlreadyDecidedError(exc.message)
    if exc.code == "forbidden":
        return ForbiddenError(exc.message)
    if exc.code == "routing_refused":
        return RoutingRefusedError(exc.message)
    if exc.code == "confirmation_required":
        return ConfirmationRequiredError(exc.message)
    return InvalidDecisionError(exc.message)


class Authority:
    def __init__(self, accounts: Accounts, rules: policy.OperatorPolicy, audit: AuditLog) -> None:
        self.accounts = accounts
        self.rules = rules
        self.audit = audit

    async def directory(self, spec: Any, project: str, extra: Sequence[Identity] = ()) -> Directory:
        """The persons the request's routing, the operator's rules and ``extra`` name."""
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

    async def effective(
        self, request: Request, project: str, extra: Sequence[Identity] = ()
    ) -> tuple[policy.Effective, Directory]:
        directory = await self.directory(request.spec, project, extra)
        fn = request.spec.fn if isinstance(request, FunctionCall) else None
        effective = policy.effective_policy(
            request.spec, self.rules.for_project(project), directory, fn=fn
        )
        return effective, directory

    async def check_routing(self, spec: Any, project: str) -> None:
        """A request routed outside the operator's rules is refused (``RoutingRefusedError``)
        before anything is stored or sent."""
        if policy.channels_of(spec) or (spec.policy is not None and spec.policy.responders):
            try:
                policy.check_routing(
                    spec,
                    project,
                    self.rules.for_project(project),
                    await self.directory(spec, project),
                )
            except policy.PolicyError as exc:
                raise policy_error(exc) from None

    async def may_see(self, request: Request, person: Person, project: str) -> bool:
        effective, directory = await self.effective(
            request, project, [Identity("user", person.name)]
        )
        return policy.may_see(request, project, person, effective, directory)

    async def irreversible(self, request: Request, project: str) -> bool:
        """Whether approving takes the deliberate second step (the agent's mark or the
        operator's policy): channels ask before offering Approve."""
        if not isinstance(request, FunctionCall):
            return False
        effective, _ = await self.effective(request, project)
        return effective.irreversible

    async def grants_allowed(self, call: FunctionCall, project: str) -> bool:
        """Whether the operator's policy allows grants for ``call`` now (channels ask before
        offering one; ``create_grant`` checks again, with the person)."""
        effective, _ = await self.effective(call, project)
        refusal = grants_refusal(self.rules.for_project(project), call.spec.fn, effective)
        return refusal is None

    async def approvals_required(self, request: Request, project: str) -> int:
        effective, _ = await self.effective(request, project)
        return effective.approvals_required

    def is_admin(self, person: Person) -> bool:
        return person.active and person.name in self.rules.admins

    async def decider(
        self,
        request: Request,
        record: RequestRecord,
        responder: Identity | str,
        via_identities: Sequence[Identity] | None,
        via: str,
    ) -> tuple[Person, policy.Effective]:
        """The person behind ``responder`` if the policy lets them decide ``request`` through
        a target whose own allow-list is ``via_identities``; else the policy's error (the
        refusal audited)."""
        who = identity(responder)
        effective, directory = await self.effective(request, record.project, [who])
        person = directory.resolve(who)
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
            await self.audit.refused(record, str(who), exc.message, via)
            raise policy_error(exc) from None
        assert person is not None
        return person, effective
