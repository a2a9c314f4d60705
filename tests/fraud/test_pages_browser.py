"""Real browser, real server: the fraud review queue fits a desktop screen."""

from __future__ import annotations

from typing import Any

import pytest

from budding.core.db import unit_of_work
from budding.fraud import service
from budding.programs.service import get_program
from tests.browser.fixtures import staff_signs_in
from tests.factories import make_program, make_staff

pytestmark = pytest.mark.browser


def test_review_queue_stays_inside_a_desktop_screen(browser, base_url) -> None:
    """The row's note field and Approve/Reject buttons sat on one unbreakable line and
    pushed the page 120 px past a 1280 px window."""
    make_program("acme", name="Acme Coffee")
    make_staff("owner@example.com", role="owner")
    with unit_of_work() as session:
        program = get_program(session, "acme")
        service.update_settings(session, program, {"checks": {"disposable_email": "hold"}})
        for i in range(2):
            service.assess_signup(
                session,
                program,
                referrer_id=None,
                email=f"someone{i}@yopmail.com",
                ip_hash=None,
                device_hash=None,
                properties={},
            )
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page: Any = context.new_page()
    try:
        page.goto(f"{base_url}/admin/login")
        staff_signs_in(page, f"{base_url}/admin/acme")
        page.goto(f"{base_url}/admin/acme/fraud")
        assert page.locator("[data-testid=assessment-row]").count() == 2
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 1280, width
        table_right = page.evaluate(
            "document.querySelector('[data-testid=fraud-queue]').getBoundingClientRect().right"
        )
        for testid in ("approve", "reject"):
            button = page.locator(f"[data-testid^={testid}-]").first.bounding_box()
            assert button["x"] + button["width"] <= table_right + 1, testid
    finally:
        context.close()
