"""Browser fixtures (a plugin of tests/conftest.py, shared by every browser test): Debian's chromium driven by Playwright (never a downloaded browser), a real
SMTP server, and a folder for screenshots (``BUDDING_SCREENSHOT_DIR``, else a temporary one)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.mailsink import MailSink, mail_sink

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}


def staff_signs_in(page: Any, landing: str, email: str = "owner@example.com") -> None:
    """Fill the staff sign-in form the page shows, then wait to land on ``landing``."""
    from tests.factories import PASSWORD

    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(landing)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(
            f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium); "
            "they never download a browser"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def smtp() -> Iterator[MailSink]:
    with mail_sink() as sink:
        yield sink


@pytest.fixture
def base_url(live_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The live server's address, also as ``BUDDING_BASE_URL`` (links in e-mails)."""
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
