"""Scoped grants and operator rules: the decision rules, in one pure module (no I/O, no clock).

A *grant* is a person's approval of future calls: one function, an argument scope (conditions
of ``_conditions``, one per argument at least), the agents it serves (one agent token or the
whole project), a lifetime and a number of uses. It is only ever as strong as its person is
*today*: every use re-asks ``_policy`` whether that person may decide the call now, and whether
the operator's policy allows grants for it now. A grant never widens the operator's policy.

An *operator rule* (``_policy.OperatorRule``) is the operator's own decision for calls whose
arguments meet its conditions: reject rules win over approve rules, and both over grants.
Routing rules change who decides (``_policy.effective_policy``), not whether a person does.

The service loads the facts (the grant as stored now, the directory, the rules) and calls
these; the store makes the use a compare-and-set with the approval itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from functionlayer.models import FunctionCall

from functionlayer_server._conditions import (
    Condition,
    ConditionError,
    parse_condition,
    parse_conditions,
)
from functionlayer_server._policy import (
    Directory,
    Effective,
    OperatorRule,
    Person,
    PolicyError,
    ProjectRules,
    may_decide,
)
from functionlayer_server._store import GrantFields, GrantRow

__all__ = [
    "MAX_GRANT_SECONDS",
    "MAX_GRANT_USES",
    "Grant",
    "GrantRequest",
    "check_grant_request",
    "grant_refusal",
    "grants_refusal",
    "may_grant",
    "rule_decision",
    "scope_refusal",
]

MAX_GRANT_SECONDS = 90 * 24 * 3600.0
MAX_GRANT_USES = 10_000


@dataclass(frozen=True)
class Grant(GrantFields[tuple[Condition, ...]]):
    """A grant as the rules read it: its scope parsed into conditions."""

    def scope_json(self) -> str:
        return json.dumps([c.text() for c in self.scope], ensure_ascii=False)

    @staticmethod
    def scope_from_json(text: str) -> tuple[Condition, ...]:
        return tuple(parse_condition(t) for t in json.loads(text))

    @classmethod
    def from_row(cls, row: GrantRow) -> Grant:
        """The grant as stored (its scope parsed again: it is checked as written today)."""
        values = {f.name: getattr(row, f.name) for f in fields(row)}
        return cls(**{**values, "scope": cls.scope_from_json(row.scope)})

    def to_row(self) -> GrantRow:
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "scope"}
        return GrantRow(**values, scope=self.scope_json())

    def state(self, now: float) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= now:
            return "expired"
        if self.uses >= self.max_uses:
            return "used up"
        return "live"

    def to_json(self, now: float) -> dict[str, Any]:
        """For the person who made it, or an admin (never for an agent)."""
        return {
            "id": self.id,
            "project": self.project,
            "fn": self.fn,
            "scope": [c.text() for c in self.scope],
            "agents": "token" if self.token_id is not None else "project",
            "token_name": self.token_name or None,
            "person": self.person,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "max_uses": self.max_uses,
            "uses": self.uses,
            "revoked_at": self.revoked_at,
            "revoked_by": self.revoked_by,
            "source_call_id": self.source_call_id,
            "state": self.state(now),
        }


@dataclass(frozen=True)
class GrantRequest:
    """What a person asks for when granting (checked by ``check_grant_request``)."""

    scope: tuple[Condition, ...]
    agents: str
    """``token`` (the call's agent token only) or ``project`` (every agent of the project)."""
    lifetime_seconds: float
    max_uses: int


def _bad(message: str) -> ValueError:
    return ValueError(message)


def check_grant_request(data: Mapping[str, Any], call: FunctionCall) -> GrantRequest:
    """A person's grant form or API body, checked and bounded (``ValueError`` says why).
    ``scope`` defaults to the call's own arguments, each exact."""
    if not isinstance(data, Mapping):
        raise _bad("a grant is an object with scope, agents, lifetime_seconds and max_uses")
    unknown = set(data) - {"scope", "agents", "lifetime_seconds", "max_uses"}
    if unknown:
        raise _bad(f"unknown grant fields: {', '.join(sorted(unknown))}")
    raw_scope = data.get("scope")
    try:
        if raw_scope is None:
            scope = exact_scope(call.spec.kwargs)
        else:
            scope = parse_conditions(raw_scope, where="scope")
    except ConditionError as exc:
        raise _bad(str(exc)) from None
    agents = data.get("agents", "token")
    if agents not in ("token", "project"):
        raise _bad("agents must be 'token' (this agent only) or 'project' (every agent)")
    lifetime = data.get("lifetime_seconds")
    if (
        isinstance(lifetime, bool)
        or not isinstance(lifetime, int | float)
        or not 0 < lifetime <= MAX_GRANT_SECONDS
    ):
        raise _bad(f"lifetime_seconds must be a number of seconds, at most {MAX_GRANT_SECONDS:.0f}")
    uses = data.get("max_uses")
    if isinstance(uses, bool) or not isinstance(uses, int) or not 1 <= uses <= MAX_GRANT_USES:
        raise _bad(f"max_uses must be a whole number from 1 to {MAX_GRANT_USES}")
    problem = scope_refusal(scope, call.spec.kwargs)
    if problem is not None:
        raise _bad(f"the scope must cover the call it is made from: {problem}")
    return GrantRequest(scope, str(agents), float(lifetime), uses)


def exact_scope(kwargs: Mapping[str, Any]) -> tuple[Condition, ...]:
    """Each of the call's arguments, exactly (arguments that are objects or lists: any value
    would be too wide, so they cannot be granted exactly and make this fail)."""
    found: list[Condition] = []
    for name, value in kwargs.items():
        found.append(parse_condition(f"{name} == {json.dumps(value)}"))
    return tuple(found)


def scope_refusal(scope: Sequence[Condition], kwargs: Mapping[str, Any]) -> str | None:
    """Why ``scope`` does not cover these arguments (None: it does). Every argument of the
    call must be named by the scope (an argument the person never saw is not granted), and
    every condition must hold."""
    named = {c.arg for c in scope}
    for name in kwargs:
        if name not in named:
            return f"argument {name!r} is not in the grant's scope"
    for condition in scope:
        if not condition.matches(kwargs):
            return f"{condition.text()!r} does not hold"
    return None


def grants_refusal(rules: ProjectRules, fn: str, effective: Effective) -> str | None:
    """Why the operator's policy allows no grant for ``fn`` (as it governs this call) now."""
    if not rules.grants:
        return "the operator's policy allows no grants in this project"
    rule = rules.functions.get(fn)
    explicit = rule.grants if rule is not None else None
    if explicit is False:
        return f"the operator's policy allows no grants for {fn}"
    if effective.approvals_required > 1 and explicit is not True:
        return (
            f"{fn} needs {effective.approvals_required} approvals: the operator's policy "
            "allows no grants for it"
        )
    if effective.irreversible and explicit is not True:
        # Each approval of an irreversible call is a deliberate second step; a grant would
        # approve later ones with none (the agent's own mark counts too: it can only narrow).
        return f"{fn} is irreversible: the operator's policy allows no grants for it"
    return None


def may_grant(
    call: FunctionCall,
    project: str,
    person: Person | None,
    effective: Effective,
    directory: Directory,
    rules: ProjectRules,
) -> str | None:
    """Why ``person`` may not grant calls like ``call`` (None: they may). Exactly those who
    may decide the call may grant, where the operator's policy allows grants."""
    try:
        may_decide(call, project, person, effective, directory)
    except PolicyError as exc:
        return exc.message
    return grants_refusal(rules, call.spec.fn, effective)


def grant_refusal(
    grant: Grant,
    call: FunctionCall,
    project: str,
    token_id: str,
    now: float,
    person: Person | None,
    effective: Effective,
    directory: Directory,
    rules: ProjectRules,
) -> str | None:
    """Why ``grant`` (as stored now) does not approve ``call`` of ``project``, created by the
    agent token ``token_id``, at ``now`` (None: it does). ``person``: the grant's person as the
    directory knows them now; ``effective``: the policy governing the call now."""
    if grant.project != project or grant.fn != call.spec.fn:
        return "the grant is for another project or function"
    state = grant.state(now)
    if state != "live":
        return f"the grant is {state}"
    if grant.token_id is not None and grant.token_id != token_id:
        return "the grant is for another agent token"
    problem = scope_refusal(grant.scope, call.spec.kwargs)
    if problem is not None:
        return problem
    return may_grant(call, project, person, effective, directory, rules)


def rule_decision(rules: ProjectRules, fn: str, kwargs: Mapping[str, Any]) -> OperatorRule | None:
    """The operator's decision rule for this call, if any: the first matching reject rule,
    else the first matching approve rule (rejects win over approvals and over grants)."""
    matching = [r for r in rules.rules if r.action != "route" and r.matches(fn, kwargs)]
    for rule in matching:
        if rule.action == "reject":
            return rule
    return matching[0] if matching else None
