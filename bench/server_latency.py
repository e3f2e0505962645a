"""How fast does an agent resume once a human answers, and how much does the server carry?

Starts ``functionlayer-server serve`` on a fresh SQLite file and prints, in one run:

1. resume latency, from the moment a human's answer is sent to the moment the guarded function's
   body starts, through the core's HTTP backend (long-poll), next to a fixed-interval poll
   baseline (the predecessor's client polled every 3 s; we use 1 s to keep the run short, which
   flatters the baseline);
2. the agent's side (``_bench_cycles.py``): CPU time per guarded call through ``HttpBackend``'s
   lean HTTP/1.1 client and through httpx, sync and async, next to a raw protocol client, and
   calls/s from one agent process with 5 and 50 agents; then the server's own cycles/s with 50
   raw protocol clients;
3. the server's resident memory with 2,000 (``--waiters 10000``) agents waiting at once, and how
   fast all of them resume when answered (``_bench_waiters.py``).

Targets on a 2-core machine (SQLite): p50 < 5 ms, p99 < 25 ms, >= 500 cycles/s, <= 0.5 ms of
agent CPU per guarded call, 2,000 waits < 1 GB RSS (10,000: < 300 MB).
Run: ``uv run --no-sync python bench/server_latency.py [--waiters 10000] [--only cpu]``.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from _bench_cycles import print_client_costs, raw_cycles
from _bench_server import Server, fmt, pct, raise_open_files_limit
from _bench_waiters import WAITERS, many_waiters, print_waiters
from functionlayer import FunctionCallSpec, FunctionLayer, HttpBackend, call_id_scope
from functionlayer._backends._base import Backend

LATENCY_SAMPLES = 300
BASELINE_AGENTS = 40
BASELINE_INTERVAL = 1.0
CYCLE_AGENTS = 50
CYCLE_SECONDS = 8.0
CPU_SECONDS = 3.0


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


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Resume latency, throughput and memory.")
    parser.add_argument(
        "--database-url",
        help="use this (empty) database instead of a fresh SQLite file, e.g. postgresql://...",
    )
    parser.add_argument(
        "--only",
        choices=["latency", "cpu", "waiters"],
        help="run only the resume-latency part (1), the client-cost part (2) or the "
        "many-waiters part (3)",
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
    raise_open_files_limit()
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
                print_waiters(stats, args.waiters)
                return
            if args.only == "cpu":
                print_client_costs(server, CPU_SECONDS)
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
            costs = print_client_costs(server, CPU_SECONDS)
            done, elapsed, _ = asyncio.run(raw_cycles(server, CYCLE_AGENTS, CYCLE_SECONDS))
            print(
                f"   the server alone (raw protocol clients, create -> long-poll -> answer, "
                f"{CYCLE_AGENTS} agents): {done / elapsed:,.0f} cycles/s\n"
            )
            stats = asyncio.run(many_waiters(server, args.waiters))
            print_waiters(stats, args.waiters)

            ok = (
                pct(lat, 50) < 0.005,
                pct(lat, 99) < 0.025,
                done / elapsed >= 500,
                stats["rss_waiting"] < (300 if args.waiters >= 10_000 else 1024),
                max(costs["lean sync 5"], costs["lean async 5"]) <= 0.5,
            )
            print(
                "targets (set for SQLite): p50 < 5 ms {}  p99 < 25 ms {}  >= 500 cycles/s {}  "
                "waits < 1 GB (10,000: < 300 MB) {}  client <= 0.5 ms CPU per call {}".format(
                    *("met" if o else "MISSED" for o in ok)
                )
            )
        finally:
            server.close()


if __name__ == "__main__":
    main()
