"""Referral tables: invite codes and their quota ledger, referral codes and clicks,
referrals (who brought whom), the waitlist and its position history.

Every row carries ``program_id``. Money-like state is kept as ledgers: the
invite quota is the program's base quota plus the member's grant entries,
never a counter overwritten in place.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from budding.core.db import Base, JSONType, UTCDateTime, utcnow

# SQLite only auto-increments INTEGER PRIMARY KEY, not BIGINT.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class ReferralCode(Base):
    """A personal, multi-use referral code (``/r/{code}``), owned by a member or by a
    waitlist entry (handed over to the member when the entry joins)."""

    __tablename__ = "referral_codes"
    __table_args__ = (
        UniqueConstraint("program_id", "member_id"),
        UniqueConstraint("program_id", "waitlist_entry_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(16), unique=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    # Plain column (no foreign key): waitlist entries point back at referral codes.
    waitlist_entry_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class InviteCode(Base):
    """A scarce invitation: ``uses`` redemptions at most, optionally expiring, revocable."""

    __tablename__ = "invite_codes"
    __table_args__ = (
        CheckConstraint("used >= 0 AND used <= uses", name="used_within_uses"),
        Index("ix_invite_codes_program_issuer", "program_id", "issuer_member_id"),
        Index("ix_invite_codes_program_created", "program_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(16), unique=True)
    # The member who shares it; NULL for codes issued by staff or by a waitlist release.
    issuer_member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL")
    )
    # Plain column (no foreign key), to keep the tables free of a dependency cycle.
    waitlist_entry_id: Mapped[int | None] = mapped_column(Integer, index=True)
    source: Mapped[str] = mapped_column(String(16), default="member")  # member|staff|waitlist
    uses: Mapped[int] = mapped_column(Integer, default=1)
    used: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_reason: Mapped[str] = mapped_column(String(200), default="")


class InviteRedemption(Base):
    """One use of an invite code: the member it brought in."""

    __tablename__ = "invite_redemptions"
    __table_args__ = (UniqueConstraint("invite_id", "member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    invite_id: Mapped[int] = mapped_column(ForeignKey("invite_codes.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    redeemed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class InviteGrant(Base):
    """Ledger of extra invites (or, negative, their reversal) for one member.

    ``key`` makes a grant idempotent: the same reward retried grants once.
    """

    __tablename__ = "invite_grants"
    __table_args__ = (
        UniqueConstraint("program_id", "key"),
        Index("ix_invite_grants_member", "program_id", "member_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    count: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(200), default="")
    key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class InviteLock(Base):
    """One row per member that issues invites, locked ``FOR UPDATE`` while issuing, so
    concurrent requests for one member take turns and never overspend the quota."""

    __tablename__ = "invite_locks"

    program_id: Mapped[int] = mapped_column(
        ForeignKey("programs.id", ondelete="CASCADE"), primary_key=True
    )
    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )


class ReferralCounter(Base):
    """Per-program counters (the waitlist's join sequence); also the waitlist's lock row."""

    __tablename__ = "referral_counters"

    program_id: Mapped[int] = mapped_column(
        ForeignKey("programs.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), default=0)


class ReferralClick(Base):
    """One click on a referral or invite link. ``token`` is the click id carried in the
    landing URL and a cookie; ``visitor`` ties one browser's clicks together."""

    __tablename__ = "referral_clicks"
    __table_args__ = (
        Index("ix_referral_clicks_program_clicked", "program_id", "clicked_at"),
        Index("ix_referral_clicks_referrer", "referrer_member_id", "clicked_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    token: Mapped[str] = mapped_column(String(32), unique=True)
    visitor: Mapped[str] = mapped_column(String(32), index=True)
    code_id: Mapped[int | None] = mapped_column(ForeignKey("referral_codes.id", ondelete="CASCADE"))
    invite_id: Mapped[int | None] = mapped_column(ForeignKey("invite_codes.id", ondelete="CASCADE"))
    referrer_member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL")
    )
    channel: Mapped[str | None] = mapped_column(String(32))
    ip_hash: Mapped[str] = mapped_column(String(32), default="")
    user_agent: Mapped[str] = mapped_column(String(400), default="")
    # A link preview or crawler (by user agent): stored, but not a person's click.
    bot: Mapped[bool] = mapped_column(default=False)
    clicked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Referral(Base):
    """Who brought whom: one row per referred member (a member has one referrer)."""

    __tablename__ = "referrals"
    __table_args__ = (
        UniqueConstraint("program_id", "referee_member_id"),
        Index("ix_referrals_referrer", "program_id", "referrer_member_id", "signed_up_at"),
        Index("ix_referrals_program_signed_up", "program_id", "signed_up_at"),
        Index("ix_referrals_program_status", "program_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    referrer_member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    referee_member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(16))  # invite|link|code|waitlist|import
    code_id: Mapped[int | None] = mapped_column(
        ForeignKey("referral_codes.id", ondelete="SET NULL")
    )
    invite_id: Mapped[int | None] = mapped_column(
        ForeignKey("invite_codes.id", ondelete="SET NULL")
    )
    click_id: Mapped[int | None] = mapped_column(
        ForeignKey("referral_clicks.id", ondelete="SET NULL")
    )
    channel: Mapped[str | None] = mapped_column(String(32))
    # The referee's generation: 1 when the referrer was not referred by anyone.
    generation: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(
        String(16), default="active"
    )  # active|held|approved|rejected
    status_reason: Mapped[str] = mapped_column(String(500), default="")
    fraud_reasons: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    signed_up_at: Mapped[datetime] = mapped_column(UTCDateTime)
    converted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    conversion_event_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReferralStatusChange(Base):
    """Audit trail of a referral's review outcomes."""

    __tablename__ = "referral_status_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    referral_id: Mapped[int] = mapped_column(
        ForeignKey("referrals.id", ondelete="CASCADE"), index=True
    )
    old_status: Mapped[str] = mapped_column(String(16))
    new_status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(500), default="")
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WaitlistEntry(Base):
    """A person waiting for access. The queue order is ``(rank_key, seq)``: ``seq`` is the
    join order and ``rank_key = seq - boost``, where ``boost`` is the places earned by
    confirmed referrals (capped)."""

    __tablename__ = "waitlist_entries"
    __table_args__ = (
        UniqueConstraint("program_id", "email"),
        UniqueConstraint("program_id", "seq"),
        Index("ix_waitlist_entries_queue", "program_id", "status", "rank_key", "seq"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    # Normalised address; NULL once erased.
    email: Mapped[str | None] = mapped_column(String(320))
    seq: Mapped[int] = mapped_column(Integer)
    boost: Mapped[int] = mapped_column(Integer, default=0)
    rank_key: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(
        String(16), default="waiting"
    )  # waiting|released|joined|removed
    locale: Mapped[str | None] = mapped_column(String(16))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    referred_by_code_id: Mapped[int | None] = mapped_column(
        ForeignKey("referral_codes.id", ondelete="SET NULL")
    )
    click_id: Mapped[int | None] = mapped_column(
        ForeignKey("referral_clicks.id", ondelete="SET NULL")
    )
    # Set once this entry's confirmation has credited its referrer (so it credits once).
    credited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ip_hash: Mapped[str] = mapped_column(String(32), default="")
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WaitlistChange(Base):
    """Every change of an entry's place in the queue, with its reason."""

    __tablename__ = "waitlist_changes"
    __table_args__ = (Index("ix_waitlist_changes_entry", "entry_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    entry_id: Mapped[int] = mapped_column(ForeignKey("waitlist_entries.id", ondelete="CASCADE"))
    old_position: Mapped[int | None] = mapped_column(Integer)
    new_position: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(String(300), default="")
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
