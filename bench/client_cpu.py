"""The agent process's CPU per guarded call against a canned local server (no database, no
human): what the client path itself costs, next to a raw protocol client making the same three
requests (create, the claiming long-poll, the outcome report) on one keep-alive connection.

The canned server runs in a process of its own, so this process's CPU time is the client's.
It echoes the request it was sent as created, answers every claiming wait with an approval and
a granted claim, and the outcome report with the call.

Run: ``uv run --no-sync python bench/client_cpu.py [--calls 2000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
from typing import Any

from functionlayer import FunctionLayer, HttpBackend

_SERVER = r"""
import asyncio, json, sys

calls = {}

def answer(method, path, body):
    if method == "POST" and path == "/function_calls":
        call = json.loads(body)
        call["status"] = {"requested_at": "2026-01-01T00:00:00Z"}
        calls[call["call_id"]] = call
        return json.dumps(call).encode()
    parts = path.split("?")[0].split("/")
    call = calls[parts[2]]
    if parts[-1] == "claim_when_approved":
        claim = json.loads(body)
        call["status"] = {"approved": True, "requested_at": "2026-01-01T00:00:00Z",
                          "responded_at": "2026-01-01T00:00:01Z"}
        return json.dumps({"call": call, "claim": {"granted": True, "execution": claim}}).encode()
    return json.dumps(calls.pop(parts[2])).encode()

async def serve(reader, writer):
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        lines = head.decode().split("\r\n")
        method, path, _ = lines[0].split(" ")
        length = 0
        for line in lines[1:]:
            if line.lower().startswith("content-length:"):
                length = int(line.split(":")[1])
        body = await reader.readexactly(length) if length else b""
        out = answer(method, path, body)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                     + str(len(out)).encode() + b"\r\n\r\n" + out)

async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
"""


def start_server() -> tuple[subprocess.Popen[bytes], int]:
    proc = subprocess.Popen([sys.executable, "-c", _SERVER], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def act(n: int, note: str = "") -> int:
    """The guarded body."""
    return n


def sync_cpu(port: int, calls: int) -> float:
    fl = FunctionLayer(backend=HttpBackend(f"http://127.0.0.1:{port}", "t"), run_id="bench")
    guarded = fl.require_approval()(act)
    for n in range(50):
        assert guarded(n) == n
    start = time.process_time()
    for n in range(calls):
        guarded(n)
    return (time.process_time() - start) / calls * 1e6


async def async_cpu(port: int, calls: int) -> float:
    fl = FunctionLayer(backend=HttpBackend(f"http://127.0.0.1:{port}", "t"), run_id="bench")

    async def aact(n: int, note: str = "") -> int:
        """The guarded body."""
        return n

    guarded = fl.require_approval()(aact)
    for n in range(50):
        assert await guarded(n) == n
    start = time.process_time()
    for n in range(calls):
        await guarded(n)
    return (time.process_time() - start) / calls * 1e6


async def raw_cpu(port: int, calls: int) -> float:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def request(method: str, path: str, body: bytes) -> Any:
        writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        return json.loads(await reader.readexactly(length))

    start = time.process_time()
    for n in range(calls):
        call_id = f"raw-{n}"
        body = json.dumps(
            {"run_id": "bench", "call_id": call_id, "spec": {"fn": "act", "kwargs": {"n": n}}}
        )
        await request("POST", "/function_calls", body.encode())
        got = await request(
            "POST",
            f"/function_calls/{call_id}/claim_when_approved?wait=30",
            b'{"claim_id":"c","claimed_by":"bench"}',
        )
        assert got["claim"]["granted"]
        await request(
            "POST",
            f"/function_calls/{call_id}/execution/outcome",
            b'{"claim_id":"c","outcome":"returned","summary":"1"}',
        )
    elapsed = time.process_time() - start
    writer.close()
    return elapsed / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    proc, port = start_server()
    socket.create_connection(("127.0.0.1", port)).close()
    try:
        print("client CPU per guarded call, canned local server (µs; best of rounds)")
        rows: dict[str, list[float]] = {"sync": [], "async": [], "raw": []}
        for _ in range(args.rounds):
            rows["sync"].append(sync_cpu(port, args.calls))
            rows["async"].append(asyncio.run(async_cpu(port, args.calls)))
            rows["raw"].append(asyncio.run(raw_cpu(port, args.calls)))
        for name, label in (
            ("sync", "HttpBackend, sync"),
            ("async", "HttpBackend, async"),
            ("raw", "raw protocol client"),
        ):
            values = rows[name]
            print(
                f"  {label:22} {min(values):6.0f} µs   (rounds: {', '.join(f'{v:.0f}' for v in values)})"
            )
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
