"""Approve a guarded function in Microsoft Teams.

The agent's `deploy` call is routed to a Teams conversation. The FunctionLayer server posts it
there through the Bot Framework as an Adaptive Card (function, arguments, run id; nobody is
mentioned) with Approve / Reject… (a form for the feedback the agent gets back) and the reject
options. After the decision the card is replaced by one showing who decided what, without
actions.

With a real bot (an Azure Bot resource with the Microsoft Teams channel, installed in your team;
its messaging endpoint set to https://YOUR-SERVER/channels/teams/messages), start the server:

    export FUNCTIONLAYER_SERVER_TEAMS_APP_ID=...        # the bot's Microsoft app id
    export FUNCTIONLAYER_SERVER_TEAMS_APP_PASSWORD=...  # its client secret
    export FUNCTIONLAYER_SERVER_POLICY_FILE=policy.toml # [default] teams_conversations = ["19:…"]
    functionlayer-server users create alice --teams-id <alice's Entra object id>
    functionlayer-server serve

and run the agent against it:

    FUNCTIONLAYER_API_BASE=https://approvals.example.com/functionlayer/v1 \\
    FUNCTIONLAYER_API_TOKEN=$(functionlayer-server tokens create my-agent) \\
    TEAMS_CONVERSATION='19:…@thread.tacv2' uv run --all-packages --all-groups python examples/server/teams_approval.py

With no FUNCTIONLAYER_API_BASE set, the example runs a self-contained demo: a tiny stand-in for
the Bot Framework (its OpenID metadata and signing keys, the token endpoint and the connector)
and a FunctionLayer server on free ports. It prints the card the server posted, then clicks
Approve the way Teams would (an activity with an RS256 token signed by the stand-in's key).
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
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from functionlayer import (
    ApprovalMethod,
    ContactChannel,
    FunctionLayer,
    ResponseOption,
    TeamsContactChannel,
)


def build_agent(conversation_id: str) -> Any:
    fl = FunctionLayer(approval_method=ApprovalMethod.CLOUD, run_id="teams-example")

    @fl.require_approval(
        ContactChannel(
            teams=TeamsContactChannel(
                conversation_id=conversation_id,
                context="the on-call engineers",
                # allowed_responder_ids=["<Entra object id>"],  # only these users may decide
            )
        ),
        reject_options=[ResponseOption(name="freeze", title="Change freeze")],
    )
    def deploy(service: str, version: str) -> str:
        """Deploy a service to production."""
        return f"deployed {service} {version}"

    return deploy


# -- the offline demo ------------------------------------------------------------------------

APP_ID = "00000000-0000-0000-0000-00000000demo"
APP_PASSWORD = "demo-app-password"
DEMO_USER = "5b0e6a1c-0000-4000-8000-00000000a11c"  # alice's Entra object id
CONVERSATION = "19:on-call@thread.tacv2"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def fake_bot_framework(public_jwk: dict[str, Any]) -> Iterator[tuple[str, queue.Queue[Any]]]:
    """Serves the OpenID metadata and JWKS, the token endpoint and the connector (POST and PUT
    .../activities), handing each connector call to the demo."""
    calls: queue.Queue[dict[str, Any]] = queue.Queue()
    ids = iter(range(1_700_000_000_001, 1_800_000_000_000))

    class Handler(BaseHTTPRequestHandler):
        def _send(self, answer: dict[str, Any]) -> None:
            out = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def do_GET(self) -> None:
            base = f"http://127.0.0.1:{self.server.server_address[1]}"
            if self.path.endswith("/openidconfiguration"):
                self._send({"issuer": "https://api.botframework.com", "jwks_uri": f"{base}/keys"})
            else:
                self._send({"keys": [public_jwk]})

        def _activity(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path.endswith("/token"):
                self._send({"access_token": "demo-bot-token", "expires_in": 3600})
                return
            parts = self.path.strip("/").split("/")  # teams v3 conversations <id> activities [<id>]
            activity_id = parts[5] if len(parts) > 5 else str(next(ids))
            calls.put(
                {"method": self.command, "path": self.path, "id": activity_id, **json.loads(body)}
            )
            self._send({"id": activity_id})

        do_POST = _activity
        do_PUT = _activity

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", calls
    finally:
        server.shutdown()


@contextmanager
def demo_server(bot_framework: str) -> Iterator[str]:
    import uvicorn
    from functionlayer_server import Settings, create_app
    from functionlayer_server._cli import create_token, create_user

    directory = tempfile.mkdtemp(prefix="fl-teams-demo-")
    policy = os.path.join(directory, "policy.toml")
    with open(policy, "w") as fh:
        fh.write(f'[default]\nteams_conversations = ["{CONVERSATION}"]\n')
    settings = Settings(
        database_url=f"sqlite:///{directory}/demo.sqlite3",
        port=_free_port(),
        teams_app_id=APP_ID,
        teams_app_password=APP_PASSWORD,
        teams_token_url=f"{bot_framework}/token",
        teams_service_url=f"{bot_framework}/teams/",
        teams_openid_url=f"{bot_framework}/v1/.well-known/openidconfiguration",
        policy_file=policy,
    )
    token = asyncio.run(create_token(settings, "teams-demo"))
    asyncio.run(create_user(settings, "alice", None, teams_ids=[DEMO_USER]))
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


def _texts(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [str(node["text"])] if isinstance(node.get("text"), str) else []
        return found + [t for value in node.values() for t in _texts(value)]
    if isinstance(node, list):
        return [t for value in node for t in _texts(value)]
    return []


def click_approve(
    base_url: str, bot_framework: str, posted: dict[str, Any], private_key: Any, kid: str
) -> dict[str, Any]:
    """What Teams sends when someone clicks Approve: a message activity whose value is the
    button's data, with a Bot Framework token (RS256) for this bot and this serviceUrl."""
    import jwt

    card = posted["attachments"][0]["content"]
    approve = next(a for a in card["actions"] if a.get("title") == "Approve")
    service_url = f"{bot_framework}/teams/"
    now = int(time.time())
    token = jwt.encode(
        {
            "iss": "https://api.botframework.com",
            "aud": APP_ID,
            "serviceurl": service_url,
            "nbf": now,
            "exp": now + 300,
        },
        private_key,
        algorithm="RS256",
        headers={"kid": kid},
    )
    activity = {
        "type": "message",
        "id": uuid.uuid4().hex,
        "channelId": "msteams",
        "serviceUrl": service_url,
        "from": {"id": "29:alice", "name": "Alice", "aadObjectId": DEMO_USER},
        "conversation": {"id": f"{CONVERSATION};messageid={posted['id']}"},
        "replyToId": posted["id"],
        "value": approve["data"],
    }
    response = httpx.post(
        f"{base_url}/channels/teams/messages",
        json=activity,
        headers={"Authorization": f"Bearer {token}"},
    )
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer


def demo() -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm

    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # the Bot
    kid = "demo-key"  # Framework's signing key pair, as far as this demo is concerned
    public_jwk = {**RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True), "kid": kid}
    with (
        fake_bot_framework(public_jwk) as (bot_framework, calls),
        demo_server(bot_framework) as base_url,
    ):
        deploy = build_agent(CONVERSATION)
        result: list[str] = []
        agent = threading.Thread(target=lambda: result.append(deploy("billing", "v2.4.1")))
        agent.start()
        posted = calls.get(timeout=30)
        card = posted["attachments"][0]["content"]
        print(f"Teams got {posted['method']} {posted['path']}:")
        print("    " + "\n    ".join(_texts(card["body"])))
        print(f"    actions: {[a['title'] for a in card['actions']]}")
        print("Clicking Approve as alice ...")
        answer = click_approve(base_url, bot_framework, posted, private_key, kid)
        print(f"The server answered: {answer['detail']}")
        agent.join(30)
        update = calls.get(timeout=30)
        texts = _texts(update["attachments"][0]["content"])
        print(f"Teams got {update['method']} {update['path']}: {texts[-1]}")
        print(f"The agent got: {result[0]!r}")


def main() -> None:
    if not os.environ.get("FUNCTIONLAYER_API_BASE"):
        demo()
        return
    deploy = build_agent(os.environ.get("TEAMS_CONVERSATION", "19:unset"))
    print("Waiting for a decision in Microsoft Teams ...")
    print(deploy("billing", "v2.4.1"))


if __name__ == "__main__":
    main()
