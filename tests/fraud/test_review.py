"""The review queue end to end: a held signup's referral and rewards wait; approval issues
them, rejection reverses them; the API and the member's export and erasure."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from budding.core.db import unit_of_work
from budding.fraud import service
from budding.fraud.models import FraudAssessment, FraudSignal
from budding.programs.service import get_program
from budding.rewards import rules

pytest.importorskip("budding.referrals.service")


def _rule(program: Any, **data: Any) -> None:
    with unit_of_work() as session:
        rules.create_rule(session, program, data)


def _invite(client: Any, owner: str) -> str:
    r = client.post("/api/v1/members", json={"external_id": owner, "email": f"{owner}@example.com"})
    assert r.status_code in (200, 201), r.text
    r = client.post(f"/api/v1/members/{owner}/invites", json={"count": 1})
    assert r.status_code == 201, r.text
    return str(r.json()["codes"][0]["code"])


def _points(client: Any, external_id: str) -> int:
    return int(client.get(f"/api/v1/members/{external_id}/points").json()["balance"])


@pytest.fixture
def held_signup(client, program) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Ann invites a friend who signs up on Ann's own device: held for review. Both sides
    have signup rewards; the referrer has a conversion reward too."""
    _rule(
        program, name="Referrer signup", side="referrer", trigger="signup", kind="points", amount=10
    )
    _rule(program, name="Friend signup", side="referee", trigger="signup", kind="points", amount=5)
    _rule(
        program,
        name="Referrer purchase",
        side="referrer",
        trigger="conversion",
        kind="points",
        amount=100,
    )
    login = {
        "id": "ann-login",
        "type": "login",
        "member": "ann",
        "occurred_at": datetime.now(UTC).isoformat(),
        "properties": {"device_id": "anns-phone"},
    }
    code = _invite(client, "ann")
    assert client.post("/api/v1/events", json={"events": [login]}).json()["accepted"] == 1
    r = client.post(
        f"/api/v1/invites/{code}/redeem",
        json={"external_id": "bea", "email": "bea@example.net", "device": "anns-phone"},
    )
    assert r.status_code == 201, r.text
    referral = r.json()["referral"]
    assert referral["status"] == "held"
    queue = client.get("/api/v1/fraud/assessments").json()["assessments"]
    assert len(queue) == 1 and queue[0]["reasons"] == ["self_device"]
    assert queue[0]["member"] == "bea" and queue[0]["referrer"] == "ann"
    purchase = {
        "id": "bea-buy-1",
        "type": "purchase",
        "member": "bea",
        "occurred_at": datetime.now(UTC).isoformat(),
        "properties": {"amount": 30},
    }
    assert client.post("/api/v1/events", json={"events": [purchase]}).json()["accepted"] == 1
    statuses = {r["rule"]: r["status"] for r in client.get("/api/v1/rewards").json()["rewards"]}
    assert statuses == {
        "Referrer signup": "held",
        "Friend signup": "held",
        "Referrer purchase": "held",
    }
    assert _points(client, "ann") == 0 and _points(client, "bea") == 0
    return {"assessment": queue[0]["id"], "referral": referral["id"]}


def test_approval_issues_the_held_rewards(client, held_signup) -> None:  # type: ignore[no-untyped-def]
    r = client.post(
        f"/api/v1/fraud/assessments/{held_signup['assessment']}/approve",
        json={"note": "her sister"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["review_status"] == "approved" and r.json()["review_note"] == "her sister"
    assert {x["status"] for x in client.get("/api/v1/rewards").json()["rewards"]} == {"issued"}
    assert _points(client, "ann") == 110 and _points(client, "bea") == 5
    assert client.get("/api/v1/fraud/assessments").json()["assessments"] == []
    # Approving again changes nothing; rejecting now is refused.
    assert (
        client.post(f"/api/v1/fraud/assessments/{held_signup['assessment']}/approve").status_code
        == 200
    )
    r = client.post(f"/api/v1/fraud/assessments/{held_signup['assessment']}/reject")
    assert r.status_code == 409 and r.json()["error"]["fields"] == {"status": "approved"}
    assert _points(client, "ann") == 110


def test_rejection_reverses_and_rejects_the_referral(client, program, held_signup) -> None:  # type: ignore[no-untyped-def]
    from budding.referrals import service as referrals

    r = client.post(
        f"/api/v1/fraud/assessments/{held_signup['assessment']}/reject", json={"note": "same phone"}
    )
    assert r.status_code == 200 and r.json()["review_status"] == "rejected"
    assert {x["status"] for x in client.get("/api/v1/rewards").json()["rewards"]} == {"reversed"}
    with unit_of_work() as session:
        assert referrals.get_referral(session, held_signup["referral"]).status == "rejected"
    assert _points(client, "ann") == 0
    # A later conversion of the rejected referral pays nothing.
    later = {
        "id": "bea-buy-2",
        "type": "purchase",
        "member": "bea",
        "occurred_at": datetime.now(UTC).isoformat(),
    }
    client.post("/api/v1/events", json={"events": [later]})
    assert _points(client, "ann") == 0


def test_rejecting_after_issue_takes_the_rewards_back(client, program) -> None:  # type: ignore[no-untyped-def]
    """A flagged (not held) signup is rewarded at once; rejecting it later reverses."""
    with unit_of_work() as session:
        service.update_settings(
            session, get_program(session, program.slug), {"checks": {"self_device": "flag"}}
        )
    _rule(
        program, name="Referrer signup", side="referrer", trigger="signup", kind="points", amount=10
    )
    code = _invite(client, "ann")
    client.post(
        "/api/v1/events",
        json={
            "events": [
                {
                    "id": "l",
                    "type": "login",
                    "member": "ann",
                    "occurred_at": datetime.now(UTC).isoformat(),
                    "properties": {"device": "d1"},
                }
            ]
        },
    )
    r = client.post(
        f"/api/v1/invites/{code}/redeem",
        json={"external_id": "bea", "email": "bea@example.net", "device": "d1"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["referral"]["status"] == "active"
    assert _points(client, "ann") == 10
    (item,) = client.get("/api/v1/fraud/assessments").json()["assessments"]
    assert item["action"] == "flag"
    client.post(f"/api/v1/fraud/assessments/{item['id']}/reject")
    assert _points(client, "ann") == 0


def test_blocked_signup_is_refused_and_recorded(client, program) -> None:  # type: ignore[no-untyped-def]
    code = _invite(client, "ann")
    r = client.post(
        f"/api/v1/invites/{code}/redeem", json={"external_id": "x", "email": "x@mailinator.com"}
    )
    assert r.status_code == 403
    assert client.get("/api/v1/members/x").status_code == 404
    # The refused signup rolled back with its unit of work: the API caller saw why.
    assert "disposable_email" in r.text


def test_api_lists_and_settings(client, program) -> None:  # type: ignore[no-untyped-def]
    with unit_of_work() as session:
        service.assess_signup(
            session,
            program,
            referrer_id=None,
            email="a@yopmail.com",
            ip_hash=None,
            device_hash=None,
            properties={},
        )
    assert client.get("/api/v1/fraud/assessments").json()["assessments"] == []  # blocked: no review
    blocked = client.get(
        "/api/v1/fraud/assessments", params={"status": "all", "action": "block"}
    ).json()
    assert [a["reasons"] for a in blocked["assessments"]] == [["disposable_email"]]
    r = client.get("/api/v1/fraud/assessments", params={"status": "maybe"})
    assert r.status_code == 422 and "status" in r.json()["error"]["fields"]
    assert client.get("/api/v1/fraud/assessments/424242").status_code == 404
    settings = client.get("/api/v1/fraud/settings").json()
    assert settings["checks"]["self_email"] == "block" and settings["ring_min_size"] == 4
    r = client.patch(
        "/api/v1/fraud/settings", json={"checks": {"self_ip": "hold"}, "velocity_ip_per_hour": 20}
    )
    assert r.status_code == 200
    assert r.json()["checks"]["self_ip"] == "hold" and r.json()["checks"]["self_email"] == "block"
    r = client.patch("/api/v1/fraud/settings", json={"checks": {"self_ip": "nuke"}})
    assert r.status_code == 422 and "checks.self_ip" in r.json()["error"]["fields"]
    r = client.patch("/api/v1/fraud/settings", json={"ring_min_size": 0})
    assert r.status_code == 422 and "ring_min_size" in r.json()["error"]["fields"]
    assert client.get("/api/v1/fraud/settings").json()["velocity_ip_per_hour"] == 20


def test_export_and_erase(client, program) -> None:  # type: ignore[no-untyped-def]
    code = _invite(client, "ann")
    r = client.post(
        f"/api/v1/invites/{code}/redeem",
        json={"external_id": "bea", "email": "bea@example.net", "ip": "192.0.2.1"},
    )
    assert r.status_code == 201, r.text
    exported = client.get("/api/v1/members/bea/export").json()["fraud"]["fraud_assessments"]
    assert exported[0]["action"] == "allow" and exported[0]["email_domain"] == "example.net"
    assert client.delete("/api/v1/members/bea").status_code == 204
    with unit_of_work() as session:
        row = session.query(FraudAssessment).one()
        assert (row.email_key, row.ip_hash, row.email_domain) == ("", "", "")
        assert row.action == "allow"
        assert (
            session.query(FraudSignal).filter(FraudSignal.member_id == row.member_id).count() == 0
        )


def test_friend_paying_with_the_referrers_card_is_held_at_the_purchase(client, program) -> None:  # type: ignore[no-untyped-def]
    _rule(
        program,
        name="Referrer purchase",
        side="referrer",
        trigger="conversion",
        kind="points",
        amount=100,
    )
    code = _invite(client, "ann")
    now = datetime.now(UTC).isoformat()
    ann_buys = {
        "id": "ann-buy",
        "type": "purchase",
        "member": "ann",
        "occurred_at": now,
        "properties": {"payment_fingerprint": "fp-ann"},
    }
    assert client.post("/api/v1/events", json={"events": [ann_buys]}).json()["accepted"] == 1
    r = client.post(
        f"/api/v1/invites/{code}/redeem", json={"external_id": "bea", "email": "bea@example.net"}
    )
    assert r.status_code == 201 and r.json()["referral"]["status"] == "active"
    bea_buys = {
        "id": "bea-buy",
        "type": "purchase",
        "member": "bea",
        "occurred_at": now,
        "properties": {"payment_fingerprint": "fp-ann"},
    }
    assert client.post("/api/v1/events", json={"events": [bea_buys]}).json()["accepted"] == 1
    (item,) = client.get("/api/v1/fraud/assessments").json()["assessments"]
    assert item["reasons"] == ["self_payment"] and item["action"] == "hold"
    assert [r["status"] for r in client.get("/api/v1/rewards").json()["rewards"]] == ["held"]
    # The referral says why it is held, as one held at its signup does.
    (referral,) = client.get("/api/v1/referrals").json()
    assert referral["status"] == "held" and referral["fraud_reasons"] == ["self_payment"]
    # Her own card on a later purchase is not the referrer's: nothing more to review.
    again = {
        "id": "bea-buy-2",
        "type": "purchase",
        "member": "bea",
        "occurred_at": now,
        "properties": {"payment_fingerprint": "fp-bea"},
    }
    client.post("/api/v1/events", json={"events": [again]})
    assert len(client.get("/api/v1/fraud/assessments").json()["assessments"]) == 1
    client.post(f"/api/v1/fraud/assessments/{item['id']}/approve")
    assert _points(client, "ann") == 100
