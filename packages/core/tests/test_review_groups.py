"""One review per model turn, in the core client: a turn's requests carry one group id, and
every one of them is sent before the first wait, so a person can review them together."""

from __future__ import annotations

import asyncio

import pytest
from functionlayer import (
    FunctionCall,
    FunctionCallSpec,
    FunctionLayer,
    InMemoryBackend,
    _native,
    group_id_for,
    group_scope,
)
from functionlayer.adapters import PendingToolCall

from packages.core.tests.recording import recorded_act


class Recording(InMemoryBackend):
    """Notes creates and waits in order; a wait approves the call (a person answering)."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, str]] = []

    def create_function_call(self, call: FunctionCall) -> FunctionCall:
        self.events.append(("create", call.call_id))
        return super().create_function_call(call)

    def wait_function_call(self, call_id: str, timeout: float | None) -> FunctionCall:
        self.events.append(("wait", call_id))
        if not self.get_function_call(call_id).completed:
            self.respond(call_id, approved=True)
        return super().wait_function_call(call_id, timeout)


def spec(n: int) -> FunctionCallSpec:
    return FunctionCallSpec(fn="pay", kwargs={"n": n})


def groups(backend: InMemoryBackend) -> list[str | None]:
    return [c.spec.group_id for c in backend.function_calls]


def test_create_function_calls_sends_one_group() -> None:
    backend = InMemoryBackend()
    fl = FunctionLayer(backend=backend)
    sent = fl.create_function_calls([spec(1), spec(2)], ["a", "b"])
    assert [c.call_id for c in sent] == ["a", "b"]
    (group,) = set(groups(backend))
    assert group and group.startswith("turn-")
    fl.create_function_calls([spec(3)], ["c"], group_id="chosen")
    assert groups(backend)[-1] == "chosen"
    with pytest.raises(ValueError, match="one entry per spec"):
        fl.create_function_calls([spec(4)], ["d", "e"])


def test_acreate_function_calls_sends_one_group() -> None:
    backend = InMemoryBackend()
    fl = FunctionLayer(backend=backend)
    asyncio.run(fl.acreate_function_calls([spec(1), spec(2), spec(3)]))
    assert len(set(groups(backend))) == 1 and groups(backend)[0] is not None


def test_group_scope_and_client_group() -> None:
    backend = InMemoryBackend()
    fl = FunctionLayer(backend=backend, group_id="client-group")
    fl.create_function_call(spec(1), "x1")
    with group_scope("scoped") as group:
        assert group == "scoped"
        fl.create_function_call(spec(2), "x2")
        fl.create_function_call(spec(3).model_copy(update={"group_id": "own"}), "x3")
    assert groups(backend) == ["client-group", "scoped", "own"]
    assert FunctionLayer(backend=backend).create_function_call(spec(4)).spec.group_id is None


def test_group_id_is_bounded_on_the_wire() -> None:
    with pytest.raises(ValueError):
        FunctionCallSpec(fn="pay", group_id="g" * 129)
    with pytest.raises(ValueError):
        FunctionCallSpec(fn="pay", group_id="")


def test_native_decide_sends_the_whole_turn_before_the_first_wait() -> None:
    backend = Recording()
    fl = FunctionLayer(backend=backend)
    calls = [PendingToolCall(cid, "pay", {"n": i}) for i, cid in enumerate(["c1", "c2", "c3"])]
    decisions = _native.decide(fl, calls)
    assert all(d.approved for d in decisions.values())
    first_wait = backend.events.index(("wait", "c1"))
    assert {cid for kind, cid in backend.events[:first_wait] if kind == "create"} == {
        "c1",
        "c2",
        "c3",
    }
    assert set(groups(backend)) == {group_id_for(["c1", "c2", "c3"])}


def test_native_ask_groups_several_calls_only() -> None:
    backend = InMemoryBackend()
    fl = FunctionLayer(backend=backend)
    _native.ask(fl, [PendingToolCall("solo", "pay", {"n": 1})])
    assert groups(backend) == [None]
    _native.ask(fl, [PendingToolCall(c, "pay", {"n": 2}) for c in ("p", "q")])
    assert groups(backend)[1:] == [group_id_for(["q", "p"])] * 2  # order-independent


def test_tool_spec_announce_creates_without_waiting() -> None:
    backend = InMemoryBackend()
    act, ran = recorded_act(FunctionLayer(backend=backend))

    from functionlayer import tool_spec

    tool = tool_spec(act)
    tool.announce({"x": 1}, call_id="outside")  # no group open: nothing
    assert backend.function_calls == []
    with group_scope("g1"):
        tool.announce({"x": 1}, call_id="t1")
        tool.announce({"x": "not a number"}, call_id="t2")  # invalid: left to the run
    assert [(c.call_id, c.spec.group_id, c.completed) for c in backend.function_calls] == [
        ("t1", "g1", False)
    ]
    assert ran == []
