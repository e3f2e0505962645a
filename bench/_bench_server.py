"""The server the benches start, and the small protocol client they measure it with."""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psutil
from functionlayer_server import Settings
from functionlayer_server._cli import create_token, create_user


def free_port() -> int:
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


class RawConnection:
    """A minimal keep-alive HTTP/1.1 JSON client. httpx costs ~1 ms of CPU per request, which
    on a 2-core machine shared with the server would measure the client, not the server."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
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


def raise_open_files_limit() -> None:
    """The bench holds one socket per waiting agent: its own soft limit goes up to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
