"""A restarted agent resumes its approval and runs the body exactly once, through real
processes: a real functionlayer-server, agents as subprocesses, one killed with SIGKILL while
it waits, a person approving with an approver token in between."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests._support.inbox import log_in
from tests._support.servers import ServerProcess

AGENT = Path(__file__).with_name("agent_process.py")
PASSWORD = "correct horse battery"


def _agent(server: ServerProcess, call_id: str, record: Path) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "FUNCTIONLAYER_API_BASE": server.api_base,
        "FUNCTIONLAYER_API_TOKEN": server.token,
    }
    return subprocess.Popen(
        [sys.executable, str(AGENT), call_id, str(record)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_request(server: ServerProcess, call_id: str) -> dict[str, object]:
    with server.client() as api:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            got = api.get(f"/function_calls/{call_id}")
            if got.status_code == 200:
                return dict(got.json())
            time.sleep(0.1)
    raise AssertionError(f"the agent never created {call_id}")


def _inbox_page(server: ServerProcess, call_id: str) -> str:
    with httpx.Client(base_url=server.base_url, timeout=30) as browser:
        log_in(browser, "alice", PASSWORD)
        return browser.get(f"/inbox/calls/{call_id}").text


def test_a_killed_agent_resumes_and_runs_once(real_server: ServerProcess, tmp_path: Path) -> None:
    server = real_server
    server.add_person("alice", password=PASSWORD)
    call_id = "call_restart_kill"
    record = tmp_path / "executions.log"

    first = _agent(server, call_id, record)
    try:
        created = _wait_for_request(server, call_id)
        assert created["status"]["approved"] is None  # type: ignore[index]
        first.kill()  # SIGKILL while it waits for the decision
        first.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
    assert not record.exists()

    with server.approver_client("alice") as person:
        decided = person.post(f"/agent/function_calls/{call_id}/respond", json={"approved": True})
        assert decided.status_code == 200, decided.text

    second = _agent(server, call_id, record)  # a new process, a new random run id
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert out.splitlines()[-1] == "moved 100"
    lines = record.read_text().splitlines()
    assert len(lines) == 1 and lines[0].split() == [str(second.pid), "100"]

    third = _agent(server, call_id, record)
    out, err = third.communicate(timeout=120)
    assert third.returncode == 0, err
    assert "transfer was not run again" in out and "It returned: 'moved 100'" in out
    assert record.read_text().splitlines() == lines  # still exactly one execution

    with server.client() as api:
        call = api.get(f"/function_calls/{call_id}").json()
        audit = api.get(f"/function_calls/{call_id}/audit").json()["items"]
    execution = call["status"]["execution"]
    assert execution["outcome"] == "returned" and execution["summary"] == "'moved 100'"
    actions = [entry["action"] for entry in audit]
    assert actions.count("execution_started") == 1 and actions.count("executed") == 1
    assert actions.count("resumed") == 2  # processes 2 and 3 came back under new run ids
    assert "Ran at " in _inbox_page(server, call_id)
