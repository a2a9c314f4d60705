"""Ingestion internals: the fast validation path agrees with ``EventIn``, and listeners see
the ids the database gave the new rows, whichever way SQLite's insert found them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import select

from budding.members import events as ev
from budding.members.schemas import EventIn


def _pydantic(raw: dict[str, Any]) -> EventIn | None:
    try:
        return EventIn.model_validate(raw)
    except ValidationError:
        return None


def _assert_same(raw: dict[str, Any]) -> None:
    """Whatever the fast path accepts, pydantic accepts with the same values."""
    fast = ev._fast_event(raw, 0)
    if fast is None:
        return
    spec = _pydantic(raw)
    assert spec is not None, raw
    assert (fast.id, fast.type, fast.member, fast.target, fast.properties) == (
        spec.id,
        spec.type,
        spec.member,
        spec.target,
        spec.properties,
    )
    assert fast.occurred_at == spec.occurred_at
    assert fast.occurred_at.tzinfo is UTC


GOOD = {"id": "e1", "type": "visit", "member": "u1", "occurred_at": "2026-01-02T03:04:05Z"}


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"occurred_at": "2026-01-02T03:04:05.123456+09:00"},
        {"occurred_at": "2026-01-02 03:04:05.5-03:30"},
        {"occurred_at": "2026-01-02T03:04:05"},  # naive: pydantic refuses
        {"occurred_at": "2026-02-30T03:04:05Z"},
        {"occurred_at": "2026-01-02T24:00:00Z"},
        {"occurred_at": "2026-01-02T03:04:05.1234567Z"},
        {"occurred_at": 1767322000},
        {"occurred_at": datetime(2026, 1, 2, tzinfo=timezone(timedelta(hours=5)))},
        {"occurred_at": datetime(2026, 1, 2)},
        {"member": "abc\n"},
        {"member": " "},
        {"member": "a\x00b"},
        {"member": "x" * 201},
        {"target": None},
        {"target": "u2"},
        {"target": ""},
        {"target": 5},
        {"id": ""},
        {"id": "x" * 201},
        {"id": 7},
        {"type": "Visit"},
        {"type": "custom.thing_2"},
        {"properties": {"a": [1, {"b": None}], "c": 1.5}},
        {"properties": {"blob": "x" * 17000}},
        {"properties": []},
        {"properties": None},
        {"extra": 1},
    ],
)
def test_fast_path_agrees_with_the_model(change: dict[str, Any]) -> None:
    _assert_same({**GOOD, **change})


def test_fast_path_takes_the_usual_events() -> None:
    raw = {**GOOD, "target": "u2", "properties": {"channel": "line"}}
    fast = ev._fast_event(raw, 3)
    assert fast is not None and fast.position == 3
    assert fast.occurred_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    shifted = ev._fast_event({**GOOD, "occurred_at": "2026-01-02T03:04:05+09:00"}, 0)
    assert shifted is not None
    assert shifted.occurred_at == datetime(2026, 1, 1, 18, 4, 5, tzinfo=UTC)


_text = st.one_of(st.text(max_size=8), st.sampled_from(["visit", "u1", "", " ", "a\n"]))
_stamp = st.one_of(
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7))])).map(
        lambda d: d.isoformat(" ")
    ),
    st.text(max_size=30),
    st.integers(),
)


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {"id": st.one_of(_text, st.integers()), "type": _text, "member": _text},
        optional={
            "target": st.one_of(st.none(), _text),
            "occurred_at": _stamp,
            "properties": st.one_of(
                st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5)),
                st.lists(st.integers(), max_size=2),
            ),
            "other": st.integers(),
        },
    )
)
def test_fast_path_never_accepts_what_the_model_refuses(raw: dict[str, Any]) -> None:
    _assert_same(raw)


def _recording(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    seen: list[Any] = []
    recorder = SimpleNamespace(on_events=lambda session, program, events: seen.extend(events))
    monkeypatch.setattr(ev, "capability_modules", lambda kind: (("recorder", recorder),))
    return seen


def _batch(ids: range) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [
        {
            "id": f"e{i}",
            "type": "visit",
            "member": f"m{i % 7}",
            "occurred_at": (now - timedelta(seconds=i)).isoformat(),
        }
        for i in ids
    ]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (range(0), range(40)),  # a large batch of new events: ids counted, not read back
        (range(30), range(20, 60)),  # partly stored already: the new rows read back
        (range(30), range(25, 30)),  # a small batch: INSERT … RETURNING
        (range(30), range(30)),  # all stored already
    ],
)
def test_listeners_see_the_stored_ids(
    monkeypatch: pytest.MonkeyPatch, program: Any, first: range, second: range
) -> None:
    from budding.core.db import unit_of_work
    from budding.members.models import Event
    from budding.programs.service import get_program_by_id

    with unit_of_work() as session:
        ev.ingest_events(session, get_program_by_id(session, program.id), _batch(first))
    seen = _recording(monkeypatch)
    with unit_of_work() as session:
        result = ev.ingest_events(session, get_program_by_id(session, program.id), _batch(second))
    new = set(second) - set(first)
    assert result.accepted == len(new)
    assert result.duplicates == len(second) - len(new)
    assert sorted(e.event_id for e in seen) == sorted(f"e{i}" for i in new)
    with unit_of_work() as session:
        stored = dict(session.execute(select(Event.event_id, Event.id)).all())
    assert {e.event_id: e.id for e in seen} == {f"e{i}": stored[f"e{i}"] for i in new}
    assert [e.occurred_at for e in seen] == sorted(e.occurred_at for e in seen)
    assert len(stored) == len(set(first) | set(second))


def test_invalid_events_change_nothing(monkeypatch: pytest.MonkeyPatch, program: Any) -> None:
    from budding.core.db import unit_of_work
    from budding.programs.service import get_program_by_id

    seen = _recording(monkeypatch)
    bad = [
        {**GOOD, "occurred_at": "2026-01-02T03:04:05"},
        {**GOOD, "id": "e2", "member": ""},
        "not an object",
    ]
    with unit_of_work() as session:
        result = ev.ingest_events(session, get_program_by_id(session, program.id), bad)
    assert result.accepted == 0
    assert [r.index for r in result.rejected] == [0, 1, 2]
    assert "occurred_at" in result.rejected[0].errors
    assert "member" in result.rejected[1].errors
    assert seen == []


def test_a_batch_of_purchases_converts_referrals_once(program: Any) -> None:
    """The listeners' batched look-ups change nothing: each referred buyer's first
    purchase converts their referral and logs one ``conversion`` funnel event for the
    referrer; later purchases and buyers nobody referred log nothing."""
    referrals = pytest.importorskip("budding.referrals.service")
    pytest.importorskip("budding.sharing.listeners")
    from budding.core.db import unit_of_work
    from budding.members import service as members
    from budding.programs.service import get_program_by_id

    now = datetime.now(UTC)
    with unit_of_work() as session:
        p = get_program_by_id(session, program.id)
        people = {
            x: members.upsert_member(session, p, {"external_id": x})[0]
            for x in ("ann", "f1", "f2", "bob")
        }
        for friend in ("f1", "f2"):
            referrals.record_referral(
                session,
                p,
                referrer_id=people["ann"].id,
                referee_id=people[friend].id,
                source="link",
                signed_up_at=now - timedelta(hours=2),
                channel="line",
            )
    batch = _batch(range(30))
    for i, who in [(3, "f1"), (7, "f2"), (9, "f1"), (12, "bob")]:
        batch[i].update(type="purchase", member=who, properties={"amount": 10})
    with unit_of_work() as session:
        result = ev.ingest_events(session, get_program_by_id(session, program.id), batch)
    assert result.accepted == 30
    with unit_of_work() as session:
        p = get_program_by_id(session, program.id)
        converted = {
            x: referrals.referral_of(session, p, people[x].id).conversion_event_id
            for x in ("f1", "f2")
        }
        log, _ = ev.query_events(session, p, type="conversion")
    # Oldest first: e9 happened before e3 (the batch's times go back one second an id).
    assert converted == {"f1": "e9", "f2": "e7"}
    assert sorted((e.id, e.member, e.target) for e in log) == [
        ("conversion.e7", "ann", "f2"),
        ("conversion.e9", "ann", "f1"),
    ]


def test_keys_are_checked_for_events(anon_client: Any, program: Any) -> None:
    """The events route checks its key in its own thread (members/api.py): no key, a bad
    key and a read-only key are refused and store nothing."""
    from tests.factories import make_api_key

    body = {"events": _batch(range(3))}
    assert anon_client.post("/api/v1/events", json=body).status_code == 401
    bad = {"Authorization": "Bearer bud_nope_nope"}
    assert anon_client.post("/api/v1/events", json=body, headers=bad).status_code == 401
    analyst = {"Authorization": f"Bearer {make_api_key(program.id, role='analyst')}"}
    r = anon_client.post("/api/v1/events", json=body, headers=analyst)
    assert r.status_code == 403 and r.json()["error"]["code"] == "read_only_key"
    assert anon_client.get("/api/v1/events", headers=analyst).json()["events"] == []
    writer = {"Authorization": f"Bearer {make_api_key(program.id)}"}
    assert anon_client.post("/api/v1/events", json=body, headers=writer).json()["accepted"] == 3


def test_a_changed_conversion_event_is_used_at_once(program: Any) -> None:
    """The listeners remember the conversion event type by the program's settings: a
    change of the settings applies to the next batch."""
    referrals = pytest.importorskip("budding.referrals.service")
    from budding.core.db import unit_of_work
    from budding.members import service as members
    from budding.programs.service import get_program_by_id

    now = datetime.now(UTC)

    def ingest(kind: str, event_id: str) -> None:
        event = {
            "id": event_id,
            "type": kind,
            "member": "f1",
            "occurred_at": now.isoformat(),
        }
        with unit_of_work() as session:
            ev.ingest_events(session, get_program_by_id(session, program.id), [event])

    with unit_of_work() as session:
        p = get_program_by_id(session, program.id)
        ann = members.upsert_member(session, p, {"external_id": "ann"})[0]
        f1 = members.upsert_member(session, p, {"external_id": "f1"})[0]
        ev.register_event_type(session, p, "order")
        referrals.record_referral(
            session,
            p,
            referrer_id=ann.id,
            referee_id=f1.id,
            source="link",
            signed_up_at=now - timedelta(hours=1),
        )
    ingest("visit", "v1")  # the listeners read the settings (purchase converts)
    with unit_of_work() as session:
        referrals.update_referral_settings(
            session, get_program_by_id(session, program.id), {"conversion_event": "order"}
        )
    ingest("purchase", "p1")
    ingest("order", "o1")
    with unit_of_work() as session:
        p = get_program_by_id(session, program.id)
        assert referrals.referral_of(session, p, f1.id).conversion_event_id == "o1"
        log, _ = ev.query_events(session, p, type="conversion")
    assert [e.id for e in log] == ["conversion.o1"]


@pytest.mark.parametrize("size", [3, 40])  # INSERT … RETURNING, and the plain executemany
def test_stored_events_read_back_as_sent(program: Any, size: int) -> None:
    """Rows written around SQLAlchemy's parameter processing (SQLite) read back through
    the ORM exactly as sent: time zones, microseconds, targets, nested and non-ASCII
    properties, and integers too large for orjson (serialised by the slow path)."""
    from budding.core.db import unit_of_work
    from budding.members.models import Event, Member
    from budding.programs.service import get_program_by_id

    raw = [
        {
            "id": f"r{i}",
            "type": "post",
            "member": f"m{i % 4}",
            "target": f"m{(i + 1) % 4}" if i % 2 else None,
            "occurred_at": f"2026-01-02T03:04:{i % 60:02d}.{i:06d}+09:30",
            "properties": {"text": "안녕 ¿qué? 你好", "n": [i, {"deep": None}], "f": 1.5},
        }
        for i in range(size)
    ]
    raw[1]["properties"] = {"big": 2**70}
    with unit_of_work() as session:
        result = ev.ingest_events(session, get_program_by_id(session, program.id), raw)
    assert result.accepted == size
    with unit_of_work() as session:
        names = dict(session.execute(select(Member.id, Member.external_id)).all())
        stored = {e.event_id: e for e in session.scalars(select(Event))}
        for sent in raw:
            row = stored[sent["id"]]
            assert names[row.member_id] == sent["member"]
            assert (names[row.target_member_id] if row.target_member_id else None) == sent["target"]
            assert row.occurred_at == datetime.fromisoformat(sent["occurred_at"])
            assert row.occurred_at.tzinfo is UTC
            assert row.properties == sent["properties"]
            assert row.received_at.tzinfo is UTC


def test_the_first_route_answers_as_the_documented_route(
    app: Any, program: Any, other_program: Any
) -> None:
    """POST /api/v1/events is served by a plain Starlette route matched first
    (members/api.py); every answer, good or bad, is the one the FastAPI route it stands
    in for gives (that route, with the first one taken out), each on a program of its own."""
    from fastapi.testclient import TestClient

    from budding.core.web import create_app
    from budding.members import api
    from tests.factories import make_api_key

    assert app.router.routes[1] is api.FIRST_ROUTES[0]  # after /r/{code}
    documented = create_app()
    documented.router.routes = [r for r in documented.router.routes if r not in api.FIRST_ROUTES]
    no_key: dict[str, str] = {}
    json_type = {"content-type": "application/json"}
    requests: list[tuple[dict[str, str] | None, dict[str, Any]]] = [
        # (headers instead of the program's key, request)
        (no_key, {"json": {"events": _batch(range(3))}}),  # 401 before the body is read
        ({"Authorization": "Bearer bud_x_y"}, {"json": {"events": "x"}}),  # the body first
        (None, {"content": b"{nope", "headers": json_type}),
        (None, {"content": b"", "headers": json_type}),
        (None, {"json": {}}),
        (None, {"json": {"events": "x"}}),
        (None, {"json": {"events": []}}),  # 422: an empty batch is a client bug
        (None, {"json": [1, 2]}),
        (None, {"json": {"events": [{"id": "e1"}, 7, *_batch(range(2))]}}),
        (None, {"json": {"events": _batch(range(1001))}}),
        (None, {"json": {"events": _batch(range(3))}}),
        (None, {"json": {"events": _batch(range(4))}}),  # 3 of them stored already
    ]
    statuses = set()
    with TestClient(app) as fast, TestClient(documented) as reference:
        fast_key = {"Authorization": f"Bearer {make_api_key(program.id)}"}
        reference_key = {"Authorization": f"Bearer {make_api_key(other_program.id)}"}
        for instead, request in requests:
            extra = request.pop("headers", {})
            got = fast.post(
                "/api/v1/events",
                **request,
                headers={**(instead if instead is not None else fast_key), **extra},
            )
            want = reference.post(
                "/api/v1/events",
                **request,
                headers={**(instead if instead is not None else reference_key), **extra},
            )
            assert (got.status_code, got.json()) == (want.status_code, want.json()), request
            statuses.add(got.status_code)
    assert statuses == {200, 400, 401, 413, 422}


def test_an_empty_batch_is_refused(client: Any) -> None:
    r = client.post("/api/v1/events", json={"events": []})
    assert r.status_code == 422 and "events" in r.json()["error"]["fields"]
