"""The claiming wait claims on the record its wake-up read (no second read before the body):
that record may already be stale when the claim is written. The claim's compare-and-set must
still grant the execution once only, and only to the request's creator."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from functionlayer.models import Execution, FunctionCall, FunctionCallSpec, FunctionCallStatus
from functionlayer_server import ApprovalService
from functionlayer_server._errors import ForbiddenError
from functionlayer_server._settings import Settings
from functionlayer_server._store import open_store, prepare_database

from tests._support.servers import fresh_postgres_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fl.sqlite3'}"
    else:
        with fresh_postgres_database() as url:
            yield url


def test_a_claim_on_a_record_read_before_another_claim_is_not_granted(database_url: str) -> None:
    prepare_database(database_url)

    async def check() -> None:
        service = ApprovalService(open_store(database_url), Settings(database_url=database_url))
        await service.start(scheduler=False)
        try:
            await service.accounts.create_person("alice", projects=["default"])
            await service.create_record(
                "function_call",
                FunctionCall(run_id="r", call_id="c1", spec=FunctionCallSpec(fn="pay")),
                created_by="agent",
                created_by_token="token-1",
            )
            await service.respond_function_call(
                "c1", FunctionCallStatus(approved=True), responder="user:alice", via="web"
            )
            # What the claiming wait read at its wake-up: approved, no execution yet.
            waited = await service.wait_record("function_call", "c1", 0.0, project="default")
            claim = {"project": "default", "actor": "agent:agent", "creator": "token-1"}

            # Another holder of the same token's requests claims first (a retried request).
            first = await service.claim_execution("c1", Execution(claim_id="first"), **claim)
            assert first.granted

            late = await service.claim_execution(
                "c1", Execution(claim_id="second"), current=waited, **claim
            )
            assert not late.granted and late.execution.claim_id == "first"
            again = await service.claim_execution(
                "c1", Execution(claim_id="first"), current=waited, **claim
            )
            assert again.granted  # a retry of the claim that holds it is the same claim

            # Only the creating token may claim, on the waited record as well (a fresh one:
            # nothing would make the claim read the request again).
            await service.create_record(
                "function_call",
                FunctionCall(run_id="r", call_id="c2", spec=FunctionCallSpec(fn="pay")),
                created_by="agent",
                created_by_token="token-1",
            )
            await service.respond_function_call(
                "c2", FunctionCallStatus(approved=True), responder="user:alice", via="web"
            )
            fresh = await service.wait_record("function_call", "c2", 0.0, project="default")
            with pytest.raises(ForbiddenError):
                await service.claim_execution(
                    "c2",
                    Execution(claim_id="intruder"),
                    project="default",
                    actor="agent:other",
                    creator="token-2",
                    current=fresh,
                )
            status = (await service.get_function_call("c2", project="default")).status
            assert status is not None and status.execution is None
        finally:
            await service.stop()

    asyncio.run(check())
