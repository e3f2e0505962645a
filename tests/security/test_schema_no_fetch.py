"""The hostile agent's JSON schema: ``spec.parameters`` is the agent's data, and validating a
person's edit against it must never make the server fetch anything (a remote ``$ref`` was
fetched with urlopen, no timeout, on the event loop: SSRF, and every request stalled).

A local HTTP listener records every hit; the server (in process, real SQLite and PostgreSQL,
through its HTTP API) must refuse such schemas at creation with a clear 422 and make zero
requests, and an old stored schema with an outside reference must fail edits closed."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import http.server
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from functionlayer_server import create_app
from functionlayer_server._schema import MAX_SCHEMA_BYTES, MAX_SCHEMA_DEPTH
from functionlayer_server._settings import Settings
from functionlayer_server._store import AuditRow

from tests._support.servers import fresh_postgres_database


class Listener:
    """An HTTP server on localhost that answers any GET with a schema and records the path."""

    def __init__(self) -> None:
        hits: list[str] = []
        self.hits = hits

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits.append(self.path)
                body = json.dumps({"type": "string"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/schema+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def listener() -> Iterator[Listener]:
    found = Listener()
    try:
        yield found
    finally:
        found.stop()


class Server:
    def __init__(self, client: httpx.AsyncClient, service: Any, agent: str, alice: str) -> None:
        self.client = client
        self.service = service
        self.agent = {"Authorization": f"Bearer {agent}"}
        self.alice = {"Authorization": f"Bearer {alice}"}

    async def create(self, parameters: Any, kwargs: dict[str, Any] | None = None) -> httpx.Response:
        return await self.client.post(
            "/functionlayer/v1/function_calls",
            json={
                "run_id": "schema",
                "call_id": f"schema-{uuid.uuid4().hex[:10]}",
                "spec": {"fn": "wire", "kwargs": kwargs or {"to": "x"}, "parameters": parameters},
            },
            headers=self.agent,
        )

    async def edit(self, call_id: str, edits: dict[str, Any]) -> httpx.Response:
        return await self.client.post(
            f"/functionlayer/v1/agent/function_calls/{call_id}/respond",
            json={"approved": True, "edited_kwargs": edits},
            headers=self.alice,
        )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Server]:
    with contextlib.ExitStack() as stack:
        if request.param == "postgres":
            database_url = stack.enter_context(fresh_postgres_database())
        else:
            database_url = f"sqlite:///{tmp_path / 'fl.sqlite3'}"
        app = create_app(Settings(database_url=database_url, scheduler_interval_seconds=0.05))
        async with app.router.lifespan_context(app):
            service = app.state.service
            await service.accounts.create_person("alice", emails=["alice@corp.example"])
            agent = await service.create_token("agent")
            alice = await service.create_token("alice-api", approver="alice")
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                yield Server(c, service, agent, alice)


def outside_refs(listener: Listener) -> list[dict[str, Any]]:
    """Schemas that refer outside themselves, in the places a $ref can hide."""
    remote = f"{listener.url}/schema.json"
    return [
        {"$ref": remote},
        {"type": "object", "properties": {"to": {"$ref": remote}}},
        {"type": "object", "properties": {"to": {"$ref": "file:///etc/passwd"}}},
        {"type": "object", "$defs": {"a": {"$dynamicRef": remote}}},
        {
            "$id": f"{listener.url}/base/",
            "type": "object",
            "properties": {"to": {"$ref": "relative.json"}},
        },
        {"type": "object", "properties": {"to": {"anyOf": [{"$ref": f"{remote}#/x"}]}}},
        # a property whose name is a keyword that holds data elsewhere
        {"type": "object", "properties": {"default": {"$ref": remote}}},
    ]


@pytest.mark.anyio
async def test_a_schema_referring_outside_itself_is_refused_at_creation(
    server: Server, listener: Listener
) -> None:
    for schema in outside_refs(listener):
        refused = await server.create(schema)
        assert refused.status_code == 422, (schema, refused.text)
        assert refused.json()["code"] == "invalid_request", refused.text
        assert "a $ref must point inside the schema" in refused.json()["detail"], refused.text
    assert listener.hits == []


@pytest.mark.anyio
async def test_a_stored_schema_referring_outside_itself_fails_edits_closed(
    server: Server, listener: Listener
) -> None:
    """Requests stored before the rule (inserted directly: creation refuses them now)."""
    made = await server.create({"type": "object", "properties": {"to": {"type": "string"}}})
    assert made.status_code == 200, made.text
    template = await server.service.store.get_request(
        "function_call", made.json()["call_id"], "default"
    )
    for schema in outside_refs(listener):
        call_id = f"old-{uuid.uuid4().hex[:10]}"
        spec = {**json.loads(template.spec), "parameters": schema}
        record = dataclasses.replace(template, call_id=call_id, spec=json.dumps(spec))
        audit = AuditRow(
            kind="function_call",
            call_id=call_id,
            at=record.created_at,
            actor="agent:agent",
            via="api",
            action="created",
            details={"project": "default", "run_id": "schema"},
        )
        await server.service.store.insert_request(record, audit)
        answer = await server.edit(call_id, {"to": "somewhere else"})
        assert listener.hits == [], (schema, answer.text)
        assert answer.status_code == 422, answer.text
        assert "cannot be checked" in answer.json()["detail"], answer.text
        got = await server.client.get(
            f"/functionlayer/v1/function_calls/{call_id}", headers=server.agent
        )
        assert got.json()["status"]["approved"] is None
    assert listener.hits == []


@pytest.mark.anyio
async def test_schema_size_and_depth_are_limited(server: Server) -> None:
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(MAX_SCHEMA_DEPTH):
        deep = {"type": "object", "properties": {"a": deep}}
    refused = await server.create(deep)
    assert refused.status_code == 422, refused.text
    assert f"nested too deeply (at most {MAX_SCHEMA_DEPTH} levels)" in refused.json()["detail"]

    large = {
        "type": "object",
        "properties": {"to": {"type": "string", "description": "x" * MAX_SCHEMA_BYTES}},
    }
    refused = await server.create(large)
    assert refused.status_code == 422, refused.text
    assert f"at most {MAX_SCHEMA_BYTES})" in refused.json()["detail"]

    # Local references (as pydantic writes them) and a "$ref" that is only data are fine.
    fine = {
        "type": "object",
        "$defs": {"Account": {"type": "string", "minLength": 2}},
        "properties": {
            "to": {"$ref": "#/$defs/Account"},
            "note": {"type": "object", "default": {"$ref": "http://example.invalid/"}},
        },
    }
    made = await server.create(fine)
    assert made.status_code == 200, made.text
    bad_edit = await server.edit(made.json()["call_id"], {"to": "y"})
    assert bad_edit.status_code == 422 and "'to'" in bad_edit.json()["detail"], bad_edit.text
    good_edit = await server.edit(made.json()["call_id"], {"to": "yz"})
    assert good_edit.status_code == 200, good_edit.text
    assert good_edit.json()["status"]["approved"] is True


def test_the_validation_registry_retrieves_nothing(listener: Listener) -> None:
    """Defence in depth behind the creation check: the registry every validation uses refuses
    to retrieve any URI, so even a reference the check missed is never fetched."""
    from functionlayer_server._schema_check import _registry
    from jsonschema import Draft202012Validator
    from referencing.exceptions import Unresolvable

    for uri in (f"{listener.url}/schema.json", "file:///etc/passwd"):
        validator = Draft202012Validator({"$ref": uri}, registry=_registry())
        with pytest.raises(Unresolvable):
            validator.is_valid("anything")
    assert listener.hits == []


def doubling(levels: int) -> dict[str, Any]:
    """A small schema whose validation doubles with each level (each $defs entry refers twice
    to the previous one)."""
    defs: dict[str, Any] = {"L0": {"type": "string"}}
    for i in range(1, levels + 1):
        defs[f"L{i}"] = {"anyOf": [{"$ref": f"#/$defs/L{i - 1}"}] * 2}
    return {"type": "object", "$defs": defs, "properties": {"a": {"$ref": f"#/$defs/L{levels}"}}}


@pytest.mark.anyio
async def test_exponential_and_nested_schemas_are_refused_at_creation(server: Server) -> None:
    refused = await server.create(doubling(40))
    assert refused.status_code == 422, refused.text
    assert "too many subschemas" in refused.json()["detail"]
    escaped = json.loads(json.dumps(doubling(40)).replace("#/$defs/", "#/%24defs/"))
    escaped["properties"] = {"default": escaped.pop("properties")["a"]}
    refused = await server.create(escaped)
    assert refused.status_code == 422, refused.text
    assert "too many subschemas" in refused.json()["detail"]
    chain: dict[str, Any] = {f"D{i}": {"$ref": f"#/$defs/D{i + 1}"} for i in range(3000)}
    chain["D3000"] = {"type": "string"}
    refused = await server.create({"type": "object", "$defs": chain})
    assert refused.status_code == 422, refused.text
    embedded = {"type": "object", "properties": {"a": {"$id": "urn:x", "type": "string"}}}
    refused = await server.create(embedded)
    assert refused.status_code == 422 and "$id only at its root" in refused.json()["detail"]
    # A recursive model (as pydantic writes a tree) is fine: it recurses only as deep as data.
    tree = {
        "type": "object",
        "$defs": {"Node": {"type": "object", "properties": {"kids": {"type": "array"}}}},
        "properties": {"root": {"$ref": "#/$defs/Node"}},
    }
    tree["$defs"]["Node"]["properties"]["kids"]["items"] = {"$ref": "#/$defs/Node"}
    assert (await server.create(tree, {"root": {"kids": []}})).status_code == 200


BACKTRACKING = {
    "type": "object",
    "properties": {"to": {"type": "string", "pattern": "^(a+)+$"}},
}
"""Allowed (a valid schema), but matching 40 a's and a "!" against it backtracks for hours."""


@pytest.mark.anyio
async def test_edit_validation_runs_off_the_event_loop_and_is_stopped() -> None:
    from functionlayer.models import FunctionCallSpec
    from functionlayer_server._schema import edit_problems_off_loop, schema_problem

    assert schema_problem(BACKTRACKING) is None
    spec = FunctionCallSpec(fn="f", kwargs={"to": "a"}, parameters=BACKTRACKING)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    running = asyncio.create_task(ticker())
    try:
        started = time.monotonic()
        problems = await edit_problems_off_loop(spec, {"to": "a" * 40 + "!"}, timeout=1.0)
        took = time.monotonic() - started
    finally:
        running.cancel()
    assert problems == {"": "could not be checked against the request's schema within 1 seconds"}
    assert 1.0 <= took < 5.0
    assert ticks >= 20  # the loop kept running meanwhile
    fine = await edit_problems_off_loop(spec, {"to": "aaa"}, timeout=30)
    assert fine == {}
    bad = await edit_problems_off_loop(spec, {"to": "b"}, timeout=30)
    assert list(bad) == ["to"] and "does not match" in bad["to"]


@pytest.mark.anyio
async def test_a_runaway_validation_refuses_the_edit(server: Server) -> None:
    made = await server.create(BACKTRACKING, {"to": "aaa"})
    assert made.status_code == 200, made.text
    call_id = made.json()["call_id"]
    started = time.monotonic()
    answer = await server.edit(call_id, {"to": "a" * 40 + "!"})
    assert answer.status_code == 422, answer.text
    assert "within 5 seconds" in answer.json()["detail"]
    assert time.monotonic() - started < 15
    got = await server.client.get(
        f"/functionlayer/v1/function_calls/{call_id}", headers=server.agent
    )
    assert got.json()["status"]["approved"] is None
