"""The event log: batch ingestion with idempotency keys, and queries. Never commits."""

from __future__ import annotations

import importlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from operator import attrgetter
from typing import Any, NamedTuple, cast

import orjson
from pydantic import ValidationError
from sqlalchemy import Table, and_, bindparam, func, or_, select, text
from sqlalchemy.orm import Session, aliased

from budding.core.db import capability_names, is_postgres, json_dumps, sqlite_timestamp, utcnow
from budding.core.errors import PayloadTooLarge, field, from_pydantic
from budding.core.plugins import capability_modules
from budding.members.models import Event, EventType, Member
from budding.members.schemas import (
    BUILTIN_EVENT_TYPES,
    MAX_BATCH,
    MAX_PROPERTIES_BYTES,
    TYPE_RE,
    EventIn,
    EventOut,
    IngestResult,
    RejectedEvent,
    check_external_id,
)
from budding.members.service import (
    auto_create_members,
    cursor_id,
    decode_cursor,
    encode_cursor,
    ensure_members,
    existing_member_ids,
    get_member,
)
from budding.programs.models import Program

FUTURE_TOLERANCE = timedelta(minutes=5)


@cache
def declared_event_types() -> dict[str, str]:
    """Event types a capability declares as ``EVENT_TYPES = {"name": "description"}`` in
    its package ``__init__`` (sharing's funnel steps, say): known to every program, as
    the built-in ones are, so a program need not register them before using them."""
    found: dict[str, str] = {}
    for name in capability_names():
        declared = getattr(importlib.import_module(f"budding.{name}"), "EVENT_TYPES", None)
        for event_type, description in (declared or {}).items():
            if not TYPE_RE.match(event_type) or event_type in BUILTIN_EVENT_TYPES:
                raise ValueError(f"budding.{name}.EVENT_TYPES: bad event type {event_type!r}")
            found.setdefault(event_type, description)
    return found


@cache
def standard_event_types() -> frozenset[str]:
    """The built-in event types and those capabilities declare: no program registers them."""
    return frozenset(BUILTIN_EVENT_TYPES) | frozenset(declared_event_types())


def event_types(session: Session, program_id: int) -> set[str]:
    custom = session.scalars(select(EventType.name).where(EventType.program_id == program_id))
    return set(standard_event_types()) | set(custom)


def register_event_type(
    session: Session, program: Program, name: str, description: str = ""
) -> EventType:
    if not TYPE_RE.match(name):
        raise field(
            "name", "must be lower-case letters, digits, '_' or '.', starting with a letter"
        )
    if name in standard_event_types():
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


class ValidEvent(NamedTuple):
    """One event of a batch that passed validation (pure CPU, no database)."""

    position: int  # in the batch
    id: str
    type: str
    member: str
    target: str | None
    occurred_at: datetime  # aware, UTC
    properties: dict[str, Any]
    # Serialised while validating (the size check needs it anyway), so that storing
    # the batch does not serialise it again inside the transaction.
    properties_json: str


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """A batch validated before its transaction opens (:func:`prepare_events`): the events
    whose shape and values are right, in order, and those rejected, with their errors."""

    received_at: datetime
    valid: list[ValidEvent]
    rejected: list[RejectedEvent]


_EVENT_FIELDS = frozenset(EventIn.model_fields)
_REQUIRED_FIELDS = frozenset(
    name for name, info in EventIn.model_fields.items() if info.is_required()
)
# The timestamps clients send (``datetime.isoformat()``, RFC 3339 with an offset), which
# ``datetime.fromisoformat`` reads to the same value as pydantic. Anything else, and
# anything ``fromisoformat`` refuses, is left to pydantic (its value or its error).
_TIMESTAMP_RE = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)\Z")
_ZERO = timedelta(0)
_MISSING: Any = object()


def _utc(value: datetime) -> datetime:
    if value.tzinfo is UTC:
        return value
    if value.utcoffset() == _ZERO:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _fast_event(raw: dict[str, Any], index: int) -> ValidEvent | None:
    """The event when it is plainly valid, None when pydantic must judge it.

    The rules of :class:`EventIn`, checked directly: validating 1,000 events one model
    at a time (and converting pydantic's time zones afterwards) was a third of a
    batch's ingestion time. Whatever this does not accept goes through ``EventIn``,
    so values and error messages stay pydantic's.
    """
    if not raw.keys() <= _EVENT_FIELDS or not raw.keys() >= _REQUIRED_FIELDS:
        return None
    event_id = raw["id"]
    kind = raw["type"]
    member = raw["member"]
    target = raw.get("target")
    occurred = raw["occurred_at"]
    properties = raw.get("properties", _MISSING)
    if (
        type(event_id) is not str
        or not 1 <= len(event_id) <= 200
        or type(kind) is not str
        or not TYPE_RE.match(kind)
        or type(member) is not str
        or (target is not None and type(target) is not str)
    ):
        return None
    if properties is _MISSING:
        properties = {}
    elif type(properties) is not dict:
        return None
    try:
        check_external_id(member)
        if target is not None:
            check_external_id(target)
        if type(occurred) is str:
            if not _TIMESTAMP_RE.match(occurred):
                return None
            at = datetime.fromisoformat(occurred)
        elif type(occurred) is datetime and occurred.utcoffset() is not None:
            at = occurred
        else:
            return None
        for key in properties:
            if type(key) is not str:
                return None
        encoded = orjson.dumps(properties)
        if len(encoded) > MAX_PROPERTIES_BYTES:
            return None
    except (ValueError, TypeError):  # pydantic names the reason (or raises as before)
        return None
    return ValidEvent(index, event_id, kind, member, target, _utc(at), properties, encoded.decode())


def prepare_events(raw_events: list[Any], now: datetime | None = None) -> PreparedBatch:
    """Validate each event of a batch on its own, without the database: the part of
    ingestion that needs no transaction (and, on SQLite, no write lock), so that a
    server validates one batch while another is being stored.

    Raises ``PayloadTooLarge`` for more than ``MAX_BATCH`` events. Event types,
    timestamps in the future, repeated ids and members are checked by
    :func:`store_events`.
    """
    if len(raw_events) > MAX_BATCH:
        raise PayloadTooLarge(
            f"a batch holds at most {MAX_BATCH} events; got {len(raw_events)}",
            fields={"events": f"at most {MAX_BATCH} items"},
        )
    rejected: list[RejectedEvent] = []
    valid: list[ValidEvent] = []
    for index, raw in enumerate(raw_events):
        if not isinstance(raw, dict):
            rejected.append(RejectedEvent(index=index, errors={"event": "must be a JSON object"}))
            continue
        ev = _fast_event(raw, index)
        if ev is None:
            try:
                spec = EventIn.model_validate(raw)
            except ValidationError as exc:
                raw_id = raw.get("id")
                rejected.append(
                    RejectedEvent(
                        index=index,
                        id=raw_id if isinstance(raw_id, str) else None,
                        errors=from_pydantic(exc).fields,
                    )
                )
                continue
            ev = ValidEvent(
                index,
                spec.id,
                spec.type,
                spec.member,
                spec.target,
                _utc(spec.occurred_at),
                spec.properties,
                json_dumps(spec.properties),
            )
        valid.append(ev)
    return PreparedBatch(now or utcnow(), valid, rejected)


def ingest_events(session: Session, program: Program, raw_events: list[Any]) -> IngestResult:
    """Validate and store a batch. Bad events are reported by index and never block good ones.

    The ``id`` of each event is its idempotency key within the program: a
    retried batch (or an id repeated inside one batch) is counted as a
    duplicate and stored once, enforced by a unique key, so concurrent
    retries cannot store it twice. Listeners of other capabilities see only
    the newly stored events, in the same transaction.
    """
    return store_events(session, program, prepare_events(raw_events))


def store_events(session: Session, program: Program, batch: PreparedBatch) -> IngestResult:
    """Store a batch validated by :func:`prepare_events`, in ``session``'s transaction:
    the database's part of :func:`ingest_events` (types, members, the insert, listeners)."""
    now = batch.received_at
    rejected = list(batch.rejected)
    # Custom types live in the database; a batch of standard types needs no query.
    known_types: frozenset[str] | set[str] = standard_event_types()
    for ev in batch.valid:
        if ev.type not in known_types:
            known_types = event_types(session, program.id)
            break
    valid: list[ValidEvent] = []
    seen_ids: set[str] = set()
    in_batch_duplicates = 0
    limit = now + FUTURE_TOLERANCE
    for ev in batch.valid:
        if ev.type not in known_types or ev.occurred_at > limit:
            errors: dict[str, str] = {}
            if ev.type not in known_types:
                errors["type"] = f"unknown event type {ev.type!r}; register it first"
            if ev.occurred_at > limit:
                errors["occurred_at"] = "is more than 5 minutes in the future"
            rejected.append(RejectedEvent(index=ev.position, id=ev.id, errors=errors))
            continue
        if ev.id in seen_ids:
            in_batch_duplicates += 1
            continue
        seen_ids.add(ev.id)
        valid.append(ev)

    if not valid:
        rejected.sort(key=attrgetter("index"))
        return IngestResult(accepted=0, duplicates=in_batch_duplicates, rejected=rejected)

    names = {ev.member for ev in valid}
    names.update(ev.target for ev in valid if ev.target)
    if auto_create_members(program):
        ids = ensure_members(session, program.id, names)
    else:
        ids = existing_member_ids(session, program.id, names)
        kept: list[ValidEvent] = []
        for ev in valid:
            errors = {}
            if ev.member not in ids:
                errors["member"] = (
                    "unknown member (this program does not create members from events)"
                )
            if ev.target and ev.target not in ids:
                errors["target"] = "unknown member"
            if errors:
                rejected.append(RejectedEvent(index=ev.position, id=ev.id, errors=errors))
            else:
                kept.append(ev)
        valid = kept
        if not valid:
            rejected.sort(key=attrgetter("index"))
            return IngestResult(accepted=0, duplicates=in_batch_duplicates, rejected=rejected)

    rows = [
        _NewRow(
            ev.id,
            ev.type,
            ids[ev.member],
            ids[ev.target] if ev.target else None,
            ev.occurred_at,
            ev.properties,
            ev.properties_json,
        )
        for ev in valid
    ]
    # Concurrent batches with overlapping ids take the unique index's locks in one
    # order (PostgreSQL), so they wait for each other instead of deadlocking.
    rows.sort(key=attrgetter("event_id"))
    inserted = _insert_new(session, program.id, now, rows)
    accepted = len(inserted)
    if inserted:
        _notify_listeners(session, program, now, rows, inserted)
    rejected.sort(key=attrgetter("index"))
    return IngestResult(
        accepted=accepted,
        duplicates=in_batch_duplicates + len(valid) - accepted,
        rejected=rejected,
    )


class _NewRow(NamedTuple):
    """An event of the batch about to be inserted (program and ``received_at`` are the
    batch's)."""

    event_id: str
    type: str
    member_id: int
    target_member_id: int | None
    occurred_at: datetime
    properties: dict[str, Any]
    properties_json: str


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


def _insert_new(
    session: Session, program_id: int, received_at: datetime, rows: list[_NewRow]
) -> Sequence[Any]:
    """Insert the rows whose ``(program_id, event_id)`` is new; ``(id, event_id)`` of each."""
    if is_postgres(session):
        return session.execute(
            _PG_INSERT,
            {
                "program_id": program_id,
                "received_at": received_at,
                "event_ids": [r.event_id for r in rows],
                "types": [r.type for r in rows],
                "member_ids": [r.member_id for r in rows],
                "target_ids": [r.target_member_id for r in rows],
                "occurred": [r.occurred_at for r in rows],
                "properties": [r.properties_json for r in rows],
            },
        ).all()
    return _insert_new_sqlite(session, program_id, received_at, rows)


def _insert_new_sqlite(
    session: Session, program_id: int, received_at: datetime, rows: list[_NewRow]
) -> Sequence[Any]:
    """SQLite: the driver's own ``executemany`` of one ``INSERT … ON CONFLICT DO
    NOTHING``, given rows already in SQLite's storage form (timestamps as text,
    properties serialised while validating), without ``RETURNING``.

    This runs under the database's write lock, which every worker process waits for:
    SQLAlchemy's per-row parameter processing was a third of the insert's time there.
    ``RETURNING`` made SQLAlchemy send one 8,000-parameter statement per batch
    ("insertmanyvalues"), and selecting the ids afterwards cost as much again. The
    transaction holds the write lock (``BEGIN IMMEDIATE``), so nothing else inserts
    meanwhile and SQLite gives new rows the ids after the largest one, in order: when
    every row went in (``total_changes``) and the last id is ``largest + n``, the ids
    are ``largest + 1 …``. Otherwise (some ids were already stored) the new rows are
    the batch's rows with ids above ``largest``, read back in one query. A few rows
    take one ``INSERT … RETURNING`` each instead: three statements cost more.
    """
    driver: Any = session.connection().connection.driver_connection
    received = sqlite_timestamp(received_at)
    values = [
        (
            program_id,
            r.event_id,
            r.type,
            r.member_id,
            r.target_member_id,
            sqlite_timestamp(r.occurred_at),
            received,
            r.properties_json,
        )
        for r in rows
    ]
    if len(rows) <= _SQLITE_RETURNING_ROWS:
        return [row for v in values for row in driver.execute(_SQLITE_RETURNING, v).fetchall()]
    largest = driver.execute("SELECT max(id) FROM events").fetchone()[0] or 0
    before = driver.total_changes
    driver.executemany(_SQLITE_INSERT, values)
    count = driver.total_changes - before
    if count == 0:
        return []
    last = driver.execute("SELECT last_insert_rowid()").fetchone()[0]
    if count == len(rows) and last == largest + count:
        return [(largest + 1 + i, row.event_id) for i, row in enumerate(rows)]
    return sorted(
        session.execute(
            _SQLITE_NEW_IDS,
            {
                "program_id": program_id,
                "largest": largest,
                "event_ids": json_dumps([r.event_id for r in rows]),
            },
        ).all()
    )


_EVENTS = cast(Table, Event.__table__)
_SQLITE_RETURNING_ROWS = 16
_SQLITE_INSERT = (
    "INSERT INTO events (program_id, event_id, type, member_id, target_member_id,"
    " occurred_at, received_at, properties) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (program_id, event_id) DO NOTHING"
)
_SQLITE_RETURNING = _SQLITE_INSERT + " RETURNING id, event_id"
_SQLITE_NEW_IDS = select(_EVENTS.c.id, _EVENTS.c.event_id).where(
    _EVENTS.c.program_id == bindparam("program_id"),
    _EVENTS.c.id > bindparam("largest"),
    _EVENTS.c.event_id.in_(
        select(func.json_each(bindparam("event_ids")).table_valued("value").c.value)
    ),
)


class AcceptedEvent(NamedTuple):
    """A newly stored event as listeners see it: the row's values, read-only.

    Built from the values just inserted rather than read back: loading a batch
    of 1,000 events as ORM rows cost a fifth of the whole request. A named tuple:
    immutable like the frozen dataclass it was, and made four times as fast.
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
    session: Session,
    program: Program,
    received_at: datetime,
    rows: list[_NewRow],
    inserted: Sequence[Any],
) -> None:
    """Hand each capability's ``on_events`` the newly stored events (not the duplicates),
    oldest first, in the ingesting transaction."""
    listeners = [m for _, m in capability_modules("listeners") if hasattr(m, "on_events")]
    if not listeners:
        return
    by_event_id = {row.event_id: row for row in rows}
    program_id = program.id
    events = []
    for row_id, event_id in inserted:
        row = by_event_id[event_id]
        events.append(
            AcceptedEvent(
                row_id,
                program_id,
                event_id,
                row.type,
                row.member_id,
                row.target_member_id,
                row.occurred_at,
                received_at,
                row.properties,
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
            at, last_id = datetime.fromisoformat(ts), cursor_id(last)
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
