"""A signup the fraud checks block is refused, and the refusal is kept: its assessment
(the review queue's "blocked" tab, the velocity limits' counts) survives the refused
request, on the API and on the portal's pages alike. Nothing else of it is stored."""

from __future__ import annotations

from typing import Any

from tests.referrals.test_fraud_network import _assessments, _invite, _member_code


def _blocked(client: Any) -> list[dict[str, Any]]:
    r = client.get("/api/v1/fraud/assessments", params={"status": "all", "action": "block"})
    assert r.status_code == 200, r.text
    return list(r.json()["assessments"])


def test_a_blocked_redemption_is_refused_and_logged(client: Any) -> None:
    _member_code(client, "ann")
    code = _invite(client, "ann")
    r = client.post(
        f"/api/v1/invites/{code}/redeem",
        json={"external_id": "bot", "email": "bot@yopmail.com", "ip": "203.0.113.7"},
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "signup_blocked"
    (row,) = _blocked(client)
    assert row["reasons"] == ["disposable_email"]
    assert client.get("/api/v1/members/bot").status_code == 404  # nothing else stored
    assert client.get(f"/api/v1/invites/{code}").json()["used"] == 0


def test_a_blocked_waitlist_join_is_refused_and_logged(client: Any) -> None:
    code = _member_code(client, "ann")
    client.patch("/api/v1/referrals/settings", json={"mode": "waitlist"})
    r = client.post("/api/v1/waitlist", json={"email": "x@yopmail.com", "referral_code": code})
    assert r.status_code == 403
    assert len(_blocked(client)) == 1
    assert client.get("/api/v1/waitlist").json() == []


def test_a_blocked_join_on_the_portal_is_logged(client: Any, anon_client: Any) -> None:
    _member_code(client, "ann")
    code = _invite(client, "ann")
    r = anon_client.post(f"/p/acme/join/{code}", data={"name": "Bot", "email": "bot@yopmail.com"})
    assert r.status_code == 403 and "We could not accept this signup." in r.text
    assert [a.reasons for a in _assessments()] == [["disposable_email"]]
