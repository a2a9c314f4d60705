"""Referral links and attribution: through a redirect, a page change and an external-login
round trip; window and model; qualifying conversions."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select, update

from budding.core.db import unit_of_work
from budding.referrals.links import link_cache
from budding.referrals.models import Referral, ReferralClick
from budding.referrals.schemas import CONDITION_PATTERN
from tests.referrals.conftest import now_iso, set_settings


def _member(client, external_id: str) -> str:  # type: ignore[no-untyped-def]
    r = client.post(
        "/api/v1/members", json={"external_id": external_id, "email": f"{external_id}@example.com"}
    )
    assert r.status_code in (200, 201), r.text
    return client.get(f"/api/v1/members/{external_id}/referrals").json()["referral_code"]


def _click(browser, code: str, channel: str | None = None, **headers: str) -> str:  # type: ignore[no-untyped-def]
    url = f"/r/{code}" + (f"?ch={channel}" if channel else "")
    r = browser.get(url, follow_redirects=False, headers=headers)
    assert r.status_code == 302, r.text
    location = r.headers["location"]
    token = parse_qs(urlsplit(location).query)["bud_click"][0]
    assert browser.cookies.get("bud_click") == token
    return token


def _signup(client, external_id: str, expect: int = 1, **properties: Any) -> None:  # type: ignore[no-untyped-def]
    event = {
        "id": f"signup-{external_id}",
        "type": "signup",
        "member": external_id,
        "occurred_at": datetime.now(UTC).isoformat(),
        "properties": properties,
    }
    r = client.post("/api/v1/events", json={"events": [event]})
    assert r.status_code == 200 and r.json()["accepted"] == expect, r.text


def _referred(client, external_id: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    return client.get(f"/api/v1/members/{external_id}/referrals").json()["referred"]


def test_redirect_records_the_click_and_carries_its_id(client, anon_client) -> None:  # type: ignore[no-untyped-def]
    code = _member(client, "ann")
    r = anon_client.get(
        f"/r/{code.lower()}?ch=KakaoTalk",
        follow_redirects=False,
        headers={"user-agent": "Mozilla/5.0 (iPhone)", "x-forwarded-for": "203.0.113.9"},
    )
    assert r.status_code == 302
    assert r.headers["cache-control"] == "no-store"
    location = urlsplit(r.headers["location"])
    assert f"{location.scheme}://{location.netloc}/" == "https://example.com/"
    token = parse_qs(location.query)["bud_click"][0]
    with unit_of_work() as session:
        click = session.scalar(select(ReferralClick).where(ReferralClick.token == token))
        assert click is not None
        assert click.channel == "kakaotalk" and click.referrer_member_id is not None
        assert click.user_agent == "Mozilla/5.0 (iPhone)" and not click.bot
        assert len(click.ip_hash) == 32 and "203" not in click.ip_hash  # hashed, not stored
    assert anon_client.get("/r/NOSUCHCODE00", follow_redirects=False).status_code == 404
    bot = anon_client.get(
        f"/r/{code}", follow_redirects=False, headers={"user-agent": "facebookexternalhit/1.1"}
    )
    assert bot.status_code == 302
    with unit_of_work() as session:
        assert session.scalar(select(ReferralClick.bot).order_by(ReferralClick.id.desc()).limit(1))


def test_attribution_through_a_redirect(client, anon_client, reward_calls) -> None:  # type: ignore[no-untyped-def]
    code = _member(client, "ann")
    token = _click(anon_client, code, "whatsapp")
    _signup(client, "bob", bud_click=token)
    friends = _referred(client, "ann")
    assert [(f["external_id"], f["channel"]) for f in friends] == [("bob", "whatsapp")]
    assert [c["trigger"] for c in reward_calls] == ["signup"]
    # The same signup delivered again changes nothing.
    _signup(client, "bob", expect=0, bud_click=token)
    assert len(_referred(client, "ann")) == 1 and len(reward_calls) == 1


def test_attribution_by_referral_code_property(client) -> None:  # type: ignore[no-untyped-def]
    code = _member(client, "ann")
    _signup(client, "bob", referral_code=code.lower(), channel="line")
    assert [(f["external_id"], f["channel"]) for f in _referred(client, "ann")] == [("bob", "line")]
    tree = client.get("/api/v1/members/bob/referrals").json()
    assert tree["referrer"] == "ann" and tree["generation"] == 1


def test_attribution_through_a_page_change(client, anon_client, program) -> None:  # type: ignore[no-untyped-def]
    """The click id lives server-side; the browser's cookie finds it on another page."""
    set_settings(program.slug, mode="waitlist", waitlist_protected_top=0)
    code = _member(client, "ann")
    _click(anon_client, code, "telegram")
    page = anon_client.get("/p/acme/waitlist")  # a different page, no bud_click in its URL
    assert page.status_code == 200
    r = anon_client.post(
        "/p/acme/waitlist", data={"email": "newbie@example.com"}, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    me = anon_client.get(r.headers["location"])
    assert me.status_code == 200 and "#1" in me.text
    entry = client.get("/api/v1/waitlist/newbie@example.com").json()
    assert entry["position"] == 1
    # Confirmed, released, redeemed: the new member is ann's referral, through the waitlist.
    assert client.post("/api/v1/waitlist/newbie@example.com/confirm").status_code == 200
    released = client.post("/api/v1/waitlist/release", json={"count": 1}).json()["released"]
    invite = released[0]["invite_code"]
    r = client.post(
        f"/api/v1/invites/{invite}/redeem",
        json={"external_id": "newbie", "email": "newbie@example.com"},
    )
    assert r.status_code == 201, r.text
    assert (
        r.json()["referral"]["referrer"] == "ann" and r.json()["referral"]["source"] == "waitlist"
    )


def test_attribution_survives_an_external_login_round_trip(client, anon_client) -> None:  # type: ignore[no-untyped-def]
    """Click an invite link, leave for an identity provider, come back without the query
    string: the join is still credited to the link and its channel."""
    _member(client, "ann")
    invite = client.post("/api/v1/members/ann/invites", json={"count": 1}).json()["codes"][0]
    r = anon_client.get(f"/r/{invite['code']}?ch=email", follow_redirects=False)
    landing = r.headers["location"]
    assert f"/p/acme/join/{invite['code']}?bud_click=" in landing
    # Off to the identity provider (another site: it sees none of our cookies) and back
    # to the join page, whose URL no longer carries bud_click.
    idp_return = f"/p/acme/join/{invite['code']}"
    assert anon_client.get(idp_return).status_code == 200
    r = anon_client.post(
        idp_return, data={"name": "Bob", "email": "bob@example.com"}, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/p/acme/welcome"
    assert [(f["external_id"], f["channel"]) for f in _referred(client, "ann")] == [
        ("bob@example.com", "email")
    ]


def test_attribution_after_an_external_login_by_the_customers_backend(client) -> None:  # type: ignore[no-untyped-def]
    """The customer's site kept bud_click through its OAuth state; the signup event comes
    from its backend hours later, from another IP: the stored click is enough."""
    code = _member(client, "ann")
    from fastapi.testclient import TestClient

    from budding.core.web import create_app

    with TestClient(create_app()) as phone:
        token = _click(phone, code, "x")
    with unit_of_work() as session:  # the click was three hours ago
        session.execute(
            update(ReferralClick)
            .where(ReferralClick.token == token)
            .values(clicked_at=datetime.now(UTC) - timedelta(hours=3))
        )
    _signup(client, "bob", bud_click=token, ip="198.51.100.7")
    assert [(f["external_id"], f["channel"]) for f in _referred(client, "ann")] == [("bob", "x")]


def test_window_and_model(client, anon_client, program) -> None:  # type: ignore[no-untyped-def]
    ann = _member(client, "ann")
    cat = _member(client, "cat")
    # Outside the window: not attributed.
    old = _click(anon_client, ann)
    with unit_of_work() as session:
        session.execute(
            update(ReferralClick)
            .where(ReferralClick.token == old)
            .values(clicked_at=datetime.now(UTC) - timedelta(days=31))
        )
    anon_client.cookies.clear()
    _signup(client, "late", bud_click=old)
    assert _referred(client, "ann") == []
    # One browser clicks ann's link, then cat's: last touch credits cat.
    anon_client.cookies.clear()
    _click(anon_client, ann, "line")
    last = _click(anon_client, cat, "wechat")
    _signup(client, "bob", bud_click=last)
    assert [f["external_id"] for f in _referred(client, "cat")] == ["bob"]
    # First touch credits the first link clicked within the window.
    set_settings(program.slug, attribution_model="first_touch")
    anon_client.cookies.clear()
    _click(anon_client, ann, "line")
    last = _click(anon_client, cat, "wechat")
    _signup(client, "dan", bud_click=last)
    assert [(f["external_id"], f["channel"]) for f in _referred(client, "ann")] == [("dan", "line")]


def test_self_referral_and_loops_are_not_attributed(client) -> None:  # type: ignore[no-untyped-def]
    ann = _member(client, "ann")
    _signup(client, "ann", referral_code=ann)
    assert _referred(client, "ann") == []
    _signup(client, "bob", referral_code=ann)
    bob = client.get("/api/v1/members/bob/referrals").json()["referral_code"]
    # ann signing up "again" through bob's code would make a loop: refused.
    client.post(
        "/api/v1/events",
        json={
            "events": [
                {
                    "id": "again-ann",
                    "type": "signup",
                    "member": "ann",
                    "occurred_at": datetime.now(UTC).isoformat(),
                    "properties": {"referral_code": bob},
                }
            ]
        },
    )
    assert client.get("/api/v1/members/ann/referrals").json()["referrer"] is None


def _purchase(client, i: str, member: str, **props: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    event = {
        "id": f"purchase-{i}",
        "type": "purchase",
        "member": member,
        "occurred_at": datetime.now(UTC).isoformat(),
        "properties": props,
    }
    r = client.post("/api/v1/events", json={"events": [event]})
    assert r.status_code == 200, r.text
    return r.json()


def test_qualifying_conversion(client, program, reward_calls, webhook_calls) -> None:  # type: ignore[no-untyped-def]
    set_settings(program.slug, conversion_event="purchase", conversion_condition="amount >= 20")
    ann = _member(client, "ann")
    _signup(client, "bob", referral_code=ann)
    _purchase(client, "1", "bob", amount=10)
    assert _referred(client, "ann")[0]["converted_at"] is None
    _purchase(client, "2", "bob", amount="25.5")
    friend = _referred(client, "ann")[0]
    assert friend["converted_at"] is not None
    conversions = [c for c in reward_calls if c["trigger"] == "conversion"]
    assert len(conversions) == 1 and conversions[0]["trigger_key"] == "purchase-2"
    converted = [p for t, p in webhook_calls if t == "referral.converted"]
    assert len(converted) == 1 and converted[0]["referrer"] == "ann"
    assert converted[0]["referee"] == "bob" and converted[0]["conversion_event_id"] == "purchase-2"
    # A later qualifying purchase, and the same event again, convert nothing more.
    _purchase(client, "3", "bob", amount=99)
    assert _purchase(client, "2", "bob", amount="25.5")["duplicates"] == 1
    assert len([c for c in reward_calls if c["trigger"] == "conversion"]) == 1
    assert len([t for t, _ in webhook_calls if t == "referral.converted"]) == 1
    # A purchase by a member nobody referred converts nothing.
    _purchase(client, "4", "ann", amount=50)
    listed = client.get("/api/v1/referrals").json()
    assert [r["conversion_event_id"] for r in listed] == ["purchase-2"]
    assert len(client.get("/api/v1/referrals", params={"status": "active"}).json()) == 1
    bad = client.get("/api/v1/referrals", params={"status": "bogus"})
    assert bad.status_code == 422 and "status" in bad.json()["error"]["fields"]


def test_conversion_outside_the_window_does_not_count(client, program) -> None:  # type: ignore[no-untyped-def]
    ann = _member(client, "ann")
    _signup(client, "bob", referral_code=ann)
    with unit_of_work() as session:
        session.execute(
            update(Referral).values(signed_up_at=datetime.now(UTC) - timedelta(days=40))
        )
    _purchase(client, "late", "bob", amount=100)
    assert _referred(client, "ann")[0]["converted_at"] is None


def test_bad_settings_name_the_field(client) -> None:  # type: ignore[no-untyped-def]
    cases = {
        "mode": "secret",
        "invite_quota": -1,
        "attribution_window_days": 0,
        "attribution_model": "linear",
        "conversion_event": "Big Purchase",
        "conversion_condition": "amount >>= 3",
        "waitlist_skip_places": "many",
    }
    for name, value in cases.items():
        r = client.patch("/api/v1/referrals/settings", json={name: value})
        assert r.status_code == 422, (name, r.text)
        assert name in r.json()["error"]["fields"], (name, r.json())
    r = client.patch("/api/v1/referrals/settings", json={"unknown": 1})
    assert r.status_code == 422 and "unknown" in r.json()["error"]["fields"]
    # Nothing was saved by the refusals.
    assert client.get("/api/v1/referrals/settings").json()["mode"] == "open"
    r = client.patch("/api/v1/referrals/settings", json={"conversion_condition": " plan = 'pro' "})
    assert r.json()["conversion_condition"] == 'plan == "pro"'


def test_conversion_event_must_be_a_known_type(client, program, reward_calls) -> None:  # type: ignore[no-untyped-def]
    """An event type the program does not know is refused at ingestion, so a program
    converting on one would never convert: the setting is refused, naming the field and
    the accepted types, until the type is registered."""
    r = client.patch("/api/v1/referrals/settings", json={"conversion_event": "order.paid"})
    assert r.status_code == 422, r.text
    reason = r.json()["error"]["fields"]["conversion_event"]
    assert "order.paid" in reason and "purchase" in reason and "signup" in reason
    assert client.get("/api/v1/referrals/settings").json()["conversion_event"] == "purchase"
    r = client.post("/api/v1/event-types", json={"name": "order.paid"})
    assert r.status_code == 201, r.text
    r = client.patch("/api/v1/referrals/settings", json={"conversion_event": "order.paid"})
    assert r.status_code == 200 and r.json()["conversion_event"] == "order.paid", r.text
    ann = _member(client, "ann")
    _signup(client, "bob", referral_code=ann)
    event = {"id": "o1", "type": "order.paid", "member": "bob", "occurred_at": now_iso()}
    assert client.post("/api/v1/events", json={"events": [event]}).json()["accepted"] == 1
    assert _referred(client, "ann")[0]["converted_at"] is not None
    assert [c["trigger_key"] for c in reward_calls if c["trigger"] == "conversion"] == ["o1"]


def test_link_cache_is_only_a_cache(client, anon_client) -> None:  # type: ignore[no-untyped-def]
    code = _member(client, "ann")
    _click(anon_client, code)
    assert link_cache.get(code) is not None
    link_cache.clear()
    _click(anon_client, code)


def test_a_conditions_number_is_kept_exactly_and_must_be_finite(client) -> None:  # type: ignore[no-untyped-def]
    """The stored condition is the one given, written the way the schema states: no
    rounding of its number (``:g`` kept six digits: 123456789 became 1.23457e+08), and a
    number too large for a float (or "inf", "nan") is refused, not stored as inf."""
    for given, stored in {
        "amount >= 123456789": "amount >= 123456789",
        "amount > 0.1": "amount > 0.1",
        "amount < -2.5e-7": "amount < -2.5e-07",
        "amount <= 1e300": "amount <= 1e+300",
        "score == 7": "score == 7",
    }.items():
        r = client.patch("/api/v1/referrals/settings", json={"conversion_condition": given})
        assert r.status_code == 200, r.text
        assert r.json()["conversion_condition"] == stored
        assert re.match(CONDITION_PATTERN, stored), stored
    for bad in ("amount < 1e999", "amount < +8861E669061734833531", "amount >= inf", "x > nan"):
        r = client.patch("/api/v1/referrals/settings", json={"conversion_condition": bad})
        assert r.status_code == 422, (bad, r.text)
        assert "conversion_condition" in r.json()["error"]["fields"]
    assert client.get("/api/v1/referrals/settings").json()["conversion_condition"] == "score == 7"
