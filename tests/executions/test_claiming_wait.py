"""The decision and the execution claim in one round trip (``POST …/claim_when_approved``):
the same rules as a separate claim — one execution per approval, only the creating agent
token, nothing claimed for a call that is pending, rejected or approved with edits — on SQLite
and PostgreSQL, through the core's ``HttpBackend`` and raw HTTP."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from functionlayer import FunctionLayer, HttpBackend

from tests._support.inprocess import API, STORES, InProcess, database_url, running_app

pytestmark = pytest.mark.anyio


class Counting(httpx.AsyncBaseTransport):
    """The in-process app's transport, noting each request's method and path."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.seen: list[tuple[str, str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((request.method, request.url.path))
        return await self.inner.handle_async_request(request)

    def paths(self, method: str, suffix: str) -> list[str]:
        return [p for m, p in self.seen if m == method and p.endswith(suffix)]


@pytest.fixture(params=STORES)
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[InProcess]:
    with database_url(request, tmp_path) as url:
        async with running_app(url) as app:
            yield app


async def _agent(server: InProcess) -> tuple[FunctionLayer, Counting, dict[str, str]]:
    headers = await server.agent()
    transport = Counting(server.client._transport)  # the app over ASGI
    backend = HttpBackend(
        "http://testserver" + API,
        headers["Authorization"].removeprefix("Bearer "),
        async_transport=transport,
        long_poll=5.0,
    )
    return FunctionLayer(backend=backend, run_id="run-1"), transport, headers


async def _decide_when_asked(server: InProcess, person: dict[str, str], **body: Any) -> None:
    for _ in range(400):
        listed = await server.client.get(f"{API}/function_calls?pending=true", headers=person)
        items = listed.json()["items"]
        if items:
            answer = await server.decide(person, items[0]["call_id"], **body)
            assert answer.status_code == 200, answer.text
            return
        await asyncio.sleep(0.01)
    raise AssertionError("no request arrived")


async def test_an_approval_runs_the_body_after_one_round_trip(server: InProcess) -> None:
    fl, transport, _ = await _agent(server)
    alice = await server.person("alice")
    ran: list[int] = []

    @fl.require_approval()
    async def pay(amount: int) -> str:
        ran.append(amount)
        return "paid"

    result, _ = await asyncio.gather(pay(5), _decide_when_asked(server, alice, approved=True))
    assert result == "paid" and ran == [5]
    # The claim was made by the wait itself: no separate claim request.
    assert transport.paths("POST", "/claim_when_approved")
    assert not transport.paths("POST", "/execution")
    call_id = transport.paths("POST", "/claim_when_approved")[0].split("/")[-2]
    status = await server.status(alice, call_id)
    assert status["execution"]["outcome"] == "returned"
    assert status["execution"]["claimed_by"] == "run-1"


async def test_a_rejection_claims_nothing_and_runs_nothing(server: InProcess) -> None:
    fl, transport, _ = await _agent(server)
    alice = await server.person("alice")
    ran: list[int] = []

    @fl.require_approval()
    async def pay(amount: int) -> str:
        ran.append(amount)
        return "paid"

    result, _ = await asyncio.gather(
        pay(5), _decide_when_asked(server, alice, approved=False, comment="not today")
    )
    assert ran == [] and "not today" in result
    call_id = transport.paths("POST", "/claim_when_approved")[0].split("/")[-2]
    assert (await server.status(alice, call_id))["execution"] is None


async def test_edits_are_checked_by_the_agent_before_it_claims(server: InProcess) -> None:
    fl, transport, _ = await _agent(server)
    alice = await server.person("alice")
    ran: list[int] = []

    @fl.require_approval()
    async def pay(amount: int) -> str:
        ran.append(amount)
        return "paid"

    await asyncio.gather(
        pay(9000),
        _decide_when_asked(server, alice, approved=True, edited_kwargs={"amount": 900}),
    )
    assert ran == [900]
    # The wait claimed nothing (edits), so the agent claimed on its own after checking them.
    assert len(transport.paths("POST", "/execution")) == 1


async def test_only_the_creating_token_may_claim_and_only_once(server: InProcess) -> None:
    owner = await server.agent("owner")
    other = await server.agent("other")
    alice = await server.person("alice")
    call_id = f"c-{uuid.uuid4().hex[:8]}"
    assert (await server.create(owner, call_id, "pay", {"amount": 1})).status_code == 200
    url = f"{API}/function_calls/{call_id}/claim_when_approved"

    # Another agent of the project is refused at once (no long-poll held for it).
    refused = await server.client.post(
        url, params={"wait": "5"}, json={"claim_id": "x"}, headers=other
    )
    assert refused.status_code == 403, refused.text
    # An approver token is not an agent: it cannot claim executions either.
    assert (await server.client.post(url, json={"claim_id": "x"}, headers=alice)).status_code in (
        401,
        403,
    )

    pending = await server.client.post(url, json={"claim_id": "mine"}, headers=owner)
    assert pending.status_code == 200 and pending.json()["claim"] is None  # not decided yet

    assert (await server.decide(alice, call_id, approved=True)).status_code == 200
    first = await server.client.post(url, json={"claim_id": "mine"}, headers=owner)
    assert first.json()["claim"]["granted"] is True
    again = await server.client.post(url, json={"claim_id": "mine"}, headers=owner)
    assert again.json()["claim"]["granted"] is True  # a retry (lost answer): the same claim
    second = await server.client.post(url, json={"claim_id": "another"}, headers=owner)
    assert second.json()["claim"]["granted"] is False
    assert second.json()["claim"]["execution"]["claim_id"] == "mine"
    assert (await server.client.post(url, json={"claim_id": "x"}, headers=other)).status_code == 403
    audit = await server.client.get(f"{API}/function_calls/{call_id}/audit", headers=alice)
    claims = [e for e in audit.json()["items"] if e["action"] == "execution_started"]
    assert len(claims) == 1 and claims[0]["who"].startswith("agent:owner")
