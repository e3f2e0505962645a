"""Schemathesis fuzzes every operation of /openapi.json (with a valid token, so requests get
past authentication) against a real server: no input may cause a 5xx.

Only persons decide: the respond operations are fuzzed with an approver token (an agent token
gets 403 there before any decision logic runs), every other operation with the agent token (an
approver token cannot create requests)."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode

from tests._support.servers import ServerFactory, ServerProcess


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def fuzzed_server(
    request: pytest.FixtureRequest, module_server_factory: ServerFactory
) -> ServerProcess:
    url = request.getfixturevalue("module_postgres_url") if request.param == "postgres" else None
    srv = module_server_factory(url, env={"FUNCTIONLAYER_SERVER_LONG_POLL_MAX_SECONDS": "0.2"})
    # A request that exists, so generated call ids sometimes hit real rows.
    srv.client().post("/function_calls", json={"run_id": "r", "call_id": "x", "spec": {"fn": "f"}})
    srv.approver_token  # created before fuzzing  # noqa: B018
    return srv


MAX_EXAMPLES = 30  # per operation and mode; keeps the run to seconds


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_errors(fuzzed_server: ServerProcess, mode: GenerationMode) -> None:
    """Valid inputs (positive) and inputs that break the schema (negative): never a 5xx."""
    schema = schemathesis.openapi.from_url(f"{fuzzed_server.base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 7
    checked: list[str] = []
    for operation in operations:
        decides = operation.path.endswith("/respond")
        headers = fuzzed_server.headers(fuzzed_server.approver_token if decides else None)

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure is reported as found
        )
        def fuzz(case: schemathesis.Case) -> None:
            # Called right below, in this iteration: the loop variable is the one meant.
            response = case.call(headers=headers, timeout=10)  # noqa: B023
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}"
            )
            if response.status_code >= 400:  # errors are always JSON {"detail", "code"}
                content_type = (response.headers.get("content-type") or [""])[0]
                assert content_type.startswith("application/json"), content_type
                assert set(response.json()) >= {"detail", "code"}

        fuzz()
        checked.append(operation.label)
    assert len(checked) == len(operations)
    # And the server is still fine afterwards.
    assert fuzzed_server.client().get("/function_calls/x").status_code == 200


def test_openapi_documents_the_protocol(fuzzed_server: ServerProcess) -> None:
    spec = httpx.get(f"{fuzzed_server.base_url}/openapi.json").json()
    paths = spec["paths"]
    for path in [
        "/functionlayer/v1/function_calls",
        "/functionlayer/v1/function_calls/{call_id}",
        "/functionlayer/v1/agent/function_calls/{call_id}/respond",
        "/functionlayer/v1/contact_requests",
        "/functionlayer/v1/contact_requests/{call_id}",
        "/functionlayer/v1/agent/human_contacts/{call_id}/respond",
    ]:
        assert path in paths
    wait = [
        p
        for p in paths["/functionlayer/v1/function_calls/{call_id}"]["get"]["parameters"]
        if p["name"] == "wait"
    ]
    assert wait and "Long-poll" in wait[0]["description"]
    # A decision with an agent token is refused: the respond operations document their 403.
    for path in [
        "/functionlayer/v1/agent/function_calls/{call_id}/respond",
        "/functionlayer/v1/agent/human_contacts/{call_id}/respond",
    ]:
        assert "403" in paths[path]["post"]["responses"]
    assert "FunctionCall" in spec["components"]["schemas"]
