"""The points ledger: idempotent credits, reversals by compensating entry, balances. Never commits.

Every change of points is a new row of ``points_entries``; nothing is updated
in place. ``credit`` is idempotent on its ``key`` (a unique constraint and
``INSERT … ON CONFLICT DO NOTHING``, never check-then-insert), so a retried or
concurrent writer cannot credit twice. ``reverse`` writes the opposite entry
once (a unique constraint on ``reverses_id``). The balance is the sum of the
member's entries.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from budding.core.db import dialect_insert, utcnow
from budding.core.errors import Conflict, NotFound, field
from budding.honors.models import PointsEntry
from budding.programs.models import Program

MAX_KEY = 190  # leaves room for the reversal suffix within the 200-character column
REVERSAL_SUFFIX = "#reversal"
MAX_POINTS = 1_000_000_000


def _check_member(session: Session, program: Program, member_id: int) -> None:
    from budding.members.service import get_member_by_id

    member = get_member_by_id(session, member_id)
    if member.program_id != program.id:
        raise NotFound("no such member", fields={"member_id": "not a member of this program"})


def credit(
    session: Session, program: Program, member_id: int, points: int, *, reason: str, key: str
) -> PointsEntry:
    """Add ``points`` (negative to take some away) to a member's ledger, once per ``key``.

    A second call with the same key returns the first entry; a second call with
    the same key but another member or amount is a ``Conflict`` (a key names one
    entry). Safe under concurrency: the database keeps one row per key.
    """
    if not isinstance(points, int) or isinstance(points, bool) or points == 0:
        raise field("points", "must be a non-zero whole number")
    if abs(points) > MAX_POINTS:
        raise field("points", f"must be at most {MAX_POINTS:,} in size")
    if not key or len(key) > MAX_KEY:
        raise field("key", f"must be 1-{MAX_KEY} characters")
    if key.endswith(REVERSAL_SUFFIX):
        raise field("key", f"must not end with {REVERSAL_SUFFIX!r} (reserved for reversals)")
    reason = (reason or "").strip()[:200]
    if not reason:
        raise field("reason", "is required")
    _check_member(session, program, member_id)
    inserted = session.execute(
        dialect_insert(session, PointsEntry)
        .values(
            program_id=program.id,
            member_id=member_id,
            points=points,
            reason=reason,
            key=key,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["program_id", "key"])
        .returning(PointsEntry.id)
    ).scalar()
    entry = session.get_one(PointsEntry, inserted) if inserted else _by_key(session, program, key)
    if entry is None:  # pragma: no cover - the conflicting row is visible once its writer commits
        raise Conflict("the points entry could not be written; retry", fields={"key": key})
    if inserted is None and (entry.member_id != member_id or entry.points != points):
        raise Conflict(
            f"key {key!r} already names an entry for another member or amount",
            fields={"key": "already used for a different entry"},
        )
    return entry


def _by_key(session: Session, program: Program, key: str) -> PointsEntry | None:
    return session.scalar(
        select(PointsEntry).where(PointsEntry.program_id == program.id, PointsEntry.key == key)
    )


def get_entry(session: Session, program: Program, key: str) -> PointsEntry:
    entry = _by_key(session, program, key)
    if entry is None:
        raise NotFound(f"no points entry {key!r}", fields={"key": "unknown entry"})
    return entry


def reverse(session: Session, program: Program, key: str, reason: str) -> PointsEntry:
    """Cancel the entry named ``key`` with a compensating entry; idempotent.

    Returns the compensating entry (the existing one when it was reversed
    before). The original stays in the ledger; the balance goes back.
    """
    original = get_entry(session, program, key)
    if original.reverses_id is not None:
        raise Conflict("a reversal cannot be reversed", fields={"key": "is a reversal entry"})
    reversal_key = key + REVERSAL_SUFFIX
    reason = ((reason or "").strip() or "reversal")[:200]
    session.execute(
        dialect_insert(session, PointsEntry)
        .values(
            program_id=program.id,
            member_id=original.member_id,
            points=-original.points,
            reason=reason,
            key=reversal_key,
            reverses_id=original.id,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing()
    )
    entry = _by_key(session, program, reversal_key)
    if entry is None:  # pragma: no cover
        raise Conflict("the reversal could not be written; retry", fields={"key": key})
    return entry


def is_reversed(session: Session, program: Program, key: str) -> bool:
    return _by_key(session, program, key + REVERSAL_SUFFIX) is not None


def balance(session: Session, program: Program, member_id: int) -> int:
    """The member's points: the sum of their entries."""
    total = session.scalar(
        select(func.coalesce(func.sum(PointsEntry.points), 0)).where(
            PointsEntry.program_id == program.id, PointsEntry.member_id == member_id
        )
    )
    return int(total or 0)


def balances(session: Session, program: Program, member_ids: list[int]) -> dict[int, int]:
    """Balances of several members at once (members without entries are 0)."""
    if not member_ids:
        return {}
    rows = session.execute(
        select(PointsEntry.member_id, func.sum(PointsEntry.points))
        .where(PointsEntry.program_id == program.id, PointsEntry.member_id.in_(member_ids))
        .group_by(PointsEntry.member_id)
    )
    out = dict.fromkeys(member_ids, 0)
    out.update({m: int(s or 0) for m, s in rows})
    return out


def entries(
    session: Session,
    program: Program,
    member_id: int | None = None,
    *,
    before_id: int | None = None,
    limit: int = 100,
) -> list[PointsEntry]:
    """Ledger entries, newest first; of one member when ``member_id`` is given.

    Page with ``before_id`` (the ``id`` of the last entry of the previous page).
    """
    # 1001: a page of 1000 and one more, which tells whether a next page exists.
    if not 1 <= limit <= 1001:
        raise field("limit", "must be between 1 and 1000")
    stmt = select(PointsEntry).where(PointsEntry.program_id == program.id)
    if member_id is not None:
        stmt = stmt.where(PointsEntry.member_id == member_id)
    if before_id is not None:
        stmt = stmt.where(PointsEntry.id < before_id)
    return list(session.scalars(stmt.order_by(PointsEntry.id.desc()).limit(limit)))
