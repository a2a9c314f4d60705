"""The "Invite friends" page in a real browser (Debian's chromium through Playwright) on a
phone-sized screen: sharing by copy-link and by QR code, with the funnel recorded.

Each test drives its own Playwright in a thread of its own: a session-wide sync Playwright
started by another test folder keeps an event loop running in the main thread, and a
second sync Playwright cannot start there."""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from budding.core.auth import MEMBER_COOKIE, member_cookie_value
from tests.browser.fixtures import CHROMIUM, CHROMIUM_ARGS, PHONE
from tests.sharing.conftest import add_member

pytestmark = pytest.mark.browser


@pytest.fixture
def base_url(live_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The live server, also as ``BUDDING_BASE_URL`` (so referral links point at it)."""
    from budding.core.config import get_settings

    monkeypatch.setenv("BUDDING_BASE_URL", live_server.url)
    get_settings.cache_clear()
    yield live_server.url
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("BUDDING_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def in_browser(body: Callable[[Any], None], timeout: float = 240) -> None:
    """Run ``body(browser)`` with Debian's chromium, in a thread of its own."""
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM}; they never download one")
    failures: list[BaseException] = []

    def run() -> None:
        from playwright.sync_api import sync_playwright

        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
                )
                try:
                    body(browser)
                finally:
                    browser.close()
        except BaseException as exc:  # re-raised in the test's thread
            failures.append(exc)

    thread = threading.Thread(target=run, name="playwright")
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise AssertionError(f"the browser test did not finish within {timeout}s")
    if failures:
        raise failures[0]


def _wait_for(predicate: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


def _sent(base: str, key: str, channel: str) -> bool:
    r = httpx.get(
        f"{base}/api/v1/events",
        params={"type": "share_sent"},
        headers={"Authorization": f"Bearer {key}"},
    )
    return any(e["properties"].get("channel") == channel for e in r.json()["events"])


def _phone_page(chromium: Any, base: str, program: Any, member: Any, locale: str = "en-US") -> Any:
    context = chromium.new_context(**PHONE, locale=locale)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    host = base.split("//", 1)[1].split(":", 1)[0]
    context.add_cookies(
        [
            {
                "name": MEMBER_COOKIE,
                "value": member_cookie_value(program.id, member.id),
                "domain": host,
                "path": "/p/acme",
            }
        ]
    )
    return context, context.new_page()


def test_invite_page_on_a_phone(base_url, program, api_key, screenshots: Path) -> None:
    zxingcpp = pytest.importorskip("zxingcpp", reason="zxing-cpp (a QR decoder) is not installed")
    ann = add_member("ann", name="Ann Lee", email="ann@example.com")
    in_browser(
        lambda browser: _share_on_a_phone(
            browser, base_url, program, ann, api_key, screenshots, zxingcpp
        )
    )
    funnel = httpx.get(
        f"{base_url}/api/v1/metrics/launch-cost", headers={"Authorization": f"Bearer {api_key}"}
    ).json()
    rows = {r["channel"]: r for r in funnel["channels"]}
    assert funnel["opened"] == 1
    assert rows["copy_link"]["sent"] == 1 and rows["copy_link"]["median_seconds"] is not None
    assert rows["wechat"]["chosen"] == 1
    assert rows["whatsapp"]["sent"] == 1


def _share_on_a_phone(
    browser: Any,
    base_url: str,
    program: Any,
    ann: Any,
    api_key: str,
    screenshots: Path,
    zxingcpp: Any,
) -> None:
    context, page = _phone_page(browser, base_url, program, ann)
    try:
        page.goto(f"{base_url}/p/acme/invite")
        page.wait_for_load_state("networkidle")
        assert page.title().startswith("Invite friends")
        # Fits the phone: no sideways scrolling.
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["viewport"]["width"], width
        link = page.get_by_test_id("invite-link").input_value()
        assert link.startswith(f"{base_url}/r/")
        page.screenshot(path=str(screenshots / "sharing-invite-phone.png"), full_page=True)

        # Share by copy-link: one tap puts the link on the clipboard and records the share.
        page.get_by_test_id("copy-link").tap()
        _wait_for(lambda: page.get_by_test_id("copy-link").get_attribute("data-copied") == "1")
        assert page.evaluate("navigator.clipboard.readText()") == link
        assert page.locator("[data-share-status]").is_visible()
        _wait_for(lambda: _sent(base_url, api_key, "copy_link"))

        # Share by QR: the code on the screen scans to the link.
        qr = page.get_by_test_id("invite-qr")
        qr.scroll_into_view_if_needed()
        assert page.evaluate("el => el.complete && el.naturalWidth > 0", qr.element_handle())
        shot = Image.open(io.BytesIO(qr.screenshot()))
        decoded = [r.text for r in zxingcpp.read_barcodes(shot)]
        assert decoded == [f"{link}?ch=qr"]

        # WeChat shares by scanning too: its button shows a code of the WeChat link.
        page.get_by_test_id("share-wechat").tap()
        dialog = page.get_by_test_id("wechat-dialog")
        dialog.wait_for(state="visible")
        page.screenshot(path=str(screenshots / "sharing-wechat-phone.png"))
        img = dialog.locator("img")
        _wait_for(
            lambda: page.evaluate("el => el.complete && el.naturalWidth > 0", img.element_handle())
        )
        decoded = [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(img.screenshot())))]
        assert decoded == [f"{link}?ch=wechat"]
        dialog.get_by_role("button", name="Close").tap()
        dialog.wait_for(state="hidden")

        # A share URL opens the app with the message prefilled (here: a new tab).
        whatsapp = page.get_by_test_id("share-whatsapp")
        href = whatsapp.get_attribute("href")
        assert href is not None and href.startswith("https://wa.me/?text=")
        page.route("https://wa.me/**", lambda route: route.fulfill(status=200, body="ok"))
        context.route("https://wa.me/**", lambda route: route.fulfill(status=200, body="ok"))
        with context.expect_page() as opened:
            whatsapp.tap()
        opened.value.close()
        _wait_for(lambda: _sent(base_url, api_key, "whatsapp"))
    finally:
        context.close()


def test_invite_page_in_korean(base_url, program, screenshots: Path) -> None:
    minji = add_member("minji", name="김민지", locale="ko")
    in_browser(lambda browser: _korean(browser, base_url, program, minji, screenshots))


def _korean(browser: Any, base_url: str, program: Any, minji: Any, screenshots: Path) -> None:
    context, page = _phone_page(browser, base_url, program, minji, locale="ko-KR")
    try:
        page.goto(f"{base_url}/p/acme/invite")
        page.wait_for_load_state("networkidle")
        assert page.locator("h1").inner_text() == "친구 초대"
        first = page.get_by_test_id("channels").locator(".share-btn").first
        assert first.get_attribute("data-channel") == "kakaotalk"
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["viewport"]["width"]
        page.screenshot(path=str(screenshots / "sharing-invite-phone-ko.png"), full_page=True)
    finally:
        context.close()
