"""Property: whatever the interleaving of retries, restarts (new FunctionLayer instances with new
run ids), duplicate and concurrent call ids, sync and async calls, each approval yields at most
one execution of the body, only for approved calls, and only with the approved (or validly
edited) arguments. Over the in-memory scripted human, and (fewer examples) over HTTP against a
real server where a person decides with an approver token."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from functionlayer import FunctionLayer, HttpBackend, call_id_scope
from functionlayer._backends._base import Backend
from functionlayer._context import current_call_id as _current
from functionlayer.testing import ScriptedHuman, approve, edit, reject
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests._support.servers import ServerProcess

Decision = tuple[str, int]  # ("approve" | "reject" | "edit", edited amount)

decisions = st.tuples(st.sampled_from(["approve", "reject", "edit"]), st.integers(0, 9))
steps = st.lists(
    st.fixed_dictionaries(
        {
            "call": st.integers(0, 2),  # few call ids: lots of reuse
            "amount": st.integers(0, 2),  # sometimes other arguments under the same id
            "restart": st.booleans(),  # a new FunctionLayer with a new run id first
            "use_async": st.booleans(),
            "parallel": st.integers(1, 3),  # the same call id from several threads at once
        }
    ),
    min_size=1,
    max_size=8,
)


@dataclass
class World:
    backend: Backend
    ran: list[tuple[str, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def agent(self) -> tuple[Callable[..., Any], Callable[..., Any]]:
        fl = FunctionLayer(backend=self.backend)  # a fresh random run id, as after a restart

        @fl.require_approval()
        def transfer(amount: int) -> str:
            with self.lock:
                self.ran.append((_current() or "", amount))
            return f"moved {amount}"

        async def transfer_async(amount: int) -> str:
            with self.lock:
                self.ran.append((_current() or "", amount))
            return f"moved {amount}"

        transfer_async.__name__ = "transfer"  # the same function, as the LLM sees it
        return transfer, fl.require_approval()(transfer_async)


def _play(world: World, plan: list[dict[str, Any]], ids: list[str]) -> None:
    sync_fn, async_fn = world.agent()
    for step in plan:
        if step["restart"]:
            sync_fn, async_fn = world.agent()
        call_id = ids[step["call"]]

        def one(
            fn_sync: Any = sync_fn, fn_async: Any = async_fn, s: Any = step, cid: str = call_id
        ) -> None:
            with call_id_scope(cid):
                if s["use_async"]:
                    asyncio.run(fn_async(s["amount"]))
                else:
                    fn_sync(s["amount"])

        threads = [threading.Thread(target=one) for _ in range(step["parallel"])]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)


def _check(world: World, created: dict[str, int], chosen: dict[str, Decision]) -> None:
    per_call: dict[str, list[int]] = {}
    for call_id, amount in world.ran:
        per_call.setdefault(call_id, []).append(amount)
    for call_id, amounts in per_call.items():
        assert len(amounts) == 1, f"{call_id} ran {len(amounts)} times"
        kind, edited = chosen[call_id]
        assert kind != "reject", f"{call_id} ran although rejected"
        expected = edited if kind == "edit" else created[call_id]
        assert amounts == [expected]
    for call_id in created:  # an approved call that was asked for ran (once)
        if chosen[call_id][0] != "reject":
            assert call_id in per_call


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=steps, chosen_list=st.lists(decisions, min_size=3, max_size=3))
def test_one_approval_one_execution_in_memory(
    plan: list[dict[str, Any]], chosen_list: list[Decision]
) -> None:
    ids = [f"c{i}" for i in range(3)]
    chosen = dict(zip(ids, chosen_list, strict=True))

    def answer(request: Any) -> Any:
        kind, edited = chosen[request.call_id]
        return {"approve": approve(), "reject": reject("no"), "edit": edit(amount=edited)}[kind]

    human = ScriptedHuman(answer)
    world = World(human)
    _play(world, plan, ids)
    created = {c.call_id: c.spec.kwargs["amount"] for c in human.function_call_requests}
    _check(world, created, chosen)


class _Person(threading.Thread):
    """Decides every pending request of the given call ids, as person alice (approver token)."""

    def __init__(self, server: ServerProcess, chosen: dict[str, Decision]) -> None:
        super().__init__(daemon=True)
        self.server, self.chosen = server, chosen
        self.stopped = threading.Event()
        self.created: dict[str, int] = {}

    def run(self) -> None:
        with self.server.client() as agent, self.server.approver_client("alice") as person:
            while not self.stopped.wait(0.05):
                for call_id, (kind, edited) in self.chosen.items():
                    got = agent.get(f"/function_calls/{call_id}")
                    if got.status_code != 200 or got.json()["status"]["approved"] is not None:
                        continue
                    self.created[call_id] = got.json()["spec"]["kwargs"]["amount"]
                    body: dict[str, Any] = {"approved": kind != "reject"}
                    if kind == "reject":
                        body["comment"] = "no"
                    if kind == "edit":
                        body["edited_kwargs"] = {"amount": edited}
                    person.post(f"/agent/function_calls/{call_id}/respond", json=body)


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(plan=steps, chosen_list=st.lists(decisions, min_size=3, max_size=3))
def test_one_approval_one_execution_over_http(
    real_server: ServerProcess, plan: list[dict[str, Any]], chosen_list: list[Decision]
) -> None:
    ids = [f"p-{uuid.uuid4().hex[:10]}-{i}" for i in range(3)]  # the server outlives examples
    chosen = dict(zip(ids, chosen_list, strict=True))
    person = _Person(real_server, chosen)
    person.start()
    backend = HttpBackend(real_server.api_base, real_server.token, retry_for=10.0)
    try:
        world = World(backend)
        _play(world, plan, ids)
    finally:
        person.stopped.set()
        person.join(10)
        backend.close()
    _check(world, person.created, chosen)
