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


def test_the_services_reasons_answer_in_english_and_read_in_the_staffs_language(client) -> None:  # type: ignore[no-untyped-def]
    """The member service's own field reasons: the API keeps its English words, and a page
    (``field_messages``) says them in the reader's language."""
    import pytest

    from budding.core import i18n
    from budding.core.db import unit_of_work
    from budding.core.errors import BuddingError, field_messages
    from budding.members import service
    from budding.programs.service import get_program

    client.post("/api/v1/members", json={"external_id": "a", "email": "x@example.com"})
    r = client.get("/api/v1/members", params={"cursor": "bm9wZQ"})
    assert r.status_code == 422
    assert r.json()["error"]["fields"] == {"cursor": "is not a cursor this API returned"}
    r = client.get("/api/v1/members/ghost")
    assert r.json()["error"]["fields"] == {"external_id": "unknown member"}
    errors: list[BuddingError] = []
    with unit_of_work() as s:
        p = get_program(s, "acme")
        a = service.get_member(s, p.id, "a")
        for call in (
            lambda: service.upsert_member(s, p, {"external_id": "b", "email": "x@example.com"}),
            lambda: service.get_member(s, p.id, "ghost"),
            lambda: service.search_members(s, p.id, cursor="bm9wZQ"),
            lambda: service.search_members(s, p.id, limit=501),
            lambda: service.set_member_locale(s, a, "xx"),
        ):
            with pytest.raises(BuddingError) as caught:
                call()
            errors.append(caught.value)
    assert [e.fields for e in errors] == [
        {"email": "already taken"},
        {"external_id": "unknown member"},
        {"cursor": "is not a cursor this API returned"},
        {"limit": "must be between 1 and 500"},
        {"locale": "supported locales are en, ko, es, id, zh-Hans"},
    ]
    with i18n.use_locale("es"):
        assert [field_messages(e) for e in errors] == [
            {"email": "ya está en uso"},
            {"external_id": "miembro desconocido"},
            {"cursor": "no es un cursor que haya devuelto esta API"},
            {"limit": "debe estar entre 1 y 500"},
            {"locale": "los idiomas admitidos son en, ko, es, id, zh-Hans"},
        ]
