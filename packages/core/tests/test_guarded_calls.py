"""The decorator's contract, driven through the scripted human backend."""

from __future__ import annotations

import asyncio
import inspect
import threading
import typing

import pytest
from functionlayer import (
    ContactChannel,
    FunctionCallSpec,
    FunctionLayer,
    ResponseOption,
    SlackContactChannel,
    call_id_scope,
    tool_spec,
)
from functionlayer.testing import (
    InMemoryBackend,
    ScriptedHuman,
    approve,
    edit,
    fail,
    never,
    reject,
    respond,
)


def make(
    script: typing.Any, **kwargs: typing.Any
) -> tuple[FunctionLayer, ScriptedHuman, list[tuple[int, int]]]:
    human = ScriptedHuman(script)
    fl = FunctionLayer(backend=human, run_id="test-run", **kwargs)
    return fl, human, []


def guarded_multiply(
    script: typing.Any, approval: dict[str, typing.Any] | None = None, **kwargs: typing.Any
) -> tuple[typing.Callable[..., typing.Any], ScriptedHuman, list[tuple[int, int]]]:
    """``multiply(x, y)`` guarded by ``require_approval(**approval)`` on a client whose human
    follows ``script``; ``ran`` records the arguments each run had."""
    fl, human, ran = make(script, **kwargs)

    @fl.require_approval(**(approval or {}))
    def multiply(x: int, y: int) -> int:
        ran.append((x, y))
        return x * y

    return multiply, human, ran


def test_approved_call_runs_once_with_the_proposed_arguments_and_returns_its_result() -> None:
    multiply, human, ran = guarded_multiply([approve()])

    assert multiply(2, y=5) == 10
    assert ran == [(2, 5)]
    [request] = human.function_call_requests
    assert request.spec.fn == "multiply"
    assert request.spec.kwargs == {"x": 2, "y": 5}
    assert request.run_id == "test-run"


def test_rejected_call_never_runs_and_returns_the_feedback() -> None:
    multiply, _, ran = guarded_multiply([reject("use smaller numbers")])

    assert multiply(2, 5) == "User denied multiply with feedback: use smaller numbers"
    assert ran == []


def test_rejection_names_the_chosen_reject_option() -> None:
    options = [ResponseOption(name="too_risky", title="Too risky"), ResponseOption(name="later")]
    fl, human, ran = make([reject("not today", option="too_risky")])

    @fl.require_approval(reject_options=options)
    def wire_money(amount: int) -> str:
        ran.append((amount, 0))
        return "sent"

    assert wire_money(100) == "User denied wire_money (Too risky) with feedback: not today"
    assert human.function_call_requests[0].spec.reject_options == options
    assert ran == []


def test_rejection_without_feedback_says_so() -> None:
    fl, _, _ = make([reject()])

    @fl.require_approval()
    def delete_repo(name: str) -> None: ...

    assert delete_repo("x") == "User denied delete_repo without feedback."


def test_approve_with_edits_runs_exactly_the_edited_arguments_and_tells_the_model() -> None:
    multiply, _, ran = guarded_multiply([edit(x=3, y=7)])

    result = multiply(2, 5)
    assert ran == [(3, 7)]
    assert isinstance(result, str)
    assert '{"x": 3, "y": 7}' in result and '{"x": 2, "y": 5}' in result
    assert result.endswith("returned: 21")


def test_edits_are_validated_against_the_signature_and_invalid_ones_never_run() -> None:
    multiply, _, ran = guarded_multiply([edit(x="three", y=5), edit(y=None), edit(x=1, y=2, z=3)])

    wrong_type, nulled, unknown = multiply(2, 5), multiply(2, 5), multiply(2, 5)
    assert ran == []
    for message in (wrong_type, nulled, unknown):
        assert message.startswith(
            "multiply was not run: the human approved it with edited arguments"
        )
    assert "x" in wrong_type and "y" in nulled and "z" in unknown


def test_partial_edits_merge_into_the_proposal() -> None:
    multiply, human, ran = guarded_multiply([edit(y=7)])

    result = multiply(2, 5)
    assert ran == [(2, 7)]
    assert result.endswith("returned: 14") and '{"x": 2, "y": 7}' in result
    status = human.function_call_requests[0].status
    stored = human.get_function_call(human.function_call_requests[0].call_id).status
    assert status is not None and stored is not None
    assert stored.edited_kwargs == {"x": 2, "y": 7}


def test_the_request_carries_the_schema_docstring_and_allowed_decisions() -> None:
    fl, human, _ = make([approve()])

    @fl.require_approval(decisions=["approve", "reject"])
    def transfer(to: str, amount: int, memo: str = "") -> str:
        """Send money to someone."""
        return "sent"

    assert transfer("bob", 3) == "sent"
    spec = human.function_call_requests[0].spec
    assert spec.description == "Send money to someone."
    assert spec.allowed_decisions == ["approve", "reject"]
    assert spec.parameters is not None
    assert list(spec.parameters["properties"]) == ["to", "amount", "memo"]
    assert spec.parameters["properties"]["amount"]["type"] == "integer"
    assert spec.parameters["required"] == ["to", "amount"]


def test_a_decision_the_function_does_not_accept_never_runs_it() -> None:
    multiply, _, ran = guarded_multiply([edit(x=9)], approval=dict(decisions=["approve", "reject"]))

    result = multiply(2, 5)
    assert ran == []
    assert "not allowed" in result and "was not run" in result


def test_decisions_must_be_known_kinds() -> None:
    fl, _, _ = make([])
    with pytest.raises(ValueError):
        fl.require_approval(decisions=["approve", "maybe"])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        fl.require_approval(decisions="approve")  # type: ignore[arg-type]


def test_edit_equal_to_the_proposal_is_a_plain_approval() -> None:
    multiply, _, ran = guarded_multiply([edit(x=2, y=5)])

    assert multiply(2, 5) == 10
    assert ran == [(2, 5)]


def test_respond_instead_returns_the_humans_answer_without_running() -> None:
    multiply, _, ran = guarded_multiply([respond("The result is 10, no need to call it.")])

    assert multiply(2, 5) == "The result is 10, no need to call it."
    assert ran == []


def test_timeout_rejects_and_a_late_answer_cannot_resurrect_the_call() -> None:
    multiply, human, ran = guarded_multiply([never()], timeout=0.2)

    message = multiply(2, 5)
    assert message.startswith("multiply was not run: timed out, no one answered within 0.2 seconds")
    call_id = human.function_call_requests[0].call_id
    stored = human.get_function_call(call_id)
    assert stored.status is not None and stored.status.expired and stored.status.approved is False
    with pytest.raises(Exception, match="already decided"):
        human.respond(call_id, approved=True)
    assert ran == []


def test_decorator_timeout_overrides_the_clients() -> None:
    fl, human, _ = make([never()], timeout=60)

    @fl.require_approval(timeout=0.1)
    def slow(x: int) -> int:
        return x

    assert "within 0.1 seconds" in str(slow(1))
    assert human.function_call_requests[0].spec.timeout_seconds == 0.1


def test_backend_failure_fails_closed_with_a_clear_message() -> None:
    multiply, _, ran = guarded_multiply([fail()])

    message = multiply(2, 5)
    assert message.startswith("multiply was not run: could not get a human decision")
    assert "unreachable" in message and "Nothing was done." in message
    assert ran == []


def test_an_exhausted_script_fails_closed() -> None:
    multiply, _, ran = guarded_multiply([])

    assert "no answer left" in multiply(1, 2)
    assert ran == []


def test_exceptions_of_the_approved_function_propagate_unchanged() -> None:
    fl, _, _ = make([approve()])

    class Boom(RuntimeError):
        pass

    @fl.require_approval()
    def explode() -> None:
        raise Boom("the function itself failed")

    with pytest.raises(Boom, match="the function itself failed"):
        explode()


def test_when_predicate_false_runs_directly_and_true_asks() -> None:
    fl, human, ran = make([reject("too much")])

    @fl.require_approval(when=lambda amount, **_: amount > 100)
    def pay(amount: int, to: str = "bob") -> str:
        ran.append((amount, 0))
        return f"paid {amount} to {to}"

    assert pay(5) == "paid 5 to bob"
    assert human.requests == []
    assert pay(500, to="eve") == "User denied pay with feedback: too much"
    assert human.function_call_requests[0].spec.kwargs == {"amount": 500, "to": "eve"}
    assert ran == [(5, 0)]


def test_metadata_is_kept_for_frameworks() -> None:
    fl, _, _ = make([])

    @fl.require_approval()
    def multiply(x: int, y: int = 2) -> int:
        """Multiply two integers."""
        return x * y

    assert multiply.__name__ == "multiply"
    assert multiply.__doc__ == "Multiply two integers."
    params = inspect.signature(multiply).parameters
    assert list(params) == ["x", "y"] and params["y"].default == 2
    assert typing.get_type_hints(multiply) == {"x": int, "y": int, "return": int}
    spec = tool_spec(multiply)
    assert spec.name == "multiply" and spec.description == "Multiply two integers."
    assert spec.parameters["required"] == ["x"]
    assert spec.parameters["properties"]["y"]["default"] == 2


def test_same_call_id_asks_the_human_once() -> None:
    multiply, human, ran = guarded_multiply([approve()])

    with call_id_scope("tool-call-1"):
        assert multiply(2, 5) == 10
        again = multiply(2, 5)  # a retried turn reuses the decision, but not to run again
    assert len(human.requests) == 1 and human.requests[0].call_id == "tool-call-1"
    assert ran == [(2, 5)]
    assert isinstance(again, str) and again.startswith("multiply was not run again")
    assert "It returned: 10" in again


def test_same_call_id_with_different_arguments_is_refused() -> None:
    multiply, _, ran = guarded_multiply([approve()])

    with call_id_scope("tool-call-1"):
        assert multiply(2, 5) == 10
        message = multiply(9, 9)
    assert message.startswith("multiply was not run") and "different request" in message
    assert ran == [(2, 5)]


def test_decisions_are_matched_by_call_id_not_by_order() -> None:
    human = ScriptedHuman({"b": reject("not b"), "a": approve()})
    fl = FunctionLayer(backend=human)
    ran: list[str] = []

    @fl.require_approval()
    def act(name: str) -> str:
        ran.append(name)
        return f"did {name}"

    with call_id_scope("b"):
        assert act("b") == "User denied act with feedback: not b"
    with call_id_scope("a"):
        assert act("a") == "did a"
    assert ran == ["a"]


def test_channel_and_description_reach_the_request() -> None:
    channel = ContactChannel(
        slack=SlackContactChannel(channel_or_user_id="C1", context_about_channel_or_user="ops")
    )
    fl, human, _ = make([approve()])

    @fl.require_approval(channel)
    def deploy(service: str) -> str:
        """Deploy a service to production."""
        return "ok"

    deploy("api")
    spec = human.function_call_requests[0].spec
    assert spec.channel == channel and spec.description == "Deploy a service to production."


def test_unserialisable_arguments_are_shown_by_repr_but_run_as_the_real_objects() -> None:
    fl, human, _ = make([approve()])

    class Thing:
        def __repr__(self) -> str:
            return "Thing()"

    seen: list[object] = []

    @fl.require_approval()
    def use(thing: object) -> str:
        seen.append(thing)
        return "used"

    obj = Thing()
    assert use(obj) == "used"
    assert seen == [obj]
    assert human.function_call_requests[0].spec.kwargs == {"thing": "Thing()"}


# ------------------------------------------------------------------ async


@pytest.mark.anyio
async def test_async_guarded_function_approve_reject_edit() -> None:
    fl, _, ran = make([approve(), reject("no"), edit(x=1, y=1)])

    @fl.require_approval()
    async def multiply(x: int, y: int) -> int:
        ran.append((x, y))
        return x * y

    assert inspect.iscoroutinefunction(multiply)
    assert await multiply(2, 5) == 10
    assert await multiply(2, 5) == "User denied multiply with feedback: no"
    assert str(await multiply(2, 5)).endswith("returned: 1")
    assert ran == [(2, 5), (1, 1)]


@pytest.mark.anyio
async def test_async_wait_does_not_block_the_event_loop() -> None:
    backend = InMemoryBackend()
    fl = FunctionLayer(backend=backend)

    @fl.require_approval()
    async def launch(target: str) -> str:
        return f"launched {target}"

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    async def approver() -> None:
        while not backend.function_calls:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        backend.respond(backend.function_calls[0].call_id, approved=True)

    tick_task = asyncio.create_task(ticker())
    result, _ = await asyncio.gather(launch("rocket"), approver())
    tick_task.cancel()
    assert result == "launched rocket"
    assert ticks >= 10  # the loop kept running while the call waited


@pytest.mark.anyio
async def test_async_predicate() -> None:
    fl, human, _ = make([approve()])

    async def large(amount: int) -> bool:
        return amount > 10

    @fl.require_approval(when=large)
    async def pay(amount: int) -> str:
        return f"paid {amount}"

    assert await pay(1) == "paid 1" and human.requests == []
    assert await pay(100) == "paid 100" and len(human.requests) == 1


def test_async_predicate_on_sync_function_is_a_clear_error() -> None:
    fl, _, _ = make([approve()])

    async def large(amount: int) -> bool:
        return amount > 10

    @fl.require_approval(when=large)
    def pay(amount: int) -> str:
        return f"paid {amount}"

    with pytest.raises(TypeError, match="must not be async"):
        pay(1)


# ------------------------------------------------------ lower-level API


def test_fetch_approval_and_create_then_get() -> None:
    fl, human, _ = make([approve(), reject("nope")])
    completed = fl.fetch_approval(
        FunctionCallSpec(fn="send_email", kwargs={"to": "a@b.c"})
    ).as_completed()
    assert completed.approved is True and completed.fn == "send_email"

    call = fl.create_function_call(
        FunctionCallSpec(fn="send_email", kwargs={"to": "x"}), call_id="tc-9"
    )
    again = fl.create_function_call(
        FunctionCallSpec(fn="send_email", kwargs={"to": "x"}), call_id="tc-9"
    )
    assert call.call_id == again.call_id == "tc-9"
    got = fl.get_function_call("tc-9")
    assert got.status is not None and got.status.approved is False and got.status.comment == "nope"
    assert len(human.requests) == 2


def test_human_as_tool_returns_the_answer_and_describes_itself() -> None:
    channel = ContactChannel(
        slack=SlackContactChannel(
            channel_or_user_id="C9", context_about_channel_or_user="the design team"
        )
    )
    fl, human, _ = make([respond("blue")])
    ask = fl.human_as_tool(channel)
    assert ask.__name__ == "contact_human_via_slack_the_design_team"
    assert ask.__doc__ is not None and "the design team" in ask.__doc__
    assert ask("What colour should the logo be?") == "blue"
    assert human.human_contact_requests[0].spec.msg == "What colour should the logo be?"
    assert tool_spec(ask).parameters["required"] == ["message"]


def test_human_as_tool_fails_closed_on_timeout() -> None:
    fl, _, _ = make([never()], timeout=0.1)
    ask = fl.human_as_tool()
    assert ask.__name__ == "contact_human"
    assert ask("anyone?").startswith("No answer from a human")


@pytest.mark.anyio
async def test_async_human_as_tool_and_afetch() -> None:
    fl, _, _ = make([respond("yes"), approve()])
    ask = fl.ahuman_as_tool()
    assert await ask("ok?") == "yes"
    call = await fl.afetch_approval(FunctionCallSpec(fn="f", kwargs={}))
    assert call.as_completed().approved


def test_a_decision_from_another_thread_wakes_the_waiting_call() -> None:
    backend = InMemoryBackend()
    fl = FunctionLayer(backend=backend)

    @fl.require_approval()
    def act() -> str:
        return "done"

    def decide() -> None:
        while not backend.function_calls:
            threading.Event().wait(0.01)
        backend.respond(backend.function_calls[0].call_id, approved=False, comment="stop")

    threading.Thread(target=decide).start()
    assert act() == "User denied act with feedback: stop"


def test_invalid_timeouts_are_refused() -> None:
    with pytest.raises(ValueError):
        FunctionLayer(backend=InMemoryBackend(), timeout=0)
    with pytest.raises(ValueError):
        FunctionLayer(backend=InMemoryBackend()).require_approval(timeout=-1)


def test_a_crashing_backend_fails_closed_too() -> None:
    class Broken(InMemoryBackend):
        def create_function_call(self, call: typing.Any) -> typing.Any:
            raise RuntimeError("bug in a backend")

    fl = FunctionLayer(backend=Broken())
    ran: list[int] = []

    @fl.require_approval()
    def act() -> int:
        ran.append(1)
        return 1

    message = act()
    assert message.startswith("act was not run") and "RuntimeError: bug in a backend" in message
    assert ran == []


def test_testing_reexports_the_model_server_in_a_fresh_process() -> None:
    import subprocess
    import sys

    code = "from functionlayer.testing import ScriptedModel, math_script; print(ScriptedModel.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ScriptedModel"
