"""One review per model turn, end to end: the raw OpenAI client's tool-calling loop with
``functionlayer_openai`` against the scripted model, a real ``functionlayer-server`` and a
person in the web inbox. The model asks for several guarded calls in one turn; they reach the
server as one review group, all pending before the first waits; the person approves one and
rejects one on the group page in one visit; only the approved one runs."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from functionlayer import FunctionLayer, HttpBackend
from functionlayer._feedback import rejection_message
from functionlayer.testing.model import ScriptedModel, text, tool_call, tool_calls, tool_results
from functionlayer_openai import Toolset, tools

from tests._support.inbox import csrf_of
from tests._support.servers import ServerProcess
from tests.e2e._pause import PASSWORD, PERSON, approval_server  # noqa: F401

pytestmark = pytest.mark.timeout(120)

SHOWN = re.compile(r'name="shown" value="([^"]+)"')


def loop(model: ScriptedModel, toolset: Toolset, *, use_async: bool = False) -> str:
    client = openai.OpenAI(base_url=model.base_url, api_key="unused", max_retries=0)
    messages: list[Any] = [{"role": "user", "content": "pay both invoices"}]
    for _ in range(4):
        message = (
            client.chat.completions.create(
                model="gpt-4o-mini", messages=messages, tools=toolset.definitions
            )
            .choices[0]
            .message
        )
        messages.append(message)
        if not message.tool_calls:
            return message.content or ""
        if use_async:
            import asyncio

            messages.extend(asyncio.run(toolset.arun(message.tool_calls)))
        else:
            messages.extend(toolset.run(message.tool_calls))
    raise AssertionError("the loop did not finish")


def pending_group(server: ServerProcess, count: int) -> list[dict[str, Any]]:
    """Wait until ``count`` calls of one run are pending on the server."""
    deadline = time.monotonic() + 30
    with server.client() as agent:
        while time.monotonic() < deadline:
            calls = agent.get("/function_calls", params={"pending": "true"}).json()
            items = calls if isinstance(calls, list) else calls.get("items", [])
            mine = [c for c in items if c["run_id"].startswith("groups-e2e")]
            if len(mine) >= count:
                return mine
            time.sleep(0.1)
    raise AssertionError(f"{count} calls never were pending together")


def decide_on_group_page(server: ServerProcess, decisions: dict[str, str]) -> None:
    """The person, in one visit of the group page: approve / reject per call."""
    with httpx.Client(base_url=server.base_url, timeout=30, follow_redirects=False) as browser:
        login = browser.post(
            "/inbox/login",
            data={
                "username": PERSON,
                "password": PASSWORD,
                "csrf_token": csrf_of(browser.get("/inbox/login").text),
            },
        )
        assert login.status_code == 303, login.text
        anchor = next(iter(decisions))
        page = browser.get(f"/inbox/groups/{anchor}")
        assert page.status_code == 200, page.text
        assert sorted(SHOWN.findall(page.text)) == sorted(decisions)
        form: dict[str, Any] = {
            "csrf_token": csrf_of(page.text),
            "bulk": "",
            "shown": list(decisions),
        }
        for call_id, action in decisions.items():
            form[f"decision:{call_id}"] = action
            if action == "reject":
                form[f"feedback:{call_id}"] = "not this invoice"
        answer = browser.post(f"/inbox/groups/{anchor}", data=form)
        assert answer.status_code == 200, answer.text


@pytest.fixture
def paid() -> Iterator[list[str]]:
    yield []


@pytest.mark.parametrize("use_async", [False, True], ids=["run", "arun"])
def test_a_turn_of_calls_is_one_group_reviewed_in_one_visit(
    approval_server: ServerProcess,  # noqa: F811
    paid: list[str],
    use_async: bool,
) -> None:
    server = approval_server
    suffix = "a" if use_async else "s"
    fl = FunctionLayer(
        backend=HttpBackend(server.api_base, server.token, long_poll=5),
        run_id=f"groups-e2e-{suffix}",
    )

    @fl.require_approval()
    def pay(invoice: str, amount: int) -> str:
        """Pay an invoice."""
        paid.append(invoice)
        return f"paid {invoice}"

    ok, no = f"call_ok_{suffix}", f"call_no_{suffix}"
    script = [
        tool_calls(
            tool_call("pay", {"invoice": "INV-1", "amount": 10}, id=ok),
            tool_call("pay", {"invoice": "INV-2", "amount": 99}, id=no),
        ),
        text("done"),
    ]
    result: dict[str, str] = {}
    with ScriptedModel(script) as model:
        agent = threading.Thread(
            target=lambda: result.update(answer=loop(model, tools([pay]), use_async=use_async))
        )
        agent.start()
        group = pending_group(server, 2)
        # Both calls are pending at once (the first waits only after both were created), in
        # one review group.
        assert {c["call_id"] for c in group} == {ok, no}
        assert len({c["spec"]["group_id"] for c in group}) == 1
        assert group[0]["spec"]["group_id"]
        decide_on_group_page(server, {ok: "approve", no: "reject"})
        agent.join(60)
        assert not agent.is_alive()
        results = {r.call_id: r.content for r in tool_results(model.requests[1])}
    assert result["answer"] == "done"
    assert paid == ["INV-1"]
    assert results == {ok: "paid INV-1", no: rejection_message("pay", "not this invoice")}
