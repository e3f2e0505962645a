"""The function's schema travels with the request: edited arguments are validated against it
(and merged into the proposal) before anything is recorded, and a function's restriction of
the decisions it accepts is enforced by the server. Real server (subprocess), approver token."""

from __future__ import annotations

import time
from typing import Annotated, Any

import httpx
import pytest
from functionlayer import FunctionLayer, tool_spec
from pydantic import Field

from packages.server.tests._live import layer_fixture, live_fixture
from tests._support.servers import ServerProcess, in_thread

live = live_fixture()


fl = layer_fixture("schema-test")


def pending(person: httpx.Client, fn: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = person.get("/function_calls", params={"pending": "true"}).json()["items"]
        found = [i for i in items if i["spec"]["fn"] == fn]
        if found:
            return dict(found[0])
        time.sleep(0.02)
    raise AssertionError(f"no pending call of {fn}")


def decide(person: httpx.Client, call_id: str, **decision: Any) -> httpx.Response:
    return person.post(f"/agent/function_calls/{call_id}/respond", json=decision)


def test_partial_edit_merges_and_the_agent_runs_the_merged_arguments(
    live: ServerProcess, fl: FunctionLayer
) -> None:
    ran: list[tuple[str, int, str]] = []

    @fl.require_approval()
    def wire(to: str, amount: int, memo: str = "") -> str:
        """Wire money to an account."""
        ran.append((to, amount, memo))
        return f"wired {amount} to {to}"

    person = live.approver_client()
    join = in_thread(lambda: wire("acct-9", 5000, memo="rent"))
    call = pending(person, "wire")
    spec = call["spec"]
    # The schema travels with the request, in signature order, with the docstring.
    assert list(spec["parameters"]["properties"]) == ["to", "amount", "memo"]
    assert spec["parameters"]["properties"]["amount"]["type"] == "integer"
    assert spec["description"] == "Wire money to an account."
    assert list(spec["kwargs"]) == ["to", "amount", "memo"]  # stored in signature order

    answer = decide(person, call["call_id"], approved=True, edited_kwargs={"amount": 50})
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"]["edited_kwargs"] == {
        "to": "acct-9",
        "amount": 50,
        "memo": "rent",
    }
    assert "wired 50 to acct-9" in join()
    assert ran == [("acct-9", 50, "rent")]


@pytest.mark.parametrize(
    ("edit", "field", "why"),
    [
        ({"amount": "fifty"}, "amount", "is not of type 'integer'"),
        ({"amont": 5}, "amont", "is not an argument of this function"),
        ({"amount": -3}, "amount", "minimum"),
        ({"to": None}, "to", "is not of type 'string'"),
    ],
)
def test_invalid_edits_are_refused_naming_the_field_and_nothing_is_recorded(
    live: ServerProcess, edit: dict[str, Any], field: str, why: str
) -> None:
    def pay(to: str, amount: Annotated[int, Field(ge=1)]) -> None: ...

    agent = live.client()
    person = live.approver_client()
    call_id = f"bad-edit-{field}-{why[:6].strip()}".replace(" ", "-").replace("'", "")
    created = agent.post(
        "/function_calls",
        json={
            "run_id": "schema",
            "call_id": call_id,
            "spec": {
                "fn": "pay",
                "kwargs": {"to": "bob", "amount": 10},
                "parameters": tool_spec(pay).parameters,
            },
        },
    )
    assert created.status_code == 200, created.text
    answer = decide(person, call_id, approved=True, edited_kwargs=edit)
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["code"] == "invalid_decision"
    assert repr(field) in body["detail"] and why in body["detail"]
    stored = agent.get(f"/function_calls/{call_id}").json()
    assert stored["status"]["approved"] is None and stored["status"]["edited_kwargs"] is None
    # Still decidable: a valid edit goes through afterwards.
    fine = decide(person, call_id, approved=True, edited_kwargs={"amount": 7})
    assert fine.status_code == 200
    assert fine.json()["status"]["edited_kwargs"] == {"to": "bob", "amount": 7}


def test_a_missing_required_argument_is_refused(live: ServerProcess) -> None:
    def pay(to: str, amount: int) -> None: ...

    agent, person = live.client(), live.approver_client()
    spec = {"fn": "pay", "kwargs": {"amount": 10}, "parameters": tool_spec(pay).parameters}
    assert (
        agent.post(
            "/function_calls", json={"run_id": "schema", "call_id": "missing-to", "spec": spec}
        ).status_code
        == 200
    )
    answer = decide(person, "missing-to", approved=True, edited_kwargs={"amount": 11})
    assert answer.status_code == 422
    assert "'to' is required" in answer.json()["detail"]


def test_a_function_restricting_decisions_gets_only_those(
    live: ServerProcess, fl: FunctionLayer
) -> None:
    ran: list[int] = []

    @fl.require_approval(decisions=["approve", "reject"])
    def delete_rows(count: int) -> str:
        ran.append(count)
        return f"deleted {count}"

    person = live.approver_client()
    join = in_thread(lambda: delete_rows(3))
    call = pending(person, "delete_rows")
    assert call["spec"]["allowed_decisions"] == ["approve", "reject"]
    for decision in (
        {"approved": True, "edited_kwargs": {"count": 1}},
        {"response": "do it tomorrow"},
    ):
        refused = decide(person, call["call_id"], **decision)
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == "invalid_decision"
        assert "not allowed" in refused.json()["detail"]
    assert person.get(f"/function_calls/{call['call_id']}").json()["status"]["approved"] is None
    # An "edit" that changes nothing is a plain approval, which is allowed.
    ok = decide(person, call["call_id"], approved=True, edited_kwargs={"count": 3})
    assert ok.status_code == 200 and ok.json()["status"]["edited_kwargs"] is None
    assert join() == "deleted 3" and ran == [3]


def test_a_parameters_object_that_is_not_a_schema_is_refused_at_creation(
    live: ServerProcess,
) -> None:
    agent = live.client()
    for parameters in ({"type": 5}, {"type": "string"}):
        answer = agent.post(
            "/function_calls",
            json={
                "run_id": "schema",
                "call_id": f"bad-schema-{parameters['type']}",
                "spec": {"fn": "f", "kwargs": {}, "parameters": parameters},
            },
        )
        assert answer.status_code == 422, answer.text


def test_a_request_without_schema_still_merges_partial_edits(live: ServerProcess) -> None:
    agent, person = live.client(), live.approver_client()
    spec = {"fn": "legacy", "kwargs": {"a": 1, "b": 2}}
    agent.post("/function_calls", json={"run_id": "schema", "call_id": "legacy-1", "spec": spec})
    answer = decide(person, "legacy-1", approved=True, edited_kwargs={"b": "anything"})
    assert answer.status_code == 200
    assert answer.json()["status"]["edited_kwargs"] == {"a": 1, "b": "anything"}
