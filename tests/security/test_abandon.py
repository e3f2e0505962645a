"""Abandoning a request (the agent stopped waiting, e.g. Ctrl-C), against a real server on SQLite
and PostgreSQL: only the token that created the request may abandon it; abandoning never
un-decides; an abandoned request can no longer be approved, its execution is never granted, and
the person trying is told why. The inbox says at once when the agent's long-poll went away.
"""

from __future__ import annotations

import socket
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

from tests.security.conftest import Deployment, csrf


def new_id() -> str:
    return f"abandon-{uuid.uuid4().hex[:12]}"


def create(dep: Deployment, call_id: str) -> None:
    with dep.agent() as agent:
        made = agent.post(
            "/function_calls",
            json={
                "run_id": "abandon",
                "call_id": call_id,
                "spec": {"fn": "wire_money", "kwargs": {"amount": 500}},
            },
        )
    assert made.status_code == 200, made.text


def status_of(dep: Deployment, call_id: str) -> dict[str, Any]:
    with dep.agent() as agent:
        answer = agent.get(f"/function_calls/{call_id}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["status"] or {})


def test_only_the_creating_agent_token_may_abandon(deployment: Deployment) -> None:
    call_id = new_id()
    create(deployment, call_id)
    with deployment.agent(token=deployment.other_agent_token) as other:
        by_other = other.post(f"/function_calls/{call_id}/abandon")
    with deployment.person("alice") as alice:
        by_approver = alice.post(f"/function_calls/{call_id}/abandon")
    for answer in (by_other, by_approver):
        assert answer.status_code == 403, answer.text
    assert "only the agent token that created this request" in by_other.json()["detail"]
    status = status_of(deployment, call_id)
    assert status["approved"] is None and status.get("abandoned_at") is None  # still pending

    with deployment.agent() as owner:
        abandoned = owner.post(f"/function_calls/{call_id}/abandon")
        again = owner.post(f"/function_calls/{call_id}/abandon")  # a retry: the same answer
        audit = owner.get(f"/function_calls/{call_id}/audit").json()["items"]
    assert abandoned.status_code == 200, abandoned.text
    status = abandoned.json()["status"]
    assert status["abandoned_at"] and status["expired"] is True and status["approved"] is False
    assert again.status_code == 200 and again.json()["status"] == status, again.text
    assert [(e["action"], e["who"]) for e in audit][-1] == ("abandoned", "agent:test-agent")


def test_abandoning_never_undecides(deployment: Deployment) -> None:
    call_id = new_id()
    create(deployment, call_id)
    with deployment.person("alice") as alice:
        approved = alice.post(f"/agent/function_calls/{call_id}/respond", json={"approved": True})
    assert approved.status_code == 200, approved.text
    with deployment.agent() as owner:
        abandon = owner.post(f"/function_calls/{call_id}/abandon")
    assert abandon.status_code == 409, abandon.text
    assert abandon.json()["code"] == "already_decided"
    status = status_of(deployment, call_id)
    assert status["approved"] is True and status.get("abandoned_at") is None


def test_a_late_approval_of_an_abandoned_request_runs_nothing(deployment: Deployment) -> None:
    call_id = new_id()
    create(deployment, call_id)
    browser = deployment.login("alice")
    form = csrf(browser.get(f"/inbox/calls/{call_id}").text)  # the page opened before
    with deployment.agent() as owner:
        assert owner.post(f"/function_calls/{call_id}/abandon").status_code == 200

    with deployment.person("alice") as alice:
        by_api = alice.post(f"/agent/function_calls/{call_id}/respond", json={"approved": True})
    assert by_api.status_code == 409, by_api.text
    assert "the agent stopped waiting" in by_api.json()["detail"]
    late = browser.post(f"/inbox/calls/{call_id}", data={"action": "approve", "csrf_token": form})
    assert late.status_code == 409, late.text
    assert "was abandoned: the agent stopped waiting at" in late.text  # the approver is told
    assert "The agent stopped waiting at" in browser.get(f"/inbox/calls/{call_id}").text

    with deployment.agent() as owner:
        claim = owner.post(f"/function_calls/{call_id}/execution", json={"claim_id": "late"})
    assert claim.status_code == 409, claim.text
    assert claim.json()["code"] == "execution_refused"
    assert "abandoned" in claim.json()["detail"]
    status = status_of(deployment, call_id)
    assert status["approved"] is False and status["execution"] is None


def test_the_inbox_shows_at_once_that_the_agents_long_poll_went_away(
    deployment: Deployment,
) -> None:
    call_id = new_id()
    create(deployment, call_id)
    browser = deployment.login("alice")
    url = urlsplit(deployment.server.base_url)
    poll = socket.create_connection((url.hostname or "127.0.0.1", url.port or 80))
    poll.sendall(
        (
            f"GET /functionlayer/v1/function_calls/{call_id}?wait=50 HTTP/1.1\r\n"
            f"Host: {url.netloc}\r\nAuthorization: Bearer {deployment.agent_token}\r\n\r\n"
        ).encode()
    )
    deadline = time.monotonic() + 10
    while "waiting for your answer now" not in browser.get(f"/inbox/calls/{call_id}").text:
        assert time.monotonic() < deadline, "the agent's long-poll was never seen"
        time.sleep(0.1)
    poll.close()  # the agent's process ends: its connection closes
    deadline = time.monotonic() + 3
    while True:
        page = browser.get(f"/inbox/calls/{call_id}").text
        if "waiting for your answer now" not in page:
            break
        assert time.monotonic() < deadline, "still 'waiting for your answer now' 3 s later"
        time.sleep(0.1)
    assert "stopped waiting" in page and "its connection closed" in page
    # It asks again: waiting again.
    with deployment.agent() as agent:
        assert agent.get(f"/function_calls/{call_id}", params={"wait": 0}).status_code == 200
    assert "waiting for your answer now" in browser.get(f"/inbox/calls/{call_id}").text


def test_a_human_contact_is_abandoned_by_its_creator_only(deployment: Deployment) -> None:
    call_id = new_id()
    with deployment.agent() as owner:
        made = owner.post(
            "/contact_requests",
            json={"run_id": "abandon", "call_id": call_id, "spec": {"msg": "which account?"}},
        )
        assert made.status_code == 200, made.text
        with deployment.agent(token=deployment.other_agent_token) as other:
            assert other.post(f"/contact_requests/{call_id}/abandon").status_code == 403
        assert owner.get(f"/contact_requests/{call_id}").json()["status"]["expired"] is False
        abandoned = owner.post(f"/contact_requests/{call_id}/abandon")
    assert abandoned.status_code == 200, abandoned.text
    status = abandoned.json()["status"]
    assert status["abandoned_at"] and status["expired"] is True and status["response"] is None
    with deployment.person("alice") as alice:
        late = alice.post(f"/agent/human_contacts/{call_id}/respond", json={"response": "acme"})
    assert late.status_code == 409 and "stopped waiting" in late.json()["detail"], late.text
