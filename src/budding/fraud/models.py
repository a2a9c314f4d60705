"""Fraud checks' records: every signup assessment (the review queue is made of them) and the
identifiers seen per member (hashed), which self-referral checks compare against.

No raw e-mail, IP address or payment fingerprint is stored here: e-mails and
payment fingerprints are keyed hashes (``core.security.keyed_hash``), IP and
device identifiers arrive hashed already.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from budding.core.db import Base, JSONType, UTCDateTime, utcnow

BigId = BigInteger().with_variant(Integer(), "sqlite")

ACTIONS = ("allow", "flag", "hold", "block")
# none: nothing to review (allowed, or blocked outright); open: waits in the review queue.
REVIEW_STATUSES = ("none", "open", "approved", "rejected")
SIGNAL_KINDS = ("email", "ip", "device", "network", "payment")


class FraudAssessment(Base):
    """One signup checked: what each check found and what was decided."""

    __tablename__ = "fraud_assessments"
    __table_args__ = (
        Index("ix_fraud_assessments_review", "program_id", "review_status", "id"),
        Index("ix_fraud_assessments_referrer", "program_id", "referrer_id", "created_at"),
        Index("ix_fraud_assessments_ip", "program_id", "ip_hash", "created_at"),
        Index("ix_fraud_assessments_network", "program_id", "network_hash", "created_at"),
        Index("ix_fraud_assessments_member", "program_id", "member_id"),
        Index("ix_fraud_assessments_referral", "program_id", "referral_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    referrer_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    # The new member and their referral, once they exist (``attach``).
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    referral_id: Mapped[int | None] = mapped_column(Integer)
    email_key: Mapped[str] = mapped_column(String(64), default="")
    email_domain: Mapped[str] = mapped_column(String(255), default="")
    ip_hash: Mapped[str] = mapped_column(String(64), default="")
    device_hash: Mapped[str] = mapped_column(String(64), default="")
    network_hash: Mapped[str] = mapped_column(String(64), default="")
    payment_key: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(8))
    reasons: Mapped[list[str]] = mapped_column(JSONType, default=list)  # check names
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # check → evidence
    review_status: Mapped[str] = mapped_column(String(16), default="none")
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reviewed_by: Mapped[str] = mapped_column(String(320), default="")
    review_note: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FraudSignal(Base):
    """An identifier (hashed) seen for a member: their e-mail, IP, device, network, card."""

    __tablename__ = "fraud_signals"
    __table_args__ = (
        UniqueConstraint("program_id", "member_id", "kind", "value"),
        Index("ix_fraud_signals_value", "program_id", "kind", "value"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(64))
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
