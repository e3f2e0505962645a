"""Every decision rule of the server, in one pure module (no I/O, no clock, no database).

Who may be asked (routing), who may see a request, who may decide it, what an answer does to
it (options, quorum of distinct *persons*, transitions) are answered here and only here. The
service loads the facts (the directory of persons, the operator's rules, the stored request),
calls these functions inside its respond path, and stores what they return. Channels only turn
their input into an :class:`Identity` (a Slack user id, an email address, an inbox login) and a
decision; they never decide who is allowed.

The threat model (docs/security.md): the agent is untrusted for decisions. Nothing in a request
the agent sends can name an approver who is not in the operator's directory, widen the
operator's routing, lower the operator's minimum policy, or make one person count twice.

One module per concept: ``_directory`` (identities, persons), ``_operator`` (the operator's
policy file), ``_routing`` (who may be asked), ``_effective`` (the stricter of the agent's and
the operator's policy), ``_access`` (who may see and decide: ``refusal``, the one place),
``_decisions`` (what an answer does), ``_decided`` (why a request can no longer be answered).
"""

from __future__ import annotations

from functionlayer_server._policy._access import Refusal, may_decide, may_see, refusal
from functionlayer_server._policy._common import PolicyError, Request, Spec
from functionlayer_server._policy._decided import decided_message
from functionlayer_server._policy._decisions import (
    Decision,
    Transition,
    answer_contact,
    apply_decision,
    option_text,
    resolve_option,
)
from functionlayer_server._policy._directory import (
    Directory,
    Identity,
    IdentityKind,
    Person,
    parse_identity_text,
)
from functionlayer_server._policy._effective import Effective, effective_policy
from functionlayer_server._policy._operator import (
    REMINDER_KEYS,
    FunctionRule,
    OperatorPolicy,
    OperatorRule,
    ProjectRules,
    Reminders,
    RuleAction,
)
from functionlayer_server._policy._routing import channels_of, check_routing, routing_identities

__all__ = [
    "REMINDER_KEYS",
    "Decision",
    "Directory",
    "Effective",
    "FunctionRule",
    "Identity",
    "IdentityKind",
    "OperatorPolicy",
    "OperatorRule",
    "Person",
    "PolicyError",
    "ProjectRules",
    "Refusal",
    "Reminders",
    "Request",
    "RuleAction",
    "Spec",
    "Transition",
    "answer_contact",
    "apply_decision",
    "channels_of",
    "check_routing",
    "decided_message",
    "effective_policy",
    "may_decide",
    "may_see",
    "option_text",
    "parse_identity_text",
    "refusal",
    "resolve_option",
    "routing_identities",
]

_refusal = refusal
"""The name the rule had when it lived in one module (``_grants`` imports it)."""
