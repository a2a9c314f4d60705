"""Real browser, real server, real SMTP: the admin finds a member, a member signs in by magic
link on a phone, and the portal speaks Korean."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from budding.core.db import unit_of_work
from budding.members import events as event_service
from budding.members import service
from budding.programs.service import get_program
from tests.browser.fixtures import PHONE, staff_signs_in
from tests.factories import make_program, make_staff
from tests.mailsink import MailSink

pytestmark = pytest.mark.browser


def _community(slug: str = "acme") -> None:
    """Forty members and three months of events, so the overview has something to draw."""
    now = datetime.now(UTC)
    with unit_of_work() as s:
        program = get_program(s, slug)
        for i in range(40):
            service.upsert_member(
                s, program, {"external_id": f"u{i}", "name": f"Member {i}", "locale": "en"}
            )
        service.upsert_member(
            s,
            program,
            {
                "external_id": "minji",
                "name": "Minji Kim",
                "email": "minji@example.com",
                "locale": "ko",
                "attributes": {"plan": "pro"},
            },
        )
        batch: list[dict[str, Any]] = [
            {
                "id": f"e{d}-{k}",
                "type": ("visit", "post", "share")[k % 3],
                "member": f"u{(d * 7 + k) % 40}",
                "occurred_at": (now - timedelta(days=d, hours=k)).isoformat(),
            }
            for d in range(90)
            for k in range(1 + (90 - d) // 10 + (d % 7 == 0) * 4)
        ]
        batch.append(
            {
                "id": "minji-share",
                "type": "share",
                "member": "minji",
                "occurred_at": (now - timedelta(hours=1)).isoformat(),
                "properties": {"channel": "kakaotalk"},
            }
        )
        result = event_service.ingest_events(s, program, batch)
        assert not result.rejected


def test_admin_signs_in_and_finds_a_member(browser, base_url, screenshots: Path) -> None:
    make_program("acme", name="Acme Coffee")
    make_staff("owner@example.com", role="owner")
    _community()
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = context.new_page()
    try:
        page.goto(f"{base_url}/admin")
        assert "/admin/login" in page.url
        staff_signs_in(page, f"{base_url}/admin/acme")  # the only program
        assert page.locator("[data-testid=members-total]").inner_text() == "41"
        # ECharts drew the axes and the line (SVG renderer), then let its animation finish.
        page.wait_for_function(
            "document.querySelectorAll('[data-testid=events-chart] svg path').length > 10"
        )
        page.wait_for_timeout(1500)
        page.screenshot(path=str(screenshots / "admin-overview.png"), full_page=True)

        page.click("nav.sidenav >> text=Members")
        page.wait_for_url(f"{base_url}/admin/acme/members")
        page.fill("[data-testid=member-search]", "minji")
        # htmx swaps the results in place (no reload) once typing pauses.
        page.wait_for_function("document.querySelectorAll('#member-results tbody tr').length === 1")
        results = page.locator("#member-results")
        assert "Minji Kim" in results.inner_text() and "Member 1" not in results.inner_text()
        assert re.search(r"/admin/acme/members\?q=minji$", page.url)  # pushed to history
        results.locator("a", has_text="minji").click()
        page.wait_for_url(f"{base_url}/admin/acme/members/minji")
        assert page.locator("[data-testid=member-heading]").inner_text() == "Minji Kim"
        assert "kakaotalk" in page.locator("[data-testid=timeline]").inner_text()
        page.screenshot(path=str(screenshots / "admin-member.png"), full_page=True)
    finally:
        context.close()


def test_admin_tables_stay_inside_a_phone_screen(browser, base_url) -> None:
    """Tables scroll sideways on a phone; their visually hidden headings must not widen
    the page (they did: users 524 px, API keys 499 px on a 390 px screen)."""
    make_program("acme", name="Acme Coffee")
    make_staff("owner@example.com", role="owner")
    context = browser.new_context(**PHONE)
    page = context.new_page()
    try:
        page.goto(f"{base_url}/admin/login")
        staff_signs_in(page, f"{base_url}/admin/acme")
        for path in ("/admin/users", "/admin/acme/api-keys"):
            page.goto(f"{base_url}{path}")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= page.viewport_size["width"], (path, width)
    finally:
        context.close()


def test_member_signs_in_with_a_magic_link_on_a_phone(
    browser, base_url, smtp: MailSink, screenshots: Path
) -> None:
    make_program("acme", name="Acme Coffee")
    with unit_of_work() as s:
        service.upsert_member(
            s,
            get_program(s, "acme"),
            {"external_id": "ann", "name": "Ann Lee", "email": "ann@example.com"},
        )
    context = browser.new_context(**PHONE, locale="en-US")
    page = context.new_page()
    try:
        page.goto(f"{base_url}/p/acme")
        page.wait_for_url(f"{base_url}/p/acme/sign-in")
        page.screenshot(path=str(screenshots / "portal-sign-in-phone.png"), full_page=True)
        page.fill("[data-testid=sign-in-email]", "ann@example.com")
        page.click("button[type=submit]")
        page.locator("[data-testid=check-inbox]").wait_for()

        link = MailSink.first_link(smtp.wait_for("ann@example.com"))
        assert link.startswith(f"{base_url}/p/acme/auth/")
        page.goto(link)
        page.click("[data-testid=confirm-sign-in]")
        page.wait_for_url(f"{base_url}/p/acme/profile")
        assert page.locator("[data-testid=profile-name]").inner_text() == "Ann Lee"
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the portal scrolls sideways on a phone ({width}px)"
        page.screenshot(path=str(screenshots / "portal-profile-phone.png"), full_page=True)

        # The link worked once: opening it again offers a new one.
        page.goto(link)
        assert page.locator("[data-testid=link-invalid]").is_visible()
    finally:
        context.close()


def test_portal_in_korean_and_switching_language(
    browser, base_url, smtp: MailSink, screenshots: Path
) -> None:
    make_program("acme", name="Acme Coffee")
    context = browser.new_context(**PHONE, locale="ko-KR")
    page: Any = context.new_page()
    try:
        page.goto(f"{base_url}/p/acme/sign-in")
        assert page.locator("html").get_attribute("lang") == "ko"
        assert page.locator("h1").inner_text() == "로그인"
        assert page.locator("button[type=submit]").inner_text() == "로그인 링크 받기"
        page.screenshot(path=str(screenshots / "portal-sign-in-ko.png"), full_page=True)

        page.select_option("[data-testid=language]", "es")
        page.wait_for_function("document.documentElement.lang === 'es'")
        assert page.locator("h1").inner_text() == "Iniciar sesión"
        page.reload()  # remembered (a cookie before sign-in) over Accept-Language
        assert page.locator("html").get_attribute("lang") == "es"
    finally:
        context.close()
