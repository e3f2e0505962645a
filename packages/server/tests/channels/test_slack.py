"""Slack end to end: the real server (subprocess) posts through the real ``slack_sdk`` to a local
double of the Slack Web API; interactions are signed the way Slack signs them."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from functionlayer import (
    ApprovalMethod,
    ContactChannel,
    FunctionLayer,
    ResponseOption,
    SlackContactChannel,
)

from packages.server.tests.channels._running import Running
from packages.server.tests.channels.conftest import BOT_TOKEN, SIGNING_SECRET, slack_env
from packages.server.tests.channels.slack_double import (
    SlackCall,
    SlackDouble,
    action_value,
    block_actions,
    interaction_body,
    slack_headers,
    view_submission,
)
from tests._support.servers import ServerFactory, ServerProcess

pytestmark = pytest.mark.timeout(60)


SLACK_PERSONS = {
    "alice": "U0ALICE",
    "bob": "U0BOB",
    "owner": "U0OWNER",
    "boss": "U0BOSS",
    "intern": "U0INTERN",
}
"""Persons of the directory and their linked Slack user ids: only they can decide in Slack."""


@pytest.fixture(scope="module")
def slack_server(
    module_server_factory: ServerFactory,
    module_slack_double: SlackDouble,
    tmp_path_factory: pytest.TempPathFactory,
) -> ServerProcess:
    # The operator routes requests to these Slack channels (a channel names nobody; its members
    # decide only as linked persons).
    policy = tmp_path_factory.mktemp("slack-policy") / "policy.toml"
    policy.write_text('[projects.default]\nslack_channels = ["C-OPS", "C-HELP", "C1"]\n')
    server = module_server_factory(
        env=slack_env(module_slack_double, FUNCTIONLAYER_SERVER_POLICY_FILE=str(policy))
    )
    for name, slack_id in SLACK_PERSONS.items():
        server.add_person(name, slack_ids=[slack_id])
    return server


@pytest.fixture
def agent(slack_server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> FunctionLayer:
    monkeypatch.setenv("FUNCTIONLAYER_API_BASE", slack_server.api_base)
    monkeypatch.setenv("FUNCTIONLAYER_API_TOKEN", slack_server.token)
    return FunctionLayer(approval_method=ApprovalMethod.CLOUD, run_id="slack-agent")


def slack_channel(**kwargs: Any) -> ContactChannel:
    kwargs.setdefault("channel_or_user_id", "C-OPS")
    return ContactChannel(slack=SlackContactChannel(**kwargs))


def posted(double: SlackDouble, call_id: str, count: int = 1) -> SlackCall:
    return double.wait_for(
        "chat.postMessage", count, where=lambda c: f"`{call_id}`" in c.blocks_json()
    )[-1]


def send(server: ServerProcess, payload: dict[str, Any]) -> httpx.Response:
    """Post an interaction signed the way Slack signs it."""
    body = interaction_body(payload)
    headers = slack_headers(body, SIGNING_SECRET)
    return httpx.post(f"{server.base_url}/slack/interactions", content=body, headers=headers)


def updates_for(double: SlackDouble, message: SlackCall) -> list[SlackCall]:
    return [
        c
        for c in double.calls_to("chat.update")
        if c.params.get("ts") == message.response["ts"]
        and c.params.get("channel") == message.response["channel"]
    ]


def status(server: ServerProcess, call_id: str) -> dict[str, Any]:
    with server.client() as client:
        return dict(client.get(f"/function_calls/{call_id}").json()["status"])


def audit(server: ServerProcess, call_id: str) -> list[dict[str, Any]]:
    with server.client() as client:
        return list(client.get(f"/function_calls/{call_id}/audit").json()["items"])


def test_approve_in_slack_runs_the_function(
    agent: FunctionLayer, slack_server: ServerProcess, module_slack_double: SlackDouble
) -> None:
    double = module_slack_double
    ran: list[tuple[int, int]] = []

    @agent.require_approval(
        contact_channel=slack_channel(context_about_channel_or_user="the ops team")
    )
    def transfer(amount: int, to: int) -> str:
        """Move money."""
        ran.append((amount, to))
        return f"moved {amount} to {to}"

    call = Running(transfer, "slack-approve-1", amount=100, to=7)
    message = posted(double, "slack-approve-1")
    assert message.token == BOT_TOKEN
    assert message.params["channel"] == "C-OPS"
    blocks = message.blocks_json()
    assert "Approve transfer?" in blocks and "Move money." in blocks
    assert "amount: 100" in blocks and "```" in blocks  # one line per argument, in a code block
    assert "slack-agent" in blocks and "the ops team" in blocks
    assert call.waiting and not ran

    # A Slack user in the channel who is no person of the directory cannot decide.
    ephemerals = len(double.calls_to("chat.postEphemeral"))
    stranger = send(slack_server, block_actions(message, "U0STRANGER", "fl_approve"))
    assert stranger.status_code == 200
    note = double.wait_for("chat.postEphemeral", ephemerals + 1)[-1]
    assert note.params["user"] == "U0STRANGER" and "not allowed" in note.params["text"]
    assert call.waiting and not ran

    response = send(slack_server, block_actions(message, "U0ALICE", "fl_approve"))
    assert response.status_code == 200
    assert call.get() == "moved 100 to 7"
    assert ran == [(100, 7)]

    update = double.wait_for(
        "chat.update", where=lambda c: c.params.get("ts") == message.response["ts"]
    )[0]
    # The record names the person linked to the Slack user, and the channel.
    assert "*Approved* by *alice* via slack" in update.params["text"]
    assert "*Approved* by *alice* via slack" in update.blocks_json()
    assert all(b["type"] != "actions" for b in update.blocks())  # the buttons are gone
    entries = audit(slack_server, "slack-approve-1")
    approved = [e for e in entries if e["action"] == "approved"]
    assert approved and approved[0]["who"] == "alice" and approved[0]["via"] == "slack"
    assert approved[0]["details"]["identity"] == "slack:U0ALICE"
    assert status(slack_server, "slack-approve-1")["responded_by"] == "alice"
    assert any(e["action"] == "delivered" and e["via"] == "slack" for e in entries)

    # A second click on the (stale) message decides nothing and says so.
    ephemerals = len(double.calls_to("chat.postEphemeral"))
    assert send(slack_server, block_actions(message, "U0BOB", "fl_approve")).status_code == 200
    note = double.wait_for("chat.postEphemeral", ephemerals + 1)[-1]
    assert note.params["user"] == "U0BOB" and "Already decided" in note.params["text"]
    assert [e["action"] for e in audit(slack_server, "slack-approve-1")].count("approved") == 1
    assert ran == [(100, 7)]


def test_reject_with_feedback_through_the_modal(
    agent: FunctionLayer, slack_server: ServerProcess, module_slack_double: SlackDouble
) -> None:
    double = module_slack_double
    ran: list[int] = []

    @agent.require_approval(contact_channel=slack_channel())
    def delete_table(name: str) -> str:
        ran.append(1)
        return "deleted"

    call = Running(delete_table, "slack-reject-1", name="users")
    message = posted(double, "slack-reject-1")
    opened_before = len(double.calls_to("views.open"))
    click = block_actions(message, "U0ALICE", "fl_reject")
    assert send(slack_server, click).status_code == 200
    opened = double.wait_for("views.open", opened_before + 1)[-1]
    assert opened.params["trigger_id"] == click["trigger_id"]
    view = opened.view()
    assert view["type"] == "modal" and call.waiting  # opening the dialog decides nothing

    empty = send(slack_server, view_submission(view, "U0ALICE", "   "))
    assert empty.json()["response_action"] == "errors" and call.waiting

    done = send(slack_server, view_submission(view, "U0ALICE", "use the staging copy instead"))
    assert done.status_code == 200 and not done.content
    assert call.get() == "User denied delete_table with feedback: use the staging copy instead"
    assert ran == []
    update = double.wait_for(
        "chat.update", where=lambda c: c.params.get("ts") == message.response["ts"]
    )[0]
    assert (
        "Rejected" in update.blocks_json()
        and "use the staging copy instead" in update.blocks_json()
    )

    # Submitting the same dialog again is refused in the dialog, not applied twice.
    again = send(slack_server, view_submission(view, "U0BOB", "no"))
    assert "Already decided" in again.json()["errors"]["fl_input"]
    assert status(slack_server, "slack-reject-1")["comment"] == "use the staging copy instead"


def test_reject_option_button_bot_token_override_and_thread(
    agent: FunctionLayer, slack_server: ServerProcess, module_slack_double: SlackDouble
) -> None:
    double = module_slack_double

    @agent.require_approval(
        contact_channel=slack_channel(
            channel_or_user_id="U0OWNER", bot_token="xoxb-override", thread_ts="1699.0001"
        ),
        reject_options=[
            ResponseOption(name="too_big", title="Too big", prompt_fill="the amount is too big")
        ],
    )
    def pay(amount: int) -> str:
        return "paid"

    call = Running(pay, "slack-option-1", amount=5000)
    message = posted(double, "slack-option-1")
    assert message.token == "xoxb-override"
    assert message.params["thread_ts"] == "1699.0001"
    assert message.response["channel"] == "D0OWNER"  # a DM, as Slack opens for user ids
    assert (
        send(slack_server, block_actions(message, "U0OWNER", "fl_reject_option")).status_code == 200
    )
    assert call.get() == "User denied pay (Too big) with feedback: the amount is too big"
    assert status(slack_server, "slack-option-1")["reject_option_name"] == "too_big"
    update = double.wait_for(
        "chat.update", where=lambda c: c.params.get("ts") == message.response["ts"]
    )[0]
    assert update.token == "xoxb-override"


def test_llm_text_is_escaped_for_slack(
    agent: FunctionLayer, slack_server: ServerProcess, module_slack_double: SlackDouble
) -> None:
    double = module_slack_double

    @agent.require_approval(contact_channel=slack_channel())
    def post_note(text: str) -> str:
        return "posted"

    evil = "<!channel> <@U1> <http://evil.example|click here> & ```\n*bold*"
    call = Running(post_note, "slack-escape-1", text=evil)
    message = posted(double, "slack-escape-1")
    everything = json.dumps(message.params)
    assert "&lt;!channel&gt; &lt;@U1&gt; &lt;http://evil.example|click here&gt; &amp;" in everything
    for raw in ("<!channel>", "<@U1>", "<http://evil"):
        assert raw not in everything
    # The arguments cannot close their code block to add formatting or blocks.
    section = next(b for b in message.blocks() if "Arguments" in b.get("text", {}).get("text", ""))
    assert section["text"]["text"].count("```") == 2
    assert [b["type"] for b in message.blocks()] == ["header", "section", "context", "actions"]
    send(slack_server, block_actions(message, "U0ALICE", "fl_approve"))
    assert call.get() == "posted"


def test_refuses_unsigned_forged_stale_and_unauthorised_answers(
    agent: FunctionLayer, slack_server: ServerProcess, module_slack_double: SlackDouble
) -> None:
    double = module_slack_double
    ran: list[int] = []

    @agent.require_approval(contact_channel=slack_channel(allowed_responder_ids=["U0BOSS"]))
    def launch() -> str:
        ran.append(1)
        return "launched"

    call = Running(launch, "slack-refuse-1")
    message = posted(double, "slack-refuse-1")
    payload = block_actions(message, "U0BOSS", "fl_approve")
    body = interaction_body(payload)
    url = f"{slack_server.base_url}/slack/interactions"

    unsigned = httpx.post(
        url, content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    wrong_secret = httpx.post(url, content=body, headers=slack_headers(body, "not-the-secret"))
    stale = httpx.post(
        url,
        content=body,
        headers=slack_headers(body, SIGNING_SECRET, timestamp=int(time.time()) - 301),
    )
    # A genuine signature moved onto a different body (the payload was tampered with).
    tampered_body = interaction_body({**payload, "user": {"id": "U0MALLORY"}})
    tampered = httpx.post(url, content=tampered_body, headers=slack_headers(body, SIGNING_SECRET))
    for response in (unsigned, wrong_secret, stale, tampered):
        assert response.status_code == 401, response.text
    assert call.waiting and ran == []

    # Correctly signed, but from someone outside allowed_responder_ids.
    before = len(double.calls_to("chat.postEphemeral"))
    intruder = send(slack_server, block_actions(message, "U0INTERN", "fl_approve"))
    assert intruder.status_code == 200
    note = double.wait_for("chat.postEphemeral", before + 1)[-1]
    assert note.params["user"] == "U0INTERN" and "not allowed" in note.params["text"]
    assert call.waiting and ran == []
    # The policy refused the intern (a person, but not in this target's allowed_responder_ids)
    # and audited it under the Slack identity that asked and the channel that carried it.
    refused = [e for e in audit(slack_server, "slack-refuse-1") if e["action"] == "refused"]
    assert refused[0]["who"] == "slack:U0INTERN" and refused[0]["via"] == "slack"
    assert status(slack_server, "slack-refuse-1")["approved"] is None

    # The intruder cannot reject through a dialog either.
    assert send(slack_server, block_actions(message, "U0INTERN", "fl_reject")).status_code == 200
    time.sleep(0.2)
    assert call.waiting

    assert send(slack_server, payload).status_code == 200
    assert call.get() == "launched" and ran == [1]


def test_human_contact_reply_through_the_modal(
    agent: FunctionLayer, slack_server: ServerProcess, module_slack_double: SlackDouble
) -> None:
    double = module_slack_double
    ask = agent.human_as_tool(contact_channel=slack_channel(channel_or_user_id="C-HELP"))
    call = Running(ask, "slack-contact-1", message="Which region should I deploy to? <!here>")
    message = posted(double, "slack-contact-1")
    assert "&lt;!here&gt;" in message.blocks_json() and "<!here>" not in message.blocks_json()
    opened_before = len(double.calls_to("views.open"))
    send(slack_server, block_actions(message, "U0ALICE", "fl_reply"))
    view = double.wait_for("views.open", opened_before + 1)[-1].view()
    assert view["callback_id"] == "fl_reply"
    assert send(slack_server, view_submission(view, "U0ALICE", "eu-west-1")).status_code == 200
    assert call.get() == "eu-west-1"
    update = double.wait_for(
        "chat.update", where=lambda c: c.params.get("ts") == message.response["ts"]
    )[0]
    assert "Answered" in update.blocks_json() and "eu-west-1" in update.blocks_json()


def test_expiry_fails_closed_and_updates_the_message(
    agent: FunctionLayer, slack_server: ServerProcess, module_slack_double: SlackDouble
) -> None:
    double = module_slack_double
    ran: list[int] = []

    @agent.require_approval(contact_channel=slack_channel(), timeout=1.0)
    def reboot() -> str:
        ran.append(1)
        return "rebooted"

    call = Running(reboot, "slack-expire-1")
    message = posted(double, "slack-expire-1")
    result = call.get()
    assert ran == [] and result.startswith("reboot was not run")
    assert "1 second" in result or "expired" in result.lower()
    update = double.wait_for(
        "chat.update", where=lambda c: c.params.get("ts") == message.response["ts"]
    )[0]
    assert "Expired" in update.blocks_json()
    st = status(slack_server, "slack-expire-1")
    assert st["approved"] is False and st["expired"] is True and "expired" in st["comment"].lower()
    # Clicking approve afterwards changes nothing.
    send(slack_server, block_actions(message, "U0ALICE", "fl_approve"))
    assert status(slack_server, "slack-expire-1")["expired"] is True and ran == []


def test_failed_delivery_is_retried_and_audited(
    slack_server: ServerProcess, module_slack_double: SlackDouble
) -> None:
    slack_double = module_slack_double
    server = slack_server
    slack_double.fail["chat.postMessage"] = ["ratelimited"]
    with server.client() as client:
        client.post(
            "/function_calls",
            json={
                "run_id": "r",
                "call_id": "retry-1",
                "spec": {
                    "fn": "f",
                    "kwargs": {},
                    "channel": {"slack": {"channel_or_user_id": "C1"}},
                },
            },
        ).raise_for_status()

    def mine(c: SlackCall) -> bool:
        return "`retry-1`" in c.blocks_json()

    first = slack_double.wait_for("chat.postMessage", where=mine)[0]
    assert first.response["ok"] is False
    entries = audit(server, "retry-1")
    failed = [e for e in entries if e["action"] == "delivery_failed"]
    assert failed and "ratelimited" in failed[0]["details"]["error"]
    # The retry runs after its backoff (5 s on the server's clock).
    second = slack_double.wait_for("chat.postMessage", 2, where=mine, timeout=15)[1]
    assert second.response["ok"] is True
    assert [e["action"] for e in audit(server, "retry-1")].count("delivered") == 1


def test_routing_to_a_channel_or_user_the_operator_did_not_allow_is_refused(
    slack_server: ServerProcess, module_slack_double: SlackDouble
) -> None:
    posts = len(module_slack_double.calls_to("chat.postMessage"))
    with slack_server.client() as client:
        for n, slack in enumerate(
            [
                {"channel_or_user_id": "C-ELSEWHERE"},  # not in the policy's slack_channels
                {"channel_or_user_id": "U0NOBODY"},  # a Slack user who is no person
                {"channel_or_user_id": "C-OPS", "allowed_responder_ids": ["U0NOBODY"]},
            ]
        ):
            body = {
                "run_id": "r",
                "call_id": f"slack-routing-{n}",
                "spec": {"fn": "f", "kwargs": {}, "channel": {"slack": slack}},
            }
            refused = client.post("/function_calls", json=body)
            assert refused.status_code == 422, refused.text
            assert refused.json()["code"] == "routing_refused"
            assert client.get(f"/function_calls/slack-routing-{n}").status_code == 404
    time.sleep(0.3)
    assert len(module_slack_double.calls_to("chat.postMessage")) == posts  # nothing sent


def test_irreversible_function_takes_a_second_click_and_context_is_quoted(
    agent: FunctionLayer, slack_server: ServerProcess, module_slack_double: SlackDouble
) -> None:
    """Approve on an irreversible function decides nothing: the server refuses it without
    the confirmation, and the clicker gets a second, deliberate button. The agent's context is
    quoted in a code block under its label, escaped."""
    from functionlayer import RequestContext, request_context_scope

    double = module_slack_double
    ran: list[str] = []

    @agent.require_approval(contact_channel=slack_channel(), irreversible=True)
    def drop_table(name: str) -> str:
        """Irreversible: deletes the table."""
        ran.append(name)
        return f"dropped {name}"

    evil = "<!channel> [approve](https://evil.example) \u202eok"
    context = RequestContext(user_request=evil, reason="the user asked")

    def call_with_context(name: str) -> str:
        with request_context_scope(context):
            return drop_table(name=name)

    call = Running(call_with_context, "slack-irrev-1", name="users")
    message = posted(double, "slack-irrev-1")
    shown = json.dumps(message.blocks(), ensure_ascii=False)
    assert "From the agent — may be wrong or injected" in shown
    assert "&lt;!channel&gt;" in shown and "<!channel>" not in shown
    assert "[approve](https://evil.example)" in shown  # inside a code block: not a link
    assert "⟨U+202E⟩ok" in shown and "\u202e" not in shown
    assert "Irreversible" in shown and "Approve…" in shown

    ephemerals = len(double.calls_to("chat.postEphemeral"))
    assert send(slack_server, block_actions(message, "U0ALICE", "fl_approve")).status_code == 200
    note = double.wait_for("chat.postEphemeral", ephemerals + 1)[-1]
    assert note.params["user"] == "U0ALICE"
    assert "fl_approve_confirm" in note.blocks_json()
    time.sleep(0.3)
    assert call.waiting and not ran
    assert status(slack_server, "slack-irrev-1").get("approved") is None

    # The confirmation is clicked on the ephemeral message; it names the request's message.
    action_id, value = action_value(note, "fl_approve_confirm")
    confirm = {
        "type": "block_actions",
        "user": {"id": "U0ALICE"},
        "container": {
            "type": "message",
            "channel_id": message.response["channel"],
            "message_ts": note.response["message_ts"],
            "is_ephemeral": True,
        },
        "channel": {"id": message.response["channel"]},
        "actions": [{"action_id": action_id, "value": value, "type": "button"}],
    }
    # Someone not allowed to decide gets nothing from it either.
    stranger = dict(confirm, user={"id": "U0STRANGER"})
    assert send(slack_server, stranger).status_code == 200
    time.sleep(0.3)
    assert call.waiting and not ran
    assert send(slack_server, confirm).status_code == 200
    assert call.get() == "dropped users"
    assert ran == ["users"]
    assert status(slack_server, "slack-irrev-1")["responded_by"] == "alice"
