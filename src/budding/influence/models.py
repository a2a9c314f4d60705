"""The computed ranking of a program's opinion leaders, kept for the pages and the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from budding.core.db import Base, JSONType, UTCDateTime, utcnow


class InfluenceRanking(Base):
    """Every member's measures on the program's graph as it was when ``key`` was taken.

    ``key`` digests what the graph depends on (members, counted referrals, events with a
    target) and the hour, as recency weights drift: a new key is a miss, so several
    server processes share one answer through the database. Holds external ids, not
    names; erasing a member deletes the program's rows (``influence.privacy``)."""

    __tablename__ = "influence_rankings"
    __table_args__ = (UniqueConstraint("program_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
