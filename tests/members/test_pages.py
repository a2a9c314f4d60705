"""Admin pages of members: overview, member list with live search, member detail; and HTML in
member data staying inert on every admin and portal page."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from budding.core.db import unit_of_work
from budding.members import events as event_service
from budding.members import service
from budding.members.portal import member_csrf_token
from budding.programs.service import get_program
from tests.accounts.helpers import staff_client

XSS = "<script>alert(1)</script>"
XSS_ATTR = '"><img src=x onerror=alert(2)>'


def add_member(slug: str = "acme", **data: Any) -> None:
    with unit_of_work() as s:
        service.upsert_member(s, get_program(s, slug), data)


def add_events(slug: str, events: list[dict[str, Any]]) -> None:
    with unit_of_work() as s:
        result = event_service.ingest_events(s, get_program(s, slug), events)
    assert not result.rejected, result.rejected


def _ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).isoformat()


@pytest.fixture
def staff(anon_client, program) -> Any:
    staff_client(anon_client, role="analyst")
    return anon_client


def test_overview_cards_chart_and_latest_events(staff) -> None:
    add_member(external_id="ann", name="Ann")
    add_events(
        "acme",
        [
            {"id": "e1", "type": "visit", "member": "ann", "occurred_at": _ago(minutes=1)},
            {"id": "e2", "type": "post", "member": "bob", "occurred_at": _ago(days=2)},
            {"id": "e3", "type": "visit", "member": "cy", "occurred_at": _ago(days=40)},
        ],
    )
    page = staff.get("/admin/acme")
    assert page.status_code == 200
    assert re.search(r'data-testid="members-total">3<', page.text)
    assert re.search(r'data-testid="members-active">2<', page.text)  # cy was active 40 days ago
    assert re.search(r'data-testid="events-today">1<', page.text)
    spec = json.loads(
        re.search(r"data-chart='([^']+)'", page.text).group(1).replace("&#39;", "'")  # type: ignore[union-attr]
    )
    assert len(spec["x"]) == 90 and sum(spec["series"][0]["data"]) == 3
    assert spec["x"][-1] == datetime.now(UTC).date().isoformat()
    assert "/static/vendor/echarts.min.js" in page.text
    assert page.text.index(">ann<") < page.text.index(">bob<")  # latest first
    assert 'href="/admin/acme/members/ann"' in page.text


def test_member_search_full_page_htmx_and_next_page(staff) -> None:
    for i in range(60):
        add_member(external_id=f"user-{i:02d}", name=f"Member {i}", email=f"m{i}@example.com")
    add_member(external_id="zz", name="Ann Lee", email="ann.lee@example.com")

    page = staff.get("/admin/acme/members", params={"q": "ANN"})
    assert page.status_code == 200 and "<html" in page.text
    assert ">zz<" in page.text and "user-01" not in page.text
    assert 'hx-get="/admin/acme/members"' in page.text

    partial = staff.get("/admin/acme/members", params={"q": "lee@"}, headers={"HX-Request": "true"})
    assert partial.status_code == 200
    assert "<html" not in partial.text and ">zz<" in partial.text
    # htmx restoring history after a cache miss needs the whole page.
    restore = staff.get(
        "/admin/acme/members",
        params={"q": "lee"},
        headers={"HX-Request": "true", "HX-History-Restore-Request": "true"},
    )
    assert "<html" in restore.text

    first = staff.get("/admin/acme/members")
    ids = re.findall(r'href="/admin/acme/members/([^"]+)"', first.text)
    assert len(ids) == 50
    next_link = re.search(r'rel="next" href="([^"]+)"', first.text).group(1)  # type: ignore[union-attr]
    second = staff.get(next_link.replace("&amp;", "&"))
    more = re.findall(r'href="/admin/acme/members/([^"]+)"', second.text)
    assert len(more) == 11 and not set(ids) & set(more)
    assert 'rel="next"' not in second.text

    none = staff.get("/admin/acme/members", params={"q": "nobody-like-this"})
    assert "No member matches this search." in none.text


def test_search_escapes_like_wildcards(staff) -> None:
    add_member(external_id="a", name="100% real")
    add_member(external_id="b", name="1000 real")
    page = staff.get("/admin/acme/members", params={"q": "100%"})
    assert ">a<" in page.text and ">b<" not in page.text


def test_member_detail_profile_attributes_timeline(staff) -> None:
    add_member(
        external_id="team/42",
        name="Minji",
        email="minji@example.com",
        locale="ko",
        attributes={"plan": "pro", "seats": 3},
        marketing_consent=True,
    )
    add_events(
        "acme",
        [
            {"id": "a", "type": "signup", "member": "team/42", "occurred_at": _ago(days=3)},
            {
                "id": "b",
                "type": "share",
                "member": "team/42",
                "target": "friend",
                "occurred_at": _ago(days=1),
                "properties": {"channel": "kakaotalk"},
            },
        ],
    )
    listing = staff.get("/admin/acme/members", params={"q": "minji"})
    assert 'href="/admin/acme/members/team%2F42"' in listing.text
    page = staff.get("/admin/acme/members/team%2F42")
    assert page.status_code == 200
    assert 'data-testid="member-heading">Minji<' in page.text
    assert "minji@example.com" in page.text and "한국어" in page.text
    assert "<code>plan</code></th><td>pro</td>" in page.text
    assert "<code>seats</code></th><td>3</td>" in page.text
    timeline = page.text.split('data-testid="timeline"', 1)[1]
    assert timeline.index("share") < timeline.index("signup")  # newest first
    assert 'href="/admin/acme/members/friend"' in timeline and "kakaotalk" in timeline


def test_member_of_another_program_is_not_found(staff, other_program) -> None:
    add_member("other", external_id="theirs", name="Theirs")
    assert staff.get("/admin/acme/members/theirs").status_code == 404
    assert "Theirs" not in staff.get("/admin/acme/members").text
    assert staff.get("/admin/nope").status_code == 404


def test_bad_cursor_names_the_field(staff) -> None:
    r = staff.get("/admin/acme/members", params={"cursor": "%%%"})
    assert r.status_code == 422
    assert "cursor" in r.text


# --- HTML in member data is inert everywhere ------------------------------------------------


def _assert_inert(body: str, where: str) -> None:
    assert XSS not in body, f"raw <script> in {where}"
    assert "<img src=x" not in body, f"raw <img> in {where}"


def test_html_in_member_data_is_inert_on_every_page(app, anon_client, program) -> None:
    from fastapi.testclient import TestClient

    from budding.core.auth import MEMBER_COOKIE, member_cookie_value

    add_member(
        external_id=XSS,
        name=XSS,
        email="xss@example.com",
        attributes={XSS: XSS, "nested": {"html": XSS_ATTR}, "list": [XSS]},
    )
    add_events(
        "acme",
        [
            {
                "id": "x1",
                "type": "post",
                "member": XSS,
                "target": XSS_ATTR,
                "occurred_at": _ago(minutes=5),
                "properties": {XSS: XSS, "title": XSS_ATTR, "deep": {"a": [XSS]}},
            }
        ],
    )
    token = staff_client(anon_client, role="owner", email="owner@example.com")
    anon_client.post(
        "/admin/acme/api-keys", data={"name": XSS, "csrf_token": token}
    )  # key names too
    anon_client.post(
        "/admin/users",
        data={"email": "x@example.com", "name": XSS, "role": "analyst", "password": "x" * 12},
        headers={"X-CSRF-Token": token},
    )
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    admin_pages = {  # path: whether the member data (escaped) shows there
        "/admin?all=1": False,
        "/admin/acme": True,
        "/admin/acme/members": True,
        f"/admin/acme/members?q={XSS}": True,
        "/admin/acme/members/%3Cscript%3Ealert(1)%3C%2Fscript%3E": True,
        "/admin/acme/members/%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert(2)%3E": False,
        "/admin/acme/api-keys": True,
        "/admin/users": True,
    }
    for path, shows in admin_pages.items():
        page = anon_client.get(path)
        assert page.status_code == 200, path
        _assert_inert(page.text, path)
        assert not shows or escaped in page.text, path
    partial = anon_client.get(
        "/admin/acme/members", params={"q": "script"}, headers={"HX-Request": "true"}
    )
    _assert_inert(partial.text, "live search")
    assert "&lt;script&gt;" in partial.text

    with unit_of_work() as s:
        member = service.find_member_by_email(s, program.id, "xss@example.com")
        assert member is not None
        cookie = member_cookie_value(program.id, member.id)
    with TestClient(app) as portal:
        portal.cookies.set(MEMBER_COOKIE, cookie, path="/p/acme")
        page = portal.get("/p/acme/profile")
        assert page.status_code == 200
        _assert_inert(page.text, "portal profile")
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        r = portal.post(
            "/p/acme/profile",
            data={"name": XSS_ATTR, "locale": "", "csrf_token": member_csrf_token(cookie)},
        )
        assert r.status_code == 200
        _assert_inert(r.text, "portal profile after edit")
        assert "&#34;&gt;&lt;img src=x onerror=alert(2)&gt;" in r.text
    sign_in = anon_client.post("/p/acme/sign-in", data={"email": XSS})
    assert sign_in.status_code == 422
    _assert_inert(sign_in.text, "portal sign-in error")
    assert f'value="{escaped}"' in sign_in.text


def test_html_in_program_name_is_inert(anon_client) -> None:
    from tests.factories import make_program

    make_program("shop", name=XSS)
    staff_client(anon_client)
    for path in ("/admin/shop", "/admin/shop/members", "/admin?all=1"):
        _assert_inert(anon_client.get(path).text, path)
    for path in ("/p/shop/sign-in",):
        page = anon_client.get(path)
        _assert_inert(page.text, path)
        assert "&lt;script&gt;" in page.text
