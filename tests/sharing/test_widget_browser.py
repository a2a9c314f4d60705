"""The embeddable widget in a real browser (Debian's chromium through Playwright): the
iframe widget.js makes is named in the visitor's language until the widget, once loaded,
names it in the language it shows; a title the host page gives stays."""

from __future__ import annotations

from typing import Any

import pytest

from budding.core.db import unit_of_work
from budding.programs.service import get_program
from budding.sharing import service
from tests.sharing.conftest import add_member
from tests.sharing.test_invite_browser import in_browser

pytestmark = pytest.mark.browser

# Far below the fold: the lazy iframe waits until it is scrolled to.
HOST_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title></head>
<body><div style="height:12000px">The shop</div>
<script src="{base}/w/widget.js" data-program="acme" data-token="{token}"{extra}></script>
</body></html>"""


def _token(external_id: str) -> str:
    with unit_of_work() as s:
        program = get_program(s, "acme")
        member = service.member_by_external_id(s, program, external_id)
        token, _ = service.issue_widget_token(program, member, 600)
    return token


def test_widget_frame_title_follows_the_language(live_server: Any, program: Any) -> None:
    add_member("minji", name="김민지", locale="ko")
    token = _token("minji")
    in_browser(lambda browser: _frame_titles(browser, live_server.url, token))


def _frame_titles(browser: Any, base: str, token: str) -> None:
    context = browser.new_context(locale="es-ES")
    try:
        page = context.new_page()
        page.goto(f"{base}/healthz")  # the host page shares the server's origin
        page.set_content(HOST_PAGE.format(base=base, token=token, extra=""))
        frame = page.locator("iframe")
        # Before it loads: the visitor's language (Accept-Language es).
        assert frame.get_attribute("title") == "Invitar amigos"
        frame.scroll_into_view_if_needed()
        # Loaded: the widget speaks the member's language (ko) and names itself so.
        page.wait_for_function(
            "document.querySelector('iframe').title === '친구 초대'", timeout=15000
        )
        heading = page.frame_locator("iframe").locator("h1")
        assert heading.inner_text(timeout=15000) == "Acme에 친구 초대하기"

        # A title the host page gives is kept.
        page.set_content(HOST_PAGE.format(base=base, token=token, extra=' data-title="Gifts"'))
        frame = page.locator("iframe")
        frame.scroll_into_view_if_needed()
        page.frame_locator("iframe").locator("h1").wait_for(timeout=15000)
        page.wait_for_timeout(300)  # the widget's own title message has arrived by now
        assert frame.get_attribute("title") == "Gifts"
    finally:
        context.close()
