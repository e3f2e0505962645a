"""The execution-claim contract of ``Backend``, the same on every backend: only an approved call
may be claimed, only the first claim is granted (a retry of it is the same claim), only the
claim holder reports the outcome, once, and the request shows it in ``status.execution``."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from functionlayer import ConflictError, ExecutionReport, FunctionCall, FunctionCallSpec
from functionlayer.testing import never

from tests.executions.conftest import Harness, in_threads, make_harness


def _id() -> str:
    return f"call-{uuid.uuid4().hex[:12]}"


def test_only_the_first_claim_is_granted_and_a_retry_is_the_same_claim(harness: Harness) -> None:
    call_id = _id()
    harness.decided(call_id, {"amount": 1}, approved=True)
    backend = harness.backend

    first = backend.claim_execution(call_id, "claim-a", claimed_by="run-1")
    assert first.granted and first.execution.claim_id == "claim-a"
    assert first.execution.started_at is not None and first.execution.outcome is None

    retry = backend.claim_execution(call_id, "claim-a", claimed_by="run-1")
    assert retry.granted and retry.execution.claim_id == "claim-a"

    other = backend.claim_execution(call_id, "claim-b", claimed_by="run-2")
    assert not other.granted
    assert other.execution.claim_id == "claim-a" and other.execution.outcome is None

    stored = backend.get_function_call(call_id).status
    assert stored is not None and stored.execution is not None
    assert stored.execution.claim_id == "claim-a" and stored.approved is True


def test_the_holder_reports_the_outcome_once(harness: Harness) -> None:
    call_id = _id()
    harness.decided(call_id, {"amount": 2}, approved=True)
    backend = harness.backend
    assert backend.claim_execution(call_id, "holder").granted

    with pytest.raises(ConflictError):  # not the claim that holds the execution
        backend.report_execution(call_id, ExecutionReport(claim_id="intruder", outcome="returned"))

    report = ExecutionReport(claim_id="holder", outcome="returned", summary="'x' * 600" * 80)
    after = backend.report_execution(call_id, report)
    execution = after.status.execution  # type: ignore[union-attr]
    assert execution is not None and execution.outcome == "returned"
    assert execution.summary == report.summary[:500]  # kept short
    assert execution.finished_at is not None

    backend.report_execution(call_id, report)  # an identical retry is accepted
    with pytest.raises(ConflictError):
        backend.report_execution(
            call_id, ExecutionReport(claim_id="holder", outcome="raised", summary="ValueError: x")
        )
    later = backend.claim_execution(call_id, "late")
    assert not later.granted and later.execution.outcome == "returned"


def test_a_rejected_call_cannot_be_claimed(harness: Harness) -> None:
    call_id = _id()
    harness.decided(call_id, {"amount": 3}, approved=False)
    with pytest.raises(ConflictError):
        harness.backend.claim_execution(call_id, "c")
    assert harness.backend.get_function_call(call_id).status.execution is None  # type: ignore[union-attr]


@pytest.mark.parametrize("kind", ["memory", "scripted", "http"])
def test_a_pending_or_expired_call_cannot_be_claimed(
    kind: str, request: pytest.FixtureRequest
) -> None:
    # The terminal backend decides while creating: it has no pending calls to try this on.
    harness = make_harness(kind, request)
    call_id = _id()
    call = FunctionCall(run_id="r", call_id=call_id, spec=FunctionCallSpec(fn="f", kwargs={}))
    if kind == "scripted":
        harness.answers[call_id] = never()
    harness.backend.create_function_call(call)
    with pytest.raises(ConflictError):
        harness.backend.claim_execution(call_id, "too-early")
    harness.backend.expire_function_call(call_id, "gave up")
    with pytest.raises(ConflictError):
        harness.backend.claim_execution(call_id, "too-late")


def test_concurrent_claims_grant_exactly_one(harness: Harness) -> None:
    call_id = _id()
    harness.decided(call_id, {"amount": 4}, approved=True)
    results = in_threads(8, lambda i: harness.backend.claim_execution(call_id, f"claim-{i}"))
    assert not [r for r in results if isinstance(r, Exception)], results
    winners = [r for r in results if r.granted]
    assert len(winners) == 1
    assert {r.execution.claim_id for r in results} == {winners[0].execution.claim_id}


def test_async_twins_share_the_contract(harness: Harness) -> None:
    call_id = _id()
    harness.decided(call_id, {"amount": 5}, approved=True)
    backend = harness.backend

    async def scenario() -> None:
        claims = await asyncio.gather(
            *(backend.aclaim_execution(call_id, f"a-{i}") for i in range(4))
        )
        winner = [c for c in claims if c.granted]
        assert len(winner) == 1
        holder = winner[0].execution.claim_id
        done = await backend.areport_execution(
            call_id, ExecutionReport(claim_id=holder, outcome="raised", summary="KeyError: 'x'")
        )
        assert done.status.execution.outcome == "raised"  # type: ignore[union-attr]
        await backend.aclose()

    asyncio.run(scenario())


def test_a_new_run_id_resumes_the_request_and_other_arguments_conflict(harness: Harness) -> None:
    call_id = _id()
    decided = harness.decided(call_id, {"amount": 6}, approved=True)
    resumed = harness.backend.create_function_call(
        FunctionCall(
            run_id="a-restarted-agent",
            call_id=call_id,
            spec=FunctionCallSpec(fn="f", kwargs={"amount": 6}),
        )
    )
    assert resumed.run_id == decided.run_id and resumed.status.approved is True  # type: ignore[union-attr]
    with pytest.raises(ConflictError):
        harness.backend.create_function_call(
            FunctionCall(
                run_id="a-restarted-agent",
                call_id=call_id,
                spec=FunctionCallSpec(fn="f", kwargs={"amount": 60}),
            )
        )
