from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.factories import make_api_key


def test_upsert_creates_then_updates(client) -> None:
    r = client.post(
        "/api/v1/members", json={"external_id": "u1", "email": "Ann@Example.COM", "name": "Ann"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["email"] == "ann@example.com"
    r = client.post("/api/v1/members", json={"external_id": "u1", "locale": "ko-KR"})
    assert r.status_code == 200
    body = r.json()
    assert body["locale"] == "ko" and body["name"] == "Ann"  # fields left out stay


def test_invalid_email_names_field_and_stores_nothing(client) -> None:
    r = client.post("/api/v1/members", json={"external_id": "u1", "email": "not-an-email"})
    assert r.status_code == 422
    assert "email" in r.json()["error"]["fields"]
    assert client.get("/api/v1/members/u1").status_code == 404


def test_names_with_control_characters_are_refused(client) -> None:
    """A name goes into share messages and e-mails: no control characters (a \x01, a
    line break that would forge a new line of the message)."""
    for name in ("Ann\x01", "Ann\nP.S. click evil.example"):
        r = client.post("/api/v1/members", json={"external_id": "ann", "name": name})
        assert r.status_code == 422 and "name" in r.json()["error"]["fields"], r.text
    assert client.get("/api/v1/members/ann").status_code == 404


def test_malformed_json_is_400(client) -> None:
    r = client.post(
        "/api/v1/members", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "malformed_json"


def test_email_unique_per_program(client) -> None:
    client.post("/api/v1/members", json={"external_id": "a", "email": "x@example.com"})
    r = client.post("/api/v1/members", json={"external_id": "b", "email": "X@example.com"})
    assert r.status_code == 409
    assert r.json()["error"]["fields"] == {"email": "already taken"}


def _event(i: int, **kw):  # type: ignore[no-untyped-def]
    base = {
        "id": f"e{i}",
        "type": "visit",
        "member": f"m{i % 3}",
        "occurred_at": (datetime.now(UTC) - timedelta(minutes=i)).isoformat(),
    }
    base.update(kw)
    return base


def test_batch_counts_accepted_duplicates_rejected(client) -> None:
    events = [_event(i) for i in range(5)]
    events.append(_event(99, type="no_such_type"))
    events.append(_event(98, occurred_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat()))
    events.append({"id": "x", "type": "visit"})
    events.append(_event(0))  # repeated id inside the batch
    r = client.post("/api/v1/events", json={"events": events})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] == 5
    assert body["duplicates"] == 1
    assert [x["index"] for x in body["rejected"]] == [5, 6, 7]
    assert "type" in body["rejected"][0]["errors"]
    assert "occurred_at" in body["rejected"][1]["errors"]
    assert "member" in body["rejected"][2]["errors"]
    again = client.post("/api/v1/events", json={"events": events[:5]}).json()
    assert again == {"accepted": 0, "duplicates": 5, "rejected": []}
    listed = client.get("/api/v1/events", params={"limit": 100}).json()
    assert len(listed["events"]) == 5


def test_oversize_batch_and_properties(client) -> None:
    r = client.post("/api/v1/events", json={"events": [_event(i) for i in range(1001)]})
    assert r.status_code == 413
    big = _event(1, properties={"blob": "x" * 17000})
    r = client.post("/api/v1/events", json={"events": [big]})
    assert r.json()["rejected"][0]["errors"] == {
        "properties": "must be at most 16384 bytes as JSON"
    }
    assert client.get("/api/v1/events").json()["events"] == []


def test_event_pagination_and_filters(client) -> None:
    client.post(
        "/api/v1/events",
        json={"events": [_event(i, type="like" if i % 2 else "visit") for i in range(30)]},
    )
    seen = []
    cursor = None
    while True:
        params = {"limit": 7, "type": "visit"}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/v1/events", params=params).json()
        seen += [e["id"] for e in page["events"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 15 == len(set(seen))
    times = client.get("/api/v1/events", params={"member": "m1", "limit": 1000}).json()["events"]
    assert {e["member"] for e in times} == {"m1"}
    assert client.get("/api/v1/events", params={"cursor": "garbage!"}).status_code == 422


def test_auth_missing_key_and_other_program(client, anon_client, other_program) -> None:
    client.post("/api/v1/members", json={"external_id": "u1"})
    assert anon_client.get("/api/v1/members/u1").status_code == 401
    other = make_api_key(other_program.id)
    r = anon_client.get("/api/v1/members/u1", headers={"Authorization": f"Bearer {other}"})
    assert r.status_code == 404


def test_analyst_key_cannot_write(anon_client, program) -> None:
    key = make_api_key(program.id, role="analyst")
    r = anon_client.post(
        "/api/v1/members", json={"external_id": "u1"}, headers={"Authorization": f"Bearer {key}"}
    )
    assert r.status_code == 403
    assert (
        anon_client.get("/api/v1/members", headers={"Authorization": f"Bearer {key}"}).status_code
        == 200
    )


def test_export_and_erase(client) -> None:
    client.post(
        "/api/v1/members", json={"external_id": "u1", "email": "u1@example.com", "name": "Uno"}
    )
    client.post(
        "/api/v1/events",
        json={
            "events": [
                _event(
                    1,
                    member="u1",
                    type="purchase",
                    properties={"amount": 30, "note": "gift for mum"},
                )
            ]
        },
    )
    export = client.get("/api/v1/members/u1/export").json()
    assert export["members"]["profile"]["email"] == "u1@example.com"
    assert export["members"]["events"][0]["properties"]["note"] == "gift for mum"
    assert client.delete("/api/v1/members/u1").status_code == 204
    assert client.get("/api/v1/members/u1").status_code == 404
    events = client.get("/api/v1/events", params={"type": "purchase"}).json()["events"]
    assert len(events) == 1
    assert events[0]["properties"] == {"amount": 30}
    assert events[0]["member"].startswith("erased-")


def test_null_fields_on_update_clear_them_like_on_create(client) -> None:
    """``null`` for a stored member's field is what it is on create (no consent, no
    name), never a 500 from the NOT NULL column."""
    r = client.post(
        "/api/v1/members", json={"external_id": "u1", "name": "Ann", "marketing_consent": True}
    )
    assert r.status_code == 201, r.text
    r = client.post(
        "/api/v1/members",
        json={"external_id": "u1", "name": None, "marketing_consent": None, "attributes": None},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["marketing_consent"] is False and body["name"] == "" and body["attributes"] == {}
