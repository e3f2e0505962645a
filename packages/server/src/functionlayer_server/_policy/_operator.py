"""The operator's policy file: its model (per project: routing allowances, deciders, function
rules, operator rules, grants, reminders and escalation) and its loading from TOML, refusing
any key or value it does not know."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from functionlayer import ContactChannel

from functionlayer_server._conditions import Condition, ConditionError, parse_conditions

__all__ = [
    "REMINDER_KEYS",
    "FunctionRule",
    "OperatorPolicy",
    "OperatorRule",
    "ProjectRules",
    "Reminders",
    "RuleAction",
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
