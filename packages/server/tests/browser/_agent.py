"""What the browser tests do as the agent, over the server's HTTP API with its agent token:
propose a call, read its status."""

from __future__ import annotations

from typing import Any

import httpx


def agent_client(server: Any) -> httpx.Client:
    """An HTTP client of the server's API with the agent's token."""
    return httpx.Client(base_url=server.api_base, headers=server.headers(), timeout=10)


def propose(server: Any, run_id: str, call_id: str, spec: dict[str, Any]) -> None:
    with agent_client(server) as client:
        created = client.post(
            "/function_calls", json={"run_id": run_id, "call_id": call_id, "spec": spec}
        )
        assert created.status_code in (200, 201), created.text


def status_of(server: Any, call_id: str) -> dict[str, Any]:
    with agent_client(server) as client:
        answer = client.get(f"/function_calls/{call_id}")
        assert answer.status_code == 200, answer.text
        status: dict[str, Any] = answer.json()["status"]
        return status
