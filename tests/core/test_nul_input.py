"""The NUL character (U+0000) in any input is refused as that input's error, before a
route runs: PostgreSQL cannot store it in text or JSON, so it used to reach the database
and answer 500 there (found by the schemathesis sweep, POST /api/v1/event-types), while
SQLite stored it. Now every database answers alike, and nothing is written."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from budding.accounts.models import ApiKey
from budding.core.db import unit_of_work
from budding.members.models import Event, EventType, Member
from tests.accounts.helpers import staff_client

NOW = datetime.now(UTC).isoformat()
REASON = "must not contain the NUL character (U+0000)"


def _refused(r: Any, field: str) -> None:
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "validation_failed"
    assert error["fields"] == {field: REASON}


def _count(model: Any) -> int:
    with unit_of_work() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_a_json_body_with_nul_names_the_field_and_writes_nothing(client) -> None:  # type: ignore[no-untyped-def]
    before = _count(EventType)
    _refused(client.post("/api/v1/event-types", json={"name": "a\x00b"}), "name")
    assert _count(EventType) == before
    event = {
        "id": "e1",
        "type": "signup",
        "member": "m1",
        "occurred_at": NOW,
        "properties": {"note": ["ok", "x\x00"]},
    }
    _refused(client.post("/api/v1/events", json={"events": [event]}), "events.0.properties.note.1")
    keyed = {
        "id": "e2",
        "type": "signup",
        "member": "m1",
        "occurred_at": NOW,
        "properties": {"k\x00": 1},
    }
    _refused(client.post("/api/v1/events", json={"events": [keyed]}), "events.0.properties.k\x00")
    assert _count(Event) == 0 and _count(Member) == 0


def test_the_text_backslash_u0000_is_not_nul(client) -> None:  # type: ignore[no-untyped-def]
    """A JSON string holding a backslash and "u0000" is ordinary text, stored as sent."""
    event = {
        "id": "e1",
        "type": "signup",
        "member": "m1",
        "occurred_at": NOW,
        "properties": {"note": "\\u0000"},
    }
    r = client.post("/api/v1/events", json={"events": [event]})
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
    with unit_of_work() as s:
        assert s.scalars(select(Event.properties)).one()["note"] == "\\u0000"


def test_a_query_or_path_with_nul_is_refused(client) -> None:  # type: ignore[no-untyped-def]
    _refused(client.get("/api/v1/events?member=a%00b"), "member")
    _refused(client.get("/api/v1/members/a%00b"), "path")


def test_a_form_with_nul_is_refused_in_the_readers_language(anon_client, program) -> None:  # type: ignore[no-untyped-def]
    token = staff_client(anon_client)
    keys = _count(ApiKey)
    r = anon_client.post(
        "/admin/acme/api-keys",
        data={"name": "a\x00b", "role": "admin", "csrf_token": token},
        headers={"Accept-Language": "ko"},
    )
    assert r.status_code == 422
    assert "text/html" in r.headers["content-type"]
    assert 'lang="ko"' in r.text and "저장할 수 없는 문자(NUL)" in r.text
    assert _count(ApiKey) == keys


def test_an_upload_with_nul_names_its_part(client, anon_client, program) -> None:  # type: ignore[no-untyped-def]
    """Multipart bodies too: the part holding NUL is named (a file's, or a form field's),
    and no pool is created."""
    r = client.post(
        "/api/v1/coupon-pools/winter/codes", files={"file": ("c.csv", b"S1\nS\x002\n", "text/csv")}
    )
    _refused(r, "file")
    assert "winter" not in {p["name"] for p in client.get("/api/v1/coupon-pools").json()}
    token = staff_client(anon_client)
    r = anon_client.post(
        "/admin/acme/rewards/coupons",
        data={"pool": "spring", "description": "a\x00b", "csrf_token": token},
        files={"file": ("c.csv", b"S1\n", "text/csv")},
    )
    assert r.status_code == 422 and "text/html" in r.headers["content-type"]
    assert "spring" not in {p["name"] for p in client.get("/api/v1/coupon-pools").json()}
