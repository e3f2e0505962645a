"""Table-driven tests of the policy module: pure functions, no server, milliseconds."""

from __future__ import annotations

from typing import Any

import pytest
from functionlayer.models import (
    ApprovalPolicy,
    ContactChannel,
    EmailContactChannel,
    EmailRecipient,
    FunctionCall,
    FunctionCallSpec,
    FunctionCallStatus,
    ResponseOption,
    SlackContactChannel,
    SMSContactChannel,
)
from functionlayer_server._policy import (
    Decision,
    Directory,
    FunctionRule,
    Identity,
    OperatorPolicy,
    Person,
    PolicyError,
    ProjectRules,
    apply_decision,
    check_routing,
    effective_policy,
    may_decide,
    may_see,
)

ALICE = Person("alice", emails=frozenset({"alice@corp.example"}), slack_ids=frozenset({"UALICE"}))
BOB = Person("bob", emails=frozenset({"bob@corp.example"}), slack_ids=frozenset({"UBOB"}))
CAROL = Person("carol", emails=frozenset({"carol@corp.example"}), projects=frozenset({"finance"}))
DAVE = Person("dave", disabled=True)
DIRECTORY = Directory.of([ALICE, BOB, CAROL, DAVE])

FINANCE = ProjectRules(
    deciders=frozenset({"alice", "carol"}),
    functions={
        "wire_money": FunctionRule(approvals_required=2, responders=frozenset({"alice", "bob"}))
    },
)


def call(fn: str = "wire_money", **spec: Any) -> FunctionCall:
    return FunctionCall(run_id="r", call_id="c", spec=FunctionCallSpec(fn=fn, kwargs={}, **spec))


def email(address: str, *extra: str) -> ContactChannel:
    return ContactChannel(
        email=EmailContactChannel(
            address=address,
            additional_recipients=[EmailRecipient(address=a, field="cc") for a in extra] or None,
        )
    )


ROUTING = [
    # (spec fields, project, rules, refused?)
    ({}, "default", ProjectRules(), False),
    ({"channel": email("alice@corp.example")}, "default", ProjectRules(), False),
    ({"channel": email("ALICE@Corp.Example")}, "default", ProjectRules(), False),
    ({"channel": email("agent@evil.example")}, "default", ProjectRules(), True),
    (
        {"channel": email("alice@corp.example", "agent@evil.example")},
        "default",
        ProjectRules(),
        True,
    ),
    (
        {"channel": email("new@corp.example")},
        "default",
        ProjectRules(email_domains=frozenset({"corp.example"})),
        False,
    ),
    (
        {"channel": email("ops@x.example")},
        "default",
        ProjectRules(email_addresses=frozenset({"ops@x.example"})),
        False,
    ),
    ({"channel": email("carol@corp.example")}, "default", ProjectRules(), True),  # not in project
    (
        {"channel": ContactChannel(slack=SlackContactChannel(channel_or_user_id="UALICE"))},
        "default",
        ProjectRules(),
        False,
    ),
    (
        {"channel": ContactChannel(slack=SlackContactChannel(channel_or_user_id="C-AGENT"))},
        "default",
        ProjectRules(),
        True,
    ),
    (
        {"channel": ContactChannel(slack=SlackContactChannel(channel_or_user_id="C-OPS"))},
        "default",
        ProjectRules(slack_channels=frozenset({"C-OPS"})),
        False,
    ),
    (
        {
            "channel": ContactChannel(
                slack=SlackContactChannel(
                    channel_or_user_id="C-OPS", allowed_responder_ids=["UEVIL"]
                )
            )
        },
        "default",
        ProjectRules(slack_channels=frozenset({"C-OPS"})),
        True,
    ),
    ({"channel": ContactChannel(users=["alice"])}, "default", ProjectRules(), False),
    ({"channel": ContactChannel(users=["mallory"])}, "default", ProjectRules(), True),
    ({"channel": ContactChannel(users=["dave"])}, "default", ProjectRules(), True),  # disabled
    (
        {"channel": ContactChannel(sms=SMSContactChannel(phone_number="+1555"))},
        "default",
        ProjectRules(),
        True,
    ),
    (
        {"policy": ApprovalPolicy(responders=["alice", "bob@corp.example"])},
        "default",
        ProjectRules(),
        False,
    ),
    (
        {"policy": ApprovalPolicy(responders=["agent@evil.example"])},
        "default",
        ProjectRules(),
        True,
    ),
    (
        {"policy": ApprovalPolicy(responders=["bob"])},
        "default",
        ProjectRules(deciders=frozenset({"alice"})),
        True,
    ),
    (
        {
            "policy": ApprovalPolicy(
                channels=[email("x1@evil.example"), email("x2@evil.example")], approvals_required=2
            )
        },
        "default",
        ProjectRules(),
        True,
    ),
]


@pytest.mark.parametrize(("spec", "project", "rules", "refused"), ROUTING)
def test_routing(spec: dict[str, Any], project: str, rules: ProjectRules, refused: bool) -> None:
    request = call(**spec)
    if refused:
        with pytest.raises(PolicyError) as info:
            check_routing(request.spec, project, rules, DIRECTORY)
        assert info.value.code == "routing_refused"
        assert "nothing was stored or sent" in info.value.message
    else:
        check_routing(request.spec, project, rules, DIRECTORY)


DECIDE = [
    # (spec fields, rules, person, project, via_identities, allowed?)
    ({}, ProjectRules(), ALICE, "default", None, True),
    ({}, ProjectRules(), None, "default", None, False),  # an identity nobody owns
    ({}, ProjectRules(), DAVE, "default", None, False),  # disabled
    ({}, ProjectRules(), CAROL, "default", None, False),  # other project
    ({}, ProjectRules(), CAROL, "finance", None, True),
    ({"channel": email("alice@corp.example")}, ProjectRules(), BOB, "default", None, False),
    ({"channel": email("alice@corp.example")}, ProjectRules(), ALICE, "default", None, True),
    ({"policy": ApprovalPolicy(responders=["bob"])}, ProjectRules(), ALICE, "default", None, False),
    ({"policy": ApprovalPolicy(responders=["UBOB"])}, ProjectRules(), BOB, "default", None, True),
    ({}, ProjectRules(deciders=frozenset({"alice"})), BOB, "default", None, False),
    ({}, FINANCE, BOB, "default", None, False),  # not a project decider
    ({"fn": "wire_money"}, FINANCE, ALICE, "default", None, True),
    ({"fn": "wire_money"}, FINANCE, CAROL, "finance", None, False),  # not a wire_money responder
    ({}, ProjectRules(), ALICE, "default", [Identity("slack", "UBOB")], False),
    ({}, ProjectRules(), BOB, "default", [Identity("slack", "UBOB")], True),
]


@pytest.mark.parametrize(("spec", "rules", "person", "project", "via", "allowed"), DECIDE)
def test_who_may_decide(
    spec: dict[str, Any],
    rules: ProjectRules,
    person: Person | None,
    project: str,
    via: list[Identity] | None,
    allowed: bool,
) -> None:
    request = call(**spec)
    effective = effective_policy(request.spec, rules, DIRECTORY, fn=request.spec.fn)
    if via is None:  # the inbox shows exactly what the person may decide
        assert may_see(request, project, person, effective, DIRECTORY) is allowed
    if allowed:
        assert (
            may_decide(request, project, person, effective, DIRECTORY, via_identities=via) is person
        )
    else:
        with pytest.raises(PolicyError) as info:
            may_decide(request, project, person, effective, DIRECTORY, via_identities=via)
        assert info.value.code == "forbidden"


def test_operator_minimum_cannot_be_weakened_by_the_agent() -> None:
    weak = call(policy=ApprovalPolicy(approvals_required=1))
    assert effective_policy(weak.spec, FINANCE, DIRECTORY, fn="wire_money").approvals_required == 2
    strong = call(policy=ApprovalPolicy(approvals_required=3))
    assert (
        effective_policy(strong.spec, FINANCE, DIRECTORY, fn="wire_money").approvals_required == 3
    )
    assert effective_policy(weak.spec, FINANCE, DIRECTORY, fn="other").approvals_required == 1


def test_quorum_counts_persons_not_identities() -> None:
    request = call(policy=ApprovalPolicy(approvals_required=2))
    effective = effective_policy(request.spec, ProjectRules(), DIRECTORY)
    first = apply_decision(request, effective, ALICE, Decision(approved=True))
    assert not first.completed and first.action == "approval_recorded"
    assert isinstance(first.status, FunctionCallStatus)
    after = request.model_copy(update={"status": first.status})
    with pytest.raises(PolicyError) as info:  # alice again, whatever identity she used
        apply_decision(after, effective, ALICE, Decision(approved=True))
    assert info.value.code == "already_decided"
    second = apply_decision(after, effective, BOB, Decision(approved=True))
    assert second.completed and second.status.approved is True  # type: ignore[union-attr]
    assert second.status.approvals == ["alice", "bob"]  # type: ignore[union-attr]


TRANSITIONS: list[tuple[Decision, str | None, str]] = [
    (Decision(approved=True), "approved", ""),
    (Decision(approved=True, edited_kwargs={"x": 1}), "approved", ""),
    (Decision(approved=False, comment="no"), "rejected", ""),
    (Decision(approved=False), None, "needs a comment"),
    (Decision(approved=False, reject_option_name="later"), "rejected", ""),
    (Decision(approved=False, reject_option_name="nope"), None, "unknown reject option"),
    (Decision(response="done by hand"), "responded", ""),
    (Decision(response="x", approved=True), None, "cannot also approve"),
    (Decision(), None, "approved must be true or false"),
    (Decision(approved=True, reject_option_name="later"), None, "only makes sense"),
]


@pytest.mark.parametrize(("decision", "action", "error"), TRANSITIONS)
def test_transitions(decision: Decision, action: str | None, error: str) -> None:
    request = call(reject_options=[ResponseOption(name="later", prompt_fill="ask again tomorrow")])
    effective = effective_policy(request.spec, ProjectRules(), DIRECTORY)
    if action is None:
        with pytest.raises(PolicyError, match=error) as info:
            apply_decision(request, effective, ALICE, decision)
        assert info.value.code == "invalid_decision"
        return
    change = apply_decision(request, effective, ALICE, decision)
    assert change.completed and change.action == action
    if decision.reject_option_name == "later":
        assert change.status.comment == "ask again tomorrow"  # type: ignore[union-attr]


def test_a_decided_request_never_changes() -> None:
    request = call(status=None)
    effective = effective_policy(request.spec, ProjectRules(), DIRECTORY)
    done = apply_decision(request, effective, ALICE, Decision(approved=False, comment="no"))
    decided = request.model_copy(update={"status": done.status})
    with pytest.raises(PolicyError) as info:
        apply_decision(decided, effective, BOB, Decision(approved=True))
    assert info.value.code == "already_decided"


def test_policy_file_is_validated() -> None:
    rules = OperatorPolicy.from_mapping(
        {
            "projects": {
                "default": {
                    "email_domains": ["@Corp.Example"],
                    "functions": {"wire_money": {"approvals_required": 2, "responders": ["alice"]}},
                }
            }
        }
    )
    assert rules.for_project("default").email_domains == frozenset({"corp.example"})
    assert rules.for_project("other") == ProjectRules()
    for bad in (
        {"projectz": {}},
        {"projects": {"p": {"unknown": 1}}},
        {"projects": {"p": {"functions": {"f": {"approvals_required": 0}}}}},
        {"projects": {"p": {"deciders": "alice"}}},
    ):
        with pytest.raises(ValueError):
            OperatorPolicy.from_mapping(bad)


def test_operator_email_domains_match_whole_domains_only() -> None:
    rules = ProjectRules(email_domains=frozenset({"corp.example"}))
    check_routing(call(channel=email("new@corp.example")).spec, "default", rules, DIRECTORY)
    for address in ("x@evilcorp.example", "x@corp.example.evil", "x@sub.evilcorp.example"):
        with pytest.raises(PolicyError) as info:
            check_routing(call(channel=email(address)).spec, "default", rules, DIRECTORY)
        assert info.value.code == "routing_refused", address


def test_an_empty_allow_list_on_a_target_lets_nobody_answer_through_it() -> None:
    request = call(fn="other")
    effective = effective_policy(request.spec, ProjectRules(), DIRECTORY, fn="other")
    for person in (ALICE, BOB):  # both may decide this request elsewhere
        assert may_decide(request, "default", person, effective, DIRECTORY) is person
        with pytest.raises(PolicyError) as info:
            may_decide(request, "default", person, effective, DIRECTORY, via_identities=[])
        assert info.value.code == "forbidden"


def test_an_approval_with_edits_never_counts_for_the_original_arguments() -> None:
    request = FunctionCall(
        run_id="r",
        call_id="c",
        spec=FunctionCallSpec(
            fn="wire_money",
            kwargs={"amount": 10, "to": "acme"},
            policy=ApprovalPolicy(approvals_required=2),
        ),
    )
    effective = effective_policy(request.spec, ProjectRules(), DIRECTORY, fn="wire_money")
    edits = {"amount": 10_000, "to": "acme"}
    try:
        change = apply_decision(
            request, effective, ALICE, Decision(approved=True, edited_kwargs=edits)
        )
    except PolicyError as exc:  # refused outright: fine, nothing was counted
        assert exc.code == "invalid_decision"
        return
    # Recorded: then it is an approval of the edited arguments, never of the original ones.
    assert isinstance(change.status, FunctionCallStatus)
    assert change.status.edited_kwargs == edits
