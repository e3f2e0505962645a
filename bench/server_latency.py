"""How fast does an agent resume once a human answers, and how much does the server carry?

Starts ``functionlayer-server serve`` on a fresh SQLite file and prints, in one run:

1. resume latency, from the moment a human's answer is sent to the moment the guarded function's
   body starts, through the core's HTTP backend (long-poll), next to a fixed-interval poll
   baseline (the predecessor's client polled every 3 s; we use 1 s to keep the run short, which
   flatters the baseline);
2. full create -> answer -> resume cycles per second with 50 concurrent agents;
3. the server's resident memory with 2,000 agents waiting at once (and how fast all 2,000
   resume when answered).

Targets on a 2-core machine (SQLite): p50 < 5 ms, p99 < 25 ms, >= 500 cycles/s,
2,000 waits < 1 GB RSS. Run: ``uv run --no-sync python bench/server_latency.py``.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil
from functionlayer import FunctionCallSpec, FunctionLayer, HttpBackend, call_id_scope
from functionlayer._backends._base import Backend
from functionlayer_server import Settings
from functionlayer_server._cli import create_token, create_user

LATENCY_SAMPLES = 300
BASELINE_AGENTS = 40
BASELINE_INTERVAL = 1.0
CYCLE_AGENTS = 50
CYCLE_SECONDS = 8.0
WAITERS = 2000


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, directory: Path, database_url: str | None = None) -> None:
        self.url = database_url or f"sqlite:///{directory / 'bench.sqlite3'}"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.api = f"{self.base}/functionlayer/v1"
        settings = Settings(database_url=self.url)
        # Live token names are unique per project: a run on a database reused from an earlier
        # run names its tokens afresh.
        run = uuid.uuid4().hex[:8]
        self.token = asyncio.run(create_token(settings, f"bench-{run}"))
        # Decisions come from a person (agent tokens cannot decide): an approver token.
        asyncio.run(create_user(settings, "bench-human", None))
        self.human_token = asyncio.run(
            create_token(settings, f"bench-human-{run}", approver="bench-human")
        )
        self.proc = self._serve(self.port)
        self.extra: list[tuple[subprocess.Popen[bytes], int]] = []
        self.headers = {"Authorization": f"Bearer {self.token}"}
        self.human_headers = {"Authorization": f"Bearer {self.human_token}"}

    def rss_mb(self) -> float:
        return float(psutil.Process(self.proc.pid).memory_info().rss) / 2**20

    def _serve(self, port: int) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "FUNCTIONLAYER_SERVER_DATABASE_URL": self.url,
            "FUNCTIONLAYER_SERVER_PORT": str(port),
            "FUNCTIONLAYER_SERVER_LOG_LEVEL": "warning",
            # All the bench's agents share one token: its quotas would cap the 2,000 waiters.
            "FUNCTIONLAYER_SERVER_MAX_PENDING_PER_TOKEN": "0",
            "FUNCTIONLAYER_SERVER_MAX_LONG_POLLS_PER_TOKEN": "0",
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "functionlayer_server._cli", "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=sys.stderr,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    return proc
            except httpx.HTTPError:
                time.sleep(0.05)
        proc.terminate()
        raise RuntimeError("server did not start")

    def ports(self, processes: int) -> list[int]:
        """``processes`` server processes on this database (started as needed): their ports."""
        while len(self.extra) < processes - 1:
            port = free_port()
            self.extra.append((self._serve(port), port))
        return [self.port] + [port for _, port in self.extra[: processes - 1]]

    def close(self) -> None:
        for proc in [self.proc] + [p for p, _ in self.extra]:
            proc.terminate()
        for proc in [self.proc] + [p for p, _ in self.extra]:
            proc.wait(10)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def fmt(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"p50 {pct(ms, 50):7.2f} ms   p99 {pct(ms, 99):7.2f} ms   mean {statistics.fmean(ms):7.2f} ms"


# -- 1. resume latency ---------------------------------------------------------------------------


class _Timed(HttpBackend):
    """Notes when the agent holds its decision (with the claim, when the long-poll made it)."""

    decided: list[float]

    def wait_function_call(self, call_id: str, timeout: float | None) -> Any:
        call = super().wait_function_call(call_id, timeout)
        self.decided.append(time.perf_counter())
        return call

    def wait_and_claim_function_call(
        self, call_id: str, timeout: float | None, claim_id: str, *, claimed_by: str | None = None
    ) -> Any:
        answer = super().wait_and_claim_function_call(
            call_id, timeout, claim_id, claimed_by=claimed_by
        )
        if answer.claim is not None:  # else wait_function_call noted it (two steps)
            self.decided.append(time.perf_counter())
        return answer


class _TwoSteps(_Timed):
    """The decorator as before the claiming wait: long-poll, then a separate claim request."""

    def wait_and_claim_function_call(
        self, call_id: str, timeout: float | None, claim_id: str, *, claimed_by: str | None = None
    ) -> Any:
        return Backend.wait_and_claim_function_call(
            self, call_id, timeout, claim_id, claimed_by=claimed_by
        )


LATENCY_MODES = ("decorator", "decorator, two steps", "fetch_approval")


def long_poll_latency(server: Server, mode: str) -> dict[str, list[float]]:
    """One agent thread; the human answers once its long-poll is parked on the server.
    ``mode``: the decorator (its long-poll claims the execution: one round trip), the decorator
    in two steps (long-poll, then the claim request: the behaviour before), or ``fetch_approval``
    (the decision only, no claim: the floor). Returns answer -> body latencies and the part
    answer -> the agent holds the decision."""
    backend = (_TwoSteps if mode == "decorator, two steps" else _Timed)(server.api, server.token)
    backend.decided = []
    fl = FunctionLayer(backend=backend, run_id="bench-latency")
    started: list[float] = []

    @fl.require_approval()
    def act(n: int) -> int:
        started.append(time.perf_counter())
        return n

    spec = FunctionCallSpec(fn="act", kwargs={"n": 0})
    human = httpx.Client(base_url=server.api, headers=server.human_headers)
    result: dict[str, list[float]] = {"resume": [], "decision": []}
    for n in range(LATENCY_SAMPLES):
        call_id = f"lat-{n}-{uuid.uuid4().hex[:8]}"

        def agent(call_id: str = call_id, n: int = n) -> None:
            if mode == "fetch_approval":
                fl.fetch_approval(spec, call_id)
                started.append(time.perf_counter())
                return
            with call_id_scope(call_id):
                act(n)

        thread = threading.Thread(target=agent)
        thread.start()
        # Answer once the agent's long-poll is parked on the server.
        while human.get("/../../healthz").json()["waiting"] < 1:
            time.sleep(0.001)
        time.sleep(0.002)
        sent = time.perf_counter()
        response = human.post(f"/agent/function_calls/{call_id}/respond", json={"approved": True})
        assert response.status_code == 200, response.text
        thread.join()
        result["resume"].append(started[-1] - sent)
        result["decision"].append(backend.decided[-1] - sent)
    human.close()
    backend.close()
    return result


def poll_baseline_latency(server: Server) -> list[float]:
    """Agents that GET their call every BASELINE_INTERVAL seconds (no long-poll), answered at
    random moments."""
    latencies: list[float] = []
    lock = threading.Lock()

    def agent(call_id: str, answer_at: list[float]) -> None:
        with httpx.Client(base_url=server.api, headers=server.headers) as client:
            while True:
                time.sleep(BASELINE_INTERVAL)
                call = client.get(f"/function_calls/{call_id}").json()
                if call["status"]["approved"] is not None:
                    body_starts = time.perf_counter()
                    with lock:
                        latencies.append(body_starts - answer_at[0])
                    return

    with httpx.Client(base_url=server.api, headers=server.human_headers) as human:
        threads = []
        answers: list[tuple[str, list[float], float]] = []
        for n in range(BASELINE_AGENTS):
            call_id = f"poll-{n}-{uuid.uuid4().hex[:8]}"
            httpx.post(
                f"{server.api}/function_calls",
                headers=server.headers,
                json={"run_id": "baseline", "call_id": call_id, "spec": {"fn": "act"}},
            )
            answer_at: list[float] = []
            thread = threading.Thread(target=agent, args=(call_id, answer_at))
            thread.start()
            threads.append(thread)
            answers.append((call_id, answer_at, random.uniform(0.0, 2 * BASELINE_INTERVAL)))
        begin = time.perf_counter()
        for call_id, answer_at, offset in sorted(answers, key=lambda a: a[2]):
            pause = begin + offset - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            answer_at.append(time.perf_counter())
            human.post(f"/agent/function_calls/{call_id}/respond", json={"approved": True})
        for thread in threads:
            thread.join()
    return latencies


PREDECESSOR = "humanlayer==0.7.9"
PREDECESSOR_SAMPLES = 12
_PREDECESSOR_AGENT = """
import sys, time
from humanlayer import HumanLayer

hl = HumanLayer(run_id="bench-predecessor")

@hl.require_approval()
def act(n: int) -> int:
    print("BODY", n, time.time(), flush=True)
    return n

for n in range(int(sys.argv[1])):
    act(n)
"""


def predecessor_latency(server: Server, directory: Path) -> list[float] | str:
    """The predecessor SDK's ``@require_approval`` (it polls every 3 s) against this same
    server, installed into a scratch venv: answer sent -> body starts, in wall-clock time
    across the two processes. A str: why it could not be measured."""
    venv = directory / "predecessor"
    try:
        subprocess.run(["uv", "venv", "-q", str(venv)], check=True, capture_output=True)
        subprocess.run(
            ["uv", "pip", "install", "-q", "--python", str(venv), PREDECESSOR],
            check=True,
            capture_output=True,
            timeout=300,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"not measured ({PREDECESSOR} could not be installed: {type(exc).__name__})"
    env = {**os.environ, "HUMANLAYER_API_KEY": server.token, "HUMANLAYER_API_BASE": server.api}
    agent = subprocess.Popen(
        [str(venv / "bin" / "python"), "-c", _PREDECESSOR_AGENT, str(PREDECESSOR_SAMPLES)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert agent.stdout is not None
    latencies: list[float] = []
    seen: set[str] = set()
    with httpx.Client(base_url=server.api, headers=server.human_headers) as human:
        for _ in range(PREDECESSOR_SAMPLES):
            call_id = None
            deadline = time.monotonic() + 30
            while call_id is None and time.monotonic() < deadline:
                pending = human.get(
                    "/function_calls", params={"pending": "true", "run_id": "bench-predecessor"}
                ).json()["items"]
                fresh = [c["call_id"] for c in pending if c["call_id"] not in seen]
                call_id = fresh[0] if fresh else None
                time.sleep(0.01)
            if call_id is None:
                agent.kill()
                return "not measured (the predecessor's request never arrived)"
            seen.add(call_id)
            time.sleep(random.uniform(0.0, 3.0))  # a person answers at any moment of its poll
            sent = time.time()
            answer = human.post(f"/agent/function_calls/{call_id}/respond", json={"approved": True})
            assert answer.status_code == 200, answer.text
            line = agent.stdout.readline().split()
            latencies.append(float(line[2]) - sent)
    agent.wait(30)
    return latencies


# -- 2. cycles per second ------------------------------------------------------------------------


class RawConnection:
    """A minimal keep-alive HTTP/1.1 JSON client. httpx costs ~1 ms of CPU per request, which
    on a 2-core machine shared with the server would measure the client, not the server."""

    def __init__(self, server: Server, *, human: bool = False, port: int | None = None) -> None:
        self.server = server
        self.port = port or server.port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        token = server.human_token if human else server.token
        self.auth = f"Authorization: Bearer {token}\r\n".encode()

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        head = (
            f"{method} /functionlayer/v1{path} HTTP/1.1\r\nHost: bench\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        ).encode()
        self.writer.write(head + self.auth + b"\r\n" + body)
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


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
        mine = RawConnection(server, port=ports[index % len(ports)])
        human = RawConnection(server, human=True, port=ports[(index + 1) % len(ports)])
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


async def backend_cycles(server: Server, agents: int, seconds: float) -> tuple[int, float]:
    """The same cycle through the core's HttpBackend and an async guarded function."""
    created: dict[str, asyncio.Event] = {}

    class Announcing(HttpBackend):
        """Tells the bench's human when the request exists (instead of polling for it)."""

        async def acreate_function_call(self, call: Any) -> Any:
            stored = await super().acreate_function_call(call)
            created.setdefault(call.call_id, asyncio.Event()).set()
            return stored

    backend = Announcing(server.api, server.token)
    fl = FunctionLayer(backend=backend, run_id="bench-cycles")
    done = 0

    @fl.require_approval()
    async def act(n: int) -> int:
        return n

    async def agent(index: int, stop_at: float) -> None:
        nonlocal done
        human = RawConnection(server, human=True)
        n = 0
        while time.perf_counter() < stop_at:
            call_id = f"hb-{index}-{n}-{uuid.uuid4().hex[:6]}"
            with call_id_scope(call_id):
                run = asyncio.ensure_future(act(n))
            await created.setdefault(call_id, asyncio.Event()).wait()
            status, _ = await human.request(
                "POST", f"/agent/function_calls/{call_id}/respond", b'{"approved":true}'
            )
            assert status == 200
            del created[call_id]
            assert await run == n
            done += 1
            n += 1
        human.close()

    began = time.perf_counter()
    await asyncio.gather(*(agent(i, began + seconds) for i in range(agents)))
    elapsed = time.perf_counter() - began
    await backend.aclose()
    return done, elapsed


# -- 3. memory with 2,000 waiting agents ---------------------------------------------------------


def _raise_open_files_limit() -> None:
    """The bench holds one socket per waiting agent: its own soft limit goes up to the hard one."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _print_waiters(stats: dict[str, Any], waiters: int) -> None:
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
    backend = HttpBackend(server.api, server.token, long_poll=60, request_timeout=60)
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
            waiting = (await admin.get(f"{server.base}/healthz")).json()["waiting"]
            if waiting >= count:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        rss_waiting = server.rss_mb()

        humans = [RawConnection(server, human=True) for _ in range(50)]
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


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Resume latency, throughput and memory.")
    parser.add_argument(
        "--database-url",
        help="use this (empty) database instead of a fresh SQLite file, e.g. postgresql://...",
    )
    parser.add_argument(
        "--only",
        choices=["latency", "waiters"],
        help="run only the resume-latency part (1) or the many-waiters part (3)",
    )
    parser.add_argument(
        "--waiters",
        type=int,
        default=WAITERS,
        help=f"agents waiting at once in part 3 (default {WAITERS}; e.g. 10000)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=0,
        help="PostgreSQL only: cycles/s and decision latency with 1..N server processes on the "
        "one database (each agent on one process, its human on the next); e.g. 2 here, 4-8 on "
        "a bigger machine",
    )
    args = parser.parse_args()
    if args.processes and not (args.database_url or "").startswith("postgres"):
        parser.error("--processes needs --database-url postgresql://... (one shared database)")
    _raise_open_files_limit()
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp), args.database_url)
        try:
            kind = "PostgreSQL" if server.url.startswith("postgres") else "SQLite"
            print(
                f"functionlayer-server on {kind}, {os.cpu_count()} CPUs, server pid {server.proc.pid}"
            )
            print(f"server RSS at start: {server.rss_mb():.0f} MB\n")

            if args.processes:
                print(
                    f"server processes on one PostgreSQL database, {CYCLE_AGENTS} agents, raw HTTP/1.1"
                )
                for count in range(1, args.processes + 1):
                    ports = server.ports(count)
                    done, elapsed, lat = asyncio.run(
                        raw_cycles(server, CYCLE_AGENTS, CYCLE_SECONDS, ports)
                    )
                    print(
                        f"   {count} process{'es' if count > 1 else '  '}: {done / elapsed:7,.0f} cycles/s   "
                        f"decision latency {fmt(lat)}"
                    )
                return
            if args.only == "waiters":
                stats = asyncio.run(many_waiters(server, args.waiters))
                _print_waiters(stats, args.waiters)
                return
            print(
                f"1. resume latency: human's answer sent -> guarded function body starts ({LATENCY_SAMPLES} samples)"
            )
            runs = {mode: long_poll_latency(server, mode) for mode in LATENCY_MODES}
            for mode in LATENCY_MODES:
                print(f"   {mode + ':':34} {fmt(runs[mode]['resume'])}")
            lat = runs["decorator"]["resume"]
            floor = statistics.median(runs["fetch_approval"]["resume"])
            before = statistics.median(runs["decorator, two steps"]["resume"])
            print(
                f"   -> the decorator (decision and claim in one long-poll) at p50 is "
                f"{statistics.median(lat) / floor:.2f}x fetch_approval (target <= 1.10); "
                f"two steps / one round trip = {before / statistics.median(lat):.2f}"
            )
            predecessor = predecessor_latency(server, Path(tmp))
            if isinstance(predecessor, str):
                print(f"   predecessor SDK ({PREDECESSOR}):  {predecessor}")
            else:
                print(f"   predecessor SDK ({PREDECESSOR}): {fmt(predecessor)}")
                print(
                    f"   -> the decorator is {statistics.median(predecessor) / statistics.median(lat):,.0f}x "
                    f"the predecessor at p50 (target >= 1,000x), {pct(predecessor, 99) / pct(lat, 99):,.0f}x at p99"
                )
            base = poll_baseline_latency(server)
            print(f"   fixed {BASELINE_INTERVAL:g} s poll baseline ({len(base)}): {fmt(base)}")
            print(
                f"   -> long-poll is {statistics.median(base) / statistics.median(lat):,.0f}x faster at p50 "
                f"(a 3 s poll, as in the predecessor, would be ~3x worse again)\n"
            )

            if args.only == "latency":
                return
            print(f"2. create -> answer -> resume cycles with {CYCLE_AGENTS} concurrent agents")
            cpu = time.process_time()
            done, elapsed, _ = asyncio.run(raw_cycles(server, CYCLE_AGENTS, CYCLE_SECONDS))
            raw_cpu = (time.process_time() - cpu) / max(done, 1) * 1000
            print(
                f"   protocol clients (raw HTTP/1.1):  {done} cycles in {elapsed:.1f} s = {done / elapsed:,.0f} cycles/s, "
                f"{raw_cpu:.2f} ms client CPU per cycle"
            )
            for agents in (5, CYCLE_AGENTS):
                cpu = time.process_time()
                hb_done, hb_elapsed = asyncio.run(backend_cycles(server, agents, 3.0))
                hb_cpu = (time.process_time() - cpu) / max(hb_done, 1) * 1000
                print(
                    f"   through HttpBackend, {agents:2d} agents: {hb_done} cycles in {hb_elapsed:.1f} s = "
                    f"{hb_done / hb_elapsed:,.0f} cycles/s, {hb_cpu:.2f} ms client CPU per cycle"
                )
            print(
                "   (client CPU: this process's CPU time per cycle, the bench's raw-HTTP human included;\n"
                "    the target for HttpBackend is <= 0.5 ms; the raw-HTTP line is the server's own figure)\n"
            )

            stats = asyncio.run(many_waiters(server, args.waiters))
            _print_waiters(stats, args.waiters)

            ok = (
                pct(lat, 50) < 0.005,
                pct(lat, 99) < 0.025,
                done / elapsed >= 500,
                stats["rss_waiting"] < (300 if args.waiters >= 10_000 else 1024),
            )
            print(
                "targets (set for SQLite): p50 < 5 ms {}  p99 < 25 ms {}  >= 500 cycles/s {}  waits < 1 GB (10,000: < 300 MB) {}".format(
                    *("met" if o else "MISSED" for o in ok)
                )
            )
        finally:
            server.close()


if __name__ == "__main__":
    main()
