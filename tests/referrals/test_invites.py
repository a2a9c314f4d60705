"""Invite codes: issue within the quota, redeem within the uses, revoke, expire; GET never
consumes; the quota ledger."""

from __future__ import annotations

from datetime import timedelta

from budding.core.db import unit_of_work, utcnow
from budding.programs import service as programs
from budding.referrals import service
from budding.referrals.codes import ALPHABET, CODE_LENGTH, format_code, new_code, normalise_code
from budding.referrals.models import InviteCode
from tests.referrals.conftest import set_settings


def _member(client, external_id: str, email: str | None = None) -> None:  # type: ignore[no-untyped-def]
    body = {"external_id": external_id, "email": email or f"{external_id}@example.com"}
    assert client.post("/api/v1/members", json=body).status_code == 201


def test_codes_are_readable_and_unguessable() -> None:
    codes = {new_code() for _ in range(2000)}
    assert len(codes) == 2000
    assert all(len(c) == CODE_LENGTH and set(c) <= set(ALPHABET) for c in codes)
    assert CODE_LENGTH * 5 >= 60  # bits
    assert not set("ILOU") & set(ALPHABET)
    code = "7K3MQ9XW2BDE"
    assert format_code(code) == "7K3M-Q9XW-2BDE"
    assert normalise_code(" 7k3m-q9xw-2bde ") == code
    assert normalise_code("7K3M Q9XW 2BDE") == code
    assert normalise_code("OIL0") is None  # too short
    assert normalise_code("0IL00000000O") == "011000000000"  # O->0, I/L->1
    assert normalise_code("hello world!") is None


def test_issue_respects_quota_and_409_says_what_is_left(client) -> None:  # type: ignore[no-untyped-def]
    _member(client, "ann")
    r = client.post("/api/v1/members/ann/invites", json={"count": 2})
    assert r.status_code == 201, r.text
    body = r.json()
    assert len(body["codes"]) == 2 and body["quota"] == 3 and body["left"] == 1
    assert all(c["status"] == "available" and c["uses"] == 1 for c in body["codes"])
    r = client.post("/api/v1/members/ann/invites", json={"count": 2})
    assert r.status_code == 409
    err = r.json()["error"]
    assert err["code"] == "quota_exceeded" and err["remaining"] == 1 and err["quota"] == 3
    assert "count" in err["fields"]
    summary = client.get("/api/v1/members/ann/invites").json()
    assert (summary["quota"], summary["issued"], summary["redeemed"], summary["left"]) == (
        3,
        2,
        0,
        1,
    )


def test_every_answer_names_the_codes_issuer(client) -> None:  # type: ignore[no-untyped-def]
    """``issuer`` is the issuing member's external id wherever a code is shown (it was null
    everywhere but the list), and null for the team's codes."""
    _member(client, "ann")
    issued = client.post("/api/v1/members/ann/invites", json={"count": 2}).json()["codes"]
    code, other = issued[0]["code"], issued[1]["code"]
    team = client.post("/api/v1/invites", json={"count": 1}).json()["codes"][0]
    redeemed = client.post(
        f"/api/v1/invites/{code}/redeem", json={"external_id": "bob", "email": "bob@example.com"}
    ).json()["invite"]
    answers = [
        *issued,
        *client.get("/api/v1/members/ann/invites").json()["codes"],
        *client.get("/api/v1/invites", params={"member": "ann"}).json(),
        client.get(f"/api/v1/invites/{code}").json(),
        client.post(f"/api/v1/invites/{other}/revoke").json(),
        redeemed,
    ]
    assert [a["issuer"] for a in answers] == ["ann"] * 9
    assert team["issuer"] is None
    assert client.get(f"/api/v1/invites/{team['code']}").json()["issuer"] is None


def test_bad_input_names_the_field(client) -> None:  # type: ignore[no-untyped-def]
    _member(client, "ann")
    r = client.post("/api/v1/members/ann/invites", json={"count": 0})
    assert r.status_code == 422 and "count" in r.json()["error"]["fields"]
    r = client.post("/api/v1/members/nobody/invites", json={"count": 1})
    assert r.status_code == 404 and "external_id" in r.json()["error"]["fields"]
    code = client.post("/api/v1/members/ann/invites", json={"count": 1}).json()["codes"][0]["code"]
    r = client.post(f"/api/v1/invites/{code}/redeem", json={"external_id": "bob", "email": "nope"})
    assert r.status_code == 422 and "email" in r.json()["error"]["fields"]
    r = client.post(f"/api/v1/invites/{code}/redeem", json={"email": "bob@example.com"})
    assert r.status_code == 422 and "external_id" in r.json()["error"]["fields"]
    r = client.post(
        f"/api/v1/invites/{code}/redeem",
        json={"external_id": "bob", "email": "bob@example.com", "locale": "klingon"},
    )
    assert r.status_code == 422 and "locale" in r.json()["error"]["fields"]
    # Nothing was consumed by the refused attempts.
    assert client.get(f"/api/v1/invites/{code}").json()["used"] == 0


def test_redeem_creates_member_and_referral(client, reward_calls) -> None:  # type: ignore[no-untyped-def]
    _member(client, "ann")
    code = client.post("/api/v1/members/ann/invites", json={"count": 1}).json()["codes"][0]["code"]
    r = client.post(
        f"/api/v1/invites/{format_code(code).lower()}/redeem",
        json={"external_id": "bob", "email": "Bob@Example.com", "name": "Bob", "locale": "ko-KR"},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["member"]["external_id"] == "bob" and body["member"]["locale"] == "ko"
    assert body["referrer"]["external_id"] == "ann"
    assert body["referral"]["referrer"] == "ann" and body["referral"]["source"] == "invite"
    assert body["referral"]["generation"] == 1
    assert body["invite"]["status"] == "used" and body["invite"]["redeemed_by"] == ["bob"]
    # The signup was reported to rewards once, keyed by the referral.
    signups = [c for c in reward_calls if c["trigger"] == "signup"]
    assert (
        len(signups) == 1
        and signups[0]["trigger_key"] == f"referral:{body['referral']['id']}:signup"
    )
    # The signup is in the event log.
    events = client.get("/api/v1/events", params={"member": "bob"}).json()["events"]
    assert [e["type"] for e in events] == ["signup"]
    summary = client.get("/api/v1/members/ann/invites").json()
    assert summary["redeemed"] == 1 and summary["codes"][0]["redeemed_by"] == ["bob"]


def test_redeem_refusals(client) -> None:  # type: ignore[no-untyped-def]
    _member(client, "ann")
    codes = [
        c["code"]
        for c in client.post("/api/v1/members/ann/invites", json={"count": 3}).json()["codes"]
    ]
    new = {"external_id": "bob", "email": "bob@example.com"}
    assert client.post("/api/v1/invites/ZZZZZZZZZZZZ/redeem", json=new).status_code == 404
    assert client.post("/api/v1/invites/not-a-code!/redeem", json=new).status_code == 404
    assert client.post(f"/api/v1/invites/{codes[0]}/redeem", json=new).status_code == 201
    r = client.post(
        f"/api/v1/invites/{codes[0]}/redeem", json={"external_id": "c", "email": "c@example.com"}
    )
    assert r.status_code == 410 and r.json()["error"]["code"] == "invite_used_up"
    # Already a member: 409, and the code keeps its use.
    r = client.post(f"/api/v1/invites/{codes[1]}/redeem", json=new)
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_member"
    r = client.post(
        f"/api/v1/invites/{codes[1]}/redeem", json={"external_id": "x", "email": "ANN@example.com"}
    )
    assert r.status_code == 409 and "email" in r.json()["error"]["fields"]
    assert client.get(f"/api/v1/invites/{codes[1]}").json()["used"] == 0
    # Revoked.
    r = client.post(f"/api/v1/invites/{codes[1]}/revoke", json={"reason": "leaked"})
    assert r.status_code == 200 and r.json()["status"] == "revoked"
    r = client.post(
        f"/api/v1/invites/{codes[1]}/redeem", json={"external_id": "d", "email": "d@example.com"}
    )
    assert r.status_code == 410 and r.json()["error"]["code"] == "invite_revoked"
    # An unused revoked code gives its invite back.
    assert client.get("/api/v1/members/ann/invites").json()["left"] == 1
    # Expired.
    with unit_of_work() as session:
        row = session.query(InviteCode).filter_by(code=codes[2]).one()
        row.expires_at = utcnow() - timedelta(minutes=1)
    r = client.post(
        f"/api/v1/invites/{codes[2]}/redeem", json={"external_id": "e", "email": "e@example.com"}
    )
    assert r.status_code == 410 and r.json()["error"]["code"] == "invite_expired"
    assert client.get("/api/v1/members/e").status_code == 404


def test_get_never_consumes(client, anon_client) -> None:  # type: ignore[no-untyped-def]
    """Link previews and mail scanners GET the links; nothing is used up."""
    _member(client, "ann")
    invite = client.post("/api/v1/members/ann/invites", json={"count": 1}).json()["codes"][0]
    code = invite["code"]
    for _ in range(3):
        assert client.get(f"/api/v1/invites/{code}").status_code == 200
        assert client.get(f"/api/v1/invites/{code}/redeem").status_code == 405
        page = anon_client.get(
            f"/p/acme/join/{code}", headers={"user-agent": "Slackbot-LinkExpanding"}
        )
        assert page.status_code == 200 and code in page.text
        r = anon_client.get(f"/r/{code}", follow_redirects=False)  # an invite link shared as /r/
        assert r.status_code == 302 and f"/p/acme/join/{code}" in r.headers["location"]
    after = client.get(f"/api/v1/invites/{code}").json()
    assert after["used"] == 0 and after["status"] == "available"
    assert client.get("/api/v1/members").json()["members"].__len__() == 1


def test_code_uses_and_expiry_settings(client, program) -> None:  # type: ignore[no-untyped-def]
    set_settings(program.slug, code_uses=2, code_expiry_days=7, invite_quota=1)
    _member(client, "ann")
    invite = client.post("/api/v1/members/ann/invites", json={"count": 1}).json()["codes"][0]
    assert invite["uses"] == 2 and invite["expires_at"] is not None
    for who in ("b", "c"):
        r = client.post(
            f"/api/v1/invites/{invite['code']}/redeem",
            json={"external_id": who, "email": f"{who}@example.com"},
        )
        assert r.status_code == 201
    r = client.post(
        f"/api/v1/invites/{invite['code']}/redeem",
        json={"external_id": "d", "email": "d@example.com"},
    )
    assert r.status_code == 410


def test_grants_raise_the_quota_once_per_key(session, program, make_member) -> None:  # type: ignore[no-untyped-def]
    ann = make_member("ann", "ann@example.com")
    prog = programs.get_program(session, program.slug)
    from budding.members import service as members

    member = members.get_member_by_id(session, ann)
    service.grant_invites(session, prog, ann, 2, reason="reward", key="reward:1")
    service.grant_invites(session, prog, ann, 2, reason="reward", key="reward:1")  # a retry
    assert service.invite_summary(session, prog, member).quota == 5
    service.grant_invites(session, prog, ann, -2, reason="reversed", key="reward:1:reversal")
    assert service.invite_summary(session, prog, member).quota == 3


def test_staff_codes_and_listing(client) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/api/v1/invites", json={"count": 3, "uses": 10, "note": "launch party"})
    assert r.status_code == 201
    codes = r.json()["codes"]
    assert len(codes) == 3 and codes[0]["uses"] == 10
    listed = client.get("/api/v1/invites", params={"status": "available"}).json()
    assert {c["code"] for c in listed} == {c["code"] for c in codes}
    assert all(c["issuer"] is None for c in listed)
    r = client.post(
        f"/api/v1/invites/{codes[0]['code']}/redeem",
        json={"external_id": "x", "email": "x@example.com"},
    )
    assert r.status_code == 201 and r.json()["referrer"] is None and r.json()["referral"] is None
    r = client.get("/api/v1/invites", params={"status": "bogus"})
    assert r.status_code == 422 and "status" in r.json()["error"]["fields"]


def test_programs_are_isolated(client, other_program) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from budding.core.web import create_app
    from tests.factories import make_api_key

    _member(client, "ann")
    code = client.post("/api/v1/members/ann/invites", json={"count": 1}).json()["codes"][0]["code"]
    with TestClient(create_app()) as other:
        other.headers["Authorization"] = f"Bearer {make_api_key(other_program.id)}"
        r = other.post(
            f"/api/v1/invites/{code}/redeem", json={"external_id": "x", "email": "x@example.com"}
        )
        assert r.status_code == 404
        assert other.get(f"/api/v1/invites/{code}").status_code == 404
