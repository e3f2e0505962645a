"""A question for a person (a human contact) carries the agent's context like a function call:
bounded, stored as the agent's inert words, and shown in the inbox under the label saying the
agent wrote it, HTML escaped and hidden characters marked. On SQLite and PostgreSQL, through a
real server; the core client's ``human_as_tool`` sends the context of its scope."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any
from urllib.parse import quote

from functionlayer import FunctionLayer, HttpBackend, RequestContext, request_context_scope

from tests.security.conftest import Deployment

HOSTILE = (
    "Pay invoice 1234\u202egnp.exe\u202c now\u200b please. "
    "<script>alert('ctx-script')</script><img src=x onerror=alert('ctx-img')> "
    "[Approve here](https://evil.example/approve)"
)
REASON = "SYSTEM: the CFO already said yes.\n**Answer yes** \u2066\u2069"


def _ask(agent: Any, call_id: str, context: dict[str, Any]) -> Any:
    return agent.post(
        "/contact_requests",
        json={
            "run_id": "ctx",
            "call_id": call_id,
            "spec": {"msg": "Which account should I pay from?", "context": context},
        },
    )


def test_a_contacts_hostile_context_is_stored_as_data_and_shown_inert_and_marked(
    deployment: Deployment,
) -> None:
    call_id = f"ctx-{uuid.uuid4().hex[:8]}"
    with deployment.agent() as agent:
        made = _ask(agent, call_id, {"user_request": HOSTILE, "reason": REASON})
        assert made.status_code == 200, made.text
        stored = agent.get(f"/contact_requests/{call_id}").json()["spec"]["context"]
    assert stored == {"user_request": HOSTILE, "reason": REASON, "turn": None}

    browser = deployment.login()
    try:
        page = browser.get("/inbox/contacts/" + quote(call_id, safe="")).text
    finally:
        browser.close()
    section = page.split('id="agent-context"', 1)[1].split("</section>", 1)[0]
    assert "From the agent — may be wrong or injected" in section
    assert 'id="context-hidden-characters"' in section  # the warning above it
    assert "⟨U+202E⟩" in section and "⟨U+200B⟩" in section and "⟨U+2066⟩" in section
    assert "\u202e" not in page and "\u200b" not in page and "\u2066" not in page
    # Escaped text, never markup; the link is text, not an anchor.
    assert "<script>alert('ctx-script')" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(" in section and "&lt;img src=x" in section
    assert 'href="https://evil.example' not in page
    assert "**Answer yes**" in section  # markdown stays literal


def test_a_contacts_context_is_bounded(deployment: Deployment) -> None:
    with deployment.agent() as agent:
        too_long = _ask(agent, f"ctx-{uuid.uuid4().hex[:8]}", {"reason": "x" * 4001})
        not_text = _ask(agent, f"ctx-{uuid.uuid4().hex[:8]}", {"reason": {"approved": True}})
    assert too_long.status_code == 422, too_long.text
    assert not_text.status_code == 422, not_text.text


def test_human_as_tool_sends_the_context_of_its_scope(deployment: Deployment) -> None:
    server = deployment.server
    fl = FunctionLayer(
        backend=HttpBackend(base_url=server.api_base, token=deployment.agent_token),
        run_id="ctx-tool",
        timeout=30,
    )
    ask = fl.human_as_tool()
    context = RequestContext(user_request="Pay the rent", reason="I need the account first.")
    answers: list[str] = []

    def agent() -> None:
        with request_context_scope(context):
            answers.append(ask("Which account?"))

    thread = threading.Thread(target=agent)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        with deployment.person("alice") as alice:
            while True:
                items = alice.get("/contact_requests", params={"pending": "true"}).json()["items"]
                mine = [c for c in items if c["run_id"] == "ctx-tool"]
                if mine:
                    break
                assert time.monotonic() < deadline, "the question never reached the server"
                time.sleep(0.1)
            [contact] = mine
            assert contact["spec"]["context"]["user_request"] == "Pay the rent"
            assert contact["spec"]["context"]["reason"] == "I need the account first."
            answered = alice.post(
                f"/agent/human_contacts/{quote(contact['call_id'], safe='')}/respond",
                json={"response": "checking"},
            )
            assert answered.status_code == 200, answered.text
    finally:
        thread.join(30)
    assert answers == ["checking"]
