"""Real browser, real server: an invite-only launch end to end on a phone, and the admin's
fission tree (lazy expansion and search) on a forest of a thousand members."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

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
