"""The benches' human, in a process of its own (so the agent process's CPU time is the agent's):
reads call ids on stdin, one a line, and approves each over keep-alive raw HTTP/1.1.

Run by the benches as ``python bench/_bench_human.py PORT TOKEN``.
"""

from __future__ import annotations

import asyncio
import sys

from _bench_server import RawConnection

CONNECTIONS = 8


async def main(port: int, token: str) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    async def approver() -> None:
        human = RawConnection(port, token)
        while (call_id := await queue.get()) is not None:
            status, body = await human.request(
                "POST", f"/agent/function_calls/{call_id}/respond", b'{"approved":true}'
            )
            if status != 200:
                print(f"human: {status} {body[:200]!r}", file=sys.stderr)
        human.close()

    workers = [asyncio.ensure_future(approver()) for _ in range(CONNECTIONS)]
    while line := await reader.readline():
        queue.put_nowait(line.decode().strip())
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
