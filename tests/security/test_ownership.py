"""Ownership by token id, and projects that do not leak into each other, on SQLite and
PostgreSQL.

A request belongs to the agent token that created it, by the token's immutable id: a token
that only shares its name (re-issued after a revocation, or a duplicate from before names were
unique) cannot give it up, claim its execution or report the outcome.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from functionlayer.models import Execution, FunctionCall, FunctionCallSpec
from functionlayer_server import ApprovalService
from functionlayer_server._auth import hash_token
from functionlayer_server._cli import _accounts_call, create_token
from functionlayer_server._errors import ConflictError, ForbiddenError
from functionlayer_server._settings import Settings
from functionlayer_server._store import is_postgres_url, open_store, prepare_database

from tests._support.servers import fresh_postgres_database
from tests.security.conftest import Deployment


def new_id() -> str:
    return f"own-{uuid.uuid4().hex[:12]}"


def _create(dep: Deployment, token: str, call_id: str) -> None:
    with dep.agent(token=token) as agent:
        made = agent.post(
            "/function_calls",
            json={
                "run_id": "own",
                "call_id": call_id,
                "spec": {"fn": "wire_money", "kwargs": {"amount": 5}},
            },
        )
    assert made.status_code == 200, made.text


def _approve(dep: Deployment, call_id: str) -> None:
    with dep.person("alice") as alice:
        answer = alice.post(f"/agent/function_calls/{call_id}/respond", json={"approved": True})
    assert answer.status_code == 200, answer.text


def _status(dep: Deployment, call_id: str) -> dict[str, Any]:
    with dep.agent() as agent:
        answer = agent.get(f"/function_calls/{call_id}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["status"] or {})


# -- finding 4: ownership by token id, names unique among live tokens ----------------------------


def test_tokens_create_refuses_a_live_name_twice(deployment: Deployment) -> None:
    settings = deployment.server.settings
    name = f"dup-{uuid.uuid4().hex[:6]}"
    asyncio.run(create_token(settings, name))
    with pytest.raises(ConflictError, match="already exists in project 'default'"):
        asyncio.run(create_token(settings, name))
    # Another project has its own names; after a revocation the name is free again.
    asyncio.run(create_token(settings, name, "elsewhere"))
    assert asyncio.run(_accounts_call(settings, "revoke_token", name)) == 2
    asyncio.run(create_token(settings, name))


def test_a_reissued_token_name_cannot_give_up_claim_or_report(deployment: Deployment) -> None:
    settings = deployment.server.settings
    name = f"reissued-{uuid.uuid4().hex[:6]}"
    first = asyncio.run(create_token(settings, name))
    pending, approved, claimed = new_id(), new_id(), new_id()
    for call_id in (pending, approved, claimed):
        _create(deployment, first, call_id)
    _approve(deployment, approved)
    _approve(deployment, claimed)
    claim = {"claim_id": "claim-of-the-first-token"}
    with deployment.agent(token=first) as agent:
        granted = agent.post(f"/function_calls/{claimed}/execution", json=claim)
    assert granted.status_code == 200 and granted.json()["granted"] is True, granted.text

    # The operator revokes the token and issues a new one under the same name.
    assert asyncio.run(_accounts_call(settings, "revoke_token", name)) == 1
    second = asyncio.run(create_token(settings, name))
    with deployment.agent(token=second) as agent:
        gave_up = agent.post(
            f"/agent/function_calls/{pending}/respond", json={"expired": True, "comment": "x"}
        )
        stolen = agent.post(f"/function_calls/{approved}/execution", json={"claim_id": "c2"})
        same_claim = agent.post(f"/function_calls/{claimed}/execution", json=claim)
        reported = agent.post(
            f"/function_calls/{claimed}/execution/outcome",
            json={**claim, "outcome": "returned", "summary": "forged"},
        )
    for answer in (gave_up, stolen, same_claim, reported):
        assert answer.status_code == 403, answer.text
        assert "only the agent token that created this request" in answer.json()["detail"]
    assert _status(deployment, pending).get("approved") is None  # still pending
    assert _status(deployment, approved)["execution"] is None  # nobody may run it
    assert _status(deployment, claimed)["execution"]["outcome"] is None  # no forged outcome


# -- finding 4, existing databases: duplicate names and requests recorded by name only ----------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fl.sqlite3'}"
    else:
        with fresh_postgres_database() as url:
            yield url


def _execute(url: str, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
    if is_postgres_url(url):
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            for sql, params in statements:
                conn.execute(sql.replace("?", "%s"), params)  # type: ignore[arg-type]
    else:
        lite = sqlite3.connect(url[len("sqlite:///") :], isolation_level=None)
        try:
            for sql, params in statements:
                lite.execute(sql, params)
        finally:
            lite.close()


def test_an_existing_database_gets_unique_names_and_fails_closed_on_name_only_requests(
    database_url: str,
) -> None:
    prepare_database(database_url)
    # As a database written before token ids: two live tokens share a name (no unique index
    # then), and a pending request records its creator by name only.
    old_a, old_b = "fl_old-token-a", "fl_old-token-b"
    _execute(
        database_url,
        [
            ("DROP INDEX IF EXISTS fl_tokens_live_name", ()),
            (
                "INSERT INTO fl_tokens (token_hash, project, name, created_at, role) "
                "VALUES (?, 'default', 'legacy', 1.0, 'agent'), (?, 'default', 'legacy', 2.0, "
                "'agent')",
                (hash_token(old_a), hash_token(old_b)),
            ),
            (
                "INSERT INTO fl_requests (kind, call_id, project, run_id, spec, status, "
                "completed, expires_at, created_at, version, created_by) VALUES ('function_call', "
                "'legacy-call', 'default', 'r', ?, '{}', 0, NULL, 3.0, 0, 'legacy')",
                ('{"fn": "wire_money", "kwargs": {}}',),
            ),
        ],
    )
    prepare_database(database_url)  # the server starting on the old database

    async def check() -> None:
        service = ApprovalService(open_store(database_url), Settings(database_url=database_url))
        await service.start(scheduler=False)
        try:
            a = await service.authenticate_token(old_a)
            b = await service.authenticate_token(old_b)
            assert a is not None and b is not None
            assert a.token_id and b.token_id and a.token_id != b.token_id
            # The oldest keeps the name; the other keeps working under a distinct one.
            assert a.token_name == "legacy" and b.token_name == f"legacy#{b.token_id}"
            with pytest.raises(ConflictError):
                await service.create_token("legacy")
            for client in (a, b):
                with pytest.raises(ForbiddenError, match="before the server recorded token ids"):
                    await service.give_up("function_call", "legacy-call", client, "stop")
                with pytest.raises(ForbiddenError, match="before the server recorded token ids"):
                    await service.claim_execution(
                        "legacy-call",
                        Execution(claim_id="c"),
                        project="default",
                        actor="agent:legacy",
                        creator=client.token_id,
                    )
            # A request created now is owned by its token's id.
            await service.create_record(
                "function_call",
                FunctionCall(run_id="r", call_id="new-call", spec=FunctionCallSpec(fn="f")),
                created_by=b.token_name,
                created_by_token=b.token_id,
            )
            with pytest.raises(ForbiddenError, match="only the agent token that created"):
                await service.give_up("function_call", "new-call", a, "stop")
            assert await service.give_up("function_call", "new-call", b, "stop")
        finally:
            await service.stop()

    asyncio.run(check())


# -- finding 7: call ids are unique per project, nothing leaks across ----------------------------


def _other_project_agent(dep: Deployment) -> str:
    return asyncio.run(create_token(dep.server.settings, f"b-{uuid.uuid4().hex[:6]}", "project-b"))


def test_two_projects_use_the_same_call_id_independently(deployment: Deployment) -> None:
    other = _other_project_agent(deployment)
    call_id = new_id()
    # Project B takes the id first (a squat, or a coincidence): nothing of it reaches A.
    with deployment.agent(token=other) as b:
        squat = b.post(
            "/function_calls",
            json={"run_id": "b", "call_id": call_id, "spec": {"fn": "other_fn", "kwargs": {}}},
        )
    assert squat.status_code == 200, squat.text
    with deployment.agent() as a:
        mine = a.post(
            "/function_calls",
            json={
                "run_id": "a",
                "call_id": call_id,
                "spec": {"fn": "wire_money", "kwargs": {"amount": 5}},
            },
        )
        assert mine.status_code == 200, mine.text  # not 409: B's id is not A's business
        assert mine.json()["spec"]["fn"] == "wire_money"
    _approve(deployment, call_id)  # alice, in A's project: she decides A's request
    with deployment.agent(token=other) as b:
        theirs = b.get(f"/function_calls/{call_id}")
        audit = b.get(f"/function_calls/{call_id}/audit").json()["items"]
    assert theirs.json()["spec"]["fn"] == "other_fn"
    assert (theirs.json()["status"] or {}).get("approved") is None  # A's approval is A's
    assert [e["action"] for e in audit] == ["created"]  # nothing of A's request
    with deployment.agent(token=other) as b:
        export = b.get("/audit.jsonl", params={"call_id": call_id})
    assert export.status_code == 200, export.text
    lines = [json.loads(line) for line in export.text.splitlines()]
    assert [(e["project"], e["action"]) for e in lines] == [("project-b", "created")]
    with deployment.agent() as a:
        answer = a.get(f"/function_calls/{call_id}").json()
        audit = a.get(f"/function_calls/{call_id}/audit").json()["items"]
        claim = a.post(f"/function_calls/{call_id}/execution", json={"claim_id": "a1"})
    assert answer["status"]["approved"] is True and answer["spec"]["fn"] == "wire_money"
    assert [e["action"] for e in audit] == ["created", "approved"]
    assert audit[0]["who"].startswith("agent:test-agent")
    assert claim.status_code == 200 and claim.json()["granted"] is True, claim.text


def test_another_projects_call_id_is_not_revealed(deployment: Deployment) -> None:
    other = _other_project_agent(deployment)
    call_id = new_id()
    _create(deployment, deployment.agent_token, call_id)
    with deployment.agent(token=other) as b:
        assert b.get(f"/function_calls/{call_id}").status_code == 404
        # Probing with a different request under that id: a new request of B's, no 409.
        probe = b.post(
            "/function_calls",
            json={"run_id": "b", "call_id": call_id, "spec": {"fn": "probe", "kwargs": {}}},
        )
    assert probe.status_code == 200, probe.text
    assert _status(deployment, call_id).get("approved") is None


def test_a_cross_project_poll_does_not_mark_presence(deployment: Deployment) -> None:
    other = _other_project_agent(deployment)
    call_id = new_id()
    _create(deployment, deployment.agent_token, call_id)
    with deployment.agent(token=other) as b:
        for _ in range(3):
            assert b.get(f"/function_calls/{call_id}", params={"wait": 0}).status_code == 404
    browser = deployment.login("alice")
    page = browser.get(f"/inbox/calls/{call_id}")
    assert page.status_code == 200, page.text
    assert "has not checked for an answer yet" in page.text
    assert "waiting for your answer now" not in page.text
    # Its own agent's poll is what counts.
    with deployment.agent() as a:
        assert a.get(f"/function_calls/{call_id}", params={"wait": 0}).status_code == 200
    assert "waiting for your answer now" in browser.get(f"/inbox/calls/{call_id}").text


def test_an_existing_database_is_rekeyed_per_project(database_url: str) -> None:
    """A database from when call ids were global (primary key (kind, call_id)) keeps its rows
    and takes the same call id in another project afterwards."""
    if is_postgres_url(database_url):
        prepare_database(database_url)
        _execute(
            database_url,
            [
                (
                    "ALTER TABLE fl_requests DROP CONSTRAINT fl_requests_pkey, "
                    "ADD CONSTRAINT fl_requests_pkey PRIMARY KEY (kind, call_id)",
                    (),
                ),
                ("ALTER TABLE fl_audit DROP COLUMN project", ()),
            ],
        )
    else:
        _execute(
            database_url,
            [
                (
                    "CREATE TABLE fl_requests (kind TEXT NOT NULL, call_id TEXT NOT NULL, "
                    "project TEXT NOT NULL, run_id TEXT NOT NULL, spec TEXT NOT NULL, "
                    "status TEXT NOT NULL, completed INTEGER NOT NULL, expires_at REAL, "
                    "created_at REAL NOT NULL, version INTEGER NOT NULL, "
                    "created_by TEXT NOT NULL DEFAULT '', PRIMARY KEY (kind, call_id))",
                    (),
                ),
                (
                    "CREATE TABLE fl_audit (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT "
                    "NOT NULL, call_id TEXT NOT NULL, at REAL NOT NULL, actor TEXT NOT NULL, "
                    "via TEXT NOT NULL, action TEXT NOT NULL, details TEXT NOT NULL)",
                    (),
                ),
            ],
        )
    _execute(
        database_url,
        [
            (
                "INSERT INTO fl_requests (kind, call_id, project, run_id, spec, status, "
                "completed, expires_at, created_at, version) VALUES ('function_call', 'old', "
                "'default', 'r', ?, '{}', 0, NULL, 1.0, 0)",
                ('{"fn": "f", "kwargs": {}}',),
            ),
            (
                "INSERT INTO fl_audit (kind, call_id, at, actor, via, action, details) VALUES "
                "('function_call', 'old', 1.0, 'agent:a', 'api', 'created', '{}')",
                (),
            ),
        ],
    )
    prepare_database(database_url)

    async def check() -> None:
        service = ApprovalService(open_store(database_url), Settings(database_url=database_url))
        await service.start(scheduler=False)
        try:
            old = await service.get_function_call("old", project="default")
            assert old.spec.fn == "f"
            trail = await service.audit_trail("old", project="default")
            assert [e.action for e in trail] == ["created"]  # attributed on upgrade
            _, created = await service.create_function_call(
                FunctionCall(run_id="r", call_id="old", spec=FunctionCallSpec(fn="g")),
                project="elsewhere",
            )
            assert created
            assert (await service.get_function_call("old", project="elsewhere")).spec.fn == "g"
            assert await service.audit_trail("old", project="elsewhere") != trail
        finally:
            await service.stop()

    asyncio.run(check())


def test_a_channel_without_a_project_decides_only_where_the_person_belongs(
    database_url: str,
) -> None:
    """Channels (Slack, email, Discord, the inbox) name a request by call id: with the same id
    in two projects, a person decides the one of their project; a person of both decides
    nothing (fail closed, no guess)."""
    prepare_database(database_url)

    async def check() -> None:
        from functionlayer.models import FunctionCallStatus
        from functionlayer_server._service import AmbiguousCallIdError

        service = ApprovalService(open_store(database_url), Settings(database_url=database_url))
        await service.start(scheduler=False)
        try:
            await service.accounts.create_person("alice", projects=["default"])
            await service.accounts.create_person("bea", projects=["project-b"])
            await service.accounts.create_person("both", projects=["default", "project-b"])
            for project in ("default", "project-b"):
                await service.create_function_call(
                    FunctionCall(run_id="r", call_id="same", spec=FunctionCallSpec(fn="f")),
                    project=project,
                )
            with pytest.raises(AmbiguousCallIdError):
                await service.get_function_call("same")
            with pytest.raises(AmbiguousCallIdError):
                await service.respond_function_call(
                    "same", FunctionCallStatus(approved=True), responder="user:both", via="web"
                )
            await service.respond_function_call(
                "same", FunctionCallStatus(approved=True), responder="user:alice", via="web"
            )
            await service.respond_function_call(
                "same",
                FunctionCallStatus(approved=False, comment="no"),
                responder="user:bea",
                via="web",
            )
            mine = await service.get_function_call("same", project="default")
            theirs = await service.get_function_call("same", project="project-b")
            assert mine.status is not None and mine.status.approved is True
            assert theirs.status is not None and theirs.status.approved is False
        finally:
            await service.stop()

    asyncio.run(check())
