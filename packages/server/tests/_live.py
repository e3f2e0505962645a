"""Fixtures for the tests that drive a real server process through the core's HTTP backend:
``live`` (the module's server, on SQLite and on PostgreSQL) and ``fl`` (a ``FunctionLayer``
pointed at it by its environment). A module takes them with ``live = live_fixture()`` and
``fl = layer_fixture("its-run-id")``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from functionlayer import ApprovalMethod, FunctionLayer

from tests._support.servers import ServerFactory, ServerProcess


def live_fixture() -> Any:
    """``live``: the same server on SQLite and on PostgreSQL, shared by the module's tests
    (which use distinct call ids, run ids and function names)."""

    def live(request: pytest.FixtureRequest, module_server_factory: ServerFactory) -> ServerProcess:
        if request.param == "postgres":
            return module_server_factory(request.getfixturevalue("module_postgres_url"))
        return module_server_factory()

    stores = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
    return pytest.fixture(live, scope="module", params=stores)


def layer_fixture(run_id: str) -> Any:
    """``fl``: a ``FunctionLayer`` (cloud approval, ``run_id``) pointed at the module's
    ``live`` server through ``FUNCTIONLAYER_API_BASE`` and ``FUNCTIONLAYER_API_TOKEN``."""

    def fl(live: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> Iterator[FunctionLayer]:
        monkeypatch.setenv("FUNCTIONLAYER_API_BASE", live.api_base)
        monkeypatch.setenv("FUNCTIONLAYER_API_TOKEN", live.token)
        layer = FunctionLayer(approval_method=ApprovalMethod.CLOUD, run_id=run_id)
        yield layer
        layer.close()

    return pytest.fixture(fl)
