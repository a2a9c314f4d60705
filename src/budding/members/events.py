"""The event log: batch ingestion with idempotency keys, and queries. Never commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import attrgetter, itemgetter
from typing import Any

from pydantic import ValidationError
from sqlalchemy import and_, func, or_, select, text
from sqlalchemy.orm import Session, aliased

from budding.core.db import dialect_insert, is_postgres, json_dumps, utcnow
from budding.core.errors import PayloadTooLarge, field, from_pydantic
from budding.core.plugins import capability_modules
from budding.members.models import Event, EventType, Member
from budding.members.schemas import (
    BUILTIN_EVENT_TYPES,
    MAX_BATCH,
    TYPE_RE,
    EventIn,
    EventOut,
    IngestResult,
    RejectedEvent,
)
from budding.members.service import (
    auto_create_members,
    decode_cursor,
    encode_cursor,
    ensure_members,
    existing_member_ids,
    get_member,
)
from budding.programs.models import Program

FUTURE_TOLERANCE = timedelta(minutes=5)
_BUILTIN_TYPES = frozenset(BUILTIN_EVENT_TYPES)


def event_types(session: Session, program_id: int) -> set[str]:
    custom = session.scalars(select(EventType.name).where(EventType.program_id == program_id))
    return set(BUILTIN_EVENT_TYPES) | set(custom)


def register_event_type(
    session: Session, program: Program, name: str, description: str = ""
) -> EventType:
    if not TYPE_RE.match(name):
        raise field(
            "name", "must be lower-case letters, digits, '_' or '.', starting with a letter"
        )
    if name in BUILTIN_EVENT_TYPES:
        raise field("name", "is a built-in event type")
    existing = session.scalar(
        select(EventType).where(EventType.program_id == program.id, EventType.name == name)
    )
    if existing is not None:
        return existing
    row = EventType(program_id=program.id, name=name, description=description[:500])
    session.add(row)
    session.flush()
    return row


def ingest_events(session: Session, program: Program, raw_events: list[Any]) -> IngestResult:
    """Validate and store a batch. Bad events are reported by index and never block good ones.

    The ``id`` of each event is its idempotency key within the program: a
    retried batch (or an id repeated inside one batch) is counted as a
    duplicate and stored once, enforced by a unique key, so concurrent
    retries cannot store it twice. Listeners of other capabilities see only
    the newly stored events, in the same transaction.
    """
    if len(raw_events) > MAX_BATCH:
        raise PayloadTooLarge(
            f"a batch holds at most {MAX_BATCH} events; got {len(raw_events)}",
            fields={"events": f"at most {MAX_BATCH} items"},
        )
    now = utcnow()
    rejected: list[RejectedEvent] = []
    parsed: list[tuple[int, EventIn]] = []
    for index, raw in enumerate(raw_events):
        if not isinstance(raw, dict):
            rejected.append(RejectedEvent(index=index, errors={"event": "must be a JSON object"}))
            continue
        try:
            parsed.append((index, EventIn.model_validate(raw)))
        except ValidationError as exc:
            raw_id = raw.get("id")
            rejected.append(
                RejectedEvent(
                    index=index,
                    id=raw_id if isinstance(raw_id, str) else None,
                    errors=from_pydantic(exc).fields,
                )
            )
    # Custom types live in the database; a batch of built-in types needs no query.
    known_types: frozenset[str] | set[str] = _BUILTIN_TYPES
    if any(ev.type not in _BUILTIN_TYPES for _, ev in parsed):
        known_types = event_types(session, program.id)
    valid: list[tuple[int, EventIn]] = []
    seen_ids: set[str] = set()
    in_batch_duplicates = 0
    limit = now + FUTURE_TOLERANCE
    for index, ev in parsed:
        errors: dict[str, str] = {}
        if ev.type not in known_types:
            errors["type"] = f"unknown event type {ev.type!r}; register it first"
        if ev.occurred_at > limit:
            errors["occurred_at"] = "is more than 5 minutes in the future"
        if errors:
            rejected.append(RejectedEvent(index=index, id=ev.id, errors=errors))
            continue
        if ev.id in seen_ids:
            in_batch_duplicates += 1
            continue
        seen_ids.add(ev.id)
        valid.append((index, ev))

    if not valid:
        rejected.sort(key=lambda r: r.index)
        return IngestResult(accepted=0, duplicates=in_batch_duplicates, rejected=rejected)

    names = {ev.member for _, ev in valid} | {ev.target for _, ev in valid if ev.target}
    if auto_create_members(program):
        ids = ensure_members(session, program.id, names)
    else:
        ids = existing_member_ids(session, program.id, names)
        kept: list[tuple[int, EventIn]] = []
        for index, ev in valid:
            errors = {}
            if ev.member not in ids:
                errors["member"] = (
                    "unknown member (this program does not create members from events)"
                )
            if ev.target and ev.target not in ids:
                errors["target"] = "unknown member"
            if errors:
                rejected.append(RejectedEvent(index=index, id=ev.id, errors=errors))
            else:
                kept.append((index, ev))
        valid = kept
        if not valid:
            rejected.sort(key=lambda r: r.index)
            return IngestResult(accepted=0, duplicates=in_batch_duplicates, rejected=rejected)

    rows = [
        {
            "program_id": program.id,
            "event_id": ev.id,
            "type": ev.type,
            "member_id": ids[ev.member],
            "target_member_id": ids[ev.target] if ev.target else None,
            "occurred_at": ev.occurred_at,
            "received_at": now,
            "properties": ev.properties,
        }
        for _, ev in valid
    ]
    # Concurrent batches with overlapping ids take the unique index's locks in one
    # order (PostgreSQL), so they wait for each other instead of deadlocking.
    rows.sort(key=itemgetter("event_id"))
    inserted = _insert_new(session, rows)
    accepted = len(inserted)
    if inserted:
        _notify_listeners(session, program, rows, inserted)
    rejected.sort(key=lambda r: r.index)
    return IngestResult(
        accepted=accepted,
        duplicates=in_batch_duplicates + len(valid) - accepted,
        rejected=rejected,
    )


# PostgreSQL: one statement with one array per column. SQLAlchemy's executemany with
# ON CONFLICT and RETURNING sends a 1,000-row VALUES statement with 8,000 parameters,
# which the driver and the server parse and plan afresh for every batch: three times
# the cost of the insert itself. ``unnest`` keeps the rows' order (the lock order).
_PG_INSERT = text(
    """
    INSERT INTO events (program_id, event_id, type, member_id, target_member_id,
                        occurred_at, received_at, properties)
    SELECT :program_id, e.event_id, e.type, e.member_id, e.target_member_id,
           e.occurred_at, :received_at, e.properties
    FROM unnest(CAST(:event_ids AS text[]), CAST(:types AS text[]),
                CAST(:member_ids AS integer[]), CAST(:target_ids AS integer[]),
                CAST(:occurred AS timestamptz[]), CAST(:properties AS jsonb[]))
         AS e(event_id, type, member_id, target_member_id, occurred_at, properties)
    ON CONFLICT (program_id, event_id) DO NOTHING
    RETURNING id, event_id
    """
)


def _insert_new(session: Session, rows: list[dict[str, Any]]) -> Sequence[Any]:
    """Insert the rows whose ``(program_id, event_id)`` is new; ``(id, event_id)`` of each."""
    if is_postgres(session):
        first = rows[0]
        return session.execute(
            _PG_INSERT,
            {
                "program_id": first["program_id"],
                "received_at": first["received_at"],
                "event_ids": [r["event_id"] for r in rows],
                "types": [r["type"] for r in rows],
                "member_ids": [r["member_id"] for r in rows],
                "target_ids": [r["target_member_id"] for r in rows],
                "occurred": [r["occurred_at"] for r in rows],
                "properties": [json_dumps(r["properties"]) for r in rows],
            },
        ).all()
    # SQLite: executemany of one cached statement ("insertmanyvalues"), not
    # ``.values(rows)``, which compiled a 1,000-row VALUES clause afresh on every call.
    table = Event.__table__
    return session.execute(
        dialect_insert(session, table)
        .on_conflict_do_nothing(index_elements=["program_id", "event_id"])
        .returning(table.c.id, table.c.event_id),
        rows,
    ).all()


@dataclass(frozen=True, slots=True)
class AcceptedEvent:
    """A newly stored event as listeners see it: the row's values, read-only.

    Built from the values just inserted rather than read back: loading a batch
    of 1,000 events as ORM rows cost a fifth of the whole request.
    """

    id: int
    program_id: int
    event_id: str
    type: str
    member_id: int
    target_member_id: int | None
    occurred_at: datetime
    received_at: datetime
    properties: dict[str, Any]


def _notify_listeners(
    session: Session, program: Program, rows: list[dict[str, Any]], inserted: Sequence[Any]
) -> None:
    """Hand each capability's ``on_events`` the newly stored events (not the duplicates),
    oldest first, in the ingesting transaction."""
    listeners = [m for _, m in capability_modules("listeners") if hasattr(m, "on_events")]
    if not listeners:
        return
    by_event_id = {row["event_id"]: row for row in rows}
    events = []
    for row_id, event_id in inserted:
        row = by_event_id[event_id]
        events.append(
            AcceptedEvent(
                id=row_id,
                program_id=row["program_id"],
                event_id=event_id,
                type=row["type"],
                member_id=row["member_id"],
                target_member_id=row["target_member_id"],
                occurred_at=row["occurred_at"].astimezone(UTC),
                received_at=row["received_at"],
                properties=row["properties"],
            )
        )
    events.sort(key=attrgetter("occurred_at", "id"))
    for module in listeners:
        module.on_events(session, program, events)


def query_events(
    session: Session,
    program: Program,
    *,
    member: str | None = None,
    type: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> tuple[list[EventOut], str | None]:
    """Events in time order (oldest first), filtered, with an opaque cursor for the next page."""
    if not 1 <= limit <= 1000:
        raise field("limit", "must be between 1 and 1000")
    if since and until and since > until:
        raise field("until", "must not be before since")
    actor = aliased(Member)
    target = aliased(Member)
    stmt = (
        select(Event, actor.external_id, target.external_id)
        .join(actor, actor.id == Event.member_id)
        .outerjoin(target, target.id == Event.target_member_id)
        .where(Event.program_id == program.id)
    )
    if member is not None:
        stmt = stmt.where(Event.member_id == get_member(session, program.id, member).id)
    if type is not None:
        stmt = stmt.where(Event.type == type)
    if since is not None:
        stmt = stmt.where(Event.occurred_at >= since)
    if until is not None:
        stmt = stmt.where(Event.occurred_at < until)
    if cursor:
        ts, last = decode_cursor(cursor, 2)
        try:
            at, last_id = datetime.fromisoformat(ts), int(last)
        except ValueError:
            raise field("cursor", "is not a cursor this API returned") from None
        stmt = stmt.where(
            or_(Event.occurred_at > at, and_(Event.occurred_at == at, Event.id > last_id))
        )
    rows = session.execute(stmt.order_by(Event.occurred_at, Event.id).limit(limit + 1)).all()
    out = [
        EventOut(
            id=e.event_id,
            type=e.type,
            member=m,
            target=t,
            occurred_at=e.occurred_at,
            received_at=e.received_at,
            properties=e.properties,
        )
        for e, m, t in rows[:limit]
    ]
    next_cursor = None
    if len(rows) > limit:
        last_event = rows[limit - 1][0]
        next_cursor = encode_cursor(last_event.occurred_at.isoformat(), last_event.id)
    return out, next_cursor


def member_timeline(session: Session, member: Member, limit: int = 200) -> list[Event]:
    return list(
        session.scalars(
            select(Event)
            .where(Event.member_id == member.id)
            .order_by(Event.occurred_at.desc(), Event.id.desc())
            .limit(limit)
        )
    )


def latest_events(session: Session, program_id: int, limit: int = 20) -> list[tuple[Event, str]]:
    rows = session.execute(
        select(Event, Member.external_id)
        .join(Member, Member.id == Event.member_id)
        .where(Event.program_id == program_id)
        .order_by(Event.occurred_at.desc(), Event.id.desc())
        .limit(limit)
    ).all()
    return [(e, x) for e, x in rows]


def events_per_day(session: Session, program_id: int, days: int = 90) -> list[tuple[str, int]]:
    """Event counts for each of the last ``days`` days (UTC), zeros included."""
    end = utcnow().replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    start = end - timedelta(days=days)
    day = func.date(Event.occurred_at)
    counts: dict[Any, int] = dict(
        session.execute(
            select(day, func.count())
            .where(Event.program_id == program_id, Event.occurred_at >= start)
            .group_by(day)
        ).all()
    )
    out = []
    for i in range(days):
        d = (start + timedelta(days=i)).date()
        # PostgreSQL returns dates, SQLite ISO strings.
        out.append((d.isoformat(), int(counts.get(d, counts.get(d.isoformat(), 0)) or 0)))
    return out


def active_members(session: Session, program_id: int, days: int = 30) -> int:
    since = utcnow() - timedelta(days=days)
    return (
        session.scalar(
            select(func.count(func.distinct(Event.member_id))).where(
                Event.program_id == program_id, Event.occurred_at >= since
            )
        )
        or 0
    )


def events_of_member(session: Session, member_id: int) -> list[Event]:
    return list(
        session.scalars(
            select(Event).where(Event.member_id == member_id).order_by(Event.occurred_at, Event.id)
        )
    )
