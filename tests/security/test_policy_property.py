"""Property: whatever sequence of decisions arrives from whatever credentials and identities, a
request is approved only when its policy is met by distinct authorised persons, and a rejection
counts only from an authorised person. Run against the real service and store (SQLite)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from functionlayer.models import ApprovalPolicy, FunctionCall, FunctionCallSpec, FunctionCallStatus
from functionlayer_server import ApprovalService, Settings
from functionlayer_server._errors import ServerError
from functionlayer_server._store import open_store, prepare_database
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# identity -> the person it resolves to (None: nobody)
IDENTITIES = {
    "user:alice": "alice",
    "email:ALICE@corp.example": "alice",
    "slack:UALICE": "alice",
    "user:bob": "bob",
    "email:bob@corp.example": "bob",
    "slack:UBOB": "bob",
    "user:erin": "erin",
    "user:carol": "carol",  # another project
    "user:dave": "dave",  # disabled
    "email:agent@attacker.example": None,
    "slack:U-AGENT": None,
    "user:token:test-agent": None,
}
MEMBERS = {"alice", "bob", "erin"}  # active members of project "default"


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[asyncio.Runner, ApprovalService]]:
    path: Path = tmp_path_factory.mktemp("prop") / "fl.sqlite3"
    url = f"sqlite:///{path}"
    prepare_database(url)
    runner = asyncio.Runner()
    svc = ApprovalService(open_store(url), Settings(database_url=url))

    async def setup() -> None:
        await svc.start(scheduler=False)
        acc = svc.accounts
        await acc.create_person("alice", emails=["alice@corp.example"], slack_ids=["UALICE"])
        await acc.create_person("bob", emails=["bob@corp.example"], slack_ids=["UBOB"])
        await acc.create_person("erin")
        await acc.create_person("carol", projects=["other"])
        await acc.create_person("dave")
        await acc.disable("dave")

    runner.run(setup())
    yield runner, svc
    runner.run(svc.stop())
    runner.close()


decision = st.tuples(
    st.sampled_from(sorted(IDENTITIES)),
    st.sampled_from(["approve", "reject"]),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    required=st.integers(min_value=1, max_value=3),
    responders=st.none() | st.sets(st.sampled_from(["alice", "bob", "erin"]), min_size=1),
    steps=st.lists(decision, min_size=1, max_size=8),
)
def test_approved_only_by_enough_distinct_authorised_persons(
    service: tuple[asyncio.Runner, ApprovalService],
    required: int,
    responders: set[str] | None,
    steps: list[tuple[str, str]],
) -> None:
    runner, svc = service
    call_id = f"p-{uuid.uuid4().hex}"
    policy = ApprovalPolicy(
        approvals_required=required, responders=sorted(responders) if responders else None
    )
    call = FunctionCall(
        run_id="prop", call_id=call_id, spec=FunctionCallSpec(fn="f", kwargs={}, policy=policy)
    )
    runner.run(svc.create_function_call(call, created_by="test-agent"))

    allowed = MEMBERS & (responders or MEMBERS)
    expected_approvals: list[str] = []
    expected: bool | None = None
    for identity, verdict in steps:
        person = IDENTITIES[identity]
        status = FunctionCallStatus(approved=verdict == "approve", comment="because")
        try:
            runner.run(svc.respond_function_call(call_id, status, responder=identity, via="api"))
            accepted = True
        except ServerError:
            accepted = False
        authorised = person in allowed and expected is None
        fresh = person not in expected_approvals
        assert accepted == (authorised and (verdict == "reject" or required == 1 or fresh)), (
            identity,
            verdict,
        )
        if accepted:
            assert person is not None
            if verdict == "reject":
                expected = False
            elif required == 1:
                expected = True
            else:
                expected_approvals.append(person)
                if len(expected_approvals) >= required:
                    expected = True
    final = runner.run(svc.get_function_call(call_id))
    assert final.status is not None
    assert final.status.approved is expected
    if expected is True:
        approvers = final.status.approvals or [final.status.responded_by]
        assert len(set(approvers)) >= required
        assert set(approvers) <= allowed
