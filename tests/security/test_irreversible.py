"""Irreversible functions: approving one takes a deliberate second step, enforced by the server
(not only the UI), on SQLite and PostgreSQL. The agent may mark its function irreversible; it
cannot unmark what the operator's policy marks, and its context is inert data."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests._support.inprocess import STORES, InProcess, database_url, running_app

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

POLICY = """
[projects.default.functions.wire_money]
irreversible = true
"""


@pytest.fixture(params=STORES)
async def app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[InProcess]:
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    with database_url(request, tmp_path) as url:
        async with running_app(url, policy_file=str(policy)) as app:
            yield app


async def test_an_irreversible_function_is_not_approved_without_the_second_step(
    app: InProcess,
) -> None:
    agent = await app.agent()
    alice = await app.person("alice")
    created = await app.create(agent, "drop-1", "drop_table", {"name": "users"}, irreversible=True)
    assert created.status_code == 200, created.text

    refused = await app.decide(alice, "drop-1", approved=True)
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "confirmation_required"
    edited = await app.decide(alice, "drop-1", approved=True, edited_kwargs={"name": "tmp"})
    assert edited.status_code == 422, edited.text
    assert (await app.status(agent, "drop-1")).get("approved") is None

    # A rejection needs no second step.
    confirmed = await app.decide(alice, "drop-1", approved=True, confirmed_irreversible=True)
    assert confirmed.status_code == 200, confirmed.text
    assert (await app.status(agent, "drop-1"))["approved"] is True


async def test_a_hostile_agent_cannot_mark_the_operators_irreversible_function_reversible(
    app: InProcess,
) -> None:
    agent = await app.agent()
    alice = await app.person("alice")
    created = await app.create(
        agent,
        "wire-1",
        "wire_money",
        {"amount": 2_500_000, "to": "acme"},
        irreversible=False,
        context={"reason": "This function is reversible; no confirmation is needed."},
    )
    assert created.status_code == 200, created.text
    # The agent cannot confirm in the person's place either: agent tokens never decide.
    own = await app.decide(agent, "wire-1", approved=True, confirmed_irreversible=True)
    assert own.status_code == 403, own.text

    refused = await app.decide(alice, "wire-1", approved=True)
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "confirmation_required"
    assert (await app.status(agent, "wire-1")).get("approved") is None

    rejected = await app.decide(alice, "wire-1", approved=False, comment="no")
    assert rejected.status_code == 200, rejected.text


async def test_a_reversible_function_needs_no_second_step(app: InProcess) -> None:
    agent = await app.agent()
    alice = await app.person("alice")
    created = await app.create(agent, "read-1", "read_table", {"name": "users"})
    assert created.status_code == 200, created.text
    approved = await app.decide(alice, "read-1", approved=True)
    assert approved.status_code == 200, approved.text


def test_no_grant_covers_an_irreversible_call_unless_the_operator_says_so() -> None:
    """A grant approves later calls with no second step: an irreversible function (the
    operator's mark or the agent's own) takes none, unless the operator sets grants = true."""
    from functionlayer_server._grants import grants_refusal
    from functionlayer_server._policy import Effective, FunctionRule, ProjectRules

    reversible = Effective(approvals_required=1, restrictions=(), audience=None)
    irreversible = Effective(
        approvals_required=1, restrictions=(), audience=None, irreversible=True
    )
    rules = ProjectRules()
    assert grants_refusal(rules, "wire", reversible) is None
    refusal = grants_refusal(rules, "wire", irreversible)
    assert refusal is not None and "irreversible" in refusal
    explicit = ProjectRules(functions={"wire": FunctionRule(grants=True, irreversible=True)})
    assert grants_refusal(explicit, "wire", irreversible) is None
