"""How erasure reads the event log: the members eraser looks up the member's own events and
the events that target them by index, and never loads events as ORM objects (a member with
thousands of events is erased in a few statements)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, select, text

from budding.core.db import get_engine, unit_of_work
from budding.members import events as member_events
from budding.members import service as members
from budding.members.models import Event
from budding.programs.service import get_program

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@contextmanager
def _statements() -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append((statement, parameters))

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _community() -> None:
    with unit_of_work() as s:
        prog = get_program(s, "acme")
        for i in range(30):
            members.upsert_member(
                s, prog, {"external_id": f"m{i}", "name": f"Member {i}", "email": f"m{i}@x.org"}
            )
        members.upsert_member(
            s, prog, {"external_id": "zoe", "name": "Zoe Quill", "email": "zoe@x.org"}
        )
        batch = [
            {
                "id": f"e{i}",
                "type": "share",
                "member": f"m{i % 30}",
                "target": f"m{(i + 1) % 30}",
                "occurred_at": (T0 + timedelta(minutes=i)).isoformat(),
                "properties": {"friend": "Zoe Quill", "amount": i},
            }
            for i in range(300)
        ]
        batch += [
            {
                "id": f"z{i}",
                "type": "visit",
                "member": "zoe",
                "target": "m1",
                "occurred_at": (T0 + timedelta(minutes=i)).isoformat(),
                "properties": {"page": "home", "seconds": i},
            }
            for i in range(40)
        ]
        batch.append(
            {
                "id": "s-41",
                "type": "share",
                "member": "m2",
                "target": "zoe",
                "occurred_at": T0.isoformat(),
                "properties": {"friend": "Zoe Quill"},
            }
        )
        assert not member_events.ingest_events(s, prog, batch).rejected


def test_erasure_reads_events_by_index_and_loads_no_event_objects(program) -> None:  # type: ignore[no-untyped-def]
    _community()
    with unit_of_work() as s:
        prog = get_program(s, "acme")
        zoe = members.get_member(s, prog.id, "zoe")
        loaded: list[Event] = []

        def on_load(target: Event, context: Any) -> None:
            loaded.append(target)

        event.listen(Event, "load", on_load)
        try:
            with _statements() as seen:
                members.erase_member(s, prog, zoe)
        finally:
            event.remove(Event, "load", on_load)
        # The member's 40 events were anonymised without an ORM object for each.
        assert loaded == []
        events_sql = [(q, p) for q, p in seen if " events" in q and q.lstrip().startswith("SELECT")]
        if s.get_bind().dialect.name == "sqlite":
            conn = s.connection()
            plans = {
                q: " / ".join(row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + q, p))
                for q, p in events_sql
            }
            # The events that target her are found by target, not among all the program's
            # targeted events (ix_events_program_targeted, which SQLite chose without
            # statistics when the query also named the program).
            targeted = [plan for q, plan in plans.items() if "target_member_id =" in q]
            assert targeted and all("ix_events_target_member_id" in p for p in targeted), plans
    with unit_of_work() as s:
        props = dict(
            s.execute(
                select(Event.event_id, Event.properties).where(
                    Event.event_id.in_(["s-41", "e5", "z3"])
                )
            ).all()
        )
        assert props == {
            "s-41": {"friend": "(erased)"},  # names her, targets her
            "e5": {"friend": "Zoe Quill", "amount": 5},  # does not target her
            "z3": {"seconds": 3},  # her own: numbers only
        }
        assert s.scalar(text("SELECT count(*) FROM events")) == 341
