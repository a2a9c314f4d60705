"""Webhook endpoints, deliveries (one per event and endpoint: the outbox) and attempts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from budding.core.db import Base, JSONType, UTCDateTime, utcnow

BigId = BigInteger().with_variant(Integer(), "sqlite")

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
DELIVERY_STATUSES: tuple[str, ...] = (PENDING, DELIVERED, FAILED)


class WebhookEndpoint(Base):
    """A receiver URL of a program. Removing one keeps it (and its log), marked removed."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(
        ForeignKey("programs.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(200), default="")
    # The HMAC key; it must be stored to sign with it, and is shown once, when created.
    secret: Mapped[str] = mapped_column(String(100))
    # The secret it replaced, still signing (beside the new one) until the time given, so
    # a receiver can switch without missing a delivery; None once rotated without overlap.
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Subscribed event types; ["*"] is every type.
    event_types: Mapped[list[str]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def subscribes_to(self, event_type: str) -> bool:
        return "*" in self.event_types or event_type in self.event_types

    def signing_secrets(self, now: datetime) -> list[str]:
        """The secrets that sign an attempt made at ``now``: the current one first."""
        if self.previous_secret and self.previous_secret_until(now) is not None:
            return [self.secret, self.previous_secret]
        return [self.secret]

    def previous_secret_until(self, now: datetime) -> datetime | None:
        """When the replaced secret stops signing, if it still signs at ``now``."""
        expires = self.previous_secret_expires_at
        return expires if expires is not None and expires > now else None

    @property
    def previous_secret_signs_until(self) -> datetime | None:
        """:meth:`previous_secret_until` now (the API and pages show it; never the secret)."""
        return self.previous_secret_until(utcnow())


class WebhookDelivery(Base):
    """One event for one endpoint. ``uid`` is the ``Budding-Delivery`` header: stable
    across retries and redeliveries, so receivers deduplicate on it. ``body`` is the
    exact JSON sent, fixed when the event was emitted."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_program_created", "program_id", "id"),
        Index("ix_webhook_deliveries_program_status", "program_id", "status", "id"),
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    uid: Mapped[str] = mapped_column(String(40), unique=True)
    event_id: Mapped[str] = mapped_column(String(40))
    event_type: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    last_status_code: Mapped[int | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The job (budding.core.jobs) that owns it: its ``webhooks.deliver`` job while that
    # retries it, or the ``webhooks.redeliver`` job asked to send it again once it had
    # finished. Only the owner decides when it fails; see ``service.claim_attempt``.
    job_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))
    # Set while an attempt is in flight, until its lease ends: attempts at one delivery
    # are made one at a time, whichever job makes them. None when none is.
    sending_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookAttempt(Base):
    """One HTTP request of a delivery: what the receiver answered, and how fast."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_delivery", "delivery_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE")
    )
    number: Mapped[int] = mapped_column()
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    duration_ms: Mapped[int] = mapped_column(default=0)
    status_code: Mapped[int | None] = mapped_column()
    response_excerpt: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(String(500))
    ok: Mapped[bool] = mapped_column(default=False)
