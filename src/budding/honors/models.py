"""The points ledger: append-only entries; a balance is their sum, a reversal a new entry."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from budding.core.db import Base, UTCDateTime, utcnow

# SQLite only auto-increments INTEGER PRIMARY KEY, not BIGINT.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class PointsEntry(Base):
    """One change of a member's points. Never updated, never deleted.

    ``key`` is the writer's idempotency key within the program (e.g.
    ``reward:42``): a retried credit finds the entry already there. A reversal
    is an entry of the opposite sign whose ``reverses_id`` names the original;
    the unique constraint on it allows one reversal per entry.
    """

    __tablename__ = "points_entries"
    __table_args__ = (
        UniqueConstraint("program_id", "key"),
        UniqueConstraint("reverses_id"),
        Index("ix_points_entries_member_id_id", "member_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    points: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(200))
    reverses_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("points_entries.id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
