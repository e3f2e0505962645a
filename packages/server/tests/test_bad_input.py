"""Bad input gets a clear 4xx JSON error and the server keeps serving."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from tests._support.servers import ServerFactory, ServerProcess

LIMIT = 4096


@pytest.fixture(scope="module")
def srv(module_server_factory: ServerFactory) -> ServerProcess:
    return module_server_factory(
        env={
            "FUNCTIONLAYER_SERVER_MAX_BODY_BYTES": str(LIMIT),
            "FUNCTIONLAYER_SERVER_LONG_POLL_MAX_SECONDS": "0.5",
        }
    )


def _still_serving(srv: ServerProcess) -> None:
    body = {"run_id": "r", "call_id": f"alive-{time.monotonic_ns()}", "spec": {"fn": "f"}}
    assert srv.client().post("/function_calls", json=body).status_code == 200


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["detail"], str) and body["detail"]
    return str(body["detail"])


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{not json", "application/json"),
        (b'{"run_id": "r",', "application/json"),
        (b"\xff\xfe", None),
    ],
)
def test_malformed_json_is_400(
    srv: ServerProcess, content: bytes, content_type: str | None
) -> None:
    headers = srv.headers()
    if content_type:
        headers["Content-Type"] = content_type
    response = httpx.post(f"{srv.api_base}/function_calls", content=content, headers=headers)
    assert "JSON" in _error(response, 400, "malformed_json")
    _still_serving(srv)


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"run_id": 5, "call_id": "t1", "spec": {"fn": "f"}}, "run_id"),
        ({"run_id": "r", "call_id": "t2", "spec": {"fn": "f", "kwargs": [1, 2]}}, "kwargs"),
        ({"run_id": "r", "call_id": "t3"}, "spec"),
        (
            {"run_id": "r", "call_id": "t4", "spec": {"fn": "f", "timeout_seconds": -1}},
            "timeout_seconds",
        ),
        (
            {
                "run_id": "r",
                "call_id": "t5",
                "spec": {"fn": "f", "policy": {"approvals_required": 0}},
            },
            "approvals_required",
        ),
        ([1, 2, 3], "body"),
    ],
)
def test_wrong_types_are_422_naming_the_field(srv: ServerProcess, body: object, where: str) -> None:
    response = srv.client().post("/function_calls", json=body)
    assert where in _error(response, 422, "validation_error")
    _still_serving(srv)


def test_decision_with_wrong_types(srv: ServerProcess) -> None:
    agent = srv.client()
    client = srv.approver_client()
    agent.post("/function_calls", json={"run_id": "r", "call_id": "dt", "spec": {"fn": "f"}})
    response = client.post("/agent/function_calls/dt/respond", json={"approved": "perhaps"})
    _error(response, 422, "validation_error")
    response = client.post(
        "/agent/function_calls/dt/respond", json={"approved": True, "edited_kwargs": "x=1"}
    )
    _error(response, 422, "validation_error")
    assert client.get("/function_calls/dt").json()["status"]["approved"] is None


def test_oversize_bodies_are_413(srv: ServerProcess) -> None:
    big = {
        "run_id": "r",
        "call_id": "big",
        "spec": {"fn": "f", "kwargs": {"blob": "x" * (LIMIT * 2)}},
    }
    assert "limit" in _error(
        srv.client().post("/function_calls", json=big), 413, "payload_too_large"
    )
    # Streamed without a Content-Length: counted as it arrives.

    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"run_id": "r", "call_id": "big2", "spec": {"fn": "f", "kwargs": {"blob": "'
        for _ in range(4):
            yield b"y" * LIMIT
        yield b'"}}}'

    streamed = httpx.post(
        f"{srv.api_base}/function_calls",
        content=chunks(),
        headers={**srv.headers(), "Content-Type": "application/json"},
    )
    _error(streamed, 413, "payload_too_large")
    assert srv.client().get("/function_calls/big2").status_code == 404
    _still_serving(srv)


def test_unknown_ids_and_paths(srv: ServerProcess) -> None:
    client = srv.client()
    human = srv.approver_client()
    assert "nope" in _error(client.get("/function_calls/nope"), 404, "not_found")
    _error(client.get("/contact_requests/nope"), 404, "not_found")
    _error(
        human.post("/agent/function_calls/nope/respond", json={"approved": True}), 404, "not_found"
    )
    _error(
        human.post("/agent/human_contacts/nope/respond", json={"response": "x"}), 404, "not_found"
    )
    # An agent token is refused a decision before anything is looked up.
    _error(
        client.post("/agent/function_calls/nope/respond", json={"approved": True}), 403, "forbidden"
    )
    _error(client.get("/no/such/route"), 404, "not_found")
    _error(client.delete("/function_calls/nope"), 405, "method_not_allowed")


def test_bad_call_ids_and_query_values(srv: ServerProcess) -> None:
    client = srv.client()
    for bad in ["", "x" * 300, "a\nb"]:
        response = client.post(
            "/function_calls", json={"run_id": "r", "call_id": bad, "spec": {"fn": "f"}}
        )
        _error(response, 422, "invalid_request")
    _error(client.get("/function_calls/x", params={"wait": "-1"}), 422, "validation_error")
    _error(client.get("/function_calls/x", params={"wait": "soon"}), 422, "validation_error")
    _error(client.get("/function_calls/x", params={"wait": "nan"}), 422, "validation_error")
    _error(client.get("/function_calls", params={"limit": "0"}), 422, "validation_error")
    _error(client.get("/function_calls", params={"pending": "maybe"}), 422, "validation_error")


def test_long_poll_is_capped(srv: ServerProcess) -> None:
    client = srv.client()
    client.post("/function_calls", json={"run_id": "r", "call_id": "cap", "spec": {"fn": "f"}})
    started = time.monotonic()
    response = client.get("/function_calls/cap", params={"wait": 3600})
    assert response.status_code == 200
    assert 0.4 <= time.monotonic() - started < 3


def test_missing_and_wrong_tokens_are_401(srv: ServerProcess) -> None:
    for headers in [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Token x"},
    ]:
        response = httpx.post(
            f"{srv.api_base}/function_calls",
            json={"run_id": "r", "call_id": "anon", "spec": {"fn": "f"}},
            headers=headers,
        )
        _error(response, 401, "unauthorized")
    # Authentication is checked before the body: a bad body without a token is still 401.
    response = httpx.post(f"{srv.api_base}/function_calls", content=b"{oops")
    _error(response, 401, "unauthorized")
    assert srv.client().get("/function_calls/anon").status_code == 404


def test_garbage_on_the_socket_does_not_hurt(srv: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
        sock.sendall(b"\x00\x01GARBAGE\r\n\r\n")
        sock.recv(1024)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
        sock.sendall(
            b"POST /functionlayer/v1/function_calls HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"
        )
    _still_serving(srv)
