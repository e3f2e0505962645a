"""The open protocol against a real running server, driven by the core's HTTP backend, on SQLite
and (marked ``postgres``) on PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from typing import Any

import httpx
import pytest
from functionlayer import (
    FunctionCall,
    FunctionCallSpec,
    FunctionLayer,
    HttpBackend,
    ResponseOption,
    call_id_scope,
)

from packages.server.tests._live import layer_fixture, live_fixture
from tests._support.servers import ServerProcess, in_thread

live = live_fixture()


fl = layer_fixture("protocol-test")


class Human:
    """Answers through the API's respond endpoints with an approver token: a person
    (``approver``) deciding through an integration. Agent tokens cannot decide."""

    def __init__(self, server: ServerProcess) -> None:
        self.client = server.approver_client()

    def pending(self, fn: str | None = None, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            items = self.client.get("/function_calls", params={"pending": "true"}).json()["items"]
            items = [i for i in items if fn is None or i["spec"]["fn"] == fn]
            if items:
                return dict(items[0])
            time.sleep(0.02)
        raise AssertionError(f"no pending call of {fn} within {timeout}s")

    def decide(self, call_id: str, **decision: Any) -> httpx.Response:
        return self.client.post(f"/agent/function_calls/{call_id}/respond", json=decision)


def test_approved_call_runs_after_the_answer(live: ServerProcess, fl: FunctionLayer) -> None:
    ran: list[tuple[int, int]] = []

    @fl.require_approval()
    def multiply(x: int, y: int) -> int:
        """Multiply two numbers."""
        ran.append((x, y))
        return x * y

    join = in_thread(lambda: multiply(6, 7))
    human = Human(live)
    pending = human.pending("multiply")
    assert pending["spec"]["kwargs"] == {"x": 6, "y": 7}
    assert pending["spec"]["description"] == "Multiply two numbers."
    # Wire compatibility: a pending call's status is present with requested_at set.
    assert pending["status"]["approved"] is None
    assert pending["status"]["requested_at"]
    time.sleep(0.2)
    assert ran == [], "the body ran before anyone approved"
    answered = human.decide(pending["call_id"], approved=True, comment="fine")
    assert answered.status_code == 200, answered.text
    assert join() == 42
    assert ran == [(6, 7)]
    stored = human.client.get(f"/function_calls/{pending['call_id']}").json()
    assert stored["status"]["approved"] is True
    # The record names the person behind the approver token, whatever the body says.
    assert stored["status"]["responded_by"] == "approver"
    assert stored["status"]["responded_via"] == "api"


def test_agent_token_cannot_decide_and_body_identity_is_ignored(live: ServerProcess) -> None:
    agent = live.client()
    assert (
        agent.post("/function_calls", json=_call("agent-decides", run_id="who")).status_code == 200
    )
    for decision in (
        {"approved": True},
        {"approved": False, "comment": "no"},
        {"approved": True, "edited_kwargs": {"a": 2}},
        {"response": "done already"},
        {"approved": True, "responded_by": "approver", "responded_via": "web"},
    ):
        refused = agent.post("/agent/function_calls/agent-decides/respond", json=decision)
        assert refused.status_code == 403, refused.text
        assert refused.json()["code"] == "forbidden"
    assert agent.get("/function_calls/agent-decides").json()["status"]["approved"] is None
    contact = {"run_id": "who", "call_id": "agent-answers", "spec": {"msg": "which?"}}
    assert agent.post("/contact_requests", json=contact).status_code == 200
    answer = agent.post("/agent/human_contacts/agent-answers/respond", json={"response": "eu"})
    assert answer.status_code == 403 and answer.json()["code"] == "forbidden"
    # An approver token decides as its person: responded_by/responded_via in the body are ignored.
    human = live.approver_client()
    decided = human.post(
        "/agent/function_calls/agent-decides/respond",
        json={"approved": True, "responded_by": "mallory", "responded_via": "slack"},
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"]["responded_by"] == "approver"
    assert decided.json()["status"]["responded_via"] == "api"
    # ... and cannot create requests (those are the agent's).
    assert human.post("/function_calls", json=_call("by-approver")).status_code == 403


def test_rejection_feedback_reaches_the_agent_and_nothing_runs(
    live: ServerProcess, fl: FunctionLayer
) -> None:
    ran: list[str] = []

    @fl.require_approval()
    def send_email(to: str) -> str:
        ran.append(to)
        return "sent"

    join = in_thread(lambda: send_email("ceo@example.com"))
    human = Human(live)
    pending = human.pending("send_email")
    assert (
        human.decide(pending["call_id"], approved=False, comment="not the CEO").status_code == 200
    )
    assert join() == "User denied send_email with feedback: not the CEO"
    assert ran == []
    again = human.decide(pending["call_id"], approved=True)
    assert again.status_code == 409
    assert again.json()["code"] == "already_decided"


def test_edited_arguments_and_response_instead(live: ServerProcess, fl: FunctionLayer) -> None:
    ran: list[int] = []

    @fl.require_approval()
    def refund(amount: int) -> str:
        ran.append(amount)
        return f"refunded {amount}"

    human = Human(live)
    join = in_thread(lambda: refund(500))
    pending = human.pending("refund")
    assert (
        human.decide(pending["call_id"], approved=True, edited_kwargs={"amount": 50}).status_code
        == 200
    )
    result = join()
    assert ran == [50]
    assert "refunded 50" in result and "500" in result

    join = in_thread(lambda: refund(7))
    pending = human.pending("refund")
    reply = human.decide(pending["call_id"], response="Already refunded last week")
    assert reply.status_code == 200
    assert reply.json()["status"]["approved"] is False
    assert join() == "Already refunded last week"
    assert ran == [50]


def test_async_guarded_function_and_tool_call_id(live: ServerProcess, fl: FunctionLayer) -> None:
    @fl.require_approval()
    async def deploy(service: str) -> str:
        return f"deployed {service}"

    async def agent() -> str:
        with call_id_scope("tool-call-abc"):
            return str(await deploy("api"))

    join = in_thread(lambda: asyncio.run(agent()))
    human = Human(live)
    pending = human.pending("deploy")
    assert pending["call_id"] == "tool-call-abc"
    human.decide("tool-call-abc", approved=True)
    assert join() == "deployed api"


def test_human_contact_round_trip(live: ServerProcess, fl: FunctionLayer) -> None:
    ask = fl.human_as_tool()
    join = in_thread(lambda: ask("Which region should I deploy to?"))
    client = live.client()
    deadline = time.monotonic() + 10
    items: list[dict[str, Any]] = []
    while not items and time.monotonic() < deadline:
        items = client.get("/contact_requests", params={"pending": "true"}).json()["items"]
        items = [i for i in items if i["spec"]["msg"] == "Which region should I deploy to?"]
        time.sleep(0.02)
    assert items and items[0]["spec"]["msg"] == "Which region should I deploy to?"
    assert items[0]["status"]["requested_at"]
    call_id = items[0]["call_id"]
    human = live.approver_client()
    answered = human.post(
        f"/agent/human_contacts/{call_id}/respond", json={"response": "eu-west-1"}
    )
    assert answered.status_code == 200, answered.text
    assert answered.json()["status"]["responded_by"] == "approver"
    assert join() == "eu-west-1"
    assert (
        human.post(f"/agent/human_contacts/{call_id}/respond", json={"response": "x"}).status_code
        == 409
    )


def test_reject_options_and_invalid_decisions(live: ServerProcess) -> None:
    agent = live.client()
    client = live.approver_client()
    body = {
        "run_id": "r",
        "call_id": "opt-1",
        "spec": {
            "fn": "wipe",
            "kwargs": {},
            "reject_options": [
                {"name": "too_risky", "title": "Too risky", "prompt_fill": "way too risky"}
            ],
        },
    }
    assert agent.post("/function_calls", json=body).status_code == 200
    no_comment = client.post("/agent/function_calls/opt-1/respond", json={"approved": False})
    assert no_comment.status_code == 422 and "comment" in no_comment.json()["detail"]
    no_verdict = client.post("/agent/function_calls/opt-1/respond", json={})
    assert no_verdict.status_code == 422
    unknown = client.post(
        "/agent/function_calls/opt-1/respond",
        json={"approved": False, "reject_option_name": "nope"},
    )
    assert unknown.status_code == 422 and "too_risky" in unknown.json()["detail"]
    both = client.post(
        "/agent/function_calls/opt-1/respond",
        json={"approved": True, "response": "hi"},
    )
    assert both.status_code == 422
    # Still pending after all those refusals; the option's text becomes the feedback.
    ok = client.post(
        "/agent/function_calls/opt-1/respond",
        json={"approved": False, "reject_option_name": "too_risky"},
    )
    assert ok.status_code == 200
    assert ok.json()["status"]["comment"] == "way too risky"
    assert ok.json()["status"]["reject_option_name"] == "too_risky"


def _call(call_id: str, fn: str = "f", run_id: str = "run-1", **spec: Any) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "call_id": call_id,
        "spec": {"fn": fn, "kwargs": {"a": 1}, **spec},
        "status": None,
    }


def test_idempotent_creation_and_conflicts(live: ServerProcess) -> None:
    client = live.client()
    first = client.post("/function_calls", json=_call("same", run_id="idem"))
    assert first.status_code == 200
    # Whatever status a client sends is ignored: only a human decides.
    sneaky = _call("same", run_id="idem")
    sneaky["status"] = {"approved": True}
    again = client.post("/function_calls", json=sneaky)
    assert again.status_code == 200
    assert again.json() == first.json()
    assert again.json()["status"]["approved"] is None
    different = client.post("/function_calls", json=_call("same", fn="other", run_id="idem"))
    assert different.status_code == 409
    assert different.json()["code"] == "conflict"
    # The typed client maps that conflict too.
    backend = HttpBackend(live.api_base, live.token)
    spec = FunctionCallSpec(fn="f", kwargs={"a": 2})
    from functionlayer import ConflictError

    with pytest.raises(ConflictError):
        backend.create_function_call(FunctionCall(run_id="idem", call_id="same", spec=spec))
    backend.close()
    listed = client.get("/function_calls", params={"run_id": "idem"}).json()["items"]
    assert [i["call_id"] for i in listed] == ["same"]


def test_projects_and_tokens(live: ServerProcess) -> None:
    mine = live.client()
    assert mine.post("/function_calls", json=_call("secret-call")).status_code == 200
    other_token = live.create_token("intruder", project="other")
    other = live.client(other_token)
    assert other.get("/function_calls/secret-call").status_code == 404
    # A person deciding in another project does not see this one's requests either.
    other_human = live.approver_client("outsider", project="other")
    assert (
        other_human.post(
            "/agent/function_calls/secret-call/respond", json={"approved": True}
        ).status_code
        == 404
    )
    assert other_human.get("/function_calls/secret-call").status_code == 404
    # Giving up (expired=true) is for the agent token that created the request only.
    sibling = live.client(live.create_token("sibling-agent"))
    give_up = {"expired": True, "comment": "stop"}
    assert (
        sibling.post("/agent/function_calls/secret-call/respond", json=give_up).status_code == 403
    )
    human = live.approver_client()
    assert human.post("/agent/function_calls/secret-call/respond", json=give_up).status_code == 403
    assert mine.get("/function_calls/secret-call").json()["status"]["approved"] is None
    assert other.get("/function_calls").json()["items"] == []
    # Call ids are per project: the same id there is its own request (no 409 telling it that
    # mine exists), and it cannot take over mine.
    assert other.post("/function_calls", json=_call("secret-call")).status_code == 200
    assert [c["call_id"] for c in other.get("/function_calls").json()["items"]] == ["secret-call"]
    assert mine.get("/function_calls/secret-call").json()["status"]["approved"] is None

    anonymous = httpx.get(f"{live.api_base}/function_calls/secret-call")
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "unauthorized"
    assert anonymous.headers["www-authenticate"] == "Bearer"
    wrong = httpx.get(
        f"{live.api_base}/function_calls", headers={"Authorization": "Bearer fl_nope"}
    )
    assert wrong.status_code == 401
    basic = httpx.get(f"{live.api_base}/function_calls", headers={"Authorization": "Basic eDp5"})
    assert basic.status_code == 401


def test_legacy_prefix_serves_predecessor_clients(live: ServerProcess) -> None:
    legacy = httpx.Client(base_url=f"{live.base_url}/humanlayer/v1", headers=live.headers())
    body = _call("legacy-1")
    created = legacy.post("/function_calls", json=body)
    assert created.status_code == 200
    got = legacy.get("/function_calls/legacy-1").json()
    assert set(got) == {"run_id", "call_id", "spec", "status"}
    assert got["status"]["requested_at"] and got["status"]["approved"] is None
    # null fields included, as the predecessor's clients expect
    assert "comment" in got["status"] and got["status"]["comment"] is None
    human = httpx.Client(
        base_url=f"{live.base_url}/humanlayer/v1", headers=live.headers(live.approver_token)
    )
    decided = human.post(
        "/agent/function_calls/legacy-1/respond", json={"approved": False, "comment": "no"}
    )
    assert decided.json()["status"]["approved"] is False
    contact = legacy.post(
        "/contact_requests", json={"run_id": "r", "call_id": "legacy-c", "spec": {"msg": "hi?"}}
    )
    assert contact.status_code == 200 and contact.json()["status"]["requested_at"]


def test_long_poll_returns_at_the_answer_not_before(live: ServerProcess) -> None:
    client = live.client()
    client.post("/function_calls", json=_call("poll-1"))
    started = time.monotonic()
    unanswered = client.get("/function_calls/poll-1", params={"wait": 0.4})
    assert unanswered.status_code == 200
    assert unanswered.json()["status"]["approved"] is None
    assert time.monotonic() - started >= 0.35

    answered_at: list[float] = []

    def answer() -> None:
        time.sleep(0.3)
        live.approver_client().post("/agent/function_calls/poll-1/respond", json={"approved": True})
        answered_at.append(time.monotonic())

    thread = threading.Thread(target=answer)
    thread.start()
    started = time.monotonic()
    got = client.get("/function_calls/poll-1", params={"wait": 20})
    woke = time.monotonic()
    thread.join()
    assert got.json()["status"]["approved"] is True
    assert woke - started < 5, "the long-poll did not return at the answer"
    assert woke - answered_at[0] < 0.25


def test_expiry_is_a_fail_closed_rejection(live: ServerProcess, fl: FunctionLayer) -> None:
    ran: list[int] = []

    @fl.require_approval(timeout=0.6)
    def transfer(amount: int) -> str:
        ran.append(amount)
        return "done"

    result = in_thread(lambda: transfer(10))(10.0)
    assert result.startswith("transfer was not run:") and "expired" in result
    assert ran == []
    client = live.client()
    calls = [
        c for c in client.get("/function_calls").json()["items"] if c["spec"]["fn"] == "transfer"
    ]
    status = calls[0]["status"]
    assert status["approved"] is False and status["expired"] is True
    assert status["expires_at"]
    # A late answer is refused.
    late = live.approver_client().post(
        f"/agent/function_calls/{calls[0]['call_id']}/respond", json={"approved": True}
    )
    assert late.status_code == 409

    # The server expires on its own (no agent-side expiry involved): raw create with a deadline.
    client.post("/function_calls", json=_call("exp-2", timeout_seconds=0.3))
    got = client.get("/function_calls/exp-2", params={"wait": 5}).json()["status"]
    assert got["expired"] is True and got["approved"] is False
    assert "0.3 seconds" in got["comment"] and "not approved" in got["comment"]
    audit = client.get("/function_calls/exp-2/audit").json()["items"]
    assert [e["action"] for e in audit] == ["created", "expired"]


def test_quorum_needs_distinct_approvals_and_one_rejection_rejects(live: ServerProcess) -> None:
    client = live.client()
    alice, bob, carol = (live.approver_client(name) for name in ("alice", "bob", "carol"))
    client.post("/function_calls", json=_call("q-1", policy={"approvals_required": 2}))
    first = alice.post("/agent/function_calls/q-1/respond", json={"approved": True})
    assert first.status_code == 200
    assert first.json()["status"]["approved"] is None
    assert first.json()["status"]["approvals"] == ["alice"]
    twice = alice.post("/agent/function_calls/q-1/respond", json={"approved": True})
    assert twice.status_code == 409
    # Naming someone else in the body does not make alice count twice.
    disguised = alice.post(
        "/agent/function_calls/q-1/respond", json={"approved": True, "responded_by": "bob"}
    )
    assert disguised.status_code == 409
    assert client.get("/function_calls/q-1").json()["status"]["approvals"] == ["alice"]
    second = bob.post("/agent/function_calls/q-1/respond", json={"approved": True})
    assert second.json()["status"]["approved"] is True
    assert second.json()["status"]["approvals"] == ["alice", "bob"]

    client.post("/function_calls", json=_call("q-2", policy={"approvals_required": 3}))
    alice.post("/agent/function_calls/q-2/respond", json={"approved": True})
    veto = carol.post(
        "/agent/function_calls/q-2/respond",
        json={"approved": False, "comment": "not on a Friday", "responded_by": "dave"},
    )
    status = veto.json()["status"]
    assert status["approved"] is False and status["comment"] == "not on a Friday"
    assert status["responded_by"] == "carol"
    audit = client.get("/function_calls/q-2/audit").json()["items"]
    assert [(e["action"], e["who"]) for e in audit] == [
        ("created", "agent:test-agent"),
        ("approval_recorded", "alice"),
        ("rejected", "carol"),
    ]


def test_reject_options_reach_the_agent(live: ServerProcess, fl: FunctionLayer) -> None:
    @fl.require_approval(reject_options=[ResponseOption(name="later", title="Not now")])
    def reboot(host: str) -> str:
        return "rebooted"

    join = in_thread(lambda: reboot("db1"))
    human = Human(live)
    pending = human.pending("reboot")
    assert pending["spec"]["reject_options"][0]["name"] == "later"
    human.decide(
        pending["call_id"], approved=False, reject_option_name="later", comment="after 6pm"
    )
    assert join() == "User denied reboot (Not now) with feedback: after 6pm"


def test_unique_ids_under_concurrency(live: ServerProcess) -> None:
    """Ten answers race for one call: exactly one wins, the rest get 409."""
    client = live.client()
    client.post("/function_calls", json=_call("race"))
    results: list[int] = []

    token = live.approver_token

    def answer(i: int) -> None:
        with live.client(token) as c:
            r = c.post(
                "/agent/function_calls/race/respond",
                json={"approved": i % 2 == 0, "comment": f"#{i}"},
            )
            results.append(r.status_code)

    threads = [threading.Thread(target=answer, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200] + [409] * 9
    audit = client.get("/function_calls/race/audit").json()["items"]
    assert len([e for e in audit if e["action"] in ("approved", "rejected")]) == 1


def test_fresh_ids_do_not_collide(live: ServerProcess) -> None:
    client = live.client()
    ids = [uuid.uuid4().hex for _ in range(20)]
    for call_id in ids:
        assert client.post("/function_calls", json=_call(call_id, run_id="many")).status_code == 200
    listed = client.get(
        "/function_calls", params={"pending": "true", "limit": 5, "run_id": "many"}
    ).json()["items"]
    assert len(listed) == 5
    assert {i["call_id"] for i in listed} <= set(ids)


def test_control_characters_and_absurd_values(live: ServerProcess) -> None:
    """Refused with a 422 (or stored escaped), on SQLite and PostgreSQL alike: PostgreSQL text
    cannot hold NUL, and a ten-thousand-year deadline is no deadline."""
    client = live.client()
    stored = client.post(
        "/function_calls",
        json=_call("nul-kwargs", run_id="ctl", kwargs={"note": "a\u0000b<script>"}),
    )
    assert stored.status_code == 200, stored.text
    assert client.get("/function_calls/nul-kwargs").json()["spec"]["kwargs"] == {
        "note": "a\u0000b<script>"
    }
    for body in [
        {"run_id": "r\u0000", "call_id": "nul-run", "spec": {"fn": "f"}},
        {"run_id": "r", "call_id": "nul\u0000id", "spec": {"fn": "f"}},
        {"run_id": "r", "call_id": "huge-timeout", "spec": {"fn": "f", "timeout_seconds": 1e300}},
    ]:
        response = client.post("/function_calls", json=body)
        assert response.status_code == 422 and response.json()["code"] == "invalid_request", (
            response.text
        )
    # A NUL in responded_by cannot reach the database: the body's responded_by is ignored and
    # the record names the approver token's person.
    bad_who = live.approver_client().post(
        "/agent/function_calls/nul-kwargs/respond",
        json={"approved": True, "responded_by": "x\u0000"},
    )
    assert bad_who.status_code == 200, bad_who.text
    stored_status = client.get("/function_calls/nul-kwargs").json()["status"]
    assert stored_status["approved"] is True and stored_status["responded_by"] == "approver"
