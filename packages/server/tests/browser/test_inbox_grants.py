"""The grant form in Debian chromium against a real server and a real core agent: a person
approves a call and grants future calls within a bound; the next covered call runs without
asking, one outside the bound waits for a person; the grants page lists the grant with its
uses, and revoking it there stops it at once."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from functionlayer import ApprovalMethod, FunctionLayer, call_id_scope

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"


def test_grant_form_approves_grants_lists_and_revokes(
    server: Any, page: Any, login: Any, dialogs: Any
) -> None:
    server.create_user("gina", PASSWORD, email="gina@example.com")
    fn = f"refund_{uuid.uuid4().hex[:6]}"
    fl = FunctionLayer(
        approval_method=ApprovalMethod.CLOUD,
        api_base=server.api_base,
        api_token=server.token,
        run_id="grant-browser",
        timeout=60,
    )
    ran: list[int] = []

    def body(amount: int, to: str) -> str:
        ran.append(amount)
        return f"refunded {amount}"

    body.__name__ = body.__qualname__ = fn
    refund = fl.require_approval()(body)

    def call(amount: int, timeout: float | None = None) -> str:
        with call_id_scope(f"{fn}-{uuid.uuid4().hex[:6]}"):
            if timeout is not None:
                fl.timeout = timeout
            return str(refund(amount, "acme"))

    pool = ThreadPoolExecutor(max_workers=1)
    try:
        first = pool.submit(call, 40)
        login(page, server.base_url, "gina", PASSWORD)
        page.locator("tr.request-row", has_text=fn).locator("a.title").click()
        page.wait_for_selector("#decide")
        page.click("#grant-link")
        page.wait_for_selector("#grant-form")
        assert page.input_value("#grant-scope") == 'amount == 40\nto == "acme"'
        page.fill("#grant-scope", 'amount <= 100\nto == "acme"')
        page.fill("#grant-uses", "2")
        page.select_option("#grant-lifetime", "3600")
        assert page.is_checked("#grant-approve") and page.is_checked("#grant-agents-token")
        page.click("#grant-submit")
        page.wait_for_selector("#grant-made")
        assert first.result(timeout=30) == "refunded 40"

        # Covered: runs at once, nobody asked. Outside the bound: waits, does not run.
        assert pool.submit(call, 99).result(timeout=30) == "refunded 99"
        outside = pool.submit(call, 500, 3).result(timeout=30)
        assert "not run" in outside and ran == [40, 99]

        page.reload()
        row = page.locator("#grants-table tr", has_text=fn)
        assert row.locator(".uses").inner_text() == "1 of 2"
        assert row.locator(".state").inner_text() == "live"
        assert "amount <= 100" in row.locator(".scope").inner_text()
        row.locator("button.revoke").click()
        page.wait_for_selector("#grant-revoked")
        row = page.locator("#grants-table tr", has_text=fn)
        assert row.locator(".state").inner_text() == "revoked"
        assert row.locator("button.revoke").count() == 0

        revoked = pool.submit(call, 10, 3).result(timeout=30)
        assert "not run" in revoked and ran == [40, 99]
        assert dialogs.messages == []
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
