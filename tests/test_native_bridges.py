"""``functionlayer._native``: the decisions the Pydantic AI and OpenAI Agents bridges translate,
and the saved pauses of both, against the in-memory backend (fast; the real server and agent
loops are covered in tests/e2e)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from functionlayer import ConflictError, FunctionLayer, InMemoryBackend
from functionlayer._feedback import (
    already_ran_message,
    claim_failed_message,
    expired_message,
    rejection_message,
)
from functionlayer.adapters import (
    Claim,
    NativeDecision,
    PendingToolCall,
    aask,
    aclaim,
    acollect,
    adecide,
    areport,
    ask,
    check,
    claim,
    collect,
    decide,
    edits_unsupported_message,
    report,
    wait,
)
from functionlayer.testing import ScriptedHuman, approve

CALL = PendingToolCall("call_1", "transfer", {"cents": 500}, "Move money.")


@pytest.mark.parametrize(
    ("decision", "expected"),
    [
        ({"approved": True}, NativeDecision("call_1", True)),
        ({"approved": True, "edited_kwargs": {"cents": 500}}, NativeDecision("call_1", True)),
        (
            {"approved": True, "edited_kwargs": {"cents": 50}},
            NativeDecision("call_1", True, arguments={"cents": 50}),
        ),
        (
            {"approved": False, "comment": "too much"},
            NativeDecision("call_1", False, message=rejection_message("transfer", "too much")),
        ),
        (
            {"approved": False, "comment": "no", "reject_option_name": "budget"},
            NativeDecision("call_1", False, message=rejection_message("transfer", "no", "budget")),
        ),
        (
            {"approved": False, "response": "Already paid yesterday."},
            NativeDecision("call_1", False, message="Already paid yesterday."),
        ),
    ],
    ids=["approved", "unchanged-edit", "edited", "rejected", "reject-option", "answered"],
)
def test_check_reads_each_kind_of_decision(
    decision: dict[str, Any], expected: NativeDecision
) -> None:
    backend = InMemoryBackend()
    fl = FunctionLayer(backend=backend)
    sent = ask(fl, [CALL])
    assert check(fl, sent) == {"call_1": None}  # pending: nothing to apply yet
    backend.respond("call_1", **decision)
    assert check(fl, sent) == {"call_1": expected}


def test_ask_sends_the_tool_call_as_the_request() -> None:
    backend = InMemoryBackend()
    fl = FunctionLayer(backend=backend, run_id="run-a", timeout=60)
    [sent] = ask(fl, [CALL])
    [stored] = backend.function_calls
    assert (stored.run_id, stored.call_id) == ("run-a", "call_1")
    assert (stored.spec.fn, stored.spec.kwargs) == ("transfer", {"cents": 500})
    assert (stored.spec.description, stored.spec.timeout_seconds) == ("Move money.", 60)
    assert sent.spec == stored.spec and sent.status is None


def test_expiry_denies_saying_nothing_ran() -> None:
    backend = InMemoryBackend()
    fl = FunctionLayer(backend=backend, timeout=30)
    sent = ask(fl, [CALL])
    backend.expire_function_call("call_1", "no human answered within 30 seconds")
    assert check(fl, sent)["call_1"] == NativeDecision(
        "call_1", False, message=expired_message("transfer", 30)
    )


def test_check_refuses_a_different_request_under_the_call_id() -> None:
    backend = InMemoryBackend()
    fl = FunctionLayer(backend=backend)
    ask(fl, [PendingToolCall("call_1", "transfer", {"cents": 1})])
    forged = ask(FunctionLayer(backend=InMemoryBackend()), [CALL])  # other arguments, same id
    with pytest.raises(ConflictError):
        check(fl, forged)


def test_a_resuming_client_waits_on_the_request_the_pausing_one_sent() -> None:
    # Another process: another run id and timeout; waiting must reuse the saved request as is.
    backend = InMemoryBackend()
    sent = ask(FunctionLayer(backend=backend, run_id="pausing", timeout=60), [CALL])
    resuming = FunctionLayer(backend=backend, run_id="resuming", timeout=5)
    threading.Timer(0.2, lambda: backend.respond("call_1", approved=True)).start()
    assert wait(resuming, sent) == {"call_1": NativeDecision("call_1", True)}
    assert [c.run_id for c in backend.function_calls] == ["pausing"]
    assert resuming.run_id == "resuming"  # not changed in place


def test_decide_fails_closed_per_call() -> None:
    human = ScriptedHuman({"call_2": approve()})  # nobody answers call_1
    fl = FunctionLayer(backend=human)
    decisions = decide(fl, [CALL, PendingToolCall("call_2", "transfer", {"cents": 2})])
    assert decisions["call_2"] == NativeDecision("call_2", True)
    denied = decisions["call_1"]
    assert not denied.approved and denied.message is not None
    assert denied.message.startswith("transfer was not run: could not get a human decision")
    assert denied.message.endswith(
        "Nothing was done. If the request reached an approver, it is kept under call id call_1."
    )


def test_saved_pauses_round_trip_and_refuse_other_formats() -> None:
    from functionlayer_openai_agents import PausedRun as AgentsPause
    from functionlayer_pydantic_ai import PausedRun as PydanticPause

    sent = tuple(ask(FunctionLayer(backend=InMemoryBackend(), run_id="run-a"), [CALL]))
    pydantic = PydanticPause(messages=b"[]", requests=sent)
    agents = AgentsPause(state={"$schemaVersion": "x"}, requests=sent)
    assert PydanticPause.from_json(pydantic.to_json()) == pydantic
    assert AgentsPause.from_json(agents.to_json()) == agents
    assert pydantic.call_ids == agents.call_ids == ["call_1"]
    with pytest.raises(ValueError, match="not a saved Pydantic AI pause"):
        PydanticPause.from_json(agents.to_json())
    with pytest.raises(ValueError, match="not a saved OpenAI Agents pause"):
        AgentsPause.from_json(pydantic.to_json())


def test_saved_google_adk_pause_round_trips_and_refuses_other_formats() -> None:
    from functionlayer_google_adk import ConfirmationRequest
    from functionlayer_google_adk import PausedRun as AdkPause
    from functionlayer_pydantic_ai import PausedRun as PydanticPause

    sent = tuple(ask(FunctionLayer(backend=InMemoryBackend(), run_id="run-a"), [CALL]))
    confirmation = ConfirmationRequest("adk-request-1", CALL, payload={"max": 100})
    adk = AdkPause("app", "me", "session-1", (confirmation,), sent)
    assert AdkPause.from_json(adk.to_json()) == adk
    assert adk.call_ids == ["call_1"]
    with pytest.raises(ValueError, match="not a saved Google ADK pause"):
        AdkPause.from_json(PydanticPause(messages=b"[]", requests=sent).to_json())


def test_agent_framework_saved_pause_round_trips_and_refuses_other_formats() -> None:
    from functionlayer_agent_framework import PausedRun as FrameworkPause
    from functionlayer_openai_agents import PausedRun as AgentsPause

    sent = tuple(ask(FunctionLayer(backend=InMemoryBackend(), run_id="run-a"), [CALL]))
    approval = {"type": "function_approval_request", "id": "af-call-1"}
    paused = FrameworkPause(session={"type": "session"}, approvals=(approval,), requests=sent)
    assert FrameworkPause.from_json(paused.to_json()) == paused
    assert paused.call_ids == ["call_1"]
    agents = AgentsPause(state={"$schemaVersion": "x"}, requests=sent)
    with pytest.raises(ValueError, match="not a saved Agent Framework pause"):
        FrameworkPause.from_json(agents.to_json())
    with pytest.raises(ValueError, match="approvals must be a list of objects"):
        FrameworkPause.from_json(paused.to_json().replace('[{"type"', '["x", {"type"'))


# -- one approval, one execution ------------------------------------------------------------------


class _ClaimsDown(InMemoryBackend):
    def claim_execution(self, call_id: str, claim_id: str, *, claimed_by: str | None = None) -> Any:
        raise OSError("store unreachable")


def test_collect_claims_each_approval_once() -> None:
    backend = InMemoryBackend()
    fl = FunctionLayer(backend=backend, run_id="resumer")
    sent = ask(fl, [CALL])
    assert collect(fl, sent) is None  # pending: nothing is claimed
    assert backend.get_function_call("call_1").status.execution is None  # type: ignore[union-attr]
    backend.respond("call_1", approved=True)
    first = collect(fl, sent)
    assert first == {"call_1": NativeDecision("call_1", True)}
    execution = backend.get_function_call("call_1").status.execution  # type: ignore[union-attr]
    assert execution is not None and execution.claim_id == first["call_1"].claim_id
    assert execution.claimed_by == "resumer"
    second = collect(fl, sent)  # the same pause resumed again
    assert second == {
        "call_1": NativeDecision(
            "call_1", False, message=already_ran_message("transfer", "call_1", execution)
        )
    }


def test_decide_twice_under_one_call_id_approves_once() -> None:
    fl = FunctionLayer(backend=ScriptedHuman([approve()]))
    assert decide(fl, [CALL])["call_1"].approved is True
    again = decide(fl, [CALL])["call_1"]
    assert again.approved is False
    assert again.message is not None and again.message.startswith(
        "transfer was not run again: call id call_1 was approved once and already ran"
    )


def test_a_claim_that_cannot_be_recorded_denies_fail_closed() -> None:
    fl = FunctionLayer(backend=_ClaimsDown())
    sent = ask(fl, [CALL])
    fl.backend.respond("call_1", approved=True)  # type: ignore[attr-defined]
    got = collect(fl, sent)
    reason = "OSError: store unreachable"
    assert got == {
        "call_1": NativeDecision(
            "call_1", False, message=claim_failed_message("transfer", reason, "call_1")
        )
    }


def test_edits_the_framework_cannot_apply_are_denied_without_claiming() -> None:
    backend = InMemoryBackend()
    fl = FunctionLayer(backend=backend)
    sent = ask(fl, [CALL])
    backend.respond("call_1", approved=True, edited_kwargs={"cents": 50})
    got = collect(fl, sent, edits=False)
    message = edits_unsupported_message("transfer", {"cents": 500}, {"cents": 50})
    assert got == {"call_1": NativeDecision("call_1", False, message=message)}
    assert backend.get_function_call("call_1").status.execution is None  # type: ignore[union-attr]
    # with edits: claimed, and the edited arguments are what runs
    assert collect(fl, sent) == {"call_1": NativeDecision("call_1", True, arguments={"cents": 50})}


def test_claim_then_report_tells_a_later_claim_how_it_ended() -> None:
    """The MCP gateway's path: claim, run elsewhere, report; the next claim hears the outcome."""
    backend = InMemoryBackend()
    fl = FunctionLayer(backend=backend, redact_outcome=lambda value: f"<{len(value)} chars>")
    ask(fl, [CALL])
    backend.respond("call_1", approved=True)

    async def scenario() -> tuple[Claim, Claim]:
        granted = await aclaim(fl, "call_1", "transfer")
        assert granted.proceed and granted.message is None
        await areport(fl, granted, "sent 500")
        return granted, await aclaim(fl, "call_1", "transfer")

    granted, later = asyncio.run(scenario())
    execution = backend.get_function_call("call_1").status.execution  # type: ignore[union-attr]
    assert execution is not None
    assert (execution.outcome, execution.summary) == ("returned", "<8 chars>")
    assert not later.proceed and later.claim_id is None
    assert later.message == already_ran_message("transfer", "call_1", execution)
    assert "It returned: <8 chars>" in later.message
    sync_later = claim(fl, "call_1", "transfer")
    assert sync_later.message == later.message
    with pytest.raises(ValueError, match="not granted"):
        report(fl, later, "x")
    report(fl, granted, ValueError("late"), raised=True)  # a different report: logged, not raised
    assert backend.get_function_call("call_1").status.execution == execution  # type: ignore[union-attr]


def test_async_collect_and_decide_claim_once() -> None:
    backend = ScriptedHuman([approve()])
    fl = FunctionLayer(backend=backend)

    async def scenario() -> list[NativeDecision]:
        sent = await aask(fl, [CALL])
        first = await acollect(fl, sent, wait=True, timeout=5)
        second = await acollect(fl, sent)
        third = await adecide(fl, [CALL])
        assert first is not None and second is not None
        return [first["call_1"], second["call_1"], third["call_1"]]

    first, second, third = asyncio.run(scenario())
    assert first == NativeDecision("call_1", True) and first.claim_id is not None
    for later in (second, third):
        assert later.approved is False and later.message is not None
        assert "already ran" in later.message
