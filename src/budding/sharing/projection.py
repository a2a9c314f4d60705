"""The share-funnel projection: ``share_steps`` rows derived from the members' event log.

The log is the source of truth; ``listeners.on_events`` projects new events in the same
transaction, and :func:`rebuild` replays the log (idempotent: one row per event id).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from budding.core.db import dialect_insert
from budding.members import events as member_events
from budding.members import service as members
from budding.programs.models import Program
from budding.sharing.models import ShareStep
from budding.sharing.schemas import SURFACES

PROJECTED: tuple[str, ...] = ("share_opened", "channel_chosen", "share_sent", "link_click")


@dataclass(frozen=True)
class LogEvent:
    event_id: str
    type: str
    member_id: int
    occurred_at: datetime
    properties: dict[str, Any]


def _text(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def step_rows(program_id: int, events: Iterable[Any]) -> list[dict[str, Any]]:
    """Rows for the funnel events among ``events`` (anything with event_id, type,
    member_id, occurred_at and properties)."""
    rows = []
    for e in events:
        if e.type not in PROJECTED:
            continue
        props = e.properties or {}
        surface = props.get("surface")
        rows.append(
            {
                "program_id": program_id,
                "event_id": e.event_id,
                "member_id": e.member_id,
                "type": e.type,
                "channel": _text(props.get("channel"), 32),
                "share_id": _text(props.get("share_id"), 64),
                "surface": surface if surface in SURFACES else "",
                "occurred_at": e.occurred_at,
            }
        )
    return rows


def project(session: Session, program_id: int, events: Iterable[Any]) -> int:
    """Store the funnel events' rows; returns how many were new."""
    rows = step_rows(program_id, events)
    if not rows:
        return 0
    # executemany of one statement (cached once compiled): ``.values(rows)`` built and
    # compiled a new statement for every batch.
    result = session.execute(
        dialect_insert(session, ShareStep.__table__)
        .on_conflict_do_nothing(index_elements=["program_id", "event_id"])
        .returning(ShareStep.__table__.c.id),
        rows,
    )
    return len(result.all())


def rebuild(
    session: Session, program: Program, progress: Callable[[int], None] | None = None
) -> int:
    """Replay the program's funnel events from the log into the projection."""
    added = seen = 0
    for kind in PROJECTED:
        cursor: str | None = None
        while True:
            page, cursor = member_events.query_events(
                session, program, type=kind, cursor=cursor, limit=1000
            )
            ids = {
                m.external_id: m.id
                for m in members.members_by_external_ids(
                    session, program.id, sorted({e.member for e in page})
                )
            }
            added += project(
                session,
                program.id,
                [
                    LogEvent(e.id, e.type, ids[e.member], e.occurred_at, e.properties)
                    for e in page
                    if e.member in ids
                ],
            )
            seen += len(page)
            if progress:
                progress(seen)
            if cursor is None:
                break
    return added
