"""The rewards API: rules CRUD, rewards list and review, coupon uploads; errors name the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.rewards.helpers import deliver, member, rewards, rule


def test_rule_crud(client) -> None:  # type: ignore[no-untyped-def]
    body = {
        "name": "Friend points",
        "side": "referee",
        "trigger": "signup",
        "kind": "points",
        "amount": 50,
    }
    r = client.post("/api/v1/reward-rules", json=body)
    assert r.status_code == 201, r.text
    rule_id = r.json()["id"]
    assert r.json()["milestone"] is None and r.json()["active"] is True
    r = client.patch(f"/api/v1/reward-rules/{rule_id}", json={"amount": 75, "vesting_days": 14})
    assert r.status_code == 200 and r.json()["amount"] == 75 and r.json()["vesting_days"] == 14
    assert [x["name"] for x in client.get("/api/v1/reward-rules").json()] == ["Friend points"]
    assert client.delete(f"/api/v1/reward-rules/{rule_id}").status_code == 204
    assert client.get("/api/v1/reward-rules").json() == []
    assert client.get(f"/api/v1/reward-rules/{rule_id}").status_code == 404


def test_rule_errors_name_the_field(client) -> None:  # type: ignore[no-untyped-def]
    base = {"name": "R", "side": "referrer", "trigger": "conversion", "kind": "points", "amount": 5}
    cases = [
        ({"side": "nobody"}, "side", 422),
        ({"amount": 0}, "amount", 422),
        ({"amount": -3}, "amount", 422),
        ({"kind": "coupon", "amount": 0}, "pool", 422),
        ({"kind": "coupon", "pool": "missing"}, "pool", 404),
        ({"trigger": "milestone"}, "milestone", 422),
        ({"trigger": "milestone", "milestone": 3, "side": "referee"}, "side", 422),
        ({"milestone": 3}, "milestone", 422),
        ({"vesting_days": -1}, "vesting_days", 422),
        ({"name": ""}, "name", 422),
        ({"colour": "red"}, "colour", 422),
    ]
    for change, name, status in cases:
        r = client.post("/api/v1/reward-rules", json={**base, **change})
        assert r.status_code == status, (change, r.text)
        assert name in r.json()["error"]["fields"], (change, r.json())
    assert client.get("/api/v1/reward-rules").json() == []  # nothing half-written
    r = client.post("/api/v1/reward-rules", json=base)
    r = client.patch(
        f"/api/v1/reward-rules/{r.json()['id']}", json={"kind": "invites", "amount": 0}
    )
    assert r.status_code == 422 and "amount" in r.json()["error"]["fields"]


def test_payload_beyond_64_bit_integers_is_refused(client) -> None:  # type: ignore[no-untyped-def]
    """A custom reward's payload goes into its webhook, encoded by orjson: an integer it
    cannot encode names the field (it was a 500), on create and on update."""
    base = {"name": "R", "side": "referrer", "trigger": "conversion", "kind": "custom"}
    r = client.post("/api/v1/reward-rules", json={**base, "payload": {"n": 2**64}})
    assert r.status_code == 422, r.text
    assert "payload" in r.json()["error"]["fields"]
    assert client.get("/api/v1/reward-rules").json() == []
    rule_id = client.post("/api/v1/reward-rules", json=base).json()["id"]
    r = client.patch(f"/api/v1/reward-rules/{rule_id}", json={"payload": {"n": [-(2**70)]}})
    assert r.status_code == 422, r.text
    assert "payload" in r.json()["error"]["fields"]
    assert client.get(f"/api/v1/reward-rules/{rule_id}").json()["payload"] == {}


def test_list_approve_reject(client, program) -> None:  # type: ignore[no-untyped-def]
    ann, bob = member(program, "ann"), member(program, "bob")
    rule(
        program,
        name="Vested",
        side="referrer",
        trigger="conversion",
        kind="points",
        amount=10,
        vesting_days=30,
    )
    now = datetime.now(UTC)
    deliver(
        program, referral_id=1, referrer_id=ann, referee_id=bob, trigger_key="a", occurred_at=now
    )
    deliver(
        program, referral_id=1, referrer_id=ann, referee_id=bob, trigger_key="b", occurred_at=now
    )
    listed = client.get("/api/v1/rewards", params={"member": "ann", "status": "pending"}).json()
    assert [r["trigger_key"] for r in listed["rewards"]] == ["b", "a"]
    first, second = listed["rewards"][1]["id"], listed["rewards"][0]["id"]
    r = client.post(f"/api/v1/rewards/{first}/approve", json={"reason": "looks fine"})
    assert r.status_code == 200 and r.json()["status"] == "issued"
    r = client.post(f"/api/v1/rewards/{second}/reject")
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    r = client.post(f"/api/v1/rewards/{second}/approve")
    assert r.status_code == 409 and r.json()["error"]["fields"] == {"status": "rejected"}
    assert client.get("/api/v1/members/ann/points").json()["balance"] == 10
    assert client.post("/api/v1/rewards/999999/approve").status_code == 404
    page = client.get("/api/v1/rewards", params={"limit": 1}).json()
    assert len(page["rewards"]) == 1 and page["next_cursor"]
    rest = client.get("/api/v1/rewards", params={"cursor": page["next_cursor"]}).json()
    assert len(rest["rewards"]) == 1 and rest["next_cursor"] is None


def test_list_errors_name_the_field(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/api/v1/rewards", params={"status": "lost"})
    assert r.status_code == 422 and "status" in r.json()["error"]["fields"]
    r = client.get("/api/v1/rewards", params={"member": "nobody"})
    assert r.status_code == 404 and "external_id" in r.json()["error"]["fields"]
    r = client.get("/api/v1/rewards", params={"cursor": "%%%"})
    assert r.status_code == 422 and "cursor" in r.json()["error"]["fields"]


def test_read_only_key_cannot_review(client, program) -> None:  # type: ignore[no-untyped-def]
    from tests.factories import make_api_key

    key = make_api_key(program.id, role="analyst")
    r = client.post("/api/v1/rewards/1/approve", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 403
    r = client.get("/api/v1/rewards", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200


def test_coupon_upload(client) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/api/v1/coupon-pools", json={"name": "spring-10", "description": "10% off"})
    assert r.status_code == 201 and r.json()["available"] == 0
    csv = "code,value\nAAA-1,10\nAAA-2,10\nAAA-1,10\n,10\nbad code,10\n"
    r = client.post(
        "/api/v1/coupon-pools/spring-10/codes", content=csv, headers={"content-type": "text/csv"}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["added"], body["duplicates"], body["available"]) == (2, 1, 2)
    assert set(body["rejected"]) == {"5", "6"}
    # As a form file, into a new pool; again: nothing is stored twice.
    for expected in (3, 0):
        r = client.post(
            "/api/v1/coupon-pools/summer/codes",
            files={"file": ("codes.csv", b"S1\nS2\nS3\n", "text/csv")},
        )
        assert r.status_code == 200 and r.json()["added"] == expected
    pools = {p["name"]: p for p in client.get("/api/v1/coupon-pools").json()}
    assert pools["summer"]["available"] == 3 and pools["spring-10"]["description"] == "10% off"
    r = client.post(
        "/api/v1/coupon-pools/x/codes", content=b"", headers={"content-type": "text/csv"}
    )
    assert r.status_code == 422 and "file" in r.json()["error"]["fields"]
    r = client.post(
        "/api/v1/coupon-pools/x/codes", content=b"\xff\xfe", headers={"content-type": "text/csv"}
    )
    assert r.status_code == 422 and "file" in r.json()["error"]["fields"]
    # no line holds a valid code: refused as a whole, and no empty pool is left behind
    r = client.post(
        "/api/v1/coupon-pools/autumn/codes",
        content=b"bad code\n\x01\n",
        headers={"content-type": "text/csv"},
    )
    assert r.status_code == 422, r.text
    assert "line 1" in r.json()["error"]["fields"]["file"]
    assert "autumn" not in {p["name"] for p in client.get("/api/v1/coupon-pools").json()}
    r = client.post(
        "/api/v1/coupon-pools/bad name!/codes", content=b"A\n", headers={"content-type": "text/csv"}
    )
    assert r.status_code == 422
    assert r.json()["error"]["fields"]["name"].startswith("use letters, digits")  # not a regex
    r = client.post("/api/v1/coupon-pools", json={"name": ""})
    assert r.status_code == 422 and "name" in r.json()["error"]["fields"]


def test_a_broken_multipart_upload_is_a_malformed_body(client) -> None:  # type: ignore[no-untyped-def]
    """A form upload whose body cannot be parsed as multipart/form-data is refused like
    malformed JSON elsewhere: 400, a precise code, the field ``body`` and the parser's
    reason; nothing is stored."""
    url = "/api/v1/coupon-pools/winter/codes"
    broken = [
        # no boundary in the Content-Type
        (b"S1\n", "multipart/form-data"),
        # not multipart at all, though the Content-Type says so
        (b"S1\nS2\n", "multipart/form-data; boundary=xyz"),
        # a part without a name
        (
            b'--xyz\r\nContent-Disposition: form-data; filename="c.csv"\r\n\r\nS1\r\n--xyz--\r\n',
            "multipart/form-data; boundary=xyz",
        ),
    ]
    for content, content_type in broken:
        r = client.post(url, content=content, headers={"content-type": content_type})
        assert r.status_code == 400, (content, r.text)
        error = r.json()["error"]
        assert error["code"] == "malformed_multipart", error
        assert "body" in error["message"] and "multipart/form-data" in error["message"]
        assert set(error["fields"]) == {"body"}
        assert error["fields"]["body"].startswith("is not valid multipart/form-data: ")
    assert "winter" not in {p["name"] for p in client.get("/api/v1/coupon-pools").json()}


def test_refund_event_reverses_through_the_listener(client, program) -> None:  # type: ignore[no-untyped-def]
    """A refund event naming the purchase (``refund_of``) or its order (``order_id``) takes
    the conversion's rewards back: compensating entries, the balance back where it was."""
    ann, bob = member(program, "ann"), member(program, "bob")
    rule(program, name="Points", side="referrer", trigger="conversion", kind="points", amount=100)
    now = datetime.now(UTC) - timedelta(hours=1)
    purchases = [
        {
            "id": "buy-1",
            "type": "purchase",
            "member": "bob",
            "occurred_at": now.isoformat(),
            "properties": {"order_id": "A1"},
        },
        {
            "id": "buy-2",
            "type": "purchase",
            "member": "bob",
            "occurred_at": now.isoformat(),
            "properties": {"order_id": "A2"},
        },
    ]
    assert client.post("/api/v1/events", json={"events": purchases}).json()["accepted"] == 2
    for key in ("buy-1", "buy-2"):  # what the referrals capability does for each conversion
        deliver(
            program,
            referral_id=1,
            referrer_id=ann,
            referee_id=bob,
            trigger_key=key,
            occurred_at=now,
        )
    assert client.get("/api/v1/members/ann/points").json()["balance"] == 200
    later = (now + timedelta(minutes=5)).isoformat()
    refunds = [
        {
            "id": "ref-1",
            "type": "refund",
            "member": "bob",
            "occurred_at": later,
            "properties": {"refund_of": "buy-1"},
        },
        {
            "id": "ref-2",
            "type": "refund",
            "member": "bob",
            "occurred_at": later,
            "properties": {"order_id": "A2"},
        },
    ]
    assert client.post("/api/v1/events", json={"events": refunds}).json()["accepted"] == 2
    points = client.get("/api/v1/members/ann/points").json()
    assert points["balance"] == 0
    assert sorted(e["points"] for e in points["entries"]) == [-100, -100, 100, 100]
    assert {r["status"] for r in rewards(program)} == {"reversed"}
    # The same refunds again (new event ids): nothing more is taken.
    again = [dict(e, id=e["id"] + "-retry") for e in refunds]
    client.post("/api/v1/events", json={"events": again})
    assert client.get("/api/v1/members/ann/points").json()["balance"] == 0


def test_member_export_has_rewards_and_points(client, program) -> None:  # type: ignore[no-untyped-def]
    ann, bob = member(program, "ann"), member(program, "bob")
    rule(program, name="Points", side="referrer", trigger="signup", kind="points", amount=3)
    deliver(
        program, referral_id=1, referrer_id=ann, referee_id=bob, trigger="signup", trigger_key="s"
    )
    data = client.get("/api/v1/members/ann/export").json()
    assert data["rewards"]["rewards"][0]["rule"] == "Points"
    assert data["honors"]["points_balance"] == 3


def test_other_programs_rewards_are_invisible(client, program, other_program) -> None:  # type: ignore[no-untyped-def]
    from tests.factories import make_api_key

    ann, bob = member(program, "ann"), member(program, "bob")
    rule(program, name="P", side="referrer", trigger="signup", kind="points", amount=1)
    deliver(
        program, referral_id=1, referrer_id=ann, referee_id=bob, trigger="signup", trigger_key="s"
    )
    (row,) = rewards(program)
    other = {"Authorization": f"Bearer {make_api_key(other_program.id)}"}
    assert client.get("/api/v1/rewards", headers=other).json()["rewards"] == []
    assert client.get(f"/api/v1/rewards/{row['id']}", headers=other).status_code == 404
    assert client.post(f"/api/v1/rewards/{row['id']}/reject", headers=other).status_code == 404
    assert client.get("/api/v1/reward-rules", headers=other).json() == []
