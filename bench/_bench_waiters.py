"""Part 3 of ``server_latency.py``: many agents waiting at once on one server process."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
from _bench_server import RawConnection, Server
from functionlayer import HttpBackend

WAITERS = 2000


def print_waiters(stats: dict[str, Any], waiters: int) -> None:
    print(f"3. {waiters} agents waiting at once (long-polls held open: {stats['waiting']})")
    print(
        f"   server RSS {stats['rss_before']:.0f} MB before, {stats['rss_waiting']:.0f} MB while "
        f"waiting ({(stats['rss_waiting'] - stats['rss_before']) * 1024 / waiters:.1f} KB per waiting agent)"
    )
    print(
        f"   all {waiters} answered in {stats['answered']:.2f} s and every agent resumed within "
        f"{stats['released']:.2f} s (the waiting clients share this process's CPU)\n"
    )


async def many_waiters(server: Server, count: int = WAITERS) -> dict[str, Any]:
    # The waits start 1,000 at a time on a busy machine: connections get 30 s, not 5.
    backend = HttpBackend(
        server.api, server.token, long_poll=60, request_timeout=60, connect_timeout=30
    )
    ids = [f"wait-{n}-{uuid.uuid4().hex[:6]}" for n in range(count)]
    limits = httpx.Limits(max_connections=100)
    async with httpx.AsyncClient(
        base_url=server.api, headers=server.headers, limits=limits
    ) as admin:
        sem = asyncio.Semaphore(50)

        async def create(call_id: str) -> None:
            async with sem:
                r = await admin.post(
                    "/function_calls",
                    json={
                        "run_id": "waiters",
                        "call_id": call_id,
                        "spec": {"fn": "act", "kwargs": {}},
                    },
                )
                assert r.status_code == 200, r.text

        await asyncio.gather(*(create(c) for c in ids))
        rss_before = server.rss_mb()
        # One request first, so this process has reached the server (a connect timeout is then
        # retried rather than reported as a wrong URL); the waits start 1,000 at a time, as
        # agents arriving over a few seconds, not 10,000 SYNs in one millisecond.
        await backend.aget_function_call(ids[0])
        waits = []
        for start in range(0, count, 1000):
            waits += [
                asyncio.ensure_future(backend.await_function_call(c, 300))
                for c in ids[start : start + 1000]
            ]
            await asyncio.sleep(0.5)
        deadline = time.monotonic() + 60 + count / 100
        waiting = 0
        while time.monotonic() < deadline:
            # A new connection per look: a kept-alive one may be closed by the busy server's
            # keep-alive timeout just as it is reused (what httpx then reports as "Server
            # disconnected without sending a response").
            async with httpx.AsyncClient(timeout=60) as look:
                waiting = (await look.get(f"{server.base}/healthz")).json()["waiting"]
            if waiting >= count:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        rss_waiting = server.rss_mb()

        humans = [RawConnection(server.port, server.human_token) for _ in range(50)]
        began = time.perf_counter()

        async def approve(human: RawConnection, call_ids: list[str]) -> None:
            for call_id in call_ids:
                status, _ = await human.request(
                    "POST", f"/agent/function_calls/{call_id}/respond", b'{"approved":true}'
                )
                assert status == 200

        await asyncio.gather(*(approve(h, ids[i::50]) for i, h in enumerate(humans)))
        answered = time.perf_counter() - began
        results = await asyncio.gather(*waits)
        for human in humans:
            human.close()
        released = time.perf_counter() - began
    await backend.aclose()
    assert all(r.status is not None and r.status.approved for r in results)
    return {
        "waiting": waiting,
        "rss_before": rss_before,
        "rss_waiting": rss_waiting,
        "released": released,
        "answered": answered,
    }
