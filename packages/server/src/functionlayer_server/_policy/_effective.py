"""The effective policy of a request: the stricter of the agent's and the operator's (the
agent may only narrow the operator's rules)."""

from __future__ import annotations

from dataclasses import dataclass

from functionlayer import ApprovalPolicy, FunctionCallSpec

from functionlayer_server._policy._common import Spec
from functionlayer_server._policy._directory import Directory
from functionlayer_server._policy._operator import ProjectRules
from functionlayer_server._policy._routing import routing_identities

__all__ = ["Effective", "effective_policy"]


@dataclass(frozen=True)
class Effective:
    """What actually governs a request: the agent may only narrow the operator's rules."""

    approvals_required: int
    restrictions: tuple[frozenset[str], ...]
    """Each a set of names/identities; a decider must be named in every one."""
    audience: frozenset[str] | None
    """Person names the routing names personally; None when it names nobody (anyone in the
    project may answer)."""
    irreversible: bool = False
    """The agent's ``irreversible`` or the operator's: either one suffices (the agent cannot
    unmark what the operator marked)."""


def effective_policy(
    spec: Spec, rules: ProjectRules, directory: Directory, *, fn: str | None = None
) -> Effective:
    policy: ApprovalPolicy | None = spec.policy
    required = policy.approvals_required if policy is not None else 1
    restrictions: list[frozenset[str]] = []
    if rules.deciders is not None:
        restrictions.append(rules.deciders)
    rule = rules.functions.get(fn) if fn is not None else None
    irreversible = bool(getattr(spec, "irreversible", None)) or (
        rule is not None and rule.irreversible
    )
    if rule is not None:
        required = max(required, rule.approvals_required)
        if rule.responders is not None:
            restrictions.append(rule.responders)
    if policy is not None and policy.responders:
        restrictions.append(frozenset(policy.responders))
    if fn is not None and isinstance(spec, FunctionCallSpec):
        # The operator's routing rules whose conditions the call's arguments meet.
        for op_rule in rules.rules:
            if op_rule.action == "route" and op_rule.matches(fn, spec.kwargs):
                required = max(required, op_rule.approvals_required or 1)
                if op_rule.responders is not None:
                    restrictions.append(op_rule.responders)
    named = {
        p.name for p in (directory.resolve(i) for i in routing_identities(spec)) if p is not None
    }
    return Effective(
        approvals_required=required,
        restrictions=tuple(restrictions),
        audience=frozenset(named) if named else None,
        irreversible=irreversible,
    )
