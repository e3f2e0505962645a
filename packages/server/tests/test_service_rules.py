"""Rules the server applies when it decides, through its HTTP API (in process, SQLite and
PostgreSQL): the operator's per-function rules govern the decision, and a retried create is
the same request only when its arguments are the same JSON."""

from __future__ import annotations

from typing import Any

import pytest

from tests._support.inprocess import InProcess, app_fixture

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

POLICY = """
[projects.default.functions.wire_money]
approvals_required = 2
responders = ["alice", "bob"]
"""


app = app_fixture(policy=POLICY)


async def test_the_operators_function_rules_govern_the_decision(app: InProcess) -> None:
    agent = await app.agent()
    alice, bob, carol = [await app.person(name) for name in ("alice", "bob", "carol")]
    created = await app.create(agent, "wire-1", "wire_money", {"amount": 100, "to": "acme"})
    assert created.status_code == 200, created.text

    # carol is a member of the project, but not among wire_money's responders.
    refused = await app.decide(carol, "wire-1", approved=True)
    assert refused.status_code == 403, refused.text
    assert (await app.status(agent, "wire-1")).get("approved") is None

    # The operator asks for two approvals, the agent asked for none: one is not enough.
    first = await app.decide(alice, "wire-1", approved=True)
    assert first.status_code == 200, first.text
    assert (await app.status(agent, "wire-1")).get("approved") is None

    second = await app.decide(bob, "wire-1", approved=True)
    assert second.status_code == 200, second.text
    final = await app.status(agent, "wire-1")
    assert final["approved"] is True and final["approvals"] == ["alice", "bob"]


@pytest.mark.parametrize(
    ("first", "again"),
    [
        ({"confirm": True}, {"confirm": 1}),
        ({"amount": 1}, {"amount": 1.0}),
        ({"amount": 1.0}, {"amount": True}),
        ({"to": ["a", "b"]}, {"to": ["b", "a"]}),
    ],
)
async def test_a_create_with_different_json_arguments_never_reuses_a_decision(
    app: InProcess, first: dict[str, Any], again: dict[str, Any]
) -> None:
    agent = await app.agent()
    alice = await app.person("alice")
    assert (await app.create(agent, "pay-1", "pay", first)).status_code == 200
    approved = await app.decide(alice, "pay-1", approved=True)
    assert approved.status_code == 200, approved.text

    reused = await app.create(agent, "pay-1", "pay", again)

    assert reused.status_code == 409, reused.text
    # The same arguments (whatever their key order) are the same request: its decision.
    same = await app.create(agent, "pay-1", "pay", dict(reversed(list(first.items()))))
    assert same.status_code == 200 and same.json()["status"]["approved"] is True
