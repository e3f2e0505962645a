"""The guard around the body: claim first (fail closed when it cannot), report the outcome
through the redaction hook, and never re-run an execution whose outcome is unknown."""

from __future__ import annotations

import asyncio

import pytest
from functionlayer import BackendUnavailableError, ExecutionClaim, FunctionLayer, call_id_scope
from functionlayer.testing import ScriptedHuman, approve


class Unclaimable(ScriptedHuman):
    def claim_execution(
        self, call_id: str, claim_id: str, *, claimed_by: str | None = None
    ) -> ExecutionClaim:
        raise BackendUnavailableError("cannot reach the FunctionLayer server")


def test_a_claim_that_cannot_be_made_fails_closed_sync_and_async() -> None:
    ran: list[int] = []
    fl = FunctionLayer(backend=Unclaimable([approve(), approve()]))

    @fl.require_approval()
    def pay(amount: int) -> str:
        ran.append(amount)
        return "paid"

    @fl.require_approval()
    async def apay(amount: int) -> str:
        ran.append(amount)
        return "paid"

    with call_id_scope("c1"):
        message = pay(1)
    with call_id_scope("c2"):
        amessage = asyncio.run(apay(2))
    assert ran == []
    for text, fn, call_id in ((message, "pay", "c1"), (amessage, "apay", "c2")):
        assert text.startswith(f"{fn} was approved but was not run")
        assert "cannot reach the FunctionLayer server" in text and call_id in text


def test_redaction_hooks_decide_what_is_recorded() -> None:
    human = ScriptedHuman([approve(), approve(), approve()])
    fl = FunctionLayer(backend=human, redact_outcome=lambda value: f"<{type(value).__name__}>")

    @fl.require_approval()
    def card() -> dict[str, str]:
        return {"number": "4111 1111 1111 1111"}

    @fl.require_approval(redact=lambda value: "<secret>")
    def token() -> str:
        return "sk-live-123"

    def broken(value: object) -> str:
        raise RuntimeError("hook bug")

    @fl.require_approval(redact=broken)
    def other() -> str:
        return "sk-live-456"

    for name, fn in (("a", card), ("b", token), ("c", other)):
        with call_id_scope(name):
            fn()
    summaries = {
        c.call_id: c.status.execution.summary  # type: ignore[union-attr]
        for c in human.function_calls
    }
    assert summaries == {
        "a": "<dict>",
        "b": "<secret>",
        "c": "<redaction failed: RuntimeError>",
    }
    with call_id_scope("b"):
        again = token()
    assert "sk-live" not in again and "<secret>" in again


def test_exceptions_are_recorded_and_still_propagate() -> None:
    human = ScriptedHuman([approve()])
    fl = FunctionLayer(backend=human)

    @fl.require_approval()
    def explode() -> None:
        raise ValueError("boom " * 200)

    with call_id_scope("x"), pytest.raises(ValueError):
        explode()
    execution = human.get_function_call("x").status.execution  # type: ignore[union-attr]
    assert execution is not None and execution.outcome == "raised"
    assert execution.summary is not None and execution.summary.startswith("ValueError: boom")
    assert len(execution.summary) <= 500
    with call_id_scope("x"):
        assert "It raised: ValueError: boom" in explode()  # type: ignore[func-returns-value]


def test_a_crash_mid_body_is_started_outcome_unknown_and_never_rerun() -> None:
    human = ScriptedHuman([approve()])
    ran: list[str] = []
    fl = FunctionLayer(backend=human)

    @fl.require_approval()
    def deploy() -> str:
        ran.append("deploy")
        raise KeyboardInterrupt  # the process dies mid-body: no outcome is reported

    with call_id_scope("d"), pytest.raises(KeyboardInterrupt):
        deploy()
    restarted = FunctionLayer(backend=human)  # a new agent, a new run id

    @restarted.require_approval()
    def deploy() -> str:  # type: ignore[no-redef]  # the same tool after the restart
        ran.append("deploy again")
        return "deployed"

    with call_id_scope("d"):
        message = deploy()
    assert ran == ["deploy"]
    assert "outcome unknown" in message and "not run again" in message
