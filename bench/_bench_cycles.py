"""Part 2 of ``server_latency.py``: what a guarded call costs the agent's process, and cycles
per second (create -> answer -> the body starts) from one agent process.

The human answers from a process of its own (``_bench_human.py``, told each call id over a pipe
once the request exists), so this process's CPU time is the agent's: the decorator, its three
requests (create, the claiming long-poll, the outcome report) and the pipe write. Measured for
the lean HTTP/1.1 client (the default), for httpx (``transport=`` / ``async_transport=``), and
for a raw protocol client making the same three requests (the floor).
"""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from _bench_server import RawConnection, Server
from functionlayer import FunctionLayer, HttpBackend

HUMAN = Path(__file__).with_name("_bench_human.py")


class Human:
    """The human's process: approves every call id written to it."""

    def __init__(self, server: Server) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HUMAN), str(server.port), server.human_token],
            stdin=subprocess.PIPE,
        )
        self.lock = threading.Lock()

    def approve(self, call_id: str) -> None:
        assert self.proc.stdin is not None
        with self.lock:
            self.proc.stdin.write(f"{call_id}\n".encode())
            self.proc.stdin.flush()

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(30)


def _backend(server: Server, human: Human, path: str) -> HttpBackend:
    class Announcing(HttpBackend):
        def create_function_call(self, call: Any) -> Any:
            stored = super().create_function_call(call)
            human.approve(call.call_id)
            return stored

        async def acreate_function_call(self, call: Any) -> Any:
            stored = await super().acreate_function_call(call)
            human.approve(call.call_id)
            return stored

    if path == "httpx":
        return Announcing(
            server.api,
            server.token,
            transport=httpx.HTTPTransport(),
            async_transport=httpx.AsyncHTTPTransport(),
        )
    return Announcing(server.api, server.token)


def sync_calls(server: Server, path: str, agents: int, seconds: float) -> tuple[int, float, float]:
    """``agents`` threads making guarded calls: (calls, seconds, ms of CPU per call)."""
    human = Human(server)
    backend = _backend(server, human, path)
    fl = FunctionLayer(backend=backend, run_id="bench-cpu")

    @fl.require_approval()
    def act(n: int) -> int:
        return n

    def run(stop_at: float, counter: itertools.count[int]) -> None:
        while time.perf_counter() < stop_at:
            assert act(1) == 1
            next(counter)

    def phase(length: float) -> tuple[int, float, float]:
        counter = itertools.count()
        stop_at = time.perf_counter() + length
        threads = [threading.Thread(target=run, args=(stop_at, counter)) for _ in range(agents)]
        cpu, began = time.process_time(), time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        calls = next(counter)
        return calls, time.perf_counter() - began, time.process_time() - cpu

    phase(0.5)  # connections open, code warm
    calls, elapsed, cpu = phase(seconds)
    backend.close()
    human.close()
    return calls, elapsed, cpu / max(calls, 1) * 1000


async def async_calls(
    server: Server, path: str, agents: int, seconds: float
) -> tuple[int, float, float]:
    """``agents`` asyncio tasks making guarded calls: (calls, seconds, ms of CPU per call)."""
    human = Human(server)
    backend = _backend(server, human, path)
    fl = FunctionLayer(backend=backend, run_id="bench-cpu")

    @fl.require_approval()
    async def act(n: int) -> int:
        return n

    async def run(stop_at: float) -> int:
        calls = 0
        while time.perf_counter() < stop_at:
            assert await act(1) == 1
            calls += 1
        return calls

    async def phase(length: float) -> tuple[int, float, float]:
        stop_at = time.perf_counter() + length
        cpu, began = time.process_time(), time.perf_counter()
        calls = sum(await asyncio.gather(*(run(stop_at) for _ in range(agents))))
        return calls, time.perf_counter() - began, time.process_time() - cpu

    await phase(0.5)
    calls, elapsed, cpu = await phase(seconds)
    await backend.aclose()
    human.close()
    return calls, elapsed, cpu / max(calls, 1) * 1000


async def raw_calls(server: Server, agents: int, seconds: float) -> tuple[int, float, float]:
    """The floor: the same three requests per call from a minimal raw HTTP/1.1 client."""
    human = Human(server)

    async def run(index: int, stop_at: float) -> int:
        mine = RawConnection(server.port, server.token)
        waits = RawConnection(server.port, server.token)
        calls = 0
        while time.perf_counter() < stop_at:
            call_id = f"raw-cpu-{index}-{calls}-{uuid.uuid4().hex[:6]}"
            body = f'{{"run_id":"bench","call_id":"{call_id}","spec":{{"fn":"act","kwargs":{{"n":1}}}}}}'
            status, _ = await mine.request("POST", "/function_calls", body.encode())
            assert status == 200
            human.approve(call_id)
            claim = f'{{"claim_id":"{call_id}-claim"}}'.encode()
            status, payload = await waits.request(
                "POST", f"/function_calls/{call_id}/claim_when_approved?wait=30", claim
            )
            assert status == 200 and b'"approved":true' in payload, payload[:300]
            report = f'{{"claim_id":"{call_id}-claim","outcome":"returned","summary":"1"}}'
            status, _ = await mine.request(
                "POST", f"/function_calls/{call_id}/execution/outcome", report.encode()
            )
            assert status == 200
            calls += 1
        mine.close()
        waits.close()
        return calls

    async def phase(length: float, first: int) -> tuple[int, float, float]:
        stop_at = time.perf_counter() + length
        cpu, began = time.process_time(), time.perf_counter()
        calls = sum(await asyncio.gather(*(run(first + i, stop_at) for i in range(agents))))
        return calls, time.perf_counter() - began, time.process_time() - cpu

    await phase(0.5, 0)
    calls, elapsed, cpu = await phase(seconds, 1000)
    human.close()
    return calls, elapsed, cpu / max(calls, 1) * 1000


def print_client_costs(server: Server, seconds: float) -> dict[str, float]:
    """Prints part 2; returns the lean path's CPU per call (sync, async) for the targets."""
    print("2. the agent's side: CPU per guarded call (agent process CPU time / calls; the human")
    print("   answers from its own process) and cycles/s from one agent process")
    rows: dict[str, float] = {}
    for agents in (5, 50):
        print(f"   {agents} agents{'':21}sync (threads)                 async (tasks)")
        for path in ("lean", "httpx"):
            s_calls, s_elapsed, s_cpu = sync_calls(server, path, agents, seconds)
            a_calls, a_elapsed, a_cpu = asyncio.run(async_calls(server, path, agents, seconds))
            label = "lean HTTP/1.1 (default)" if path == "lean" else "httpx (transport=...)"
            print(
                f"   {label:27} {s_cpu:5.2f} ms CPU {s_calls / s_elapsed:6,.0f} calls/s   "
                f"{a_cpu:5.2f} ms CPU {a_calls / a_elapsed:6,.0f} calls/s"
            )
            rows[f"{path} sync {agents}"], rows[f"{path} async {agents}"] = s_cpu, a_cpu
        r_calls, r_elapsed, r_cpu = asyncio.run(raw_calls(server, agents, seconds))
        print(
            f"   {'raw protocol client':27} {'':30}   {r_cpu:5.2f} ms CPU "
            f"{r_calls / r_elapsed:6,.0f} calls/s"
        )
    print(
        "   (a call: create, the claiming long-poll, the outcome report, and one pipe write to the\n"
        "    human; target for HttpBackend <= 0.5 ms of CPU per call)\n"
    )
    return rows


async def raw_cycles(
    server: Server, agents: int, seconds: float, ports: list[int] | None = None
) -> tuple[int, float, list[float]]:
    """Agents speak the protocol directly: create, long-poll, and run once approved; a human
    per agent answers each request. With several server ``ports`` (processes on one
    PostgreSQL database), each agent talks to one process and its human to the next, so every
    decision wakes a long-poll held by another process. Returns cycles, seconds and the
    decision latencies (answer sent -> the long-poll returns it)."""
    ports = ports or [server.port]
    done = 0
    latencies: list[float] = []

    async def agent(index: int, stop_at: float) -> None:
        nonlocal done
        mine = RawConnection(ports[index % len(ports)], server.token)
        human = RawConnection(ports[(index + 1) % len(ports)], server.human_token)
        n = 0
        while time.perf_counter() < stop_at:
            call_id = f"raw-{index}-{n}-{uuid.uuid4().hex[:6]}"
            body = f'{{"run_id":"bench","call_id":"{call_id}","spec":{{"fn":"act","kwargs":{{"n":{n}}}}},"status":null}}'
            status, _ = await mine.request("POST", "/function_calls", body.encode())
            assert status == 200
            wait = asyncio.ensure_future(mine.request("GET", f"/function_calls/{call_id}?wait=30"))
            sent = time.perf_counter()
            status, _ = await human.request(
                "POST", f"/agent/function_calls/{call_id}/respond", b'{"approved":true}'
            )
            assert status == 200
            status, payload = await wait
            assert status == 200 and b'"approved":true' in payload
            latencies.append(time.perf_counter() - sent)
            done += 1  # the guarded body would start here
            n += 1
        mine.close()
        human.close()

    await asyncio.gather(*(agent(i, time.perf_counter() + 0.5) for i in range(agents)))  # warm-up
    done = 0
    latencies.clear()
    began = time.perf_counter()
    await asyncio.gather(*(agent(1000 + i, began + seconds) for i in range(agents)))
    return done, time.perf_counter() - began, latencies
