"""One approval, one execution, under concurrency and against another agent: two claims that
both saw the call approved and unclaimed get one grant between them, and only the agent that
created the request claims or reports its execution. Through the server's HTTP API, in process,
on SQLite and PostgreSQL; the race is made deterministic by holding both claims at the store
until both have read the request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests._support.inprocess import API, STORES, InProcess, database_url, running_app

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=STORES)
async def app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[InProcess]:
    with database_url(request, tmp_path) as url:
        async with running_app(url) as app:
            yield app


async def _approved(app: InProcess, agent: dict[str, str], call_id: str) -> None:
    alice = await app.person("alice")
    assert (await app.create(agent, call_id, "wire_money", {"amount": 5})).status_code == 200
    decided = await app.decide(alice, call_id, approved=True)
    assert decided.status_code == 200, decided.text


async def _claim(app: InProcess, agent: dict[str, str], call_id: str, claim_id: str) -> Any:
    return await app.client.post(
        f"{API}/function_calls/{call_id}/execution",
        json={"claim_id": claim_id, "claimed_by": claim_id},
        headers=agent,
    )


async def _report(app: InProcess, agent: dict[str, str], call_id: str, claim_id: str) -> Any:
    return await app.client.post(
        f"{API}/function_calls/{call_id}/execution/outcome",
        json={"claim_id": claim_id, "outcome": "returned", "summary": "sent"},
        headers=agent,
    )


async def test_two_claims_at_once_get_one_grant(
    app: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = await app.agent()
    await _approved(app, agent, "once-1")
    store = app.service.store
    original = store.update_request
    arrived: list[int] = []
    both = asyncio.Event()

    async def held(*args: Any, **kwargs: Any) -> bool:
        if len(arrived) < 2:  # each claim has read the call approved and unclaimed
            arrived.append(1)
            if len(arrived) == 2:
                both.set()
            await asyncio.wait_for(both.wait(), 10)
        result: bool = await original(*args, **kwargs)
        return result

    monkeypatch.setattr(store, "update_request", held)

    first, second = await asyncio.gather(
        _claim(app, agent, "once-1", "worker-a"), _claim(app, agent, "once-1", "worker-b")
    )

    assert len(arrived) == 2  # the race did happen
    answers = [first.json(), second.json()]
    assert sorted(a["granted"] for a in answers) == [False, True], answers
    holder = next(a for a in answers if a["granted"])["execution"]["claim_id"]
    assert {a["execution"]["claim_id"] for a in answers} == {holder}
    status = await app.status(agent, "once-1")
    assert status["execution"]["claim_id"] == holder
    started = [e for e in await app.service.audit_trail("once-1")]
    assert [e.action for e in started].count("execution_started") == 1


async def test_another_agent_cannot_claim_or_report_the_execution(app: InProcess) -> None:
    owner = await app.agent("owner-agent")
    other = await app.agent("other-agent")
    await _approved(app, owner, "mine-1")
    claimed = await _claim(app, owner, "mine-1", "claim-1")
    assert claimed.status_code == 200 and claimed.json()["granted"] is True

    # Another agent token of the same project knows the call id and the claim id.
    assert (await _claim(app, other, "mine-1", "claim-2")).status_code == 403
    forged = await _report(app, other, "mine-1", "claim-1")

    assert forged.status_code == 403, forged.text
    execution = (await app.status(owner, "mine-1"))["execution"]
    assert execution["outcome"] is None and execution["summary"] is None
    assert "executed" not in [e.action for e in await app.service.audit_trail("mine-1")]
    reported = await _report(app, owner, "mine-1", "claim-1")
    assert reported.status_code == 200, reported.text
    assert reported.json()["status"]["execution"]["outcome"] == "returned"
