"""The hostile-agent suite: everything an agent credential can send, against a real server on
SQLite and PostgreSQL. The agent holds its token and can make any HTTP request; none of it may
approve, choose or impersonate an approver, weaken the policy or rewrite the record, and the
guarded body must not run.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import uuid
from typing import Any

import httpx
import pytest
from functionlayer import FunctionLayer, call_id_scope
from functionlayer_server._cli import create_user

from tests.security.conftest import PASSWORD, Deployment, csrf

PREFIXES = ["/functionlayer/v1", "/humanlayer/v1"]

DECISIONS: list[dict[str, Any]] = [
    {"approved": True},
    {"approved": True, "edited_kwargs": {"amount": 1, "to": "agent"}},
    {"approved": False, "comment": "no"},
    {"response": "done by hand"},
    {"approved": True, "responded_by": "alice", "responded_via": "web"},
    {"approved": True, "responded_by": "alice@corp.example", "responded_via": "email"},
]


def new_id() -> str:
    return f"sec-{uuid.uuid4().hex[:12]}"


def create(dep: Deployment, call_id: str, **spec: Any) -> httpx.Response:
    with dep.agent() as agent:
        return agent.post(
            "/function_calls",
            json={
                "run_id": "hostile",
                "call_id": call_id,
                "spec": {"fn": "wire_money", "kwargs": {"amount": 1_000_000}, **spec},
            },
        )


def status_of(dep: Deployment, call_id: str) -> dict[str, Any]:
    with dep.agent() as agent:
        answer = agent.get(f"/function_calls/{call_id}")
        assert answer.status_code == 200, answer.text
        return dict(answer.json()["status"] or {})


def assert_forbidden(answer: httpx.Response) -> None:
    assert answer.status_code == 403, answer.text
    body = answer.json()
    assert body["code"] == "forbidden"
    assert "agent tokens cannot decide" in body["detail"]


@pytest.mark.parametrize("prefix", PREFIXES)
def test_agent_token_cannot_decide_a_function_call(deployment: Deployment, prefix: str) -> None:
    call_id = new_id()
    assert create(deployment, call_id).status_code == 200
    with deployment.agent(prefix) as agent:
        for decision in DECISIONS:
            assert_forbidden(agent.post(f"/agent/function_calls/{call_id}/respond", json=decision))
            # Also with the reject option and quorum fields a client might try.
            assert_forbidden(
                agent.post(
                    f"/agent/function_calls/{call_id}/respond",
                    json={**decision, "approvals": ["alice", "bob"]},
                )
            )
    status = status_of(deployment, call_id)
    assert status.get("approved") is None and status.get("responded_by") is None
    assert not status.get("approvals")


@pytest.mark.parametrize("prefix", PREFIXES)
def test_agent_token_cannot_answer_a_human_contact(deployment: Deployment, prefix: str) -> None:
    call_id = new_id()
    with deployment.agent(prefix) as agent:
        made = agent.post(
            "/contact_requests",
            json={"run_id": "hostile", "call_id": call_id, "spec": {"msg": "Which account?"}},
        )
        assert made.status_code == 200, made.text
        for body in (
            {"response": "the agent's own account"},
            {"response": "x", "responded_by": "alice", "responded_via": "slack"},
            {"response_option_name": "yes"},
        ):
            assert_forbidden(agent.post(f"/agent/human_contacts/{call_id}/respond", json=body))
        contact = agent.get(f"/contact_requests/{call_id}").json()
    assert (contact["status"] or {}).get("response") is None


def test_the_record_names_the_authenticated_person_not_the_body(deployment: Deployment) -> None:
    call_id = new_id()
    assert create(deployment, call_id).status_code == 200
    with deployment.person("bob") as bob:
        answer = bob.post(
            f"/agent/function_calls/{call_id}/respond",
            json={
                "approved": False,
                "comment": "no",
                "responded_by": "alice",
                "responded_via": "web",
            },
        )
    assert answer.status_code == 200, answer.text
    status = answer.json()["status"]
    assert status["responded_by"] == "bob" and status["responded_via"] == "api"
    with deployment.agent() as agent:
        audit = agent.get(f"/function_calls/{call_id}/audit").json()["items"]
    rejected = [e for e in audit if e["action"] == "rejected"]
    assert [(e["who"], e["via"]) for e in rejected] == [("bob", "api")]


def test_one_person_cannot_fill_a_quorum_under_several_names(deployment: Deployment) -> None:
    call_id = new_id()
    assert create(deployment, call_id, policy={"approvals_required": 2}).status_code == 200
    with deployment.person("alice") as alice:
        first = alice.post(
            f"/agent/function_calls/{call_id}/respond",
            json={"approved": True, "responded_by": "alice"},
        )
        assert first.status_code == 200, first.text
        for alias in ("bob", "alice@corp.example", "UALICE", "carol"):
            again = alice.post(
                f"/agent/function_calls/{call_id}/respond",
                json={"approved": True, "responded_by": alias},
            )
            assert again.status_code == 409, again.text
    status = status_of(deployment, call_id)
    assert status.get("approved") is None and status["approvals"] == ["alice"]
    with deployment.person("bob") as bob:
        done = bob.post(f"/agent/function_calls/{call_id}/respond", json={"approved": True})
    assert done.json()["status"]["approved"] is True
    assert done.json()["status"]["approvals"] == ["alice", "bob"]


ROUTES: list[dict[str, Any]] = [
    {"channel": {"email": {"address": "agent@attacker.example"}}},
    {
        "channel": {
            "email": {
                "address": "alice@corp.example",
                "additional_recipients": [{"address": "agent@attacker.example", "field": "bcc"}],
            }
        }
    },
    {"channel": {"slack": {"channel_or_user_id": "C-AGENT-OWNED"}}},
    {"channel": {"slack": {"channel_or_user_id": "UALICE", "allowed_responder_ids": ["U-AGENT"]}}},
    {"channel": {"users": ["agent-made-up-user"]}},
    {"policy": {"responders": ["agent@attacker.example"]}},
    {
        "policy": {
            "approvals_required": 3,
            "channels": [{"email": {"address": f"agent{i}@attacker.example"}} for i in range(3)],
        }
    },
    {"channel": {"sms": {"phone_number": "+15550100"}}},
]


@pytest.mark.parametrize("route", ROUTES, ids=range(len(ROUTES)))
def test_agent_cannot_route_to_approvers_it_chose(
    deployment: Deployment, route: dict[str, Any]
) -> None:
    call_id = new_id()
    refused = create(deployment, call_id, **route)
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "routing_refused"
    assert "nothing was stored or sent" in refused.json()["detail"]
    with deployment.agent() as agent:
        assert agent.get(f"/function_calls/{call_id}").status_code == 404


def test_routing_to_directory_members_is_allowed(deployment: Deployment) -> None:
    call_id = new_id()
    made = create(
        deployment,
        call_id,
        channel={"users": ["alice"]},
        policy={"responders": ["bob@corp.example", "alice"]},
    )
    assert made.status_code == 200, made.text


def test_an_agent_may_give_up_only_its_own_request(deployment: Deployment) -> None:
    call_id = new_id()
    assert create(deployment, call_id).status_code == 200
    with deployment.agent(token=deployment.other_agent_token) as other:
        refused = other.post(
            f"/agent/function_calls/{call_id}/respond", json={"expired": True, "approved": True}
        )
    assert refused.status_code in (403, 404), refused.text  # other project or not the creator
    with deployment.agent() as agent:
        given_up = agent.post(
            f"/agent/function_calls/{call_id}/respond",
            json={"expired": True, "approved": True, "comment": "gave up"},
        )
    assert given_up.status_code == 200, given_up.text
    status = given_up.json()["status"]
    assert status["expired"] is True and status["approved"] is False  # always a rejection
    assert status["responded_by"] == "agent:test-agent"


def test_a_revoked_token_is_refused_at_once(deployment: Deployment) -> None:
    server = deployment.server
    token = asyncio.run(_token(server.settings, f"doomed-{uuid.uuid4().hex[:6]}"))
    name = None
    with deployment.agent(token=token) as agent:
        assert agent.get("/function_calls").status_code == 200
        listing = subprocess.run(
            [
                sys.executable,
                "-m",
                "functionlayer_server._cli",
                "tokens",
                "list",
                "--database-url",
                server.database_url,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        name = next(
            line.split("\t")[0]
            for line in listing.stdout.splitlines()
            if line.startswith("doomed-")
        )
        subprocess.run(
            [
                sys.executable,
                "-m",
                "functionlayer_server._cli",
                "tokens",
                "revoke",
                name,
                "--database-url",
                server.database_url,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        answer = agent.get("/function_calls")
    assert answer.status_code == 401, answer.text
    listing = subprocess.run(
        [
            sys.executable,
            "-m",
            "functionlayer_server._cli",
            "tokens",
            "list",
            "--database-url",
            server.database_url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert any(line.startswith(name) and "revoked" in line for line in listing.stdout.splitlines())


async def _token(settings: Any, name: str) -> str:
    from functionlayer_server._cli import create_token

    return await create_token(settings, name)


def _inbox_decide(browser: httpx.Client, call_id: str) -> httpx.Response:
    page = browser.get(f"/inbox/calls/{call_id}")
    token = csrf(page.text) if page.status_code == 200 else "stale"
    return browser.post(
        f"/inbox/calls/{call_id}",
        data={"action": "approve", "csrf_token": token},
        follow_redirects=False,
    )


def test_a_stale_session_cookie_decides_nothing(deployment: Deployment) -> None:
    name = f"dora{uuid.uuid4().hex[:6]}"
    asyncio.run(create_user(deployment.server.settings, name, PASSWORD))
    call_id = new_id()
    assert create(deployment, call_id).status_code == 200
    # Logout: a copy of the cookie taken before stops working.
    browser = deployment.login(name)
    stolen = dict(browser.cookies)
    list_page = browser.get("/inbox")
    browser.post("/inbox/logout", data={"csrf_token": csrf(list_page.text)}, follow_redirects=False)
    thief = httpx.Client(base_url=deployment.server.base_url, cookies=stolen, timeout=30)
    assert thief.get("/inbox", follow_redirects=False).status_code == 303
    assert _inbox_decide(thief, call_id).status_code in (303, 403)
    # Password change and disabling end every session too.
    for change in ("password", "disable"):
        browser = (
            deployment.login(name)
            if change == "password"
            else deployment.login(name, "a whole new passphrase")
        )
        if change == "password":
            asyncio.run(create_user(deployment.server.settings, name, "a whole new passphrase"))
        else:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "functionlayer_server._cli",
                    "users",
                    "disable",
                    name,
                    "--database-url",
                    deployment.server.database_url,
                ],
                check=True,
                capture_output=True,
            )
        assert browser.get("/inbox", follow_redirects=False).status_code == 303
        assert _inbox_decide(browser, call_id).status_code in (303, 403)
    assert status_of(deployment, call_id).get("approved") is None


def test_login_is_throttled(deployment: Deployment) -> None:
    name = f"erin{uuid.uuid4().hex[:6]}"
    asyncio.run(create_user(deployment.server.settings, name, PASSWORD))
    browser = httpx.Client(base_url=deployment.server.base_url, timeout=30)
    codes = []
    for _ in range(7):
        token = csrf(browser.get("/inbox/login").text)
        answer = browser.post(
            "/inbox/login",
            data={"username": name, "password": "wrong guess 123", "csrf_token": token},
            follow_redirects=False,
        )
        codes.append(answer.status_code)
    assert codes[:5] == [401] * 5
    assert codes[5] == 429 and int(answer.headers["Retry-After"]) > 0
    # The right password is refused too while throttled: guessing cannot continue.
    token = csrf(browser.get("/inbox/login").text)
    right = browser.post(
        "/inbox/login",
        data={"username": name, "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert right.status_code == 429


def test_short_passwords_are_refused(deployment: Deployment) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "functionlayer_server._cli",
            "users",
            "create",
            "shorty",
            "--password-stdin",
            "--database-url",
            deployment.server.database_url,
        ],
        input="hunter2\n",
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "at least 12 characters" in done.stderr


def test_the_guarded_body_never_runs_under_attack(deployment: Deployment) -> None:
    """A real agent waits on a guarded call while the same agent process throws every attack
    at it; the body does not run and the agent is told it was not run."""
    ran: list[int] = []
    fl = FunctionLayer(
        api_base=deployment.server.api_base, api_token=deployment.agent_token, timeout=6
    )

    @fl.require_approval()
    def wire_money(amount: int) -> str:
        ran.append(amount)
        return "sent"

    call_id = new_id()
    box: dict[str, Any] = {}

    def agent() -> None:
        with call_id_scope(call_id):
            box["result"] = wire_money(1_000_000)

    thread = threading.Thread(target=agent)
    thread.start()
    with deployment.agent() as client:
        for _ in range(100):
            if client.get(f"/function_calls/{call_id}").status_code == 200:
                break
            threading.Event().wait(0.05)
        for prefix in PREFIXES:
            with deployment.agent(prefix) as attacker:
                for decision in DECISIONS:
                    attacker.post(f"/agent/function_calls/{call_id}/respond", json=decision)
    thread.join(30)
    assert not thread.is_alive()
    assert ran == []
    assert "was not run" in str(box["result"])
    status = status_of(deployment, call_id)
    assert status["approved"] is False and status["expired"] is True


def test_strict_input_no_truthy_approvals_no_non_finite_arguments(deployment: Deployment) -> None:
    call_id = new_id()
    assert create(deployment, call_id).status_code == 200
    with deployment.person("alice") as alice:
        for truthy in ("yes", 1, "true"):
            answer = alice.post(
                f"/agent/function_calls/{call_id}/respond", json={"approved": truthy}
            )
            assert answer.status_code == 422, answer.text
    assert status_of(deployment, call_id).get("approved") is None
    with deployment.agent() as agent:
        for raw in ('{"amount": NaN}', '{"amount": Infinity}', '{"amount": 1e400}'):
            made = agent.post(
                "/function_calls",
                content=f'{{"run_id": "r", "call_id": "{new_id()}", "spec": {{"fn": "wire_money", "kwargs": {raw}}}}}',
                headers={"Content-Type": "application/json"},
            )
            assert made.status_code == 422, (raw, made.text)


def test_an_agent_cannot_claim_an_unapproved_execution_or_prewrite_its_outcome(
    deployment: Deployment,
) -> None:
    call_id = new_id()
    assert create(deployment, call_id).status_code == 200
    forged = {"claim_id": "c1", "outcome": "returned", "summary": "sent", "finished_at": None}
    with deployment.agent() as agent:
        early = agent.post(f"/function_calls/{call_id}/execution", json=forged)
        assert early.status_code == 409, early.text  # pending: nothing may run
        assert early.json()["code"] == "execution_refused"
    with deployment.agent(token=deployment.other_agent_token) as other:
        elsewhere = other.post(f"/function_calls/{call_id}/execution", json=forged)
        assert elsewhere.status_code in (403, 404, 409), elsewhere.text
    with deployment.person("alice") as alice:
        assert (
            alice.post(
                f"/agent/function_calls/{call_id}/respond", json={"approved": True}
            ).status_code
            == 200
        )
    with deployment.agent(token=deployment.other_agent_token) as other:
        # Another agent of the project cannot take the approved execution away from its agent.
        stolen = other.post(f"/function_calls/{call_id}/execution", json=forged)
        assert stolen.status_code == 403, stolen.text
    with deployment.agent() as agent:
        claim = agent.post(f"/function_calls/{call_id}/execution", json=forged)
        assert claim.status_code == 200 and claim.json()["granted"] is True
    execution = status_of(deployment, call_id)["execution"]
    # The server writes the record: a claim says nothing yet about how the body ended.
    assert execution["outcome"] is None and execution["summary"] is None
    assert execution["started_at"] is not None
