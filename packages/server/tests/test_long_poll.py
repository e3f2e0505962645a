"""Long-polls answer when the request is decided or when the wait is over, never earlier with a
stale "pending": on PostgreSQL a process's own ``created`` and quorum ``updated``
notifications used to release waiters early."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from functionlayer.models import ApprovalPolicy, FunctionCall, FunctionCallSpec, FunctionCallStatus
from functionlayer_server import ApprovalService, Settings
from functionlayer_server._store import open_store, prepare_database

WAIT = 1.0


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_no_long_poll_returns_early_with_a_stale_pending(
    database: str, request: pytest.FixtureRequest, tmp_path: object
) -> None:
    url = (
        request.getfixturevalue("postgres_url")
        if database == "postgres"
        else f"sqlite:///{tmp_path}/lp.sqlite3"
    )
    prepare_database(url)

    async def main() -> list[tuple[float, bool | None]]:
        service = ApprovalService(open_store(url), Settings(database_url=url))
        await service.start(scheduler=False)
        try:
            await service.accounts.create_person("alice")

            async def one(n: int) -> tuple[float, bool | None]:
                call_id = f"lp-{n}-{uuid.uuid4().hex[:8]}"
                quorum = ApprovalPolicy(approvals_required=2) if n % 2 else None
                call = FunctionCall(
                    run_id="lp", call_id=call_id, spec=FunctionCallSpec(fn="f", policy=quorum)
                )
                await service.create_function_call(call)
                began = time.monotonic()
                wait = asyncio.ensure_future(service.wait_function_call(call_id, WAIT))
                await asyncio.sleep(0.05)
                if n % 2:  # quorum progress (1 of 2): not a decision, must not release it
                    await service.respond_function_call(
                        call_id, FunctionCallStatus(approved=True), responder="alice", via="api"
                    )
                result = await wait
                return time.monotonic() - began, result.status.approved if result.status else None

            return await asyncio.gather(*(one(n) for n in range(40)))
        finally:
            await service.stop()

    results = asyncio.run(main())
    early = [round(t, 3) for t, approved in results if approved is None and t < WAIT - 0.05]
    assert early == [], f"{len(early)} of {len(results)} long-polls answered a stale pending early"


def test_a_cancelled_long_poll_gives_its_place_back(tmp_path: object) -> None:
    """The long-poll quota is released on every way out, here cancellation of the handler
    (a server shutting down, the ASGI server dropping the request)."""
    import httpx
    from functionlayer_server._app import create_app

    settings = Settings(database_url=f"sqlite:///{tmp_path}/q.sqlite3", max_long_polls_per_token=2)
    app = create_app(settings)
    service: ApprovalService = app.state.service

    async def main() -> None:
        async with app.router.lifespan_context(app):
            token = await service.create_token("agent")
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport,
                base_url="http://test/functionlayer/v1",
                headers={"Authorization": f"Bearer {token}"},
            ) as client:
                body = {"run_id": "r", "call_id": "c1", "spec": {"fn": "f", "kwargs": {}}}
                assert (await client.post("/function_calls", json=body)).status_code == 200

                def poll(wait: float) -> asyncio.Task[httpx.Response]:
                    return asyncio.ensure_future(
                        client.get("/function_calls/c1", params={"wait": wait})
                    )

                for _ in range(3):
                    held = [poll(30), poll(30)]
                    for _ in range(500):
                        if service.waiting >= 2:
                            break
                        await asyncio.sleep(0.01)
                    held_codes = [t.result().status_code for t in held if t.done()]
                    assert service.waiting == 2, f"places not given back: {held_codes}"
                    assert (await poll(1)).status_code == 429
                    for task in held:
                        task.cancel()
                    await asyncio.gather(*held, return_exceptions=True)
                    assert service.waiting == 0
                answered = await poll(0.05)
                assert answered.status_code == 200, answered.text

    asyncio.run(main())
