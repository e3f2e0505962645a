"""``@fl.require_approval`` works bare and called, and a wrong argument says what to write."""

from __future__ import annotations

import asyncio

import pytest
from functionlayer import ContactChannel, FunctionLayer, SlackContactChannel, tool_spec
from functionlayer.testing import ScriptedHuman, approve, reject


def test_bare_decorator_guards_the_function_like_the_called_form() -> None:
    human = ScriptedHuman([approve(), reject("not today")])
    fl = FunctionLayer(backend=human, run_id="forms")
    ran: list[tuple[int, int]] = []

    @fl.require_approval
    def multiply(x: int, y: int) -> int:
        """Multiply two numbers."""
        ran.append((x, y))
        return x * y

    assert multiply(3, 4) == 12
    rejected = multiply(5, 6)
    assert ran == [(3, 4)], "the rejected call must not run"
    assert isinstance(rejected, str) and "not today" in rejected
    first, _ = human.function_call_requests
    assert first.spec.fn == "multiply" and first.spec.kwargs == {"x": 3, "y": 4}
    assert first.spec.channel is None
    # The tool machinery sees the real signature and docstring, as with @fl.require_approval().
    spec = tool_spec(multiply)
    assert spec.name == "multiply"
    assert spec.description == "Multiply two numbers."
    assert set(spec.parameters["properties"]) == {"x", "y"}


def test_bare_decorator_on_an_async_function() -> None:
    human = ScriptedHuman([approve()])
    fl = FunctionLayer(backend=human, run_id="forms-async")

    @fl.require_approval
    async def add(x: int, y: int) -> int:
        return x + y

    assert asyncio.run(add(1, 2)) == 3
    assert len(human.function_call_requests) == 1


def test_called_form_still_takes_a_contact_channel() -> None:
    human = ScriptedHuman([approve()])
    fl = FunctionLayer(backend=human, run_id="forms-channel")
    channel = ContactChannel(slack=SlackContactChannel(channel_or_user_id="C123"))

    @fl.require_approval(channel)
    def send(to: str) -> str:
        return f"sent to {to}"

    assert send("bob") == "sent to bob"
    [request] = human.function_call_requests
    assert request.spec.channel == channel


def test_a_wrong_first_argument_names_the_two_forms() -> None:
    fl = FunctionLayer(backend=ScriptedHuman([]), run_id="forms-wrong")
    with pytest.raises(TypeError, match=r"@fl\.require_approval"):
        fl.require_approval("finance")  # type: ignore[call-overload]
