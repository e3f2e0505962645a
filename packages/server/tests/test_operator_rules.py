"""Operator rules (policy as code), through the server's HTTP API on SQLite and PostgreSQL:
auto-approve and auto-reject by function and argument conditions, reject rules winning over
approve rules and grants, routing by condition to a group that must give two approvals, and
the rule's reason reaching the agent's LLM through core ``_feedback``."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from functionlayer import FunctionCall, FunctionLayer, call_id_scope
from functionlayer.adapters import decision_of
from functionlayer_server._policy import OperatorPolicy

from tests._support.inprocess import API, InProcess, app_fixture
from tests._support.servers import ENV_PREFIX, ServerFactory

pytestmark = [pytest.mark.timeout(90)]

CRYPTO_REASON = "Refunds to crypto exchanges are never allowed; refund to the original card."

POLICY = f"""
[[projects.default.rules]]
name = "small refunds"
fn = "refund"
when = ["amount <= 100"]
action = "approve"

[[projects.default.rules]]
name = "no crypto"
fn = "refund"
when = ['to in ["crypto-exchange", "mixer"]']
action = "reject"
reason = "{CRYPTO_REASON}"

[[projects.default.rules]]
name = "big wires to finance"
fn = "wire_money"
when = ["amount > 10000"]
action = "route"
approvals_required = 2
responders = ["fin1", "fin2"]
"""


app = app_fixture(policy=POLICY)


def new_id() -> str:
    return f"r-{uuid.uuid4().hex[:10]}"


@pytest.mark.anyio
async def test_an_approve_rule_approves_matching_calls_only(app: InProcess) -> None:
    agent = await app.agent()
    created = await app.create(agent, "small", "refund", {"amount": 40, "to": "card"})
    status = created.json()["status"]
    assert status["approved"] is True
    assert status["responded_via"] == "policy"
    assert status["responded_by"] == "rule:small refunds"
    trail = (await app.client.get(f"{API}/function_calls/small/audit", headers=agent)).json()
    decided = [e for e in trail["items"] if e["action"] == "approved"]
    assert decided[0]["via"] == "policy" and decided[0]["details"]["rule"] == "small refunds"
    # Type-strict, and a missing argument never matches an approve rule.
    for call_id, kwargs in (
        ("big", {"amount": 101, "to": "card"}),
        ("text", {"amount": "40", "to": "card"}),
        ("bool", {"amount": True, "to": "card"}),
        ("missing", {"to": "card"}),
    ):
        answer = await app.create(agent, call_id, "refund", kwargs)
        assert answer.json()["status"]["approved"] is None, call_id
    # Another function is not the rule's.
    other = await app.create(agent, "other-fn", "refund_all", {"amount": 1})
    assert other.json()["status"]["approved"] is None


@pytest.mark.anyio
async def test_a_reject_rule_wins_over_approve_rules_and_grants_and_tells_the_llm_why(
    app: InProcess,
) -> None:
    agent = await app.agent()
    alice = await app.person("alice")
    # alice grants every refund up to 100 to any destination.
    first = await app.create(agent, "first", "refund", {"amount": 500, "to": "card"})
    assert first.json()["status"]["approved"] is None
    grant = await app.client.post(
        f"{API}/function_calls/first/grants",
        json={
            "scope": ["amount <= 1000", "to any"],
            "agents": "project",
            "lifetime_seconds": 600,
            "max_uses": 10,
        },
        headers=alice,
    )
    assert grant.status_code == 200, grant.text
    covered = await app.create(agent, "covered", "refund", {"amount": 300, "to": "card"})
    assert covered.json()["status"]["responded_via"] == "grant"

    rejected = await app.create(agent, "crypto", "refund", {"amount": 40, "to": "mixer"})
    status = rejected.json()["status"]
    assert status["approved"] is False
    assert status["responded_via"] == "policy" and status["responded_by"] == "rule:no crypto"
    decision = decision_of(FunctionCall.model_validate(rejected.json()))
    assert decision is not None and decision.approved is False
    assert decision.message == (
        f"refund was not run: the operator's policy rejects this call ({CRYPTO_REASON}). "
        "No human was asked and nothing was done."
    )
    listed = (await app.client.get(f"{API}/grants", headers=alice)).json()["items"]
    assert listed[0]["uses"] == 1  # the rejected call used nothing


@pytest.mark.anyio
async def test_a_route_rule_sends_large_calls_to_a_group_that_must_give_two_approvals(
    app: InProcess,
) -> None:
    agent = await app.agent()
    alice, fin1, fin2 = [await app.person(n) for n in ("alice", "fin1", "fin2")]
    small = await app.create(agent, "w-small", "wire_money", {"amount": 500})
    assert (await app.decide(alice, "w-small", approved=True)).status_code == 200
    assert (await app.status(agent, "w-small"))["approved"] is True

    big = await app.create(agent, "w-big", "wire_money", {"amount": 50_000})
    assert big.json()["status"]["approved"] is None and small.status_code == 200
    refused = await app.decide(alice, "w-big", approved=True)
    assert refused.status_code == 403, refused.text
    assert (await app.decide(fin1, "w-big", approved=True)).status_code == 200
    assert (await app.status(agent, "w-big"))["approved"] is None
    assert (await app.decide(fin2, "w-big", approved=True)).status_code == 200
    final = await app.status(agent, "w-big")
    assert final["approved"] is True and final["approvals"] == ["fin1", "fin2"]
    # And no grant for it: the route asks for two approvals.
    grant = await app.client.post(
        f"{API}/function_calls/w-big/grants",
        json={"scope": ["amount any"], "lifetime_seconds": 60, "max_uses": 1},
        headers=fin1,
    )
    assert grant.status_code == 403 and "allows no grants" in grant.json()["detail"]


@pytest.mark.parametrize(
    ("rules", "problem"),
    [
        ({"name": "x", "fn": "f", "when": ["amount <= '1'"], "action": "approve"}, "JSON"),
        ({"name": "x", "fn": "f", "when": ['amount <= "1"'], "action": "approve"}, "numbers"),
        ({"name": "x", "fn": "f", "when": ["__import__('os')"], "action": "approve"}, "read"),
        ({"name": "x", "fn": "f", "when": [], "action": "reject"}, "reason"),
        ({"name": "x", "fn": "f", "when": [], "action": "route"}, "route rule sets"),
        ({"name": "x", "fn": "f", "when": [], "action": "allow"}, "approve, reject or route"),
    ],
)
def test_a_broken_rule_is_a_startup_error(rules: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        OperatorPolicy.from_mapping({"projects": {"default": {"rules": [rules]}}})


def test_the_rules_reason_reaches_the_llm_of_a_real_agent(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    server = server_factory(env={ENV_PREFIX + "POLICY_FILE": str(policy)})
    fl = FunctionLayer(api_base=server.api_base, api_token=server.token, timeout=5)
    ran: list[str] = []

    @fl.require_approval()
    def refund(amount: int, to: str) -> str:
        ran.append(to)
        return f"refunded {amount} to {to}"

    results: list[Any] = []

    def agent() -> None:
        for to in ("mixer", "card"):
            with call_id_scope(new_id()):
                results.append(refund(40, to))

    thread = threading.Thread(target=agent)
    thread.start()
    thread.join(60)
    assert ran == ["card"]
    assert CRYPTO_REASON in results[0] and "operator's policy rejects" in results[0]
    assert results[1] == "refunded 40 to card"
