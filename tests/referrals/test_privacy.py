"""A member's referral clicks in their export and erasure: every click of the browser that
brought them in, not only the one the signup was credited to."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select

from budding.core.db import unit_of_work
from budding.referrals.models import ReferralClick

UA = "Mozilla/5.0 (Zoe's phone)"


def _click(browser: Any, code: str, channel: str) -> str:
    r = browser.get(
        f"/r/{code}?ch={channel}",
        follow_redirects=False,
        headers={"user-agent": UA, "x-forwarded-for": "203.0.113.77"},
    )
    assert r.status_code == 302, r.text
    return parse_qs(urlsplit(r.headers["location"]).query)["bud_click"][0]


def _clicks() -> list[tuple[str, str, str | None]]:
    with unit_of_work() as s:
        rows = s.execute(
            select(ReferralClick.ip_hash, ReferralClick.user_agent, ReferralClick.channel).order_by(
                ReferralClick.id
            )
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


def test_erasure_forgets_every_click_of_the_members_browser(client, anon_client) -> None:  # type: ignore[no-untyped-def]
    client.post("/api/v1/members", json={"external_id": "ann", "email": "ann@example.com"})
    code = client.get("/api/v1/members/ann/referrals").json()["referral_code"]
    _click(anon_client, code, "kakaotalk")
    token = _click(anon_client, code, "whatsapp")  # the same browser, a second time
    event = {
        "id": "signup-zoe",
        "type": "signup",
        "member": "zoe",
        "occurred_at": datetime.now(UTC).isoformat(),
        "properties": {"bud_click": token},
    }
    assert client.post("/api/v1/events", json={"events": [event]}).json()["accepted"] == 1
    assert client.get("/api/v1/members/zoe/referrals").json()["referrer"] == "ann"
    assert all(ip and ua == UA for ip, ua, _ in _clicks())

    exported = client.get("/api/v1/members/zoe/export").json()["referrals"]["clicks"]
    assert [(c["channel"], c["user_agent"]) for c in exported] == [
        ("kakaotalk", UA),
        ("whatsapp", UA),
    ]

    assert client.delete("/api/v1/members/zoe").status_code == 204
    # The rows stay (the program's click counts), without the browser's identifiers.
    assert _clicks() == [("", "", "kakaotalk"), ("", "", "whatsapp")]
    assert client.get("/api/v1/members/ann/referrals").json()["descendants"] == 1
