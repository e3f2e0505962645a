"""A real SMTP server (aiosmtpd) on a free local port, and the messages it receives."""

from __future__ import annotations

import contextlib
import email
import email.policy
import threading
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests._support.servers import free_port


class Mailbox:
    """aiosmtpd handler that keeps every message it receives, with its envelope."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self._cond = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._cond:
            self.messages.append((list(envelope.rcpt_tos), message))
            self._cond.notify_all()
        return "250 OK"

    def wait_for(
        self, match: Callable[[list[str], EmailMessage], bool], timeout: float = 15.0
    ) -> EmailMessage:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for rcpts, message in self.messages:
                    if match(rcpts, message):
                        return message
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(r, m["Subject"]) for r, m in self.messages]
                    raise AssertionError(f"no matching email within {timeout}s; received {seen}")
                self._cond.wait(left)

    def request_to(self, address: str, call_id: str) -> EmailMessage:
        """The request email (not a confirmation) for ``call_id`` delivered to ``address``."""
        return self.wait_for(
            lambda rcpts, m: address in rcpts and m["X-FunctionLayer-Call-Id"] == call_id
        )

    def to(self, address: str) -> list[EmailMessage]:
        with self._cond:
            return [m for r, m in self.messages if address in r]


@contextlib.contextmanager
def smtp_server(handler: Any) -> Iterator[int]:
    """A real SMTP server (aiosmtpd) on a free local port with ``handler``; its port."""
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()


@contextlib.contextmanager
def smtp_mailbox() -> Iterator[tuple[Mailbox, int]]:
    """A real SMTP server (aiosmtpd) on a free local port, and what it receives."""
    box = Mailbox()
    with smtp_server(box) as port:
        yield box, port


def email_settings(smtp_port: int, **extra: Any) -> dict[str, Any]:
    """Server settings that send email to the local SMTP server on ``smtp_port``."""
    return {
        "public_url": "http://testserver",
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_port,
        "smtp_starttls": False,
        "email_from": "approvals@fl.example",
        **extra,
    }
