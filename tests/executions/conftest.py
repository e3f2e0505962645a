"""Backends under the execution-claim contract: the in-memory backend, the terminal backend's
in-process record, the scripted human, and the HTTP backend against a real functionlayer-server
(subprocess, SQLite) where a person decides with an approver token."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any, Protocol

import pytest
from functionlayer import FunctionCall, FunctionCallSpec, HttpBackend, TerminalBackend
from functionlayer._backends._base import Backend
from functionlayer.testing import InMemoryBackend, ScriptedHuman, approve, reject

from tests._support.servers import ServerProcess, _factory


class Harness(Protocol):
    backend: Backend

    def decided(self, call_id: str, kwargs: dict[str, Any], *, approved: bool) -> FunctionCall:
        """Create the request and have a person decide it."""
        ...


class MemoryHarness:
    def __init__(self) -> None:
        self.backend: InMemoryBackend = InMemoryBackend()

    def decided(self, call_id: str, kwargs: dict[str, Any], *, approved: bool) -> FunctionCall:
        call = FunctionCall(
            run_id="r", call_id=call_id, spec=FunctionCallSpec(fn="f", kwargs=kwargs)
        )
        self.backend.create_function_call(call)
        return self.backend.respond(
            call_id, approved=approved, comment=None if approved else "no", responded_by="alice"
        )


class TerminalHarness:
    """The terminal backend reading a real pipe: the person types at the 'terminal'."""

    def __init__(self) -> None:
        read, write = os.pipe()
        self._in = os.fdopen(read, "r")
        self._typing = os.fdopen(write, "w")
        self._out = open(os.devnull, "w")  # noqa: SIM115 - closed in close()
        self.backend = TerminalBackend(input=self._in, output=self._out)

    def decided(self, call_id: str, kwargs: dict[str, Any], *, approved: bool) -> FunctionCall:
        self._typing.write("y\n" if approved else "no thanks\n")
        self._typing.flush()
        call = FunctionCall(
            run_id="r", call_id=call_id, spec=FunctionCallSpec(fn="f", kwargs=kwargs)
        )
        decided = self.backend.create_function_call(call)
        assert decided.completed
        return decided

    def close(self) -> None:
        self._typing.close()
        self._out.close()


class ScriptedHarness:
    def __init__(self) -> None:
        self.answers: dict[str, Any] = {}
        self.backend = ScriptedHuman(lambda request: self.answers[request.call_id])

    def decided(self, call_id: str, kwargs: dict[str, Any], *, approved: bool) -> FunctionCall:
        self.answers[call_id] = approve() if approved else reject("no")
        call = FunctionCall(
            run_id="r", call_id=call_id, spec=FunctionCallSpec(fn="f", kwargs=kwargs)
        )
        return self.backend.create_function_call(call)


class HttpHarness:
    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.backend = HttpBackend(server.api_base, server.token, retry_for=5.0)
        self.person = server.approver_client("alice")

    def decided(self, call_id: str, kwargs: dict[str, Any], *, approved: bool) -> FunctionCall:
        call = FunctionCall(
            run_id="r", call_id=call_id, spec=FunctionCallSpec(fn="f", kwargs=kwargs)
        )
        self.backend.create_function_call(call)
        body = {"approved": True} if approved else {"approved": False, "comment": "no"}
        answer = self.person.post(f"/agent/function_calls/{call_id}/respond", json=body)
        assert answer.status_code == 200, answer.text
        return FunctionCall.model_validate_json(answer.content)


@pytest.fixture(scope="session")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real server (SQLite) for this directory's HTTP cases; a person 'alice' decides."""
    with _factory(tmp_path_factory.mktemp("executions")) as factory:
        server = factory()
        server.add_person("alice")
        yield server


BACKENDS = ["memory", "terminal", "scripted", "http"]


def make_harness(kind: str, request: pytest.FixtureRequest) -> Any:
    """A harness of ``kind``, closed when the test ends."""
    made: Any
    if kind == "memory":
        made = MemoryHarness()
    elif kind == "terminal":
        made = TerminalHarness()
    elif kind == "scripted":
        made = ScriptedHarness()
    else:
        made = HttpHarness(request.getfixturevalue("real_server"))

    def close() -> None:
        if hasattr(made, "close"):
            made.close()
        made.backend.close()

    request.addfinalizer(close)
    return made


@pytest.fixture(params=BACKENDS)
def harness(request: pytest.FixtureRequest) -> Harness:
    return make_harness(request.param, request)  # type: ignore[no-any-return]


def in_threads(n: int, target: Any) -> list[Any]:
    """Run ``target(i)`` in ``n`` threads released together; their results in order."""
    results: list[Any] = [None] * n
    barrier = threading.Barrier(n)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = target(i)
        except Exception as exc:  # returned, so the test sees it
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results
