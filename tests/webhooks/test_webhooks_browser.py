"""The delivery log in a real browser: the htmx status filter and the redeliver button."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from budding.core import jobs
from budding.core.db import unit_of_work
from budding.programs.service import get_program
from budding.webhooks import service
from tests.factories import PASSWORD, make_program, make_staff
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.browser


def test_delivery_log_filter_and_redeliver(
    browser: Any,
    base_url: str,
    screenshots: Path,
) -> None:
    make_program("acme", name="Acme Coffee")
    make_staff("owner@example.com", role="owner")
    receiver = Receiver(fail_first=1).start()
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = context.new_page()
    try:
        with unit_of_work() as s:
            _, receiver.secret = service.create_endpoint(
                s, get_program(s, "acme"), url=receiver.url, event_types=["*"]
            )
        with jobs.immediate():
            for n in range(2):  # the receiver refuses the first one
                with unit_of_work() as s:
                    service.emit(s, get_program(s, "acme"), "reward.issued", {"n": n})
            page.goto(f"{base_url}/admin/login")
            page.fill("input[name=email]", "owner@example.com")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base_url}/admin/acme")
            page.click("nav.sidenav >> text=Webhooks")
            page.wait_for_url(f"{base_url}/admin/acme/webhooks")
            page.click("text=Delivery log")
            page.wait_for_url(f"{base_url}/admin/acme/webhooks/deliveries")
            rows = page.locator("#deliveries tbody tr")
            assert rows.count() == 2

            page.select_option("[data-testid=delivery-status-filter]", "pending")
            page.wait_for_function("document.querySelectorAll('#deliveries tbody tr').length === 1")
            assert page.url.endswith("/admin/acme/webhooks/deliveries?status=pending")
            assert rows.first.get_attribute("data-status") == "pending"
            page.screenshot(path=str(screenshots / "webhooks-pending.png"), full_page=True)

            page.select_option("[data-testid=delivery-status-filter]", "delivered")
            page.wait_for_function(
                "document.querySelector('#deliveries tbody tr')?.dataset.status === 'delivered'"
            )
            uid = rows.first.get_attribute("data-delivery")
            rows.first.locator("button", has_text="Redeliver").click()
            # htmx swapped the row in place after a second, signed, successful attempt.
            page.wait_for_function(
                f"document.querySelector('tr[data-delivery=\"{uid}\"] td.num')?.innerText === '2'"
            )
            sent = [r for r in receiver.requests if r.headers["Budding-Delivery"] == uid]
            assert len(sent) == 2 and all(r.verified for r in sent)
            page.screenshot(path=str(screenshots / "webhooks-delivered.png"), full_page=True)
    finally:
        context.close()
        receiver.stop()
