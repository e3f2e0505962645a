"""kill -9 the server while agents wait: after a restart on the same database every pending
request is still there, every agent resumes when answered, and no approval is lost."""

from __future__ import annotations

import threading
import time
from typing import Any

from functionlayer import FunctionLayer, HttpBackend

from tests._support.servers import ServerFactory, in_thread


def test_agents_survive_kill_9_and_restart(server_factory: ServerFactory) -> None:
    srv = server_factory()
    # The agents' client retries connection errors (the server is down for a few seconds).
    backend = HttpBackend(srv.api_base, srv.token, backoff_max=0.3, retry_for=120, long_poll=20)
    fl = FunctionLayer(backend=backend, run_id="durable")
    ran: list[int] = []
    lock = threading.Lock()

    @fl.require_approval()
    def act(i: int) -> str:
        with lock:
            ran.append(i)
        return f"did {i}"

    agents = [in_thread(lambda i=i: act(i)) for i in range(6)]
    client = srv.client()

    def pending_by_i(expected: int) -> dict[int, str]:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            items = client.get(
                "/function_calls", params={"pending": "true", "run_id": "durable"}
            ).json()["items"]
            if len(items) == expected:
                return {item["spec"]["kwargs"]["i"]: item["call_id"] for item in items}
            time.sleep(0.05)
        raise AssertionError(f"expected {expected} pending calls")

    ids = pending_by_i(6)
    human = srv.approver_client()  # a person decides; the agent token cannot
    for i in (0, 1):
        answered = human.post(f"/agent/function_calls/{ids[i]}/respond", json={"approved": True})
        assert answered.status_code == 200
    srv.kill()  # SIGKILL right after the approvals were acknowledged
    time.sleep(0.5)  # the agents see connection errors meanwhile
    srv.start()
    client = srv.client()
    human = srv.approver_client()

    still = pending_by_i(4)
    assert sorted(still) == [2, 3, 4, 5]
    for i in (0, 1):
        status: dict[str, Any] = client.get(f"/function_calls/{ids[i]}").json()["status"]
        assert status["approved"] is True, "an approval acknowledged before kill -9 was lost"
    for call_id, decision in [
        (ids[2], {"approved": True}),
        (ids[3], {"approved": True, "edited_kwargs": {"i": 33}}),
        (ids[4], {"approved": False, "comment": "no"}),
        (ids[5], {"response": "done by hand"}),
    ]:
        answered = human.post(f"/agent/function_calls/{call_id}/respond", json=decision)
        assert answered.status_code == 200, answered.text

    results = [join(60) for join in agents]
    assert results[0] == "did 0" and results[1] == "did 1" and results[2] == "did 2"
    assert "did 33" in results[3]
    assert results[4] == "User denied act with feedback: no"
    assert results[5] == "done by hand"
    assert sorted(ran) == [0, 1, 2, 33]
    backend.close()
