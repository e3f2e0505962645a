"""The inbox on a 375 px wide phone: no page scrolls sideways, whatever the request holds (long
function names, unbroken argument values, long run ids), in Debian chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from functionlayer import (
    FunctionCallSpec,
    FunctionLayer,
    HttpBackend,
    HumanContactSpec,
    ResponseOption,
)

pytestmark = pytest.mark.browser

WIDTH = 375
PASSWORD = "correct horse battery staple"
LONG = "x" * 30 + "-" + "9" * 60  # an account number or a hash: no place to break


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    context = browser.new_context(
        viewport={"width": WIDTH, "height": 812}, device_scale_factor=2, is_mobile=True
    )
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def _scroll_width(page: Any) -> int:
    return int(
        page.evaluate("Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)")
    )


def _wide_elements(page: Any) -> list[str]:
    """Which elements stick out, for the failure message."""
    return list(
        page.evaluate(
            """(limit) => [...document.querySelectorAll('body *')]
                .filter(e => e.getBoundingClientRect().right > limit + 0.5)
                .slice(0, 8)
                .map(e => e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className + ' '
                     + Math.round(e.getBoundingClientRect().right))""",
            WIDTH,
        )
    )


def _assert_fits(page: Any, what: str) -> None:
    width = _scroll_width(page)
    assert width <= WIDTH, f"{what} scrolls sideways ({width} px): {_wide_elements(page)}"


def test_list_and_detail_pages_fit_375_px(
    server: Any, phone: Any, login: Any, tmp_path: Path
) -> None:
    server.create_user("narrow", PASSWORD)
    fl = FunctionLayer(
        backend=HttpBackend(server.api_base, server.token),
        run_id="a-rather-long-run-identifier-for-the-nightly-reconciliation-agent-0042",
    )
    fn = "transfer_funds_between_company_accounts_with_a_reference"
    pending = fl.create_function_call(
        FunctionCallSpec(
            fn=fn,
            kwargs={"amount": 25_000, "to": LONG, "memo": "quarterly " * 20, "ref": LONG},
            description="Move money between two of the company's accounts. " * 3,
            reject_options=[
                ResponseOption(name="too_big", title="Too big", description="Split it " * 6)
            ],
        ),
        call_id="narrow-pending-" + "7" * 40,
    )
    decided = fl.create_function_call(
        FunctionCallSpec(fn=fn, kwargs={"to": LONG}), call_id="narrow-decided-" + "8" * 40
    )
    fl.backend.expire_function_call(decided.call_id, "no human answered: " + LONG)
    contact = fl.create_human_contact(
        HumanContactSpec(msg="Which account should receive it? " + LONG, subject="Account"),
        call_id="narrow-contact-" + "6" * 40,
    )

    phone.goto(f"{server.base_url}/inbox/login")
    _assert_fits(phone, "the login page")
    login(phone, server.base_url, "narrow", PASSWORD)
    phone.locator("tr.request-row", has_text=fn).first.wait_for()
    _assert_fits(phone, "the list")
    phone.screenshot(path=str(tmp_path / "narrow-list.png"), full_page=True)

    for path in (
        f"/inbox/calls/{pending.call_id}",
        f"/inbox/calls/{decided.call_id}",
        f"/inbox/contacts/{contact.call_id}",
    ):
        phone.goto(server.base_url + path)
        phone.wait_for_selector("h1")
        _assert_fits(phone, path)
        for section in ("#edit-section", "#respond-section"):  # opened, they must fit too
            if phone.locator(section).count():
                phone.locator(f"{section} summary").click()
        _assert_fits(phone, path + " with every section open")
        phone.screenshot(path=str(tmp_path / f"narrow-{path.split('/')[2]}.png"), full_page=True)
