"""Real browser, real server: an invite-only launch end to end on a phone, and the admin's
fission tree (lazy expansion and search) on a forest of a thousand members, its labels
inside the drawing, and its Reset button ending a search."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from budding.core.db import unit_of_work, utcnow
from budding.members import service as members
from budding.programs.service import get_program
from budding.referrals import service
from budding.referrals.models import Referral
from tests.browser.fixtures import PHONE, staff_signs_in
from tests.factories import make_program, make_staff
from tests.referrals.conftest import set_settings

pytestmark = pytest.mark.browser


def test_invite_only_launch_on_a_phone(browser, base_url, screenshots: Path) -> None:
    make_program("acme", name="Acme Coffee")
    set_settings("acme", mode="invite_only", invite_quota=2)
    with unit_of_work() as s:
        program = get_program(s, "acme")
        ann, _ = members.upsert_member(
            s, program, {"external_id": "ann", "email": "ann@example.com", "name": "Ann"}
        )
        code = service.issue_invites(s, program, ann, 1)[0].code
    context = browser.new_context(**PHONE, locale="en-US")
    page = context.new_page()
    try:
        # The friend opens the shared link (a WhatsApp message): the click is recorded.
        page.goto(f"{base_url}/r/{code}?ch=whatsapp")
        assert f"/p/acme/join/{code}" in page.url
        assert "Ann invited you" in page.locator("[data-testid=inviter]").inner_text()
        page.fill("[data-testid=join-name]", "Bob")
        page.fill("[data-testid=join-email]", "bob@example.com")
        page.screenshot(path=str(screenshots / "referrals-join.png"), full_page=True)
        page.click("[data-testid=join-submit]")
        page.wait_for_url(f"{base_url}/p/acme/welcome")
        assert "Invites left: 2 of 2" in page.locator("[data-testid=invites-left]").inner_text()
        link = page.locator("[data-testid=referral-link]").inner_text()
        assert link.startswith(f"{base_url}/r/")
        page.click("[data-testid=new-invite]")
        page.wait_for_url(f"{base_url}/p/acme/welcome")
        assert page.locator("[data-testid=welcome-codes] li").count() == 1
        page.click("[data-testid=copy-link]")
        page.screenshot(path=str(screenshots / "referrals-welcome.png"), full_page=True)
    finally:
        context.close()
    with unit_of_work() as s:
        program = get_program(s, "acme")
        friends = service.referred_members(s, program, members.get_member(s, program.id, "ann"))
        assert [(f.external_id, f.channel) for f in friends] == [("bob@example.com", "whatsapp")]


def test_join_form_error_is_the_email_inputs_description(
    browser, base_url, screenshots: Path
) -> None:
    """What a screen reader says on the e-mail input after a refused address, as Chromium
    computes it: invalid, described by the message under it (in the visitor's language)."""
    from playwright.sync_api import expect

    make_program("acme", name="Acme Coffee")
    set_settings("acme", mode="invite_only")
    with unit_of_work() as s:
        program = get_program(s, "acme")
        ann, _ = members.upsert_member(s, program, {"external_id": "ann", "name": "Ann"})
        code = service.issue_invites(s, program, ann, 1)[0].code
    context = browser.new_context(**PHONE, locale="es-ES")
    page = context.new_page()
    try:
        page.goto(f"{base_url}/p/acme/join/{code}")
        email = page.locator("[data-testid=join-email]")
        expect(email).not_to_have_attribute("aria-invalid", "true")
        page.fill("[data-testid=join-name]", "Bob")
        email.fill("bob@localhost")  # an address to the browser, not to the server
        page.click("[data-testid=join-submit]")
        expect(page.locator("[data-testid=join-error]")).to_be_visible()
        email = page.locator("[data-testid=join-email]")
        expect(email).to_have_attribute("aria-invalid", "true")
        expect(email).to_have_accessible_description("Escribe una dirección de correo válida.")
        expect(email).to_have_value("bob@localhost")
        # The message is the description, not part of the name (it sits after the label).
        expect(email).to_have_accessible_name("Correo electrónico")
        # and it looks invalid: the border takes the error colour of the message under it
        colour = email.evaluate("e => getComputedStyle(e).borderTopColor")
        message = page.locator("[data-testid=join-error]")
        assert colour == message.evaluate("e => getComputedStyle(e).color")
        page.screenshot(path=str(screenshots / "referrals-join-error.png"), full_page=True)
    finally:
        context.close()


def test_fission_tree_view(browser, base_url, screenshots: Path) -> None:
    make_program("acme", name="Acme Coffee")
    make_staff("owner@example.com", role="owner")
    with unit_of_work() as s:
        program = get_program(s, "acme")
        n = 1000
        ids = members.ensure_members(s, program.id, [f"u{i}" for i in range(n)])
        members.upsert_member(s, program, {"external_id": "u999", "name": "Deep Member"})
        now = utcnow() - timedelta(days=1)
        rows = []
        for i in range(1, n):
            parent, generation, j = (i - 1) // 4, 0, i
            while j:
                j, generation = (j - 1) // 4, generation + 1
            rows.append(
                {
                    "program_id": program.id,
                    "referrer_member_id": ids[f"u{parent}"],
                    "referee_member_id": ids[f"u{i}"],
                    "source": "link",
                    "channel": "line",
                    "generation": generation,
                    "status": "active",
                    "status_reason": "",
                    "fraud_reasons": [],
                    "signed_up_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        s.execute(insert(Referral.__table__), rows)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = context.new_page()
    try:
        page.goto(f"{base_url}/admin/acme/fission-tree")
        staff_signs_in(page, f"{base_url}/admin/acme/fission-tree")
        assert page.locator("[data-testid=tree-nodes]").inner_text() == "1,000"
        option = (
            "(() => { const c = echarts.getInstanceByDom(document.getElementById('fission-tree'));"
            " return c ? c.getOption().series[0].data[0] : null; })()"
        )
        page.wait_for_function(f"{option} && {option}.children && {option}.children.length === 1")
        # Search finds a member five levels down: each level's children are fetched on
        # demand and the path from the root is opened.
        page.locator("[data-testid=tree-search]").fill("u999")
        page.click("#tree-search button")
        page.wait_for_function("document.getElementById('tree-status').textContent === 'u999'")
        depth = page.evaluate(
            f"""(() => {{ let node = {option}, d = 0;
                 while (node.children && node.children.length) {{
                   node = node.children.find((c) => c.children && c.children.length)
                          || node.children.find((c) => c.id === 'u999') || node.children[0];
                   d += 1; if (node.id === 'u999') break; }}
                 return [node.id, d]; }})()"""
        )
        assert depth[0] == "u999" and depth[1] == 6  # program root, then u0 … u999
        page.wait_for_timeout(800)
        page.screenshot(path=str(screenshots / "referrals-tree.png"), full_page=True)
    finally:
        context.close()


# The zrender text elements of the tree's labels, by their whole text (a wrapped or cut
# label is drawn as lines of its own), with their box in the drawing's pixels.
LABEL_BOXES = """(text) => {
  const chart = echarts.getInstanceByDom(document.getElementById('fission-tree'));
  const boxes = new Map();
  for (const span of chart.getZr().storage.getDisplayList(true)) {
    if (span.type !== 'tspan' || !span.parent || span.parent.style.text !== text) continue;
    const box = span.getBoundingRect().clone();
    box.applyTransform(span.getComputedTransform());
    const seen = boxes.get(span.parent);
    if (seen) seen.union(box); else boxes.set(span.parent, box);
  }
  return { width: chart.getWidth(), height: chart.getHeight(),
           boxes: [...boxes.values()].map((b) => [b.x, b.y, b.width, b.height]) };
}"""


def _small_tree(program_name: str, referee_name: str = "Bob") -> None:
    make_program("acme", name=program_name)
    make_staff("owner@example.com", role="owner")
    with unit_of_work() as s:
        program = get_program(s, "acme")
        ann, _ = members.upsert_member(s, program, {"external_id": "ann", "name": "Ann"})
        bob, _ = members.upsert_member(s, program, {"external_id": "bob", "name": referee_name})
        service.record_referral(
            s,
            program,
            referrer_id=ann.id,
            referee_id=bob.id,
            source="link",
            signed_up_at=utcnow() - timedelta(days=1),
        )


def _label_inside(page: Any, text: str) -> None:
    drawn = page.evaluate(LABEL_BOXES, text)
    assert len(drawn["boxes"]) == 1, (text, drawn)
    x, y, width, height = drawn["boxes"][0]
    assert width > 0 and height > 0, drawn
    assert x >= 0 and x + width <= drawn["width"], (text, drawn)
    assert y >= 0 and y + height <= drawn["height"], (text, drawn)


@pytest.mark.parametrize(
    "program_name",
    [
        "Acme Coffee",
        "Acme Coffee Roasters & Friends of the Greater Metropolitan Area Loyalty Club",
        "Acme-Coffee-Roasters-and-Friends-of-the-Greater-Metropolitan-Area-Loyalty-Club",
        " ".join(["애크미 커피 로스터스 그리고 대도시권 친구들의 로열티 클럽"] * 3),
    ],
    ids=["short", "long", "one-long-word", "korean"],
)
@pytest.mark.parametrize(
    "viewport",
    [{"width": 1280, "height": 900}, {"width": 600, "height": 900}],
    ids=["wide", "narrow"],
)
def test_fission_tree_labels_stay_inside_the_drawing(
    browser, base_url, screenshots: Path, program_name: str, viewport: dict[str, int]
) -> None:
    """The root's label (the program's name) is drawn whole, to the left of the root, and
    a long member label at the right edge is not cut off by it either."""
    long_member = "Bartholomew Maximilian Montgomery-Fitzgerald the Third of Somewhere"
    _small_tree(program_name, long_member)
    context = browser.new_context(viewport=viewport, locale="en-US")
    page = context.new_page()
    try:
        page.goto(f"{base_url}/admin/acme/fission-tree")
        staff_signs_in(page, f"{base_url}/admin/acme/fission-tree")
        drawn = f"(({LABEL_BOXES})({program_name!r}).boxes.length === 1)"
        page.wait_for_function(drawn)
        page.wait_for_timeout(600)  # the layout's animation
        _label_inside(page, program_name)
        # Find bob: ann opens, and bob, with his long name, is the deepest level.
        page.locator("[data-testid=tree-search]").fill("bob")
        page.click("#tree-search button")
        page.wait_for_function("document.getElementById('tree-status').textContent === 'bob'")
        page.wait_for_timeout(600)
        _label_inside(page, program_name)
        _label_inside(page, f"bob · {long_member}")
        page.click("#tree-layout")  # radial: bob's label points outwards from the ring
        page.wait_for_timeout(600)
        _label_inside(page, program_name)
        _label_inside(page, f"bob · {long_member}")
        page.click("#tree-layout")
        page.wait_for_timeout(600)
        shot = f"referrals-tree-labels-{viewport['width']}-{len(program_name)}.png"
        page.locator("[data-testid=fission-tree]").screenshot(path=str(screenshots / shot))
    finally:
        context.close()


def test_fission_tree_reset_clears_the_search(browser, base_url) -> None:
    _small_tree("Acme Coffee")
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = context.new_page()
    status = page.locator("#tree-status")
    search = page.locator("[data-testid=tree-search]")
    try:
        page.goto(f"{base_url}/admin/acme/fission-tree")
        staff_signs_in(page, f"{base_url}/admin/acme/fission-tree")
        search.fill("nobody-like-this")
        page.click("#tree-search button")
        page.wait_for_function(
            "document.getElementById('tree-status').textContent === 'No member found.'"
        )
        page.click("#tree-reset")
        assert status.inner_text() == "" and search.input_value() == ""
        # A found member's name in the status line goes too, with the highlight.
        search.fill("bob")
        page.click("#tree-search button")
        page.wait_for_function("document.getElementById('tree-status').textContent === 'bob'")
        page.click("#tree-reset")
        assert status.inner_text() == "" and search.input_value() == ""
        # A new search after a miss does not keep the miss's message either.
        search.fill("nobody-like-this")
        page.click("#tree-search button")
        page.wait_for_function(
            "document.getElementById('tree-status').textContent === 'No member found.'"
        )
        search.fill("")
        page.click("#tree-search button")
        page.wait_for_function("document.getElementById('tree-status').textContent === ''")
    finally:
        context.close()


def test_portal_lists_have_no_bullets_and_the_place_stands_out(browser, base_url) -> None:
    """The welcome page's invite codes and the waitlist page's history are ``ul.plain``,
    styled only inside the share kit: they showed bullets, and each code's "Copy invite
    link" button took a full-width line; the waitlist place (``p.big``) was body text."""
    from budding.core.auth import MEMBER_COOKIE, member_cookie_value
    from budding.referrals import waitlist

    make_program("acme", name="Acme Coffee")
    set_settings("acme", mode="invite_only", invite_quota=3)
    with unit_of_work() as s:
        program = get_program(s, "acme")
        ann, _ = members.upsert_member(s, program, {"external_id": "ann", "name": "Ann"})
        service.issue_invites(s, program, ann, 2)
        cookie = member_cookie_value(program.id, ann.id)
        joined = waitlist.join_waitlist(s, program, "wait@example.com", send_confirmation=False)
        token = waitlist.status_token(joined.entry)
    context = browser.new_context(**PHONE, locale="en-US")
    host = base_url.split("//", 1)[1].split(":", 1)[0]
    context.add_cookies(
        [{"name": MEMBER_COOKIE, "value": cookie, "domain": host, "path": "/p/acme"}]
    )
    page: Any = context.new_page()
    try:
        page.goto(f"{base_url}/p/acme/welcome")
        codes = page.locator("[data-testid=welcome-codes]")
        assert codes.locator("li").count() == 2
        assert codes.evaluate("e => getComputedStyle(e).listStyleType") == "none"
        copy = codes.locator("button").first.bounding_box()
        assert copy["width"] < 390 / 2, copy

        page.goto(f"{base_url}/p/acme/waitlist/me?t={token}")
        history = page.locator("[data-testid=waitlist-history]")
        assert history.evaluate("e => getComputedStyle(e).listStyleType") == "none"
        size = "e => parseFloat(getComputedStyle(e).fontSize)"
        place = page.locator("[data-testid=waitlist-position]").evaluate(size)
        assert place > page.locator("main p.muted").last.evaluate(size) * 1.3
    finally:
        context.close()
