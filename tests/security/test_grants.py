"""Grants against a hostile agent, on a real server (subprocess) on SQLite and PostgreSQL.

A person may grant future calls (one function, an argument scope, one agent token or the whole
project, a lifetime, a number of uses). The agent holds its own token and can send anything:
it can never make, widen, extend, list or revoke a grant, and a grant approves nothing outside
what it covers *now* (scope, uses, lifetime, revocation, its person still allowed, the
operator's policy still allowing grants, the project, the agent token). Nothing runs otherwise.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from functionlayer import FunctionLayer, call_id_scope
from functionlayer_server._cli import _accounts_call, create_token, create_user

from tests._support.inbox import csrf_of, log_in
from tests._support.servers import ENV_PREFIX, ServerProcess, fresh_postgres_database

PREFIXES = ["/functionlayer/v1", "/humanlayer/v1"]

POLICY = """
admins = ["root"]

[projects.default.functions.wire_money]
approvals_required = 2

[projects.default.functions.delete_db]
grants = false

[projects.default.functions.pay_invoice]
approvals_required = 2
grants = true
"""


@dataclass
class Grants:
    server: ServerProcess
    agent_token: str
    other_agent_token: str
    other_project_token: str

    def client(self, token: str, prefix: str = "/functionlayer/v1") -> httpx.Client:
        return httpx.Client(
            base_url=self.server.base_url + prefix,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )

    def person(self, projects: tuple[str, ...] = ("default",)) -> tuple[str, str]:
        """A fresh person of the directory and a token that decides as them."""
        name = f"p{uuid.uuid4().hex[:8]}"
        settings = self.server.settings
        asyncio.run(create_user(settings, name, None, projects=list(projects)))
        token = asyncio.run(create_token(settings, f"{name}-api", projects[0], approver=name))
        return name, token

    def create(
        self, call_id: str, fn: str, kwargs: dict[str, Any], token: str | None = None
    ) -> dict[str, Any]:
        with self.client(token or self.agent_token) as agent:
            answer = agent.post(
                "/function_calls",
                json={"run_id": "r", "call_id": call_id, "spec": {"fn": fn, "kwargs": kwargs}},
            )
        assert answer.status_code == 200, answer.text
        return dict(answer.json()["status"] or {})

    def approve(self, token: str, call_id: str) -> None:
        with self.client(token) as person:
            answer = person.post(
                f"/agent/function_calls/{call_id}/respond", json={"approved": True}
            )
        assert answer.status_code == 200, answer.text

    def grant(self, token: str, call_id: str, **body: Any) -> httpx.Response:
        with self.client(token) as person:
            return person.post(f"/function_calls/{call_id}/grants", json=body)

    def granted(
        self,
        fn: str | None = None,
        kwargs: dict[str, Any] | None = None,
        agent: str | None = None,
        projects: tuple[str, ...] = ("default",),
        **body: Any,
    ) -> tuple[str, str, dict[str, Any]]:
        """A person approves a first call and grants calls like it: (name, token, grant).
        Each test grants its own function (``grant["fn"]``), so grants never mix."""
        fn = fn or f"refund_{uuid.uuid4().hex[:8]}"
        name, token = self.person(projects)
        call_id = new_id()
        self.create(call_id, fn, kwargs or {"amount": 50, "to": "acme"}, token=agent)
        self.approve(token, call_id)
        body = {
            "scope": ["amount <= 100", 'to == "acme"'],
            "agents": "token",
            "lifetime_seconds": 3600,
            "max_uses": 3,
            **body,
        }
        answer = self.grant(token, call_id, **body)
        assert answer.status_code == 200, answer.text
        return name, token, answer.json()

    def listed(self, token: str) -> dict[str, dict[str, Any]]:
        with self.client(token) as person:
            answer = person.get("/grants")
        assert answer.status_code == 200, answer.text
        return {g["id"]: g for g in answer.json()["items"]}


def new_id() -> str:
    return f"g-{uuid.uuid4().hex[:12]}"


def pending(status: dict[str, Any]) -> bool:
    return status.get("approved") is None and status.get("responded_by") is None


def _deploy(url: str, directory: Path) -> Iterator[Grants]:
    policy = directory / "policy.toml"
    policy.write_text(POLICY)
    server = ServerProcess(
        url, directory / "server.log", env={ENV_PREFIX + "POLICY_FILE": str(policy)}
    )
    settings = server.settings

    async def setup() -> tuple[str, str]:
        await create_user(settings, "root", None)
        other = await create_token(settings, "other-agent")
        elsewhere = await create_token(settings, "elsewhere-agent", "other")
        return other, elsewhere

    other, elsewhere = asyncio.run(setup())
    server.start()
    try:
        yield Grants(server, server.token, other, elsewhere)
    finally:
        server.kill()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def dep(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Grants]:
    directory = tmp_path_factory.mktemp("grants")
    if request.param == "sqlite":
        yield from _deploy(f"sqlite:///{directory / 'fl.sqlite3'}", directory)
    else:
        with fresh_postgres_database() as url:
            yield from _deploy(url, directory)


def test_a_grant_approves_a_covered_call_at_once_and_the_agent_learns_only_its_id(
    dep: Grants,
) -> None:
    name, _, grant = dep.granted()
    call_id = new_id()
    status = dep.create(call_id, grant["fn"], {"amount": 80, "to": "acme"})
    assert status["approved"] is True
    assert status["responded_by"] == name and status["responded_via"] == "grant"
    assert status["comment"] == f"approved under grant {grant['id']}"
    with dep.client(dep.agent_token) as agent:
        trail = agent.get(f"/function_calls/{call_id}/audit").json()["items"]
    approved = [e for e in trail if e["action"] == "approved"]
    assert approved == [
        {**approved[0], "who": name, "via": "grant", "details": {"grant": grant["id"]}}
    ]


@pytest.mark.parametrize("prefix", PREFIXES)
def test_the_agent_cannot_create_widen_extend_list_or_revoke_grants(
    dep: Grants, prefix: str
) -> None:
    _, token, grant = dep.granted()
    fn = grant["fn"]
    before = dep.listed(token)[grant["id"]]
    call_id = new_id()
    dep.create(call_id, fn, {"amount": 5000, "to": "mallory"})
    wide = {
        "scope": ["amount any", "to any"],
        "agents": "project",
        "lifetime_seconds": 7_000_000,
        "max_uses": 10_000,
    }
    with dep.client(dep.agent_token, prefix) as agent:
        attempts = [
            agent.post(f"/function_calls/{call_id}/grants", json=wide),
            agent.post(f"/function_calls/{grant['source_call_id']}/grants", json=wide),
            agent.get("/grants"),
            agent.get("/grants", params={"all": "true"}),
            agent.post(f"/grants/{grant['id']}/revoke"),
        ]
        for answer in attempts:
            assert answer.status_code == 403, answer.text
            assert "agent tokens cannot make, list or revoke grants" in answer.json()["detail"]
        # No other verb edits a grant (widen, extend, add uses).
        for method in ("PUT", "PATCH", "POST"):
            answer = agent.request(method, f"/grants/{grant['id']}", json=wide)
            assert answer.status_code in (404, 405), answer.text
    # Nothing the agent puts in a call makes it a grant's (or marks it approved).
    smuggled = dep.create(new_id(), fn, {"amount": 5000, "to": "mallory"})
    assert pending(smuggled)
    with dep.client(dep.agent_token) as agent:
        answer = agent.post(
            "/function_calls",
            json={
                "run_id": "r",
                "call_id": new_id(),
                "spec": {"fn": fn, "kwargs": {"amount": 5000, "to": "mallory"}},
                "status": {"approved": True, "responded_via": "grant", "responded_by": "root"},
                "grant": grant["id"],
            },
        )
    assert answer.status_code == 200 and pending(answer.json()["status"])
    assert pending(dep.create(call_id, fn, {"amount": 5000, "to": "mallory"}))
    assert dep.listed(token)[grant["id"]] == before


@pytest.mark.parametrize(
    "kwargs",
    [
        {"amount": 101, "to": "acme"},  # over the bound
        {"amount": "50", "to": "acme"},  # a string is not a number
        {"amount": True, "to": "acme"},  # nor a boolean
        {"amount": 50, "to": "acme2"},  # not the exact value
        {"amount": 50},  # a missing argument never matches
        {"amount": 50, "to": "acme", "memo": "and also"},  # an argument outside the scope
        {"amount": [50], "to": "acme"},  # a list is not a number
    ],
)
def test_a_call_outside_the_scope_is_not_approved(dep: Grants, kwargs: dict[str, Any]) -> None:
    _, _, grant = dep.granted()
    assert pending(dep.create(new_id(), grant["fn"], kwargs))
    assert dep.create(new_id(), grant["fn"], {"amount": 50, "to": "acme"})["approved"] is True


def test_a_grant_approves_no_more_than_its_uses_even_concurrently(dep: Grants) -> None:
    _, token, grant = dep.granted(max_uses=4)

    def one(_: int) -> dict[str, Any]:
        return dep.create(new_id(), grant["fn"], {"amount": 10, "to": "acme"})

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(one, range(12)))
    assert sum(1 for s in statuses if s.get("approved") is True) == 4
    assert sum(1 for s in statuses if pending(s)) == 8
    listed = dep.listed(token)[grant["id"]]
    assert listed["uses"] == 4 and listed["state"] == "used up"


def test_a_grant_past_its_lifetime_approves_nothing(dep: Grants) -> None:
    _, _, grant = dep.granted(lifetime_seconds=1)
    time.sleep(1.3)
    assert pending(dep.create(new_id(), grant["fn"], {"amount": 10, "to": "acme"}))


def test_a_revoked_grant_approves_nothing_at_once(dep: Grants) -> None:
    _, token, grant = dep.granted()
    assert dep.create(new_id(), grant["fn"], {"amount": 10, "to": "acme"})["approved"] is True
    with dep.client(token) as person:
        answer = person.post(f"/grants/{grant['id']}/revoke")
    assert answer.status_code == 200 and answer.json()["state"] == "revoked"
    assert pending(dep.create(new_id(), grant["fn"], {"amount": 10, "to": "acme"}))


def test_a_disabled_persons_grant_approves_nothing(dep: Grants) -> None:
    name, _, grant = dep.granted()
    assert dep.create(new_id(), grant["fn"], {"amount": 10, "to": "acme"})["approved"] is True
    asyncio.run(_accounts_call(dep.server.settings, "disable", name, True))
    assert pending(dep.create(new_id(), grant["fn"], {"amount": 10, "to": "acme"}))


def test_a_grant_of_a_person_who_left_the_project_approves_nothing(dep: Grants) -> None:
    name, _, grant = dep.granted()

    async def leave() -> None:
        from functionlayer_server._cli import _with_service

        service = await _with_service(dep.server.settings)
        try:
            await service.store._transaction(
                [("DELETE FROM fl_memberships WHERE username = ?", (name,))], guard_first=True
            )
        finally:
            await service.stop()

    asyncio.run(leave())
    assert pending(dep.create(new_id(), grant["fn"], {"amount": 10, "to": "acme"}))


@pytest.mark.parametrize("fn", ["delete_db", "wire_money"])
def test_no_grant_where_the_policy_forbids_it(dep: Grants, fn: str) -> None:
    _, token = dep.person()
    call_id = new_id()
    dep.create(call_id, fn, {"amount": 50})
    answer = dep.grant(token, call_id, scope=["amount <= 100"], lifetime_seconds=60, max_uses=5)
    assert answer.status_code == 403, answer.text
    assert "allows no grants" in answer.json()["detail"]
    assert dep.listed(token) == {}
    assert pending(dep.create(new_id(), fn, {"amount": 50}))


def test_a_function_needing_two_approvals_takes_grants_only_when_the_operator_says_so(
    dep: Grants,
) -> None:
    _, token = dep.person()
    call_id = new_id()
    dep.create(call_id, "pay_invoice", {"amount": 50})
    answer = dep.grant(token, call_id, scope=["amount <= 100"], lifetime_seconds=60, max_uses=5)
    assert answer.status_code == 200, answer.text
    assert dep.create(new_id(), "pay_invoice", {"amount": 20})["approved"] is True


def test_a_grant_serves_neither_another_project_nor_another_token(dep: Grants) -> None:
    # The person decides in both projects: only the grant's own project bounds it.
    _, _, grant = dep.granted(projects=("default", "other"))
    fn = grant["fn"]
    kwargs = {"amount": 10, "to": "acme"}
    assert pending(dep.create(new_id(), fn, kwargs, token=dep.other_project_token))
    assert pending(dep.create(new_id(), fn, kwargs, token=dep.other_agent_token))
    # A grant for the whole project serves the project's other agents, not other projects.
    dep.granted(fn, agent=dep.other_agent_token, projects=("default", "other"), agents="project")
    assert dep.create(new_id(), fn, kwargs, token=dep.other_agent_token)["approved"]
    assert pending(dep.create(new_id(), fn, kwargs, token=dep.other_project_token))


def test_a_person_of_another_project_cannot_grant_here(dep: Grants) -> None:
    _, outsider = dep.person(projects=("other",))
    call_id = new_id()
    dep.create(call_id, f"refund_{uuid.uuid4().hex[:8]}", {"amount": 10, "to": "acme"})
    answer = dep.grant(
        outsider, call_id, scope=["amount <= 100", "to any"], lifetime_seconds=60, max_uses=5
    )
    assert answer.status_code == 404, answer.text


def test_persons_see_and_revoke_only_their_own_grants_admins_all(dep: Grants) -> None:
    _, alice, grant = dep.granted()
    _, bob = dep.person()
    assert grant["id"] not in dep.listed(bob)
    with dep.client(bob) as person:
        assert person.post(f"/grants/{grant['id']}/revoke").status_code == 404
        assert person.get("/grants", params={"all": "true"}).status_code == 403
    root = asyncio.run(create_token(dep.server.settings, f"root-{new_id()}", approver="root"))
    with dep.client(root) as admin:
        everything = admin.get("/grants", params={"all": "true"})
        assert grant["id"] in {g["id"] for g in everything.json()["items"]}
        assert admin.post(f"/grants/{grant['id']}/revoke").status_code == 200
    assert dep.listed(alice)[grant["id"]]["state"] == "revoked"


def test_the_guarded_body_runs_only_for_covered_calls(dep: Grants) -> None:
    _, _, grant = dep.granted(agents="project")
    ran: list[int] = []
    fl = FunctionLayer(api_base=dep.server.api_base, api_token=dep.agent_token, timeout=2)

    def body(amount: Any, to: str) -> str:
        ran.append(amount)
        return "refunded"

    body.__name__ = body.__qualname__ = grant["fn"]
    refund = fl.require_approval()(body)

    results: dict[str, Any] = {}

    def agent() -> None:
        for label, amount in (("big", 5000), ("string", "50"), ("ok", 40)):
            with call_id_scope(new_id()):
                results[label] = refund(amount, "acme")

    thread = threading.Thread(target=agent)
    thread.start()
    thread.join(30)
    assert ran == [40]
    assert results["ok"] == "refunded"
    assert "not run" in results["big"] and "not run" in results["string"]


def test_the_operator_lists_and_revokes_grants_from_the_cli(
    dep: Grants, capsys: pytest.CaptureFixture[str]
) -> None:
    from functionlayer_server._cli import main

    name, _, grant = dep.granted()
    url = dep.server.database_url
    assert main(["grants", "list", "--database-url", url, "--person", name]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(grant["id"]) and f"\t{name}\t" in line and "\t0/3\tlive\t" in line
    assert main(["grants", "revoke", grant["id"], "--database-url", url]) == 0
    assert pending(dep.create(new_id(), grant["fn"], {"amount": 10, "to": "acme"}))
    capsys.readouterr()
    assert main(["grants", "list", "--database-url", url, "--person", name]) == 0
    assert capsys.readouterr().out == ""
    assert main(["grants", "list", "--all", "--database-url", url, "--person", name]) == 0
    assert "\trevoked\t" in capsys.readouterr().out
    assert main(["grants", "revoke", grant["id"], "--database-url", url]) == 1


def test_the_inbox_grant_form_approves_nothing_when_the_grant_is_refused(dep: Grants) -> None:

    name = f"w{uuid.uuid4().hex[:8]}"
    asyncio.run(create_user(dep.server.settings, name, "correct horse battery"))
    call_id = new_id()
    dep.create(call_id, "delete_db", {"amount": 50})
    with httpx.Client(base_url=dep.server.base_url, timeout=30) as browser:
        log_in(browser, name, "correct horse battery")
        form = browser.get(f"/inbox/grant/{call_id}")
        assert form.status_code == 200 and 'id="grant-form"' in form.text
        answer = browser.post(
            f"/inbox/grant/{call_id}",
            data={
                "csrf_token": csrf_of(form.text),
                "scope": "amount <= 100",
                "agents": "token",
                "lifetime_seconds": "3600",
                "max_uses": "5",
                "approve": "yes",
            },
        )
    assert answer.status_code == 403 and "allows no grants" in answer.text
    with dep.client(dep.agent_token) as agent:
        assert pending(agent.get(f"/function_calls/{call_id}").json()["status"])
