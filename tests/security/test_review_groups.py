"""Review groups (one model turn on one inbox page), against a real server on SQLite and
PostgreSQL: a group is keyed by the creating token and the group id, so a hostile agent cannot
put its calls into another agent's group; "approve all" decides only the calls the page
showed, never one that joined the group after the page was rendered; each call keeps its own
decision and audit."""

from __future__ import annotations

import re
import uuid
from contextlib import closing
from typing import Any

import httpx

from tests.security.conftest import Deployment, csrf

SHOWN_RE = re.compile(r'name="shown" value="([^"]+)"')


def new_id(prefix: str = "grp") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def create(
    dep: Deployment, call_id: str, group: str | None, *, token: str | None = None, **kw: Any
) -> httpx.Response:
    spec: dict[str, Any] = {"fn": "wire_money", "kwargs": {"amount": kw.pop("amount", 5)}, **kw}
    if group is not None:
        spec["group_id"] = group
    with dep.agent(token=token) as agent:
        return agent.post(
            "/function_calls", json={"run_id": "turn", "call_id": call_id, "spec": spec}
        )


def status_of(dep: Deployment, call_id: str, token: str | None = None) -> dict[str, Any]:
    with dep.agent(token=token) as agent:
        answer = agent.get(f"/function_calls/{call_id}")
        assert answer.status_code == 200, answer.text
        return dict(answer.json()["status"] or {})


def as_form(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Form fields, a name repeated as often as it appears (httpx takes lists of values)."""
    form: dict[str, list[str]] = {}
    for name, value in pairs:
        form.setdefault(name, []).append(value)
    return form


def group_page(browser: httpx.Client, call_id: str) -> str:
    page = browser.get(f"/inbox/groups/{call_id}")
    assert page.status_code == 200, page.text
    return page.text


def test_group_page_shows_the_turn_with_full_arguments(deployment: Deployment) -> None:
    group = new_id("turn")
    ids = [new_id() for _ in range(3)]
    long_note = "x" * 5000 + " END-OF-NOTE"
    for index, call_id in enumerate(ids):
        answer = create(deployment, call_id, group, amount=index + 1)
        assert answer.status_code in (200, 201), answer.text
    extra = new_id()
    with deployment.agent() as agent:
        assert agent.post(
            "/function_calls",
            json={
                "run_id": "turn",
                "call_id": extra,
                "spec": {
                    "fn": "send_note",
                    "kwargs": {"note": long_note},
                    "group_id": group,
                },
            },
        ).status_code in (200, 201)
    with closing(deployment.login()) as browser:
        html = group_page(browser, ids[0])
        shown = SHOWN_RE.findall(html)
        assert set(ids) <= set(shown) and extra in shown
        assert "END-OF-NOTE" in html  # every argument in full, nothing cut
        assert "truncated" not in html
        # The single call's page links to its group.
        assert f"/inbox/groups/{ids[1]}" in browser.get(f"/inbox/calls/{ids[1]}").text


def test_group_id_is_bounded(deployment: Deployment) -> None:
    assert create(deployment, new_id(), "g" * 129).status_code == 422
    assert create(deployment, new_id(), "").status_code == 422
    answer = create(deployment, new_id(), "bad\x00id")
    assert answer.status_code in (400, 422), answer.text


def test_another_agents_group_id_does_not_merge_and_late_calls_are_not_approved(
    deployment: Deployment,
) -> None:
    group = new_id("turn")
    mine = [new_id() for _ in range(2)]
    for call_id in mine:
        assert create(deployment, call_id, group).status_code in (200, 201)
    # A hostile agent (another token) uses the same group id: it is another group.
    intruder = new_id("intruder")
    assert create(
        deployment, intruder, group, token=deployment.other_agent_token, amount=999_999
    ).status_code in (200, 201)
    with closing(deployment.login()) as browser:
        html = group_page(browser, mine[0])
        shown = SHOWN_RE.findall(html)
        assert sorted(shown) == sorted(mine)
        assert intruder not in html
        # The intruder's own page shows only its call.
        assert SHOWN_RE.findall(group_page(browser, intruder)) == [intruder]

        # After the page was rendered, the agent adds a call to its own group.
        late = new_id("late")
        assert create(deployment, late, group, amount=777).status_code in (200, 201)
        assert late in SHOWN_RE.findall(group_page(browser, mine[0]))
        # A forged form naming the intruder's call is not honoured either.
        form = [("csrf_token", csrf(html)), ("bulk", "approve_all")]
        form += [("shown", cid) for cid in [*shown, intruder]]
        answer = browser.post(f"/inbox/groups/{mine[0]}", data=as_form(form))
        assert answer.status_code == 200, answer.text

    for call_id in mine:
        status = status_of(deployment, call_id)
        assert status["approved"] is True and status["responded_by"] == "alice"
    assert status_of(deployment, late)["approved"] is None  # joined after render: not approved
    intruder_status = status_of(deployment, intruder, token=deployment.other_agent_token)
    assert intruder_status["approved"] is None


def test_per_call_decisions_and_reject_all(deployment: Deployment) -> None:
    group = new_id("turn")
    ids = [new_id() for _ in range(3)]
    for call_id in ids:
        assert create(deployment, call_id, group).status_code in (200, 201)
    with closing(deployment.login()) as browser:
        html = group_page(browser, ids[0])
        form = [("csrf_token", csrf(html)), ("bulk", "")]
        form += [("shown", cid) for cid in SHOWN_RE.findall(html)]
        form += [
            (f"decision:{ids[0]}", "approve"),
            (f"decision:{ids[1]}", "reject"),
            (f"feedback:{ids[1]}", "not this one"),
            (f"decision:{ids[2]}", ""),
        ]
        answer = browser.post(f"/inbox/groups/{ids[0]}", data=as_form(form))
        assert answer.status_code == 200, answer.text
        assert status_of(deployment, ids[0])["approved"] is True
        rejected = status_of(deployment, ids[1])
        assert rejected["approved"] is False and rejected["comment"] == "not this one"
        assert status_of(deployment, ids[2])["approved"] is None

        # Reject all without feedback decides nothing; with feedback, the rest is rejected.
        html = group_page(browser, ids[0])
        assert SHOWN_RE.findall(html) == [ids[2]]
        base = [("csrf_token", csrf(html)), ("shown", ids[2]), ("bulk", "reject_all")]
        browser.post(f"/inbox/groups/{ids[0]}", data=as_form(base))
        assert status_of(deployment, ids[2])["approved"] is None
        browser.post(f"/inbox/groups/{ids[0]}", data=as_form([*base, ("feedback_all", "stop")]))
        last = status_of(deployment, ids[2])
        assert last["approved"] is False and last["comment"] == "stop"

    # Each call has its own audit: one decision each, by alice via the web.
    with deployment.agent() as agent:
        for call_id in ids:
            trail = agent.get(f"/function_calls/{call_id}/audit")
            assert trail.status_code == 200, trail.text
            decisions = [
                e for e in trail.json()["items"] if e["action"] in ("approved", "rejected")
            ]
            assert len(decisions) == 1 and decisions[0]["via"] == "web"


def test_group_page_needs_a_login_and_csrf(deployment: Deployment) -> None:
    group = new_id("turn")
    call_id = new_id()
    assert create(deployment, call_id, group).status_code in (200, 201)
    anonymous = httpx.Client(base_url=deployment.server.base_url, follow_redirects=False)
    with anonymous:
        assert anonymous.get(f"/inbox/groups/{call_id}").status_code == 303
    with closing(deployment.login()) as browser:
        answer = browser.post(
            f"/inbox/groups/{call_id}", data={"shown": call_id, "bulk": "approve_all"}
        )
        assert answer.status_code == 403
    assert status_of(deployment, call_id)["approved"] is None
