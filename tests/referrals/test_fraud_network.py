"""The fraud checks get the network of the signup's IP (``properties["network_hash"]``) from
every referrals entry point that knows the IP: redemptions, waitlist joins and attributed
signups. Rings on rotating addresses of one network are seen only with it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from budding.core.db import unit_of_work
from budding.fraud import service as fraud
from budding.fraud.models import FraudAssessment


def _assessments() -> list[FraudAssessment]:
    with unit_of_work() as session:
        rows = list(session.scalars(select(FraudAssessment).order_by(FraudAssessment.id)))
        session.expunge_all()
        return rows


def _member_code(client, external_id: str) -> str:  # type: ignore[no-untyped-def]
    r = client.post(
        "/api/v1/members", json={"external_id": external_id, "email": f"{external_id}@example.com"}
    )
    assert r.status_code in (200, 201), r.text
    return str(client.get(f"/api/v1/members/{external_id}/referrals").json()["referral_code"])


def _invite(client, member: str) -> str:  # type: ignore[no-untyped-def]
    r = client.post(f"/api/v1/members/{member}/invites", json={"count": 1})
    assert r.status_code == 201, r.text
    return str(r.json()["codes"][0]["code"] if "codes" in r.json() else r.json()[0]["code"])


def _redeem(client, code: str, external_id: str, ip: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = client.post(
        f"/api/v1/invites/{code}/redeem",
        json={"external_id": external_id, "email": f"{external_id}@example.net", "ip": ip},
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_a_redemption_passes_the_network_of_its_ip(client) -> None:  # type: ignore[no-untyped-def]
    _member_code(client, "ann")
    _redeem(client, _invite(client, "ann"), "bea", "203.0.113.7")
    (row,) = _assessments()
    assert row.network_hash == fraud.hash_network("203.0.113.7")
    assert row.network_hash == fraud.hash_network("203.0.113.200")  # the same /24
    assert row.ip_hash == fraud.hash_ip("203.0.113.7") != row.network_hash


def test_a_waitlist_join_passes_the_network_of_its_ip(client) -> None:  # type: ignore[no-untyped-def]
    code = _member_code(client, "ann")
    client.patch("/api/v1/referrals/settings", json={"mode": "waitlist"})
    r = client.post(
        "/api/v1/waitlist",
        json={"email": "cy@example.net", "referral_code": code, "ip": "198.51.100.9"},
    )
    assert r.status_code in (200, 201), r.text
    (row,) = _assessments()
    assert row.network_hash == fraud.hash_network("198.51.100.9")


def _dee_signs_up(client, properties: dict[str, Any]) -> Any:  # type: ignore[no-untyped-def]
    """Dee, referred by Ann's code, sends a signup event carrying ``properties``."""
    code = _member_code(client, "ann")
    client.post("/api/v1/members", json={"external_id": "dee", "email": "dee@example.net"})
    event = {
        "id": "signup-dee",
        "type": "signup",
        "member": "dee",
        "occurred_at": datetime.now(UTC).isoformat(),
        "properties": {"referral_code": code, **properties},
    }
    return client.post("/api/v1/events", json={"events": [event]})


def test_an_attributed_signup_passes_the_network_of_its_ip(client) -> None:  # type: ignore[no-untyped-def]
    r = _dee_signs_up(client, {"ip": "192.0.2.44"})
    assert r.status_code == 200, r.text
    (row,) = _assessments()
    assert row.network_hash == fraud.hash_network("192.0.2.44")


def test_a_given_network_hash_is_kept(client) -> None:  # type: ignore[no-untyped-def]
    r = _dee_signs_up(client, {"ip": "192.0.2.44", "network_hash": "asn-64500"})
    assert r.status_code == 200
    (row,) = _assessments()
    assert row.network_hash == "asn-64500"


def test_a_ring_on_rotating_addresses_of_one_network_is_held(client) -> None:  # type: ignore[no-untyped-def]
    """Accounts of one /24, each on a new address, inviting each other: the ring check needs
    the network to see them (their IP hashes all differ)."""
    r = client.post("/api/v1/invites", json={"count": 1})
    assert r.status_code == 201, r.text
    team = r.json()["codes"][0]["code"] if "codes" in r.json() else r.json()[0]["code"]
    _redeem(client, team, "r0", "203.0.113.10")
    previous = "r0"
    for i in range(1, 6):
        _redeem(client, _invite(client, previous), f"r{i}", f"203.0.113.{10 + i}")
        previous = f"r{i}"
    rows = _assessments()
    assert len({r.ip_hash for r in rows}) == len(rows)  # every address differs
    assert any("ring" in (r.reasons or []) for r in rows)
