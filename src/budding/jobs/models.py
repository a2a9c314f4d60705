"""Tables of the job system.

``jobs`` is the source of truth: one row per job with its status, progress,
result and retry state. The four ``huey_*`` tables are huey's own storage
(``huey.contrib.sql_huey``), declared here so that migrations create them,
the test suite empties them, and no process ever runs DDL at start-up.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from budding.core.db import Base, JSONType, UTCDateTime, utcnow

BigId = BigInteger().with_variant(Integer(), "sqlite")

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
STATUSES: tuple[str, ...] = (QUEUED, RUNNING, SUCCEEDED, FAILED)


class JobRecord(Base):
    """One background job. Written in the caller's transaction (the outbox); pushed to
    the queue after commit; claimed, run and finished by a worker."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_program_created", "program_id", "created_at"),
        Index("ix_jobs_status_run_after", "status", "run_after"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    program_id: Mapped[int | None] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=QUEUED)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(String(500), default="")
    result: Mapped[Any | None] = mapped_column(JSONType, nullable=True)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=1)
    # Enqueueing twice with the same key gives the first job back.
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The next attempt may start at this time (retries wait here).
    run_after: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When the job was last handed to the queue; NULL: not yet (the sweeper will).
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A running attempt that neither finishes nor reports progress by then is presumed lost.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def finished(self) -> bool:
        return self.status in (SUCCEEDED, FAILED)


# --- huey's storage (huey.contrib.sql_huey.SqlStorage, with prefixed table names) ----------


class HueyTask(Base):
    __tablename__ = "huey_task"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    queue: Mapped[str] = mapped_column(String(255))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    priority: Mapped[float] = mapped_column(Float, default=0.0)


# huey dequeues by ``priority DESC, id``.
Index("ix_huey_task_priority_id", HueyTask.priority.desc(), HueyTask.id)


class HueySchedule(Base):
    __tablename__ = "huey_schedule"
    __table_args__ = (Index("ix_huey_schedule_queue_timestamp", "queue", "timestamp"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    queue: Mapped[str] = mapped_column(String(255))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    timestamp: Mapped[int] = mapped_column(BigInteger)


class HueyKV(Base):
    __tablename__ = "huey_kv"

    queue: Mapped[str] = mapped_column(String(255), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[bytes] = mapped_column(LargeBinary)


class HueyCounter(Base):
    __tablename__ = "huey_counter"

    queue: Mapped[str] = mapped_column(String(255), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)


HUEY_TABLES = {
    "KV": HueyKV.__tablename__,
    "Schedule": HueySchedule.__tablename__,
    "Task": HueyTask.__tablename__,
    "Counter": HueyCounter.__tablename__,
}
