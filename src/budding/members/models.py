from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from budding.core.db import Base, JSONType, UTCDateTime, utcnow

# SQLite only auto-increments INTEGER PRIMARY KEY, not BIGINT.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Member(Base):
    __tablename__ = "members"
    __table_args__ = (
        UniqueConstraint("program_id", "external_id"),
        UniqueConstraint("program_id", "email"),
        Index("ix_members_program_created", "program_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(200))
    # Normalised address (lower-case, IDNA); NULL when unknown or erased.
    email: Mapped[str | None] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200), default="")
    locale: Mapped[str | None] = mapped_column(String(16))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    marketing_consent: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Portal sessions carry the version they were signed in under; signing out (or
    # erasure) increments it, which ends every session signed in before.
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")


class EventType(Base):
    """A custom event type registered by a program (built-in types need no row)."""

    __tablename__ = "event_types"
    __table_args__ = (UniqueConstraint("program_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Event(Base):
    """The append-only log. ``event_id`` is the client's idempotency key."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("program_id", "event_id"),
        Index("ix_events_program_occurred", "program_id", "occurred_at", "id"),
        Index("ix_events_member_occurred", "member_id", "occurred_at", "id"),
        Index("ix_events_program_type_occurred", "program_id", "type", "occurred_at"),
        # Events with a target only (the member graph's edges): the influence capability
        # reads them, and their newest id, without scanning the whole log.
        Index(
            "ix_events_program_targeted",
            "program_id",
            "id",
            sqlite_where=text("target_member_id IS NOT NULL"),
            postgresql_where=text("target_member_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    target_member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL"), index=True
    )
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    properties: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class MagicLink(Base):
    """A single-use member sign-in link; only the token's hash is stored."""

    __tablename__ = "magic_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
