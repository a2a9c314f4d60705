"""The program's ranking kept in the database (``influence_rankings``), so a page view
reads it instead of rebuilding the graph: shared by every server process, none keeps it
in memory.

The key digests the members (count, newest id), the counted referrals (count, newest
id, last update), the newest event with a target, and the hour: new data or a new hour
is a miss. The ranking of an hour is computed at the hour's start, so every process
that misses computes the same one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from budding.core.db import dialect_insert
from budding.influence.models import InfluenceRanking

__all__ = ["BUCKET_SECONDS", "cached", "clear", "kept", "period_start"]

BUCKET_SECONDS = 3600
VERSION = 1  # bump when what is computed changes, so old rows miss


def period_start(now: datetime | None = None) -> datetime:
    """Start of the hour ``now`` falls in: the time a cached ranking is computed at."""
    ts = (now or datetime.now(UTC)).timestamp()
    return datetime.fromtimestamp(ts - ts % BUCKET_SECONDS, UTC)


def _key(session: Session, program: Any, start: datetime) -> str:
    from budding.members import service as members
    from budding.referrals import service as referrals

    parts = [
        VERSION,
        members.graph_signature(session, program.id),
        referrals.referral_signature(session, program),
        int(start.timestamp()),
    ]
    return hashlib.sha256(orjson.dumps(parts)).hexdigest()


def cached(
    session: Session,
    program: Any,
    compute: Callable[[datetime], dict[str, Any]],
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The payload kept for the program's current data and hour, or ``compute(start)``'s,
    stored (a concurrent writer's row wins) with the program's older rows removed."""
    start = period_start(now)
    key = _key(session, program, start)
    found = session.scalar(
        select(InfluenceRanking.payload).where(
            InfluenceRanking.program_id == program.id, InfluenceRanking.key == key
        )
    )
    if found is not None:
        return found
    payload = compute(start)
    session.execute(
        dialect_insert(session, InfluenceRanking)
        .values(program_id=program.id, key=key, payload=payload)
        .on_conflict_do_nothing(index_elements=["program_id", "key"])
    )
    session.execute(
        delete(InfluenceRanking).where(
            InfluenceRanking.program_id == program.id, InfluenceRanking.key != key
        )
    )
    return payload


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
