"""Two server processes on one PostgreSQL database: an agent long-polling one is woken within
milliseconds by an answer given on the other (LISTEN/NOTIFY)."""

from __future__ import annotations

import statistics
import threading
import time

import pytest

from tests._support.servers import ServerFactory

pytestmark = pytest.mark.postgres


def test_answer_on_one_process_wakes_a_waiter_on_the_other(
    server_factory: ServerFactory, postgres_url: str
) -> None:
    first = server_factory(postgres_url)
    second = server_factory(postgres_url, token=first.token)  # same database, same tokens
    on_first = first.client()
    on_second = second.client(first.approver_token)  # a person answers on the other process
    delays: list[float] = []  # from the answer's HTTP response to the waiter's wake-up
    for n in range(5):
        call_id = f"cluster-{n}"
        body = {"run_id": "r", "call_id": call_id, "spec": {"fn": "f", "kwargs": {"n": n}}}
        assert on_first.post("/function_calls", json=body).status_code == 200
        # The second process sees the request (shared storage) ...
        assert on_second.get(f"/function_calls/{call_id}").json()["status"]["approved"] is None
        woke: list[float] = []
        result: list[dict[str, object]] = []

        def wait(
            call_id: str = call_id,
            woke: list[float] = woke,
            result: list[dict[str, object]] = result,
        ) -> None:
            with first.client() as c:
                got = c.get(f"/function_calls/{call_id}", params={"wait": 20}).json()
            woke.append(time.monotonic())
            result.append(got)

        waiter = threading.Thread(target=wait)
        waiter.start()
        time.sleep(0.3)  # the long-poll is parked on the first process
        assert not woke
        answer = on_second.post(f"/agent/function_calls/{call_id}/respond", json={"approved": True})
        answered = time.monotonic()
        assert answer.status_code == 200
        waiter.join(10)
        assert result and result[0]["status"]["approved"] is True  # type: ignore[index]
        delays.append(woke[0] - answered)
        assert woke[0] - answered < 0.5, f"woken {woke[0] - answered:.3f}s after the answer"
    print(
        f"cross-process wake-up after the answer: median {statistics.median(delays) * 1000:.1f} ms, max {max(delays) * 1000:.1f} ms"
    )
    # ... and a decision on one process is final on both.
    late = first.client(first.approver_token).post(
        "/agent/function_calls/cluster-0/respond", json={"approved": False, "comment": "x"}
    )
    assert late.status_code == 409
