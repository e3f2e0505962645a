"""Approve a guarded function in Discord.

The agent's `deploy` call is routed to a Discord channel. The FunctionLayer server posts it there
(function, arguments as JSON, run id; nobody is pinged) with Approve / Reject buttons; Reject
opens a form for the feedback the agent gets back. After the decision the message shows who
decided what, without buttons.

With a real Discord application (a bot in your server with Send Messages; its Interactions
Endpoint URL set to https://YOUR-SERVER/channels/discord/interactions), start the server:

    export DISCORD_BOT_TOKEN=...            # Discord is on when this is set
    export DISCORD_PUBLIC_KEY=...           # the application's public key: verifies clicks
    export FUNCTIONLAYER_SERVER_POLICY_FILE=policy.toml   # [default] discord_channels = ["<id>"]
    functionlayer-server users create alice --discord-id 80351110224678912
    functionlayer-server serve

and run the agent against it:

    FUNCTIONLAYER_API_BASE=https://approvals.example.com/functionlayer/v1 \\
    FUNCTIONLAYER_API_TOKEN=$(functionlayer-server tokens create my-agent) \\
    DISCORD_CHANNEL=1234567890 uv run --all-packages --all-groups python examples/server/discord_approval.py

With no FUNCTIONLAYER_API_BASE set, the example runs a self-contained demo: a tiny stand-in for
Discord's REST API and a FunctionLayer server on free ports. It prints the message the server
posted, then clicks Approve the way Discord would (an Ed25519-signed interaction).
"""

from __future__ import annotations

import asyncio
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

import httpx
from functionlayer import (
    ApprovalMethod,
    ContactChannel,
    DiscordContactChannel,
    FunctionLayer,
    ResponseOption,
)


def build_agent(channel_id: str) -> Any:
    fl = FunctionLayer(approval_method=ApprovalMethod.CLOUD, run_id="discord-example")

    @fl.require_approval(
        ContactChannel(
            discord=DiscordContactChannel(
                channel_id=channel_id,
                context="the on-call engineers",
                # allowed_responder_ids=["80351110224678912"],  # only these users may decide
            )
        ),
        reject_options=[ResponseOption(name="freeze", title="Change freeze")],
    )
    def deploy(service: str, version: str) -> str:
        """Deploy a service to production."""
        return f"deployed {service} {version}"

    return deploy


# -- the offline demo ------------------------------------------------------------------------

DEMO_USER = "80351110224678912"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def fake_discord() -> Iterator[tuple[str, queue.Queue[dict[str, Any]]]]:
    """Answers POST /channels/{id}/messages and PATCH .../messages/{id} like Discord and hands
    each call to the demo."""
    calls: queue.Queue[dict[str, Any]] = queue.Queue()
    ids = iter(range(1_000_000_000_000_000_000, 2_000_000_000_000_000_000))

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            data = json.loads(body) if body else {}
            parts = self.path.strip("/").split("/")  # api v10 channels <id> messages [<id>]
            message_id = parts[5] if len(parts) > 5 else str(next(ids))
            answer = {"id": message_id, "channel_id": parts[3], **data}
            calls.put({"method": self.command, "path": self.path, **answer})
            out = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        do_POST = _answer
        do_PATCH = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/api/v10", calls
    finally:
        server.shutdown()


@contextmanager
def demo_server(discord_url: str, public_key: str, channel_id: str) -> Iterator[str]:
    import uvicorn
    from functionlayer_server import Settings, create_app
    from functionlayer_server._cli import create_token, create_user

    directory = tempfile.mkdtemp(prefix="fl-discord-demo-")
    policy = os.path.join(directory, "policy.toml")
    with open(policy, "w") as fh:
        fh.write(f'[default]\ndiscord_channels = ["{channel_id}"]\n')
    settings = Settings(
        database_url=f"sqlite:///{directory}/demo.sqlite3",
        port=_free_port(),
        discord_bot_token="demo-bot-token",
        discord_public_key=public_key,
        discord_api_base=discord_url,
        policy_file=policy,
    )
    token = asyncio.run(create_token(settings, "discord-demo"))
    asyncio.run(create_user(settings, "alice", None, discord_ids=[DEMO_USER]))
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


def click_approve(base_url: str, message: dict[str, Any], signing_key: Any) -> dict[str, Any]:
    """What Discord sends when someone clicks Approve: JSON signed with Ed25519 over
    timestamp + body. Returns the interaction response (type 7 updates the message)."""
    approve = next(
        b for row in message["components"] for b in row["components"] if b["label"] == "Approve"
    )
    payload = {
        "id": "1100000000000000001",
        "type": 3,
        "channel_id": message["channel_id"],
        "message": {"id": message["id"], "channel_id": message["channel_id"]},
        "member": {"user": {"id": DEMO_USER, "username": "alice"}},
        "data": {"custom_id": approve["custom_id"], "component_type": 2},
    }
    body = json.dumps(payload).encode()
    timestamp = str(int(time.time()))
    signature = signing_key.sign(timestamp.encode() + body).signature.hex()
    response = httpx.post(
        f"{base_url}/channels/discord/interactions",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-Signature-Ed25519": signature,
            "X-Signature-Timestamp": timestamp,
        },
    )
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer


def demo() -> None:
    from nacl.signing import SigningKey

    signing_key = SigningKey.generate()  # stands in for Discord's key pair
    public_key = signing_key.verify_key.encode().hex()
    channel_id = "1234567890"
    with (
        fake_discord() as (discord_url, calls),
        demo_server(discord_url, public_key, channel_id) as base_url,
    ):
        deploy = build_agent(channel_id)
        result: list[str] = []
        agent = threading.Thread(target=lambda: result.append(deploy("billing", "v2.4.1")))
        agent.start()
        message = calls.get(timeout=30)
        print(f"Discord got {message['method']} {message['path']}:")
        print("    " + message["content"].replace("\n", "\n    "))
        labels = [b["label"] for row in message["components"] for b in row["components"]]
        print(f"    buttons: {labels}; allowed_mentions: {message['allowed_mentions']}")
        print("Clicking Approve as alice ...")
        answer = click_approve(base_url, message, signing_key)
        agent.join(30)
        print(f"Interaction response type {answer['type']}:")
        print("    " + answer["data"]["content"].splitlines()[-1])
        print(f"The agent got: {result[0]!r}")


def main() -> None:
    if not os.environ.get("FUNCTIONLAYER_API_BASE"):
        demo()
        return
    deploy = build_agent(os.environ.get("DISCORD_CHANNEL", "0"))
    print("Waiting for a decision in Discord ...")
    print(deploy("billing", "v2.4.1"))


if __name__ == "__main__":
    main()
