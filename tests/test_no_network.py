"""The root conftest refuses every connection that would leave this machine."""

from __future__ import annotations

import socket

import pytest


def test_connections_off_this_machine_are_refused_and_recorded() -> None:
    attempts: list[str] = socket.socket.connect.__globals__["_ATTEMPTS"]
    before = len(attempts)
    with socket.socket() as sock, pytest.raises(OSError, match="network access is blocked"):
        sock.connect(("192.0.2.1", 80))  # TEST-NET-1: never routed, and never reached here
    assert len(attempts) == before + 1
    del attempts[before:]  # this attempt was the test's own; any other fails the session


def test_loopback_connections_still_work() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.socket() as client:
            client.connect(server.getsockname())
