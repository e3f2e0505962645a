"""The guarantee, held against backends and humans that misbehave in small ways.

Each test pins one behaviour a user relies on: a decision is used only for the very request it
was asked about, what runs is what was shown and approved, a deadline is a deadline, and a
terminal answer approves only when it says yes. All in process, in well under a second each.
"""

from __future__ import annotations

import io
import time
from collections.abc import Mapping
from typing import Any, TypeVar

import pytest
from functionlayer import (
    FunctionCall,
    FunctionCallSpec,
    FunctionLayer,
    HttpBackend,
    HumanContact,
    HumanContactSpec,
    TerminalBackend,
    call_id_scope,
)
from functionlayer._feedback import rejection_message
from functionlayer.models import FunctionCallStatus
from functionlayer.testing import InMemoryBackend, ScriptedHuman, approve, edit, never

from packages.core.tests.protocol_server import ProtocolServer

# -- backends that hand back the wrong request ------------------------------------------------

_Held = TypeVar("_Held", FunctionCall, HumanContact)


class LaxBackend(InMemoryBackend):
    """A store that, asked to create a call id it already holds, returns what it holds without
    comparing it with what was sent (as a buggy or hostile server might)."""

    def create_function_call(self, call: FunctionCall) -> FunctionCall:
        held = self._held(self._calls, call.call_id)
        return held if held is not None else super().create_function_call(call)

    def create_human_contact(self, contact: HumanContact) -> HumanContact:
        held = self._held(self._contacts, contact.call_id)
        return held if held is not None else super().create_human_contact(contact)

    def _held(self, stored: Mapping[str, _Held], call_id: str) -> _Held | None:
        with self._changed:
            existing = stored.get(call_id)
        return None if existing is None else existing.model_copy(deep=True)


class MixedUpBackend(InMemoryBackend):
    """Stores the request faithfully, but its wait answers with another, approved request
    (a cache or proxy that serves the wrong resource)."""

    def __init__(self, other: FunctionCall) -> None:
        super().__init__()
        self.other = other
        self.waits = 0

    def wait_function_call(self, call_id: str, timeout: float | None) -> FunctionCall:
        self.waits += 1
        return self.other.model_copy(deep=True)


def _approved(call_id: str, fn: str, **kwargs: Any) -> FunctionCall:
    return FunctionCall(
        run_id="other-run",
        call_id=call_id,
        spec=FunctionCallSpec(fn=fn, kwargs=kwargs),
        status=FunctionCallStatus(approved=True),
    )


def _transfer(fl: FunctionLayer, ran: list[int]) -> Any:
    @fl.require_approval()
    def transfer(amount: int) -> str:
        ran.append(amount)
        return f"sent {amount}"

    return transfer


def test_an_approval_of_another_request_under_the_same_call_id_is_never_used() -> None:
    # The server already holds an approval of transfer(amount=1) under call id tc-1; the agent
    # now asks about transfer(amount=1000000) under the same id and is handed that approval.
    backend = LaxBackend()
    backend.create_function_call(_approved("tc-1", "transfer", amount=1))
    backend.respond("tc-1", approved=True)
    fl = FunctionLayer(backend=backend, run_id="other-run")
    ran: list[int] = []
    transfer = _transfer(fl, ran)

    with call_id_scope("tc-1"):
        result = transfer(1_000_000)

    assert ran == []
    assert result.startswith("transfer was not run:") and "different request" in result


def test_a_wait_answered_with_another_approved_request_never_runs_the_body() -> None:
    backend = MixedUpBackend(_approved("someone-elses-call", "transfer", amount=1))
    fl = FunctionLayer(backend=backend)
    ran: list[int] = []
    transfer = _transfer(fl, ran)

    result = transfer(1_000_000)

    assert backend.waits == 1
    assert ran == []
    assert result.startswith("transfer was not run:") and "different request" in result


@pytest.mark.anyio
async def test_an_async_wait_answered_with_another_approved_request_never_runs_the_body() -> None:
    backend = MixedUpBackend(_approved("someone-elses-call", "transfer", amount=1))
    fl = FunctionLayer(backend=backend)
    ran: list[int] = []

    @fl.require_approval()
    async def transfer(amount: int) -> str:
        ran.append(amount)
        return f"sent {amount}"

    result = await transfer(1_000_000)  # type: ignore[misc]  # the decorator types async as R | str

    assert backend.waits == 1
    assert ran == []
    assert result.startswith("transfer was not run:") and "different request" in result


def test_an_answer_to_another_question_is_never_given_to_the_model() -> None:
    backend = LaxBackend()
    backend.create_human_contact(
        HumanContact(run_id="r", call_id="ask-1", spec=HumanContactSpec(msg="Delete the logs?"))
    )
    backend.answer("ask-1", "yes, go ahead")
    fl = FunctionLayer(backend=backend, run_id="r")
    ask = fl.human_as_tool()

    with call_id_scope("ask-1"):
        answer = ask("Delete the production database?")

    assert "yes, go ahead" not in answer
    assert answer.startswith("No answer from a human:") and "different contact" in answer


# -- what runs is what was approved -----------------------------------------------------------


def test_edited_arguments_reach_the_body_as_the_types_of_its_signature() -> None:
    human = ScriptedHuman([edit(count="7", label="weekly")])
    fl = FunctionLayer(backend=human)
    seen: list[tuple[Any, Any]] = []

    @fl.require_approval()
    def schedule(count: int, label: str) -> int:
        seen.append((count, label))
        return count * 2

    result = schedule(3, "daily")

    assert seen == [(7, "weekly")] and type(seen[0][0]) is int
    assert str(result).endswith("returned: 14")


def test_the_human_is_shown_every_argument_that_will_run_defaults_included() -> None:
    human = ScriptedHuman([approve()])
    fl = FunctionLayer(backend=human)
    ran: list[tuple[int, str, bool]] = []

    @fl.require_approval()
    def transfer(amount: int, currency: str = "USD", notify_payee: bool = True) -> str:
        ran.append((amount, currency, notify_payee))
        return "sent"

    assert transfer(5) == "sent"
    [request] = human.function_call_requests
    assert request.spec.kwargs == {"amount": 5, "currency": "USD", "notify_payee": True}
    assert ran == [(5, "USD", True)]


# -- deadlines --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_async_timeout_expires_the_request_so_a_late_approval_cannot_land() -> None:
    human = ScriptedHuman([never()])
    fl = FunctionLayer(backend=human, timeout=0.2)
    ran: list[int] = []

    @fl.require_approval()
    async def transfer(amount: int) -> str:
        ran.append(amount)
        return "sent"

    result = await transfer(10)  # type: ignore[misc]

    assert result.startswith("transfer was not run: timed out, no one answered within 0.2 seconds")
    call_id = human.function_call_requests[0].call_id
    stored = human.get_function_call(call_id)
    assert stored.status is not None and stored.status.expired is True
    assert stored.status.approved is False
    with pytest.raises(Exception, match="already decided"):
        human.respond(call_id, approved=True)  # the late click finds the request closed
    assert ran == []


def test_a_short_timeout_is_honoured_over_a_long_server_long_poll() -> None:
    with ProtocolServer() as server:
        backend = HttpBackend(server.base_url, server.token, long_poll=5.0, retry_for=5.0)
        fl = FunctionLayer(backend=backend, timeout=0.3)
        ran: list[int] = []
        transfer = _transfer(fl, ran)

        started = time.monotonic()
        result = transfer(10)
        elapsed = time.monotonic() - started

        assert result.startswith(
            "transfer was not run: timed out, no one answered within 0.3 seconds"
        )
        assert elapsed < 2.5, f"waited {elapsed:.1f}s for a 0.3s deadline"
        waits = [path for _, path, _ in server.requests("GET", "/function_calls/")]
        assert waits and all("wait=5" not in path for path in waits), waits
        assert ran == []
        backend.close()


# -- the terminal -----------------------------------------------------------------------------


@pytest.mark.parametrize("answer", ["yes but only for x=2", "you must not", "yesterday"])
def test_the_terminal_approves_only_a_plain_yes(answer: str) -> None:
    backend = TerminalBackend(input=io.StringIO(answer + "\n"), output=io.StringIO())
    fl = FunctionLayer(backend=backend)
    ran: list[tuple[int, int]] = []

    @fl.require_approval()
    def multiply(x: int, y: int) -> int:
        ran.append((x, y))
        return x * y

    assert multiply(2, 5) == rejection_message("multiply", answer)
    assert ran == []


def test_terminal_approval_still_takes_y_and_yes() -> None:
    # The other side of the test above: the plain answers keep approving.
    for answer in ("y", "Yes"):
        backend = TerminalBackend(input=io.StringIO(answer + "\n"), output=io.StringIO())
        fl = FunctionLayer(backend=backend)

        @fl.require_approval()
        def multiply(x: int, y: int) -> int:
            return x * y

        assert multiply(2, 5) == 10
