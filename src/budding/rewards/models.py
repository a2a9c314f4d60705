"""Reward rules, rewards (with their append-only event log), milestone progress and coupon pools.

Every row carries ``program_id``. Exactly-once issuance lives in the unique
constraint ``(rule_id, dedupe_key)`` of ``rewards``: the dedupe key is the
trigger key for signup and conversion rules and ``member:<id>:<n>`` for
milestones, so retries and concurrent deliveries insert one row at most.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from budding.core.db import Base, JSONType, UTCDateTime, utcnow

BigId = BigInteger().with_variant(Integer(), "sqlite")

SIDES = ("referrer", "referee")
TRIGGERS = ("signup", "conversion", "milestone")
KINDS = ("points", "coupon", "invites", "custom")
STAGES = ("signup", "conversion")
# pending: vesting (waits until vests_at); held: waits for a review; issued: delivered;
# rejected: refused before delivery; reversed: taken back (compensating entries written).
STATUSES = ("pending", "held", "issued", "rejected", "reversed")
OPEN_STATUSES = ("pending", "held")


class RewardRule(Base):
    """What a program pays, to whom, when. Rules are archived, never deleted: rewards cite them."""

    __tablename__ = "reward_rules"
    __table_args__ = (Index("ix_reward_rules_program_trigger", "program_id", "trigger"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    side: Mapped[str] = mapped_column(String(16))
    trigger: Mapped[str] = mapped_column(String(16))
    # Milestone rules: pay once the referrer has this many successful referrals,
    # counted at this stage (a referral that signed up, or that converted).
    milestone: Mapped[int | None] = mapped_column(Integer)
    milestone_on: Mapped[str] = mapped_column(String(16), default="conversion")
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(Integer, default=0)  # points or invites
    pool_id: Mapped[int | None] = mapped_column(ForeignKey("coupon_pools.id", ondelete="RESTRICT"))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # custom rewards
    vesting_days: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Reward(Base):
    """One reward earned by one member under one rule for one trigger (or milestone)."""

    __tablename__ = "rewards"
    __table_args__ = (
        UniqueConstraint("rule_id", "dedupe_key"),
        Index("ix_rewards_program_status", "program_id", "status", "id"),
        Index("ix_rewards_member", "member_id", "id"),
        Index("ix_rewards_program_trigger_key", "program_id", "trigger_key"),
        Index("ix_rewards_program_referral", "program_id", "referral_id"),
        Index("ix_rewards_status_vests", "status", "vests_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    rule_id: Mapped[int] = mapped_column(ForeignKey("reward_rules.id", ondelete="RESTRICT"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    referrer_id: Mapped[int | None] = mapped_column(Integer)
    referee_id: Mapped[int | None] = mapped_column(Integer)
    referral_id: Mapped[int | None] = mapped_column(Integer)
    side: Mapped[str] = mapped_column(String(16))
    trigger: Mapped[str] = mapped_column(String(16))
    trigger_key: Mapped[str] = mapped_column(String(200))
    dedupe_key: Mapped[str] = mapped_column(String(220))
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(Integer, default=0)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(500), default="")
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    vests_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reversed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A milestone reward taken back because the referrer's count fell below it (fraud,
    # refund); it may be earned again. Any other reversal or rejection is final.
    below_milestone: Mapped[bool] = mapped_column(default=False)


class RewardEvent(Base):
    """The append-only history of a reward: created, held, issued, rejected, reversed, …"""

    __tablename__ = "reward_events"
    __table_args__ = (Index("ix_reward_events_reward", "reward_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    reward_id: Mapped[int] = mapped_column(BigId, ForeignKey("rewards.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(String(500), default="")
    actor: Mapped[str] = mapped_column(String(320), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RewardProgress(Base):
    """Qualifying triggers per referrer, counted for milestones.

    One row per trigger (unique by key); a refund revokes its trigger's row, a
    fraud rejection every row of the referral. A milestone counts distinct
    referrals with an unrevoked row at the rule's stage.
    """

    __tablename__ = "reward_progress"
    __table_args__ = (
        UniqueConstraint("program_id", "stage", "trigger_key"),
        Index("ix_reward_progress_referrer", "program_id", "referrer_id", "stage"),
        Index("ix_reward_progress_referral", "program_id", "referral_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    referrer_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    referral_id: Mapped[int] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(16))
    trigger_key: Mapped[str] = mapped_column(String(200))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_reason: Mapped[str] = mapped_column(String(500), default="")


class CouponPool(Base):
    __tablename__ = "coupon_pools"
    __table_args__ = (UniqueConstraint("program_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CouponCode(Base):
    """One uploaded code. Handed out by setting ``reward_id`` (unique) exactly once."""

    __tablename__ = "coupon_codes"
    __table_args__ = (
        UniqueConstraint("pool_id", "code"),
        UniqueConstraint("reward_id"),
        Index(
            "ix_coupon_codes_available",
            "pool_id",
            "id",
            postgresql_where=text("reward_id IS NULL AND voided_at IS NULL"),
            sqlite_where=text("reward_id IS NULL AND voided_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    pool_id: Mapped[int] = mapped_column(ForeignKey("coupon_pools.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(100))
    reward_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("rewards.id"))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
