"""Approve a guarded function by email.

The agent's `transfer` call is routed to an email address. The FunctionLayer server emails the
request (function, arguments, run id) with an "Approve" link (a confirmation page; only its
button decides) and an "Open in the inbox" link (to reject with feedback). Replying to the email
works too: a first line of "approve"/"yes" approves, anything else rejects with your text as the
feedback the agent gets.

With your own mail server, start the server like this (every option is also a CLI/env setting):

    export FUNCTIONLAYER_SERVER_SMTP_HOST=smtp.example.com       # email is on when this is set
    export FUNCTIONLAYER_SERVER_SMTP_PORT=587                    # STARTTLS; 465 = implicit TLS
    export FUNCTIONLAYER_SERVER_SMTP_USERNAME=approvals@example.com
    export FUNCTIONLAYER_SERVER_SMTP_PASSWORD=...
    export FUNCTIONLAYER_SERVER_EMAIL_FROM="Approvals <approvals@example.com>"
    export FUNCTIONLAYER_SERVER_PUBLIC_URL=https://approvals.example.com   # used in the links
    export FUNCTIONLAYER_SERVER_EMAIL_INBOUND_SECRET=$(openssl rand -hex 24)  # for replies
    functionlayer-server serve

Only persons of the server's directory decide, and requests are emailed only to them (or to
addresses the operator's policy file allows): add the approver, with their address, once:

    functionlayer-server users create you --email you@example.com --no-login

and run the agent against it:

    FUNCTIONLAYER_API_BASE=https://approvals.example.com/functionlayer/v1 \\
    FUNCTIONLAYER_API_TOKEN=$(functionlayer-server tokens create my-agent) \\
    APPROVER_EMAIL=you@example.com uv run --all-packages --all-groups python examples/server/email_approval.py

Replies reach the server when your mail provider forwards inbound mail to
`POST /email/inbound` with the secret in the `X-FunctionLayer-Inbound-Secret` header.

With no FUNCTIONLAYER_API_BASE set, the example runs a self-contained demo: a local SMTP server
(aiosmtpd, from the dev dependencies) and a FunctionLayer server on free ports. It prints the
email the server sent; open its Approve link in a browser (or pass --auto to let the example
follow the link itself, GET then POST, as a person would).
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from typing import Any

import httpx
from functionlayer import ApprovalMethod, ContactChannel, EmailContactChannel, FunctionLayer

APPROVER = "finance@example.com"
"""The demo's approver: the person ``finance`` of the demo server's directory."""


def build_agent(approver: str) -> Any:
    fl = FunctionLayer(approval_method=ApprovalMethod.CLOUD, run_id="email-example")

    @fl.require_approval(
        ContactChannel(
            email=EmailContactChannel(
                address=approver,
                subject="Approve a transfer?",
                context_about_user="the finance approver",
            )
        )
    )
    def transfer(account: str, amount: int) -> str:
        """Send money to an account."""
        return f"sent {amount} EUR to {account}"

    return transfer


# -- the offline demo ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Inbox:
    """Receives what the server sends (an aiosmtpd handler)."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.arrived = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        self.arrived.set()
        return "250 OK"


@contextmanager
def demo_server() -> Iterator[tuple[_Inbox, str, str]]:
    """A local SMTP server and a FunctionLayer server configured to send through it."""
    from aiosmtpd.controller import Controller

    inbox = _Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    smtp.start()
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "FUNCTIONLAYER_SERVER_DATABASE_URL": f"sqlite:///{tmp}/demo.sqlite3",
            "FUNCTIONLAYER_SERVER_PORT": str(port),
            "FUNCTIONLAYER_SERVER_SMTP_HOST": "127.0.0.1",
            "FUNCTIONLAYER_SERVER_SMTP_PORT": str(smtp.port),
            "FUNCTIONLAYER_SERVER_SMTP_STARTTLS": "false",  # the local test server has no TLS
            "FUNCTIONLAYER_SERVER_EMAIL_FROM": "Approvals <approvals@example.com>",
            "FUNCTIONLAYER_SERVER_LOG_LEVEL": "warning",
        }
        cli = [sys.executable, "-m", "functionlayer_server._cli"]
        # The approver is a person of the directory: the server emails requests only to them.
        subprocess.run(
            [*cli, "users", "create", "finance", "--email", APPROVER, "--no-login", "--create"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        token = subprocess.run(
            [*cli, "tokens", "create", "email-example", "--create"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        server = subprocess.Popen([*cli, "serve"], env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            yield inbox, base + "/functionlayer/v1", token
        finally:
            server.terminate()
            server.wait(timeout=10)
            smtp.stop()


def main() -> None:
    auto = "--auto" in sys.argv[1:]
    if os.environ.get("FUNCTIONLAYER_API_BASE"):
        approver = os.environ.get("APPROVER_EMAIL")
        if not approver:
            sys.exit("set APPROVER_EMAIL to the address that should approve the transfer")
        print(f"Asking {approver} by email; the agent waits for the answer...")
        print("Agent got:", build_agent(approver)("DE89 3704 0044 0532 0130 00", 250))
        return

    with demo_server() as (inbox, api_base, token):
        os.environ["FUNCTIONLAYER_API_BASE"] = api_base
        os.environ["FUNCTIONLAYER_API_TOKEN"] = token
        transfer = build_agent(APPROVER)
        result: dict[str, Any] = {}

        def run_agent() -> None:
            try:
                result["out"] = transfer("DE89 3704 0044 0532 0130 00", 250)
            except Exception as exc:  # shown below instead of a silent 30 s wait
                result["error"] = exc

        agent = threading.Thread(target=run_agent)
        agent.start()
        deadline = time.monotonic() + 30
        while not inbox.arrived.wait(0.1):
            if "error" in result:
                sys.exit(f"the agent failed: {result['error']!r}")
            if time.monotonic() > deadline:
                sys.exit("the server sent no email within 30 s")
        message = inbox.messages[0]
        body = message.get_body(preferencelist=("plain",))
        text = str(body.get_content()) if body is not None else ""
        print(f"--- email to {message['To']}: {message['Subject']} ---\n{text}---")
        approve = re.search(r"^Approve: (\S+)", text, re.MULTILINE)
        if approve is None:
            sys.exit("no Approve link in the email")
        if auto:
            page = httpx.get(approve.group(1))  # the confirmation page: decides nothing
            print("GET  ->", page.status_code, "(confirmation page)")
            print("POST ->", httpx.post(approve.group(1)).status_code, "(approved)")
        else:
            print("Open the Approve link above in a browser and press Approve.")
        agent.join()
        print("Agent got:", result.get("out"))


if __name__ == "__main__":
    main()
