"""The program's ranking kept in the database (``influence_rankings``), so a page view
reads it instead of rebuilding the graph: shared by every server process, none keeps it
in memory.

The key digests the members (count, newest id), the counted referrals (count, newest
id, last update), the newest event with a target, and the hour: new data or a new hour
is a miss. The ranking of an hour is computed at the hour's start, so every process
that misses computes the same one.

A busy program's key changes with every targeted event, and ranking a large program
takes seconds: given ``refresh``, a miss that finds an older ranking answers with it
(``Kept.current`` False) and calls ``refresh(key)`` to have a job compute the current
one. A program with nothing kept is ranked in the request when ``inline(members)`` says
it is small enough (the caller bounds members and targeted events); a larger one also
gets ``refresh(key)``, and no payload.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from budding.core.db import dialect_insert, utcnow
from budding.influence.models import InfluenceRanking

__all__ = [
    "BUCKET_SECONDS",
    "Kept",
    "cached",
    "clear",
    "current_key",
    "kept",
    "period_start",
    "store",
]

BUCKET_SECONDS = 3600
VERSION = 1  # bump when what is computed changes, so old rows miss


def period_start(now: datetime | None = None) -> datetime:
    """Start of the hour ``now`` falls in: the time a cached ranking is computed at."""
    ts = (now or datetime.now(UTC)).timestamp()
    return datetime.fromtimestamp(ts - ts % BUCKET_SECONDS, UTC)


@dataclass(frozen=True)
class Kept:
    """A kept payload; ``current`` is False for an older one answered while a job computes
    the current one; ``computed_at`` is when it was computed."""

    payload: dict[str, Any]
    current: bool
    computed_at: datetime


def current_key(
    session: Session, program: Any, now: datetime | None = None
) -> tuple[str, datetime]:
    """The key of the program's data and hour, and the hour's start."""
    key, start, _ = _key(session, program, now)
    return key, start


def _key(session: Session, program: Any, now: datetime | None) -> tuple[str, datetime, int]:
    """:func:`current_key` and the program's number of members (part of the key)."""
    from budding.members import service as members
    from budding.referrals import service as referrals

    start = period_start(now)
    graph = members.graph_signature(session, program.id)
    parts = [VERSION, graph, referrals.referral_signature(session, program), int(start.timestamp())]
    return hashlib.sha256(orjson.dumps(parts)).hexdigest(), start, graph[0]


def cached(
    session: Session,
    program: Any,
    compute: Callable[[datetime], dict[str, Any]],
    *,
    now: datetime | None = None,
    refresh: Callable[[str], None] | None = None,
    inline: Callable[[int], bool] | None = None,
) -> Kept | None:
    """The payload kept for the program's current data and hour; on a miss, the older one
    with ``refresh(key)`` called, where there is one and ``refresh`` is given, else
    ``compute(start)``'s, stored (see :func:`store`). None, with ``refresh(key)`` called,
    where nothing is kept and ``inline(members)`` (asked only then, with the program's
    number of members) is false."""
    key, start, members = _key(session, program, now)
    row = session.execute(
        select(InfluenceRanking.key, InfluenceRanking.payload, InfluenceRanking.computed_at)
        .where(InfluenceRanking.program_id == program.id)
        .order_by(InfluenceRanking.id.desc())
        .limit(1)
    ).first()
    if row is not None and row.key == key:
        return Kept(row.payload, True, row.computed_at)
    if row is not None and refresh is not None:
        refresh(key)
        return Kept(row.payload, False, row.computed_at)
    if refresh is not None and inline is not None and not inline(members):
        refresh(key)
        return None
    payload = compute(start)
    return Kept(payload, True, store(session, program.id, key, payload))


def store(session: Session, program_id: int, key: str, payload: dict[str, Any]) -> datetime:
    """Keep ``payload`` under ``key`` (a concurrent writer's row wins) and remove the
    program's older rows. Returns when it was computed (now)."""
    now = utcnow()
    session.execute(
        dialect_insert(session, InfluenceRanking)
        .values(program_id=program_id, key=key, payload=payload, computed_at=now)
        .on_conflict_do_nothing(index_elements=["program_id", "key"])
    )
    session.execute(
        delete(InfluenceRanking).where(
            InfluenceRanking.program_id == program_id, InfluenceRanking.key != key
        )
    )
    return now


def clear(session: Session, program_id: int) -> None:
    """Forget the program's kept rankings (they name members by external id)."""
    session.execute(delete(InfluenceRanking).where(InfluenceRanking.program_id == program_id))


def kept(session: Session, program_id: int) -> list[dict[str, Any]]:
    """The program's kept payloads (for a member's export)."""
    return list(
        session.scalars(
            select(InfluenceRanking.payload).where(InfluenceRanking.program_id == program_id)
        )
    )
