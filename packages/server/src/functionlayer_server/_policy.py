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
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from functionlayer.models import (
    ApprovalPolicy,
    ContactChannel,
    FunctionCall,
    FunctionCallSpec,
    FunctionCallStatus,
    HumanContact,
    HumanContactSpec,
    HumanContactStatus,
    ResponseOption,
)

from functionlayer_server import _schema
from functionlayer_server._conditions import Condition, ConditionError, parse_conditions

__all__ = [
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
    "Transition",
    "answer_contact",
    "apply_decision",
    "check_routing",
    "effective_policy",
    "may_decide",
    "may_see",
    "option_text",
    "resolve_option",
]

IdentityKind = Literal["user", "email", "slack", "discord", "teams"]
Spec = FunctionCallSpec | HumanContactSpec
Request = FunctionCall | HumanContact


class PolicyError(Exception):
    """A rule refused something. ``code`` says which kind of refusal (the service maps it to
    an HTTP status): ``routing_refused``, ``forbidden``, ``invalid_decision``,
    ``already_decided``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Identity:
    """How a channel knows someone: an inbox login, an email address, a Slack or Discord id, a
    Microsoft Teams (Entra/AAD object) id."""

    kind: IdentityKind
    value: str

    def normalized(self) -> Identity:
        if self.kind in ("email", "teams"):  # Teams ids are GUIDs: any case is the same id
            return Identity(self.kind, self.value.strip().lower())
        return Identity(self.kind, self.value.strip())

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


@dataclass(frozen=True)
class Person:
    """One human in the operator's directory, with every identity linked to them."""

    name: str
    emails: frozenset[str] = frozenset()
    slack_ids: frozenset[str] = frozenset()
    discord_ids: frozenset[str] = frozenset()
    teams_ids: frozenset[str] = frozenset()
    projects: frozenset[str] = frozenset({"default"})
    disabled: bool = False

    @property
    def active(self) -> bool:
        return not self.disabled

    @property
    def username(self) -> str:
        """The inbox login (the person's name)."""
        return self.name

    def owns(self, identity: Identity) -> bool:
        ident = identity.normalized()
        if ident.kind == "user":
            return ident.value == self.name
        if ident.kind == "email":
            return ident.value in self.emails
        if ident.kind == "slack":
            return ident.value in self.slack_ids
        if ident.kind == "teams":
            return ident.value in self.teams_ids
        return ident.value in self.discord_ids


@dataclass(frozen=True)
class Directory:
    """The persons the decision at hand may involve (the service loads only those it needs)."""

    persons: tuple[Person, ...] = ()

    @classmethod
    def of(cls, persons: Iterable[Person]) -> Directory:
        return cls(tuple(persons))

    def resolve(self, identity: Identity) -> Person | None:
        for person in self.persons:
            if person.owns(identity):
                return person
        return None

    def resolve_name(self, text: str) -> Person | None:
        """A name as written in a policy (``responders``): a person's name, one of their email
        addresses, or a Slack/Discord id, optionally prefixed ``email:``/``slack:``/...."""
        return self.resolve_any(parse_identity_text(text))

    def resolve_any(self, candidates: Sequence[Identity]) -> Person | None:
        for identity in candidates:
            found = self.resolve(identity)
            if found is not None:
                return found
        return None


def parse_identity_text(text: str) -> list[Identity]:
    """The identities a bare string in a policy may mean, most specific first."""
    text = text.strip()
    kind, sep, rest = text.partition(":")
    if sep and kind in ("user", "email", "slack", "discord", "teams") and rest:
        return [Identity(kind, rest)]  # type: ignore[arg-type]
    if "@" in text:
        return [Identity("email", text), Identity("user", text)]
    return [
        Identity("user", text),
        Identity("slack", text),
        Identity("discord", text),
        Identity("teams", text),
    ]


@dataclass(frozen=True)
class FunctionRule:
    """The operator's minimum for one function name (e.g. ``wire_money``)."""

    approvals_required: int = 1
    responders: frozenset[str] | None = None
    """Only these persons (names or identities) may decide; None: no extra restriction."""
    irreversible: bool = False
    """Approving takes a deliberate second step (``confirmed_irreversible``), whatever the
    agent's request says."""
    grants: bool | None = None
    """False: no grants for this function; True: grants even with several approvals; None:
    the project's setting, and never with ``approvals_required > 1`` (see ``_grants``)."""


RuleAction = Literal["approve", "reject", "route"]


@dataclass(frozen=True)
class OperatorRule:
    """An operator's rule (policy as code): a decision, or a routing, for calls of ``fn``
    whose arguments meet every condition of ``when`` (the language of ``_conditions``)."""

    name: str
    fn: str
    when: tuple[Condition, ...]
    action: RuleAction
    reason: str | None = None
    """``reject``: the feedback the agent's LLM gets."""
    approvals_required: int | None = None
    """``route``: at least this many distinct persons must approve."""
    responders: frozenset[str] | None = None
    """``route``: only these persons may decide."""

    def matches(self, fn: str, kwargs: Mapping[str, Any]) -> bool:
        return fn == self.fn and all(c.matches(kwargs) for c in self.when)


@dataclass(frozen=True)
class ProjectRules:
    """What the operator allows in one project. Directory members of the project may always be
    asked; these widen *who may be asked* (never who may decide: only persons decide)."""

    email_domains: frozenset[str] = frozenset()
    email_addresses: frozenset[str] = frozenset()
    slack_channels: frozenset[str] = frozenset()
    discord_channels: frozenset[str] = frozenset()
    teams_conversations: frozenset[str] = frozenset()
    deciders: frozenset[str] | None = None
    """Only these persons may decide in this project; None: every member of the project."""
    functions: Mapping[str, FunctionRule] = field(default_factory=dict)
    default_timeout_seconds: float | None = None
    reminders: Reminders | None = None
    """Reminders and escalation before a pending request expires (see ``Reminders``)."""
    grants: bool = True
    """False: nobody may grant future calls in this project."""
    rules: tuple[OperatorRule, ...] = ()
    """Auto-approve, auto-reject and routing rules, in the file's order."""


@dataclass(frozen=True)
class OperatorPolicy:
    projects: Mapping[str, ProjectRules] = field(default_factory=dict)
    default: ProjectRules = field(default_factory=ProjectRules)
    admins: frozenset[str] = frozenset()
    """Persons who see and may revoke every grant (the inbox's grants page, the API)."""

    def for_project(self, project: str) -> ProjectRules:
        return self.projects.get(project, self.default)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> OperatorPolicy:
        """From the operator's TOML file (docs/security.md shows the format)."""
        known_top = {"projects", "default", "admins"}
        unknown = set(data) - known_top
        if unknown:
            raise ValueError(f"unknown keys in the policy file: {', '.join(sorted(unknown))}")
        projects = {
            str(name): _project_rules(str(name), value)
            for name, value in (data.get("projects") or {}).items()
        }
        default = _project_rules("default", data["default"]) if "default" in data else None
        admins = _strings("admins", data["admins"]) if "admins" in data else frozenset()
        return cls(projects=projects, default=default or ProjectRules(), admins=admins)


def _strings(where: str, value: Any) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError(f"{where} must be a list of non-empty strings")
    return frozenset(v.strip() for v in value)


def _project_rules(name: str, data: Any) -> ProjectRules:
    if not isinstance(data, Mapping):
        raise ValueError(f"projects.{name} must be a table")
    allowed = {
        "email_domains",
        "email_addresses",
        "slack_channels",
        "discord_channels",
        "teams_conversations",
        "deciders",
        "functions",
        "default_timeout_seconds",
        *REMINDER_KEYS,
        "grants",
        "rules",
    }
    unknown = set(data) - allowed
    if unknown:
        raise ValueError(f"unknown keys in projects.{name}: {', '.join(sorted(unknown))}")
    functions: dict[str, FunctionRule] = {}
    for fn, rule in (data.get("functions") or {}).items():
        if not isinstance(rule, Mapping) or set(rule) - {
            "approvals_required",
            "responders",
            "irreversible",
            "grants",
        }:
            raise ValueError(
                f"projects.{name}.functions.{fn} takes approvals_required, responders, "
                "irreversible and grants"
            )
        irreversible = rule.get("irreversible", False)
        if not isinstance(irreversible, bool):
            raise ValueError(f"projects.{name}.functions.{fn}.irreversible must be true or false")
        fn_grants = rule.get("grants")
        if fn_grants is not None and not isinstance(fn_grants, bool):
            raise ValueError(f"projects.{name}.functions.{fn}.grants must be true or false")
        required = rule.get("approvals_required", 1)
        if not isinstance(required, int) or isinstance(required, bool) or required < 1:
            raise ValueError(f"projects.{name}.functions.{fn}.approvals_required must be >= 1")
        responders = rule.get("responders")
        functions[str(fn)] = FunctionRule(
            approvals_required=required,
            responders=None
            if responders is None
            else _strings(f"projects.{name}.functions.{fn}.responders", responders),
            irreversible=irreversible,
            grants=fn_grants,
        )
    timeout = data.get("default_timeout_seconds")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
    ):
        raise ValueError(f"projects.{name}.default_timeout_seconds must be a positive number")
    deciders = data.get("deciders")
    project_grants = data.get("grants", True)
    if not isinstance(project_grants, bool):
        raise ValueError(f"projects.{name}.grants must be true or false")
    return ProjectRules(
        email_domains=frozenset(
            d.lower().lstrip("@")
            for d in _strings(f"projects.{name}.email_domains", data.get("email_domains", []))
        ),
        email_addresses=frozenset(
            a.lower()
            for a in _strings(f"projects.{name}.email_addresses", data.get("email_addresses", []))
        ),
        slack_channels=_strings(f"projects.{name}.slack_channels", data.get("slack_channels", [])),
        discord_channels=_strings(
            f"projects.{name}.discord_channels", data.get("discord_channels", [])
        ),
        teams_conversations=_strings(
            f"projects.{name}.teams_conversations", data.get("teams_conversations", [])
        ),
        deciders=None if deciders is None else _strings(f"projects.{name}.deciders", deciders),
        functions=functions,
        default_timeout_seconds=float(timeout) if timeout is not None else None,
        reminders=_reminders(name, data),
        grants=project_grants,
        rules=_operator_rules(name, data.get("rules", [])),
    )


# -- reminders and escalation (operator-set) --------------------------------------------------

REMINDER_KEYS = ("remind_after_seconds", "escalate_after_seconds", "escalate_to")


@dataclass(frozen=True)
class Reminders:
    """The operator's reminders for a project's pending requests: ``remind_after_seconds``
    after creation the request's own targets are sent it again (audit ``reminded``);
    ``escalate_after_seconds`` after creation it is also sent to ``escalate_to`` (audit
    ``escalated``). Each fires once, only while the request is pending and before it expires.
    They widen where a request is *shown*, never who may decide (``deciders`` and the
    function rules still say that)."""

    remind_after_seconds: float | None = None
    escalate_after_seconds: float | None = None
    escalate_to: tuple[ContactChannel, ...] = ()


def _seconds(where: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{where} must be a positive number of seconds")
    return float(value)


def _reminders(name: str, data: Mapping[str, Any]) -> Reminders | None:
    remind = _seconds(f"projects.{name}.remind_after_seconds", data.get("remind_after_seconds"))
    escalate = _seconds(
        f"projects.{name}.escalate_after_seconds", data.get("escalate_after_seconds")
    )
    raw = data.get("escalate_to")
    if (raw is None) != (escalate is None):
        raise ValueError(f"projects.{name}: escalate_after_seconds and escalate_to go together")
    targets: list[ContactChannel] = []
    if raw is not None:
        if not isinstance(raw, list) or not raw:
            raise ValueError(
                f"projects.{name}.escalate_to must be a list of contact channels "
                '(e.g. [{slack = {channel_or_user_id = "C123"}}])'
            )
        for entry in raw:
            try:
                target = ContactChannel.model_validate(entry)
            except ValueError as exc:
                raise ValueError(f"projects.{name}.escalate_to: {exc}") from None
            if target == ContactChannel():
                raise ValueError(f"projects.{name}.escalate_to has an entry naming no channel")
            targets.append(target)
    if remind is None and escalate is None:
        return None
    return Reminders(remind, escalate, tuple(targets))


def _operator_rules(project: str, data: Any) -> tuple[OperatorRule, ...]:
    """``[[projects.NAME.rules]]`` tables: ``name``, ``fn``, ``when`` (conditions), ``action``
    (``approve``, ``reject`` with a ``reason``, ``route`` with ``approvals_required`` and/or
    ``responders``)."""
    if not isinstance(data, list):
        raise ValueError(f"projects.{project}.rules must be an array of tables")
    found: list[OperatorRule] = []
    names: set[str] = set()
    for index, item in enumerate(data):
        where = f"projects.{project}.rules[{index}]"
        if not isinstance(item, Mapping):
            raise ValueError(f"{where} must be a table")
        unknown = set(item) - {
            "name",
            "fn",
            "when",
            "action",
            "reason",
            "approvals_required",
            "responders",
        }
        if unknown:
            raise ValueError(f"unknown keys in {where}: {', '.join(sorted(unknown))}")
        rule_name, fn, action = item.get("name"), item.get("fn"), item.get("action")
        if not isinstance(rule_name, str) or not rule_name.strip() or rule_name in names:
            raise ValueError(f"{where}.name must be a unique non-empty string")
        if not isinstance(fn, str) or not fn.strip():
            raise ValueError(f"{where}.fn must name a function")
        if action not in ("approve", "reject", "route"):
            raise ValueError(f"{where}.action must be approve, reject or route")
        try:
            when = parse_conditions(item.get("when", []), where=f"{where}.when")
        except ConditionError as exc:
            raise ValueError(str(exc)) from None
        reason = item.get("reason")
        if action == "reject" and (not isinstance(reason, str) or not reason.strip()):
            raise ValueError(f"{where}: a reject rule needs a reason (the agent's feedback)")
        required = item.get("approvals_required")
        responders = item.get("responders")
        if action == "route":
            if required is None and responders is None:
                raise ValueError(f"{where}: a route rule sets approvals_required or responders")
            if required is not None and (
                not isinstance(required, int) or isinstance(required, bool) or required < 1
            ):
                raise ValueError(f"{where}.approvals_required must be >= 1")
        elif required is not None or responders is not None:
            raise ValueError(f"{where}: approvals_required and responders are for route rules")
        names.add(rule_name)
        found.append(
            OperatorRule(
                name=rule_name.strip(),
                fn=fn.strip(),
                when=when,
                action=action,
                reason=reason.strip() if isinstance(reason, str) else None,
                approvals_required=required,
                responders=None
                if responders is None
                else _strings(f"{where}.responders", responders),
            )
        )
    return tuple(found)


# -- routing: who may be asked ----------------------------------------------------------------


def channels_of(spec: Spec) -> list[ContactChannel]:
    channels = [spec.channel] if spec.channel is not None else []
    if spec.policy is not None:
        channels.extend(spec.policy.channels)
    return channels


def routing_identities(spec: Spec) -> list[Identity]:
    """Every identity the request's routing names personally (not channels such as a Slack
    channel id, which name nobody)."""
    found: list[Identity] = []
    for channel in channels_of(spec):
        for user in channel.users or ():
            found.append(Identity("user", user))
        if channel.email is not None:
            found.append(Identity("email", channel.email.address))
            for extra in channel.email.additional_recipients or ():
                found.append(Identity("email", extra.address))
        if channel.slack is not None:
            for rid in channel.slack.allowed_responder_ids or ():
                found.append(Identity("slack", rid))
        if channel.discord is not None:
            if channel.discord.user_id:
                found.append(Identity("discord", channel.discord.user_id))
            for rid in channel.discord.allowed_responder_ids or ():
                found.append(Identity("discord", rid))
        if channel.teams is not None:
            for rid in channel.teams.allowed_responder_ids or ():
                found.append(Identity("teams", rid))
    return [i.normalized() for i in found]


def _member(person: Person | None, project: str) -> bool:
    return person is not None and person.active and project in person.projects


def check_routing(spec: Spec, project: str, rules: ProjectRules, directory: Directory) -> None:
    """Refuse (``routing_refused``) a request routed outside what the operator allows. Nothing
    has been stored or sent when this raises."""

    def refuse(message: str) -> None:
        raise PolicyError("routing_refused", message + "; nothing was stored or sent")

    for channel in channels_of(spec):
        for user in channel.users or ():
            if not _member(directory.resolve(Identity("user", user)), project):
                refuse(f"inbox user {user!r} is not a member of project {project!r}")
        if channel.email is not None:
            addresses = [channel.email.address] + [
                r.address for r in channel.email.additional_recipients or ()
            ]
            for address in addresses:
                addr = address.strip().lower()
                domain = addr.rpartition("@")[2]
                if not (
                    _member(directory.resolve(Identity("email", addr)), project)
                    or addr in rules.email_addresses
                    or domain in rules.email_domains
                ):
                    refuse(
                        f"email address {address!r} is not a directory member of project "
                        f"{project!r} nor allowed by the operator's routing"
                    )
        if channel.slack is not None:
            target = channel.slack.channel_or_user_id.strip()
            if not (
                _member(directory.resolve(Identity("slack", target)), project)
                or target in rules.slack_channels
            ):
                refuse(
                    f"Slack channel or user {target!r} is not allowed by the operator's routing "
                    f"for project {project!r}"
                )
            for rid in channel.slack.allowed_responder_ids or ():
                if not _member(directory.resolve(Identity("slack", rid)), project):
                    refuse(f"Slack user {rid!r} in allowed_responder_ids is not in the directory")
        if channel.discord is not None:
            discord = channel.discord
            channel_id = (discord.channel_id or "").strip()
            user_id = (discord.user_id or "").strip()
            if not channel_id and not user_id:
                refuse("a Discord target needs a channel_id or a user_id")
            if channel_id and channel_id not in rules.discord_channels:
                refuse(
                    f"Discord channel {channel_id!r} is not allowed by the operator's routing "
                    f"for project {project!r}"
                )
            if user_id and not _member(directory.resolve(Identity("discord", user_id)), project):
                refuse(f"Discord user {user_id!r} is not a directory member of project {project!r}")
            for rid in discord.allowed_responder_ids or ():
                if not _member(directory.resolve(Identity("discord", rid)), project):
                    refuse(f"Discord user {rid!r} in allowed_responder_ids is not in the directory")
        if channel.teams is not None:
            conversation = channel.teams.conversation_id.strip()
            if not conversation or conversation not in rules.teams_conversations:
                refuse(
                    f"Teams conversation {conversation!r} is not allowed by the operator's "
                    f"routing for project {project!r}"
                )
            for rid in channel.teams.allowed_responder_ids or ():
                if not _member(directory.resolve(Identity("teams", rid)), project):
                    refuse(f"Teams user {rid!r} in allowed_responder_ids is not in the directory")
        if channel.sms is not None or channel.whatsapp is not None:
            refuse("SMS and WhatsApp routing are not available on this server")
    policy = spec.policy
    if policy is not None:
        for who in policy.responders or ():
            person = directory.resolve_name(who)
            if not _member(person, project):
                refuse(f"responder {who!r} is not a directory member of project {project!r}")
            assert person is not None
            if rules.deciders is not None and not _named(person, rules.deciders, directory):
                refuse(f"responder {who!r} may not decide in project {project!r}")


def _named(person: Person, names: Iterable[str], directory: Directory) -> bool:
    for text in names:
        found = directory.resolve_name(text)
        if found is not None and found.name == person.name:
            return True
        if person.name == text:
            return True
    return False


# -- effective policy: the stricter of the agent's and the operator's -------------------------


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


@dataclass(frozen=True)
class Refusal:
    reason: str


def _refusal(
    request: Request,
    project: str,
    person: Person | None,
    effective: Effective,
    directory: Directory,
    via_identities: Sequence[Identity] | None,
) -> Refusal | None:
    if person is None:
        return Refusal("the identity is not linked to any person in the directory")
    if not person.active:
        return Refusal(f"{person.name} is disabled")
    if project not in person.projects:
        return Refusal(f"{person.name} is not a member of project {project!r}")
    for names in effective.restrictions:
        if not _named(person, names, directory):
            return Refusal(f"{person.name} is not among the persons allowed to decide")
    if (
        effective.audience is not None
        and person.name not in effective.audience
        and not effective.restrictions
    ):
        return Refusal(f"{person.name} is not among the persons this request was routed to")
    if via_identities is not None and not any(
        directory.resolve(i) == person for i in via_identities
    ):
        return Refusal(f"{person.name} is not allowed to answer through this message")
    return None


def may_see(
    request: Request,
    project: str,
    person: Person | None,
    effective: Effective,
    directory: Directory,
) -> bool:
    """Whether the person may open the request in the inbox (exactly those who may decide)."""
    return _refusal(request, project, person, effective, directory, None) is None


def may_decide(
    request: Request,
    project: str,
    person: Person | None,
    effective: Effective,
    directory: Directory,
    *,
    via_identities: Sequence[Identity] | None = None,
) -> Person:
    """The person, if they may decide; else ``forbidden``. ``via_identities``: a channel
    target's own allow-list (Slack/Discord/Teams ``allowed_responder_ids``), which must include
    them."""
    refusal = _refusal(request, project, person, effective, directory, via_identities)
    if refusal is not None:
        raise PolicyError("forbidden", refusal.reason)
    assert person is not None
    return person


# -- decisions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """What a person asked for, whatever the channel: the fields a channel may set."""

    approved: bool | None = None
    comment: str | None = None
    reject_option_name: str | None = None
    edited_kwargs: dict[str, Any] | None = None
    response: str | None = None
    confirmed_irreversible: bool = False
    """The deliberate second step for approving an irreversible function."""

    @classmethod
    def from_status(cls, status: FunctionCallStatus) -> Decision:
        return cls(
            approved=status.approved,
            comment=status.comment,
            reject_option_name=status.reject_option_name,
            edited_kwargs=status.edited_kwargs,
            response=status.response,
            confirmed_irreversible=status.confirmed_irreversible is True,
        )


@dataclass(frozen=True)
class Transition:
    """The new status, whether the request is now decided, and the audit action."""

    status: FunctionCallStatus | HumanContactStatus
    completed: bool
    action: str
    details: dict[str, Any]


def resolve_option(
    options: Sequence[ResponseOption] | None, name: str, what: str
) -> ResponseOption:
    for option in options or ():
        if option.name == name:
            return option
    known = ", ".join(repr(o.name) for o in options or ()) or "none"
    raise PolicyError("invalid_decision", f"unknown {what} {name!r} (this request offers: {known})")


def _invalid(message: str) -> PolicyError:
    return PolicyError("invalid_decision", message)


def decided_message(request: Request) -> str:
    status = request.status
    noun = "function call" if isinstance(request, FunctionCall) else "human contact"
    if status is not None and status.abandoned_at is not None:
        return (
            f"{noun} {request.call_id!r} was abandoned: the agent stopped waiting at "
            f"{status.abandoned_at:%Y-%m-%d %H:%M:%S} UTC, so it can no longer be answered "
            "and nothing will run"
        )
    if status is not None and status.expired:
        return f"{noun} {request.call_id!r} has expired; it can no longer be answered"
    by = f" by {status.responded_by}" if status is not None and status.responded_by else ""
    if isinstance(request, FunctionCall) and request.status is not None:
        if request.status.response is not None:
            what = "answered"
        else:
            what = "approved" if request.status.approved else "rejected"
    else:
        what = "answered"
    return f"{noun} {request.call_id!r} was already {what}{by}"


def apply_decision(
    call: FunctionCall, effective: Effective, person: Person, decision: Decision
) -> Transition:
    """What ``person``'s ``decision`` does to ``call``: approve, reject (with feedback, or a
    reject option), approve with edits, answer instead, or count towards a quorum of distinct
    persons. Raises ``already_decided`` or ``invalid_decision``."""
    current = call.status or FunctionCallStatus()
    if current.approved is not None:
        raise PolicyError("already_decided", decided_message(call))
    status = current.model_copy()
    required = effective.approvals_required
    comment = decision.comment.strip() if decision.comment and decision.comment.strip() else None
    # The function's schema and allowed decisions (``_schema``): refuse before any change.
    edits: dict[str, Any] | None = None
    if isinstance(decision.edited_kwargs, dict):
        edits = _schema.merge_edits(call.spec, decision.edited_kwargs)
    try:
        _schema.check_allowed(
            call.spec,
            _schema.decision_kind(
                call.spec,
                approved=decision.approved,
                edited_kwargs=decision.edited_kwargs,
                response=decision.response,
            ),
        )
    except _schema.SchemaProblem as exc:
        raise _invalid(exc.message) from None
    if decision.response is not None:
        if decision.approved is True:
            raise _invalid("a response in place of running the function cannot also approve it")
        if decision.edited_kwargs is not None:
            raise _invalid("give either edited_kwargs (approve with edits) or response, not both")
        if not decision.response.strip():
            raise _invalid("response must not be empty")
        status.approved = False
        status.response = decision.response
        status.comment = comment
        return Transition(status, True, "responded", {"response": decision.response})
    if decision.approved is None:
        raise _invalid(
            "approved must be true or false (or give a response to answer instead of running)"
        )
    if decision.approved is False:
        if decision.edited_kwargs is not None:
            raise _invalid("edited_kwargs only make sense with approved=true")
        option_name = decision.reject_option_name
        if option_name is not None:
            option = resolve_option(call.spec.reject_options, option_name, "reject option")
            comment = comment or option_text(option)
        if comment is None:
            raise _invalid("a rejection needs a comment: it is the feedback the agent gets")
        status.approved = False
        status.comment = comment
        status.reject_option_name = option_name
        return Transition(
            status, True, "rejected", {"comment": comment, "reject_option_name": option_name}
        )
    if decision.reject_option_name is not None:
        raise _invalid("reject_option_name only makes sense with approved=false")
    if effective.irreversible and not decision.confirmed_irreversible:
        raise PolicyError(
            "confirmation_required",
            f"{call.spec.fn} is irreversible: approving it takes a second, deliberate step "
            "(confirm that it cannot be undone; over the API send confirmed_irreversible=true)",
        )
    if decision.edited_kwargs is not None and not isinstance(decision.edited_kwargs, dict):
        raise _invalid("edited_kwargs must be an object")
    if edits is not None:
        problems = _schema.edit_problems(call.spec, edits)
        if problems:
            raise _invalid(_schema.describe(problems))
        if edits == call.spec.kwargs:
            edits = None  # edits that change nothing: a plain approval, no phantom edits
    if required > 1:
        if edits is not None:
            raise _invalid(
                "this call needs several approvals; approving with edited arguments is not possible"
            )
        approvals = list(status.approvals or [])
        if person.name in approvals:
            raise PolicyError(
                "already_decided",
                f"{person.name} already approved function call {call.call_id!r} "
                f"({len(approvals)} of {required} approvals); one person counts once",
            )
        approvals.append(person.name)
        status.approvals = approvals
        details: dict[str, Any] = {
            "approvals": len(approvals),
            "required": required,
            "comment": comment,
        }
        if len(approvals) < required:
            return Transition(status, False, "approval_recorded", details)
        status.approved = True
        status.comment = comment
        return Transition(status, True, "approved", details)
    status.approved = True
    status.comment = comment
    status.edited_kwargs = edits
    return Transition(status, True, "approved", {"comment": comment, "edited_kwargs": edits})


def option_text(option: ResponseOption) -> str:
    """What picking an option without writing anything stores (the rejection's feedback or the
    contact's answer): the same in every channel."""
    return option.prompt_fill or option.description or option.title or option.name


def answer_contact(
    contact: HumanContact, response: str | None, response_option_name: str | None
) -> Transition:
    current = contact.status or HumanContactStatus()
    if current.completed:
        raise PolicyError("already_decided", decided_message(contact))
    if response_option_name is not None:
        option = resolve_option(
            contact.spec.response_options, response_option_name, "response option"
        )
        if response is None or not response.strip():
            response = option_text(option)
    if response is None or not response.strip():
        raise _invalid("response must not be empty")
    status = current.model_copy()
    status.response = response
    status.response_option_name = response_option_name
    return Transition(
        status,
        True,
        "responded",
        {"response": response, "response_option_name": response_option_name},
    )
