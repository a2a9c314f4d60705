"""Share templates, the share-funnel projection of the event log, tell-a-friend mail."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from budding.core.db import Base, UTCDateTime, utcnow

BigId = BigInteger().with_variant(Integer(), "sqlite")


class ShareTemplate(Base):
    """An admin's wording for one message kind or channel in one locale (default: catalogs)."""

    __tablename__ = "share_templates"
    __table_args__ = (UniqueConstraint("program_id", "key", "locale"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    # A message kind (chat, post, email, tell_a_friend, signature) or a channel key.
    key: Mapped[str] = mapped_column(String(32))
    locale: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(320), default="")


class ShareStep(Base):
    """One share-funnel event, projected from the members' event log (the source of truth)
    by ``listeners.on_events`` so that the funnel is aggregated in SQL. Rebuildable with
    ``budding sharing rebuild``."""

    __tablename__ = "share_steps"
    __table_args__ = (
        Index("ix_share_steps_program_type_occurred", "program_id", "type", "occurred_at"),
        Index("ix_share_steps_program_share", "program_id", "share_id"),
        UniqueConstraint("program_id", "event_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    # The event's id (idempotency key) in the log: a replayed event is projected once.
    event_id: Mapped[str] = mapped_column(String(200))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str | None] = mapped_column(String(32))
    share_id: Mapped[str | None] = mapped_column(String(64))
    surface: Mapped[str] = mapped_column(String(16), default="")
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TellAFriendMail(Base):
    """A "tell a friend" e-mail sent by Budding for a member: one row per daily slot.

    The daily limit is enforced by the database: a member's sends on one UTC day take slots
    1..limit under a unique key, so concurrent requests can never take more slots than the
    limit, and one friend is mailed at most once a day (unique recipient hash). The address
    is kept only until the mail is sent, then only its keyed hash remains.
    """

    __tablename__ = "tell_a_friend_mails"
    __table_args__ = (
        UniqueConstraint("member_id", "day", "slot"),
        UniqueConstraint("member_id", "day", "recipient_hash"),
        Index("ix_tell_a_friend_mails_status", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    slot: Mapped[int] = mapped_column(Integer)
    recipient_hash: Mapped[str] = mapped_column(String(64))
    recipient: Mapped[str | None] = mapped_column(String(320))
    locale: Mapped[str] = mapped_column(String(16), default="en")
    note: Mapped[str] = mapped_column(String(500), default="")
    share_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued|sending|sent|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
