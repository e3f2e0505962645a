"""Approve a guarded function in Slack.

The agent's `deploy` call is routed to a Slack channel. The FunctionLayer server posts it there
(function, arguments as JSON, run id) with Approve / Reject buttons; Reject opens a dialog for the
feedback the agent gets back. After the decision the message shows who decided what.

With a real Slack app (scopes: chat:write, and Interactivity pointed at
https://YOUR-SERVER/slack/interactions), start the server like this:

    export FUNCTIONLAYER_SERVER_SLACK_BOT_TOKEN=xoxb-...          # Slack is on when this is set
    export FUNCTIONLAYER_SERVER_SLACK_SIGNING_SECRET=...          # verifies button clicks
    export FUNCTIONLAYER_SERVER_PUBLIC_URL=https://approvals.example.com
    # No public URL? Use Socket Mode instead of the interactions endpoint:
    # export FUNCTIONLAYER_SERVER_SLACK_SOCKET_MODE_APP_TOKEN=xapp-...
    functionlayer-server serve --policy-file policy.toml

Only persons of the server's directory decide, and the operator says where requests may go:
allow the channel in policy.toml and link each approver's Slack user id to a person:

    # policy.toml
    [projects.default]
    slack_channels = ["C0123456789"]

    functionlayer-server users create alice --slack-id U0123ABCD --no-login

and run the agent against it:

    FUNCTIONLAYER_API_BASE=https://approvals.example.com/functionlayer/v1 \\
    FUNCTIONLAYER_API_TOKEN=$(functionlayer-server tokens create my-agent) \\
    SLACK_CHANNEL=C0123456789 uv run --all-packages --all-groups python examples/server/slack_approval.py

With no FUNCTIONLAYER_API_BASE set, the example runs a self-contained demo: a tiny stand-in for
the Slack Web API and a FunctionLayer server on free ports. It prints the message the server
posted, then clicks Approve the way Slack would (a signed interaction request).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import queue
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode

import httpx
from functionlayer import (
    ApprovalMethod,
    ContactChannel,
    FunctionLayer,
    ResponseOption,
    SlackContactChannel,
)

CHANNEL = "C0DEMO"
APPROVER_SLACK_ID = "U0DEMO"


def build_agent(channel_id: str) -> Any:
    fl = FunctionLayer(approval_method=ApprovalMethod.CLOUD, run_id="slack-example")

    @fl.require_approval(
        ContactChannel(
            slack=SlackContactChannel(
                channel_or_user_id=channel_id,
                context_about_channel_or_user="the on-call engineers",
                # allowed_responder_ids=["U0123ABCD"],  # only these Slack users may decide
            )
        ),
        reject_options=[ResponseOption(name="freeze", title="Change freeze")],
    )
    def deploy(service: str, version: str) -> str:
        """Deploy a service to production."""
        return f"deployed {service} {version}"

    return deploy


# -- the offline demo ------------------------------------------------------------------------

SECRET = "demo-signing-secret"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def fake_slack() -> Iterator[tuple[str, queue.Queue[dict[str, Any]]]]:
    """Answers chat.postMessage / chat.update like Slack and hands each call to the demo."""
    calls: queue.Queue[dict[str, Any]] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            params = json.loads(body) if body.startswith(b"{") else {}
            method = self.path.rsplit("/", 1)[-1]
            answer = {"ok": True, "channel": params.get("channel"), "ts": f"{time.time():.6f}"}
            calls.put({"method": method, **params, **answer})
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/api/", calls
    finally:
        server.shutdown()


@contextmanager
def demo_server(slack_url: str) -> Iterator[str]:
    import uvicorn
    from functionlayer_server import Settings, create_app
    from functionlayer_server._cli import create_token, create_user

    directory = tempfile.mkdtemp(prefix="fl-slack-demo-")
    # The operator's policy: requests may be posted to the demo channel.
    policy = os.path.join(directory, "policy.toml")
    with open(policy, "w") as fh:
        fh.write(f'[projects.default]\nslack_channels = ["{CHANNEL}"]\n')
    settings = Settings(
        database_url=f"sqlite:///{directory}/demo.sqlite3",
        policy_file=policy,
        port=_free_port(),
        slack_bot_token="xoxb-demo",
        slack_signing_secret=SECRET,
        slack_api_url=slack_url,
    )
    # The person who clicks Approve, linked to their Slack user id (only persons decide).
    asyncio.run(create_user(settings, "demo", None, slack_user_id=APPROVER_SLACK_ID))
    token = asyncio.run(create_token(settings, "slack-demo"))
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=settings.port, log_level="warning"
        )
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    os.environ["FUNCTIONLAYER_API_BASE"] = f"{settings.base_url}/functionlayer/v1"
    os.environ["FUNCTIONLAYER_API_TOKEN"] = token
    try:
        yield settings.base_url
    finally:
        server.should_exit = True


def click_approve(base_url: str, message: dict[str, Any], user: str = "U0DEMO") -> None:
    """What Slack sends when someone clicks Approve: a form post signed with the app's secret."""
    approve = next(
        e
        for block in message["blocks"]
        for e in block.get("elements", [])
        if e.get("action_id") == "fl_approve"
    )
    payload = {
        "type": "block_actions",
        "user": {"id": user},
        "container": {"channel_id": message["channel"], "message_ts": message["ts"]},
        "actions": [{"action_id": "fl_approve", "value": approve["value"]}],
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    ts = str(int(time.time()))
    signature = hmac.new(SECRET.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    httpx.post(
        f"{base_url}/slack/interactions",
        content=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": f"v0={signature}",
        },
    ).raise_for_status()


def demo() -> None:
    with fake_slack() as (slack_url, calls), demo_server(slack_url) as base_url:
        deploy = build_agent(CHANNEL)
        result: list[str] = []
        agent = threading.Thread(target=lambda: result.append(deploy("billing", "v2.4.1")))
        agent.start()
        message = calls.get(timeout=30)
        print(f"Slack got {message['method']} in {message['channel']}:")
        for block in message["blocks"]:
            text = block.get("text", {}).get("text")
            if text:
                print("   ", text.replace("\n", "\n    "))
        print("Clicking Approve as U0DEMO ...")
        click_approve(base_url, message)
        agent.join(30)
        update = calls.get(timeout=30)
        print(f"Slack got {update['method']}: {update['text']}")
        print(f"The agent got: {result[0]!r}")


def main() -> None:
    if not os.environ.get("FUNCTIONLAYER_API_BASE"):
        demo()
        return
    deploy = build_agent(os.environ.get("SLACK_CHANNEL", "#deploys"))
    print("Waiting for a decision in Slack ...")
    print(deploy("billing", "v2.4.1"))


if __name__ == "__main__":
    main()
