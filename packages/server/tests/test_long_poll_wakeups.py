"""A long-poll answers when its request is decided or its wait is over, never earlier: changes
that server processes announce on the same PostgreSQL database (NOTIFY), such as a request's
own creation echoed back late or one approval of a quorum, wake it up but do not end it.

(The early return made ``test_protocol.py::test_expiry_is_a_fail_closed_rejection[postgres]``
flaky: under load the echo of a request's creation reached the server after the test's
``GET ?wait=5`` had parked, and the poll answered "pending" at once.)"""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest
from functionlayer import ApprovalPolicy, FunctionCall, FunctionCallSpec, FunctionCallStatus
from functionlayer_server import ApprovalService, Settings
from functionlayer_server._store import open_store, prepare_database
from functionlayer_server._store._base import NOTIFY_CHANNEL

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


def _service(url: str) -> ApprovalService:
    return ApprovalService(open_store(url), Settings(database_url=url))


def _notify(url: str, payload: str) -> None:
    """What another server process sends when it changes a request."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, payload))


async def _listening(service: ApprovalService, url: str) -> None:
    """Return once ``service`` receives other processes' notifications (LISTEN is up)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        since = service.change_counter
        await asyncio.to_thread(_notify, url, "created|function_call|warm-up")
        if await service.wait_for_change(since, 0.5) != since:
            return
    raise AssertionError("the service never received a notification")


async def test_quorum_progress_on_another_process_does_not_end_a_long_poll(
    postgres_url: str,
) -> None:
    prepare_database(postgres_url)
    waiting, deciding = _service(postgres_url), _service(postgres_url)
    await waiting.start(scheduler=False)
    await deciding.start(scheduler=False)
    try:
        await deciding.accounts.create_person("alice")
        await deciding.accounts.create_person("bob")
        await _listening(waiting, postgres_url)
        policy = ApprovalPolicy(approvals_required=2)
        spec = FunctionCallSpec(fn="release", kwargs={"version": "2.0"}, policy=policy)
        await waiting.create_function_call(FunctionCall(run_id="r", call_id="q-1", spec=spec))
        started = time.monotonic()
        poll = asyncio.create_task(waiting.wait_function_call("q-1", 3.0))
        while waiting.waiting == 0:
            await asyncio.sleep(0.005)

        # One of two approvals, recorded by the other process: the call is still pending.
        since = waiting.change_counter
        await deciding.respond_function_call(
            "q-1", FunctionCallStatus(approved=True), responder="alice", via="inbox"
        )
        assert await waiting.wait_for_change(since, 5) != since  # its notification arrived
        await asyncio.sleep(0.1)
        assert not poll.done(), "the long-poll ended on quorum progress, before any decision"

        await deciding.respond_function_call(
            "q-1", FunctionCallStatus(approved=True), responder="bob", via="inbox"
        )
        decided = await asyncio.wait_for(poll, 5)
        assert decided.status is not None and decided.status.approved is True
        assert time.monotonic() - started < 3.0  # woken by the decision, not by the timeout
    finally:
        await deciding.stop()
        await waiting.stop()


async def test_a_late_echo_of_the_creation_does_not_end_a_long_poll(postgres_url: str) -> None:
    prepare_database(postgres_url)
    service = _service(postgres_url)
    await service.start(scheduler=False)
    try:
        await _listening(service, postgres_url)
        spec = FunctionCallSpec(fn="transfer", kwargs={"amount": 10})
        await service.create_function_call(FunctionCall(run_id="r", call_id="w-1", spec=spec))
        started = time.monotonic()
        poll = asyncio.create_task(service.wait_function_call("w-1", 0.8))
        while service.waiting == 0:
            await asyncio.sleep(0.005)

        await asyncio.to_thread(_notify, postgres_url, "created|function_call|w-1")

        pending = await asyncio.wait_for(poll, 5)
        assert pending.status is not None and pending.status.approved is None
        assert time.monotonic() - started >= 0.75, "the long-poll returned before its wait was over"
    finally:
        await service.stop()
