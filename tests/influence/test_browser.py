"""The influence pages in a real browser (Debian's chromium through Playwright): the
charts draw, and screenshots land in BUDDING_SCREENSHOT_DIR (else a temporary folder)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

from budding.core import jobs
from budding.core.db import unit_of_work

pytestmark = pytest.mark.browser


def shots() -> Path:
    folder = Path(os.environ.get("BUDDING_SCREENSHOT_DIR") or tempfile.mkdtemp())
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_pages_render_charts(browser: Any, live_server: Any, community: dict[str, Any]) -> None:
    from tests.factories import PASSWORD, make_staff

    from budding.accounts import service as accounts
    from budding.core.auth import SESSION_COOKIE, session_cookie_value

    email = make_staff()
    with unit_of_work() as session:
        login = accounts.login(session, email=email, password=PASSWORD, ip="127.0.0.1")
    assert login is not None
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_cookies(
        [
            {
                "name": SESSION_COOKIE,
                "value": session_cookie_value(login.token),
                "url": live_server.url,
            }
        ]
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    folder = shots()

    page.goto(f"{live_server.url}/admin/acme/influence?group=lang&top=3")
    assert page.locator("[data-testid=leaders-table]").count() == 3
    page.screenshot(path=str(folder / "influence-leaders.png"), full_page=True)

    page.goto(f"{live_server.url}/admin/acme/influence/members/m0")
    page.wait_for_selector("[data-testid=neighbourhood-chart] svg")
    page.screenshot(path=str(folder / "influence-neighbourhood.png"), full_page=True)

    page.goto(f"{live_server.url}/admin/acme/influence/planner")
    page.fill("input[name=k]", "2")
    page.fill("input[name=launch_costs]", "1, 2")
    page.fill("input[name=runs]", "500")
    page.click("[data-testid=planner-submit]")
    page.wait_for_url("**/influence/planner/*")
    job_id = int(page.url.rsplit("/", 1)[1])
    jobs.execute_job(job_id)  # a worker's part; the page refreshes itself when the job ends
    page.wait_for_selector("[data-testid=reach-chart] svg", timeout=15_000)
    assert page.locator("[data-testid=plans-table] tbody tr").count() == 4
    page.screenshot(path=str(folder / "influence-planner-result.png"), full_page=True)
    assert not errors, errors
    context.close()


def _signed_in_context(browser: Any, live_server: Any, email: str, **options: Any) -> Any:
    from tests.factories import PASSWORD

    from budding.accounts import service as accounts
    from budding.core.auth import SESSION_COOKIE, session_cookie_value

    with unit_of_work() as session:
        login = accounts.login(session, email=email, password=PASSWORD, ip="127.0.0.1")
    assert login is not None
    context = browser.new_context(**options)
    cookie = {"name": SESSION_COOKIE, "value": session_cookie_value(login.token)}
    context.add_cookies([{**cookie, "url": live_server.url}])
    return context


def test_planner_checkboxes_sit_beside_their_labels(
    browser: Any, live_server: Any, community: dict[str, Any]
) -> None:
    """A form's full-width inputs must not stretch its checkboxes: each box stays on
    the line of its label, at a desk and on a phone."""
    from tests.factories import make_staff

    email = make_staff()
    for width in (1280, 390):
        context = _signed_in_context(
            browser, live_server, email, viewport={"width": width, "height": 900}, locale="en-US"
        )
        page = context.new_page()
        page.goto(f"{live_server.url}/admin/acme/influence/planner")
        # each box's top, and the top of the first line of its label's text
        tops = page.eval_on_selector_all(
            "[data-testid=planner-form] input[type=checkbox]",
            """boxes => boxes.map(box => {
                const range = document.createRange();
                range.setStartAfter(box);
                range.setEndAfter(box.parentElement.lastChild);
                const text = range.getClientRects()[0];
                return [box.getBoundingClientRect().top, text.top, box.getBoundingClientRect().width];
            })""",
        )
        assert len(tops) == 5
        for box_top, text_top, box_width in tops:
            assert box_width < 40 and abs(box_top - text_top) < 12, (width, tops)
        context.close()


def test_section_links_stay_on_one_line_on_a_phone_in_korean(
    browser: Any, live_server: Any, community: dict[str, Any]
) -> None:
    """On a phone the sections become a scrolling row; Korean and Chinese words may
    break between any two characters, which stacked each link into a column."""
    from tests.factories import make_staff

    context = _signed_in_context(
        browser, live_server, make_staff(), viewport={"width": 390, "height": 844}, locale="ko-KR"
    )
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/acme/influence")
    assert page.locator("html").get_attribute("lang") == "ko"
    lines = page.eval_on_selector_all(
        "nav.sidenav a",
        """links => links.map(a => {
            const range = document.createRange();
            range.selectNodeContents(a);
            return [a.textContent.trim(), new Set([...range.getClientRects()].map(r => r.top)).size];
        })""",
    )
    assert len(lines) > 5 and all(n == 1 for _, n in lines), lines
    page.screenshot(path=str(shots() / "influence-leaders-ko-phone.png"))
    context.close()


def test_a_large_programs_first_ranking_shows_a_panel_then_the_table(
    browser: Any, live_server: Any, community: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over the inline threshold, the page shows the job's panel at once; once a worker
    has ranked the program, the panel's poll brings the table."""
    from tests.factories import make_staff

    from budding.influence import service

    monkeypatch.setattr(service, "INLINE_RANKING_MAX_MEMBERS", 5)  # the community has 20
    context = _signed_in_context(browser, live_server, make_staff(), locale="en-US")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_server.url}/admin/acme/influence?top=5")
    page.wait_for_selector("[data-testid=ranking-pending][data-status=queued]")
    assert page.locator("[data-testid=leaders-table]").count() == 0
    page.screenshot(path=str(shots() / "influence-ranking-pending.png"))
    assert jobs.run_due() == 1  # a worker's part
    page.wait_for_selector("[data-testid=leaders-table]", timeout=15_000)
    assert page.locator("[data-testid=leaders-table] tbody tr").count() == 5
    assert page.locator("[data-testid=ranking-pending]").count() == 0
    assert not errors, errors
    context.close()


def test_a_failed_refresh_shows_the_older_ranking_and_a_retry(
    browser: Any,
    live_server: Any,
    client: Any,
    community: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The job ranking the newest data failed: the page says so (its long error kept
    short and inside the page, on a phone too), shows the older ranking, and "Try again
    now" queues the job, after which the page says the newest data is being ranked."""
    from tests.factories import make_staff
    from tests.influence.test_first_ranking import _kept_then_failed_refresh

    _kept_then_failed_refresh(client, community, monkeypatch)
    context = _signed_in_context(
        browser, live_server, make_staff(), locale="en-US", viewport={"width": 390, "height": 844}
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_server.url}/admin/acme/influence?top=5")
    panel = page.locator("[data-testid=ranking-refresh-failed]")
    assert "Ranking the newest data failed" in panel.inner_text()
    assert page.locator("[data-testid=leaders-table] tbody tr").count() == 5
    for part in (panel, panel.locator(".mono")):  # the error wraps inside the page
        box = part.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 390, box
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width
    page.screenshot(path=str(shots() / "influence-refresh-failed-phone.png"), full_page=True)
    page.click("[data-testid=ranking-retry]")
    page.wait_for_selector("[data-testid=ranking-updating]")
    assert page.locator("[data-testid=ranking-refresh-failed]").count() == 0
    assert jobs.run_due() == 1  # a worker's part
    page.reload()
    page.wait_for_selector("[data-testid=leaders-table]")
    assert page.locator("[data-testid=ranking-updating]").count() == 0
    assert not errors, errors
    context.close()
