"""Durable background jobs: huey on Budding's own database, with status and progress.

Capabilities declare jobs in their own ``tasks`` module and enqueue them from
service code, inside the caller's unit of work::

    # budding/influence/tasks.py
    from budding.core.jobs import JobContext, job

    @job(retries=2, retry_delay=30, lease=900)
    def simulate(ctx: JobContext, plan_id: int, runs: int) -> dict[str, float]:
        for i in range(runs):
            ...
            ctx.progress((i + 1) / runs, SIMULATING)  # N_("simulating the plan"): a fixed
        return {"reach": 1234.5}                     # step, shown in the staff's language

    # budding/influence/service.py
    from budding.core import jobs

    record = jobs.enqueue(session, "influence.simulate", {"plan_id": 7, "runs": 10_000},
                          program_id=program.id)   # commits with the caller's transaction

How it stays durable (see docs/jobs.md):

- ``enqueue`` writes a row of the ``jobs`` table in the caller's transaction (the
  outbox). Only after that transaction commits is the job handed to huey (an
  ``after_commit`` hook); a rolled-back transaction enqueues nothing.
- huey's queue lives in the same database (``huey.contrib.sql_huey``: SQLite by
  default, PostgreSQL in production, or ``BUDDING_JOBS_URL``), so no process holds
  state that another needs.
- A worker claims a job with a conditional ``UPDATE`` (queued -> running), so a job
  handed to huey twice runs once. Each attempt holds a lease that progress reports
  extend; the worker's sweeper requeues a job whose worker died (lease expired),
  hands over jobs whose hand-over was lost (the process died between commit and
  push), and purges old finished jobs.
- Retries (with exponential backoff and jitter) are counted in the row, scheduled
  with huey's ``eta``, and visible in the dashboard and the API.

Jobs run at least once: a job function must be idempotent (check its own rows
before acting). It opens its own units of work: a job never holds a transaction
open while it computes, which on SQLite would block every writer.
"""

from __future__ import annotations

import contextvars
import inspect
import json
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, event, func, or_, select, update
from sqlalchemy.orm import Session

from budding.core.config import get_settings
from budding.core.db import dialect_insert, normalise_url, unit_of_work, utcnow
from budding.core.erasure import Identity, mentions, scrub
from budding.core.errors import BuddingError, Conflict, NotFound
from budding.jobs.models import (
    FAILED,
    HUEY_TABLES,
    QUEUED,
    RUNNING,
    STATUSES,
    SUCCEEDED,
    JobRecord,
)

if TYPE_CHECKING:
    from huey import Huey
    from huey.api import TaskWrapper
    from huey.consumer import Consumer

__all__ = [
    "FAILED",
    "QUEUED",
    "RUNNING",
    "STATUSES",
    "SUCCEEDED",
    "JobContext",
    "JobFailed",
    "JobRecord",
    "JobSpec",
    "SweepResult",
    "UnknownJobKind",
    "current_job",
    "discover_tasks",
    "enqueue",
    "execute_job",
    "get_huey",
    "get_job",
    "immediate",
    "job",
    "list_jobs",
    "report_progress",
    "reset_huey",
    "retry_job",
    "run_due",
    "run_worker",
    "set_immediate",
    "start_worker",
    "sweep",
]

log = logging.getLogger("budding.jobs")

QUEUE_NAME = "budding"
DEFAULT_LEASE = 600.0
# Hosts' clocks may differ a little: a job due within this many seconds may start.
CLOCK_SLACK = timedelta(seconds=2)
_PENDING = "budding.jobs.pending"


class UnknownJobKind(LookupError):
    """No ``@job`` of this kind is declared (in any ``budding.<capability>.tasks``)."""


class JobFailed(Exception):
    """Raise inside a job to fail it at once, without the remaining retries."""


# --- declaring jobs ----------------------------------------------------------------------


@dataclass
class JobContext:
    """What a running job knows about itself; the first argument of every job function."""

    job_id: int
    kind: str
    program_id: int | None
    payload: dict[str, Any]  # the keyword arguments, as enqueued
    attempt: int  # 1 for the first attempt
    max_attempts: int
    # When the next attempt will start if this one fails; None on the last attempt.
    retry_at: datetime | None
    _last_report: float = field(default=0.0, repr=False)

    @property
    def is_last_attempt(self) -> bool:
        return self.attempt >= self.max_attempts

    def progress(self, fraction: float, message: str = "") -> None:
        """Report progress (0..1) and extend the attempt's lease. Written at most twice a
        second (the first and the final report always), in its own short transaction.

        On SQLite, call it outside an open unit of work: a unit of work holds SQLite's
        write lock, and the report would wait for it."""
        now = time.monotonic()
        if 0.0 < fraction < 1.0 and now - self._last_report < 0.5:
            return
        self._last_report = now
        report_progress(self.job_id, fraction, message)


@dataclass(frozen=True)
class JobSpec:
    """A declared job kind: the function and its retry policy. Made by ``@job``."""

    kind: str
    func: Callable[..., Any]
    retries: int = 0
    retry_delay: float = 30.0
    backoff: float = 2.0
    jitter: float = 0.1
    max_delay: float = 6 * 3600.0
    lease: float = DEFAULT_LEASE
    priority: int | None = None
    on_failure: Callable[[JobContext, str], None] | None = None
    # Seconds between runs of a periodic job (see ``enqueue_periodic``); None: not periodic.
    every: float | None = None

    @property
    def max_attempts(self) -> int:
        return self.retries + 1

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based): ``retry_delay *
        backoff**(attempt-1)``, capped at ``max_delay``, then spread by ±``jitter``."""
        base = min(self.max_delay, self.retry_delay * self.backoff ** max(attempt - 1, 0))
        spread = (rng or random).uniform(-self.jitter, self.jitter) if self.jitter else 0.0
        return max(0.0, base * (1.0 + spread))

    def __call__(self, ctx: JobContext, **payload: Any) -> Any:
        """Run the function here and now (for tests); ``enqueue`` is how jobs are started."""
        return self.func(ctx, **payload)


_specs: dict[str, JobSpec] = {}
_specs_lock = threading.RLock()


def job(
    kind: str | None = None,
    *,
    retries: int = 0,
    retry_delay: float = 30.0,
    backoff: float = 2.0,
    jitter: float = 0.1,
    max_delay: float = 6 * 3600.0,
    lease: float = DEFAULT_LEASE,
    priority: int | None = None,
    on_failure: Callable[[JobContext, str], None] | None = None,
    every: float | None = None,
) -> Callable[[Callable[..., Any]], JobSpec]:
    """Declare a job kind: a thin wrapper over ``huey.task``.

    The function is called as ``func(ctx: JobContext, **payload)`` and returns a
    JSON-serialisable result (stored in ``jobs.result``). ``kind`` defaults to
    ``"<capability>.<function name>"`` for functions in ``budding.<capability>.tasks``.

    - ``retries``: attempts after the first. Any exception retries except ``JobFailed``
      and the domain errors another attempt would meet again (``ValidationFailed``,
      ``NotFound``, …: a ``BuddingError`` that is not ``retryable``); those fail at once.
    - ``retry_delay``, ``backoff``, ``max_delay``, ``jitter``: wait ``retry_delay *
      backoff**(n-1)`` seconds (at most ``max_delay``, spread by ±``jitter``) after the
      n-th failed attempt.
    - ``lease``: seconds an attempt may go without finishing or reporting progress
      before the sweeper presumes its worker dead and counts the attempt as failed.
    - ``priority``: huey priority (higher runs first).
    - ``on_failure(ctx, error)``: called once when the job fails for good (also when
      its last attempt's worker died), e.g. to mark the capability's own rows.
    - ``every``: a periodic job (no payload), enqueued once per ``every`` seconds by the
      workers' schedulers (``enqueue_periodic``), e.g. retention clean-ups.
    """

    def decorate(func: Callable[..., Any]) -> JobSpec:
        name = kind or _default_kind(func)
        if retries < 0 or retry_delay < 0 or backoff < 1 or not 0 <= jitter < 1 or lease <= 0:
            raise ValueError(f"job {name!r}: invalid retry policy")
        if every is not None and every < 60:
            raise ValueError(f"job {name!r}: every must be at least 60 seconds")
        spec = JobSpec(
            kind=name,
            func=func,
            retries=retries,
            retry_delay=retry_delay,
            backoff=backoff,
            jitter=jitter,
            max_delay=max_delay,
            lease=lease,
            priority=priority,
            on_failure=on_failure,
            every=every,
        )
        with _specs_lock:
            existing = _specs.get(name)
            if existing is not None and existing.func is not func:
                raise ValueError(f"job kind {name!r} is declared twice")
            _specs[name] = spec
            if _huey is not None:
                _register_task(_huey, name)
        return spec

    return decorate


def _default_kind(func: Callable[..., Any]) -> str:
    parts = func.__module__.split(".")
    if len(parts) >= 3 and parts[0] == "budding" and parts[-1] == "tasks":
        return f"{parts[1]}.{func.__name__}"
    return f"{func.__module__}.{func.__name__}"


def discover_tasks() -> list[str]:
    """Import every ``budding.<capability>.tasks`` module; the kinds now declared."""
    from budding.core.plugins import capability_modules

    capability_modules("tasks")
    return sorted(_specs)


def get_spec(kind: str | JobSpec) -> JobSpec:
    if isinstance(kind, JobSpec):
        return kind
    spec = _specs.get(kind)
    if spec is None:
        discover_tasks()
        spec = _specs.get(kind)
    if spec is None:
        raise UnknownJobKind(
            f"no job kind {kind!r}: declare it with @job in budding.<capability>.tasks"
        )
    return spec


# --- huey ----------------------------------------------------------------------------------

_huey: Huey | None = None
_huey_tasks: dict[str, TaskWrapper] = {}
_immediate = False


def get_huey() -> Huey:
    """The process's huey instance, made on first use from ``BUDDING_JOBS_URL`` (default:
    ``BUDDING_DATABASE_URL``). Every declared job kind is registered on it."""
    global _huey
    with _specs_lock:
        if _huey is None:
            _huey = _make_huey(get_settings().jobs_url or get_settings().database_url)
            _huey_tasks.clear()
            for name in _specs:
                _register_task(_huey, name)
        return _huey


def reset_huey() -> None:
    """Forget the huey instance (after settings change, in tests, or after a fork)."""
    global _huey
    with _specs_lock:
        if _huey is not None and not _huey.immediate:
            _huey.storage.close()
        _huey = None
        _huey_tasks.clear()


def set_immediate(enabled: bool) -> None:
    """Immediate mode (tests): a job runs in the committing thread right after commit,
    with huey's in-memory storage; retries wait in the ``jobs`` table for ``run_due``."""
    global _immediate
    with _specs_lock:
        _immediate = enabled
        if _huey is not None:
            _huey.immediate = enabled


@contextmanager
def immediate() -> Iterator[None]:
    previous = _immediate
    set_immediate(True)
    try:
        yield
    finally:
        set_immediate(previous)


def peewee_database(url: str) -> Any:
    """A peewee database for huey's storage from a SQLAlchemy-style URL."""
    from playhouse.db_url import connect

    url = normalise_url(url)
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a database URL: {url!r}")
    if scheme.startswith("sqlite"):
        path = (rest[1:] if rest.startswith("/") else rest).split("?", 1)[0]
        from peewee import SqliteDatabase

        return SqliteDatabase(
            path or ":memory:",
            timeout=30,
            pragmas={"journal_mode": "wal", "synchronous": "normal", "busy_timeout": 30000},
        )
    if scheme.startswith("postgres"):
        # A pool shared by the process's threads; each push hands its connection back.
        return connect(
            f"psycopg3+pool://{rest}",
            unquote_password=True,
            unquote_user=True,
            max_connections=32,
            stale_timeout=300,
            timeout=30,
        )
    raise ValueError(f"job storage needs SQLite or PostgreSQL, not {scheme!r}")


def _make_huey(url: str) -> Huey:
    from huey import Huey
    from huey.contrib.sql_huey import SqlStorage

    class BuddingStorage(SqlStorage):
        """huey's SQL storage on Budding's migrated ``huey_*`` tables."""

        def create_models(self) -> Any:
            models = super().create_models()
            for model in models:
                model._meta.set_table_name(HUEY_TABLES[model.__name__])
            return models

    return Huey(
        QUEUE_NAME,
        results=False,
        immediate=_immediate,
        storage_class=BuddingStorage,
        database=peewee_database(url),
        create_tables=False,
    )


def _register_task(h: Huey, kind: str) -> TaskWrapper:
    def run(job_id: int) -> bool:
        return execute_job(job_id)

    run.__name__ = run.__qualname__ = kind
    wrapper = h.task(name=kind, priority=_specs[kind].priority)(run)
    _huey_tasks[kind] = wrapper
    return wrapper


def _task_for(kind: str) -> TaskWrapper | None:
    if kind not in _specs:
        discover_tasks()  # (never under the lock: importing a tasks module takes it)
    h = get_huey()
    with _specs_lock:
        if kind not in _specs:
            return None
        if kind not in _huey_tasks:
            _register_task(h, kind)
        return _huey_tasks[kind]


def __getattr__(name: str) -> Any:
    # ``budding.core.jobs.huey``: the lazily made instance.
    if name == "huey":
        return get_huey()
    raise AttributeError(name)


# --- enqueueing ----------------------------------------------------------------------------


def enqueue(
    session: Session,
    kind: str | JobSpec,
    payload: dict[str, Any] | None = None,
    program_id: int | None = None,
    *,
    run_at: datetime | None = None,
    dedupe_key: str | None = None,
) -> JobRecord:
    """Add a job in the caller's unit of work; it is handed to the queue after commit.

    ``payload`` is passed to the job function as keyword arguments (JSON values);
    it is checked against the function's signature here. ``run_at`` delays the first
    attempt. ``dedupe_key`` makes enqueueing idempotent: a second job with the same
    key is not created and the first one is returned.
    """
    spec = get_spec(kind)
    data = _check_payload(spec, payload or {})
    now = utcnow()
    if run_at is not None and run_at.tzinfo is None:
        raise ValueError("run_at must be timezone-aware")
    values: dict[str, Any] = {
        "program_id": program_id,
        "kind": spec.kind,
        "payload": data,
        "status": QUEUED,
        "progress": 0.0,
        "message": "",
        "attempts": 0,
        "max_attempts": spec.max_attempts,
        "dedupe_key": dedupe_key,
        "created_at": now,
        "updated_at": now,
        "run_after": max(run_at, now) if run_at else now,
    }
    if dedupe_key is None:
        record = JobRecord(**values)
        session.add(record)
        session.flush()
    else:
        if len(dedupe_key) > 200:
            raise ValueError("dedupe_key is longer than 200 characters")
        new_id = session.execute(
            dialect_insert(session, JobRecord)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(JobRecord.id)
        ).scalar()
        if new_id is None:
            return session.scalars(
                select(JobRecord).where(JobRecord.dedupe_key == dedupe_key)
            ).one()
        record = session.get_one(JobRecord, new_id)
    session.info.setdefault(_PENDING, []).append(record.id)
    return record


def _check_payload(spec: JobSpec, payload: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise TypeError("a job payload is a dict of keyword arguments")
    try:
        inspect.signature(spec.func).bind(None, **payload)
    except TypeError as exc:
        raise TypeError(f"payload does not fit job {spec.kind!r}: {exc}") from None
    try:
        data: dict[str, Any] = json.loads(json.dumps(payload))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"job {spec.kind!r}: payload is not JSON: {exc}") from None
    return data


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    # SQLAlchemy also fires after_commit when a savepoint is released; only the
    # outermost commit makes the job rows visible to workers.
    if session.in_nested_transaction():
        return
    pending = session.info.pop(_PENDING, None)
    if pending:
        try:
            _dispatch(pending)
        except Exception:  # the caller's work is committed; the sweeper hands it over later
            log.exception("could not hand jobs %s to the queue; the sweeper will", pending)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


def _dispatch(job_ids: Sequence[int]) -> int:
    """Mark committed queued jobs as handed over, then push them to huey."""
    now = utcnow()
    with unit_of_work() as session:
        rows = session.execute(
            update(JobRecord)
            .where(
                JobRecord.id.in_(list(job_ids)),
                JobRecord.status == QUEUED,
                JobRecord.dispatched_at.is_(None),
            )
            .values(dispatched_at=now)
            .returning(JobRecord.id, JobRecord.kind, JobRecord.run_after)
        ).all()
    _push([(r[0], r[1], r[2]) for r in rows])
    return len(rows)


def _push(rows: Sequence[tuple[int, str, datetime]]) -> None:
    unknown: list[int] = []
    failed: list[int] = []
    for job_id, kind, run_after in rows:
        task = _task_for(kind)
        if task is None:
            unknown.append(job_id)
            continue
        try:
            if run_after > utcnow():
                task.schedule(args=(job_id,), eta=run_after)
            else:
                task(job_id)
        except Exception:
            log.exception("could not hand job %s to the queue", job_id)
            failed.append(job_id)
    _release_connection()
    if failed:
        with unit_of_work() as session:
            session.execute(
                update(JobRecord)
                .where(JobRecord.id.in_(failed), JobRecord.status == QUEUED)
                .values(dispatched_at=None)
            )
    for job_id in unknown:
        _fail_unknown(job_id)


def _release_connection() -> None:
    # Web processes push from many threads: return this thread's queue connection (to the
    # pool on PostgreSQL) rather than keep one open per thread. huey reconnects on use.
    h = _huey
    if h is not None and not h.immediate:
        try:
            h.storage.database.close()
        except Exception:
            log.debug("closing the queue connection failed", exc_info=True)


def _fail_unknown(job_id: int) -> None:
    now = utcnow()
    with unit_of_work() as session:
        session.execute(
            update(JobRecord)
            .where(JobRecord.id == job_id, JobRecord.status.in_((QUEUED, RUNNING)))
            .values(
                status=FAILED,
                error="no such job kind in this installation",
                finished_at=now,
                updated_at=now,
                lease_until=None,
            )
        )


# --- running -------------------------------------------------------------------------------

_current: contextvars.ContextVar[JobContext | None] = contextvars.ContextVar(
    "budding_job", default=None
)


def current_job() -> JobContext | None:
    """The job running in this thread, if any (for code deep inside a job)."""
    return _current.get()


@dataclass(frozen=True)
class _Claim:
    kind: str
    payload: dict[str, Any]
    program_id: int | None
    attempt: int
    max_attempts: int


def _claim(job_id: int, now: datetime) -> _Claim | None:
    with unit_of_work() as session:
        kind = session.scalar(select(JobRecord.kind).where(JobRecord.id == job_id))
        if kind is None:
            return None
        spec = _specs.get(kind)
        lease = spec.lease if spec else DEFAULT_LEASE
        row = session.execute(
            update(JobRecord)
            .where(
                JobRecord.id == job_id,
                JobRecord.status == QUEUED,
                JobRecord.run_after <= now + CLOCK_SLACK,
            )
            .values(
                status=RUNNING,
                attempts=JobRecord.attempts + 1,
                started_at=func.coalesce(JobRecord.started_at, now),
                updated_at=now,
                lease_until=now + timedelta(seconds=lease),
            )
            .returning(
                JobRecord.payload,
                JobRecord.program_id,
                JobRecord.attempts,
                JobRecord.max_attempts,
            )
        ).first()
        if row is None:
            early = session.scalar(
                select(JobRecord.run_after).where(
                    JobRecord.id == job_id, JobRecord.status == QUEUED
                )
            )
    if row is None:
        if early is not None:  # handed over before it was due: put it back on the schedule
            _push([(job_id, kind, early)])
        return None
    return _Claim(kind, dict(row[0] or {}), row[1], row[2], row[3])


def execute_job(job_id: int) -> bool:
    """Claim job ``job_id`` and run one attempt of it here. False if it was not due or
    not queued (another worker has it, or it is finished): handing a job over twice is
    harmless. What huey's task runs; also used by ``run_due``."""
    now = utcnow()
    claim = _claim(job_id, now)
    if claim is None:
        return False
    spec = _specs.get(claim.kind)
    if spec is None:
        discover_tasks()
        spec = _specs.get(claim.kind)
    retry_at = None
    if spec is not None and claim.attempt < claim.max_attempts:
        retry_at = now + timedelta(seconds=spec.delay(claim.attempt))
    ctx = JobContext(
        job_id=job_id,
        kind=claim.kind,
        program_id=claim.program_id,
        payload=claim.payload,
        attempt=claim.attempt,
        max_attempts=claim.max_attempts,
        retry_at=retry_at,
    )
    if spec is None:
        _finish_failed(ctx, None, "no such job kind in this installation")
        return True
    token = _current.set(ctx)
    started = time.monotonic()
    try:
        value = spec.func(ctx, **claim.payload)
        result = json.loads(json.dumps(value, default=str))
    except Exception as exc:
        if isinstance(exc, JobFailed) or (isinstance(exc, BuddingError) and not exc.retryable):
            log.warning("job %s (%s) failed: %s", job_id, claim.kind, exc)
            _finish_failed(ctx, spec, str(exc) or type(exc).__name__)
        elif retry_at is None:
            log.exception("job %s (%s) failed on attempt %s", job_id, claim.kind, claim.attempt)
            _finish_failed(ctx, spec, _describe(exc))
        else:
            log.warning(
                "job %s (%s) attempt %s failed (%s); retrying at %s",
                job_id,
                claim.kind,
                claim.attempt,
                _describe(exc),
                retry_at.isoformat(),
            )
            _requeue(ctx, _describe(exc), retry_at)
    else:
        _finish_succeeded(ctx, result)
        log.info("job %s (%s) done in %.3fs", job_id, claim.kind, time.monotonic() - started)
    finally:
        _current.reset(token)
    return True


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return (f"{type(exc).__name__}: {text}" if text else type(exc).__name__)[:2000]


def _mine(job_id: int, attempt: int) -> Any:
    # Updates of an attempt apply only while that attempt still owns the row: after a
    # lease expired and the sweeper requeued the job, a late finish changes nothing.
    return (JobRecord.id == job_id, JobRecord.status == RUNNING, JobRecord.attempts == attempt)


def _finish_succeeded(ctx: JobContext, result: Any) -> None:
    now = utcnow()
    with unit_of_work() as session:
        done = session.execute(
            update(JobRecord)
            .where(*_mine(ctx.job_id, ctx.attempt))
            .values(
                status=SUCCEEDED,
                progress=1.0,
                result=result,
                error=None,
                finished_at=now,
                updated_at=now,
                lease_until=None,
            )
            .returning(JobRecord.id)
        ).first()
    if not done:
        log.warning("job %s finished after its lease expired; result dropped", ctx.job_id)


def _finish_failed(ctx: JobContext, spec: JobSpec | None, error: str) -> None:
    now = utcnow()
    with unit_of_work() as session:
        done = session.execute(
            update(JobRecord)
            .where(*_mine(ctx.job_id, ctx.attempt))
            .values(status=FAILED, error=error, finished_at=now, updated_at=now, lease_until=None)
            .returning(JobRecord.id)
        ).first()
    if done:
        _on_failure(spec, ctx, error)


def _on_failure(spec: JobSpec | None, ctx: JobContext, error: str) -> None:
    if spec is None or spec.on_failure is None:
        return
    try:
        spec.on_failure(ctx, error)
    except Exception:
        log.exception("on_failure of job %s (%s) raised", ctx.job_id, ctx.kind)


def _requeue(ctx: JobContext, error: str, retry_at: datetime) -> None:
    now = utcnow()
    with unit_of_work() as session:
        done = session.execute(
            update(JobRecord)
            .where(*_mine(ctx.job_id, ctx.attempt))
            .values(
                status=QUEUED,
                error=error,
                run_after=retry_at,
                dispatched_at=None,
                updated_at=now,
                lease_until=None,
            )
            .returning(JobRecord.id)
        ).first()
    if done:
        _dispatch([ctx.job_id])


def report_progress(job_id: int, fraction: float, message: str = "") -> None:
    """Record a running job's progress (0..1, clamped) and message in its own short
    transaction, so the dashboard and the API see it while the job runs. It also
    extends the attempt's lease. Does nothing once the job is no longer running."""
    if math.isnan(fraction):
        raise ValueError("progress must be a number between 0 and 1")
    fraction = min(1.0, max(0.0, float(fraction)))
    now = utcnow()
    with unit_of_work() as session:
        kind = session.scalar(select(JobRecord.kind).where(JobRecord.id == job_id))
        spec = _specs.get(kind) if kind else None
        lease = spec.lease if spec else DEFAULT_LEASE
        session.execute(
            update(JobRecord)
            .where(JobRecord.id == job_id, JobRecord.status == RUNNING)
            .values(
                progress=fraction,
                message=message[:500],
                updated_at=now,
                lease_until=now + timedelta(seconds=lease),
            )
        )


# --- reading and managing ------------------------------------------------------------------


def get_job(session: Session, job_id: int, program_id: int | None = None) -> JobRecord:
    """A job by id; with ``program_id``, only that program's jobs are found."""
    record = session.get(JobRecord, job_id)
    if record is None or (program_id is not None and record.program_id != program_id):
        raise NotFound(f"no job {job_id}", fields={"job_id": "unknown job"})
    return record


def list_jobs(
    session: Session,
    program_id: int | None,
    *,
    status: str | None = None,
    kind: str | None = None,
    limit: int = 50,
) -> list[JobRecord]:
    """Recent jobs of a program (``None``: jobs of no program), newest first."""
    query = select(JobRecord).where(
        JobRecord.program_id.is_(None) if program_id is None else JobRecord.program_id == program_id
    )
    if status:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}")
        query = query.where(JobRecord.status == status)
    if kind:
        query = query.where(JobRecord.kind == kind)
    return list(session.scalars(query.order_by(JobRecord.id.desc()).limit(limit)))


def forget_job_texts(session: Session, dedupe_keys: Sequence[str]) -> int:
    """Clear what the jobs enqueued with these ``dedupe_key``s recorded in words (``error``,
    ``message``, ``result``), for a member's erasure: an error may quote personal data (a
    mail server's refusal names the recipient). The jobs stay, with their status. Returns
    how many were cleared."""
    cleared = 0
    keys = list(dict.fromkeys(dedupe_keys))
    for start in range(0, len(keys), 500):
        result = session.execute(
            update(JobRecord)
            .where(JobRecord.dedupe_key.in_(keys[start : start + 500]))
            .values(error=None, message="", result=None)
            .execution_options(synchronize_session=False)
        )
        cleared += int(getattr(result, "rowcount", 0) or 0)
    return cleared


ERASED_ERROR = "not run: the member's data was erased"


def forget_jobs_mentioning(session: Session, program_id: int, identity: Identity) -> int:
    """Blank a person's name and e-mail wherever a job of the program recorded them
    (payload, result, error, message), for their erasure: e.g. an e-mail queued to them.
    A queued job whose payload named them fails instead of running with the words blanked
    (it would send to nobody). Returns how many jobs changed."""
    where = (JobRecord.program_id == program_id,)
    columns = (JobRecord.payload, JobRecord.result, JobRecord.error, JobRecord.message)
    conditions = [c for c in (mentions(col, identity) for col in columns) if c is not None]
    if not conditions:
        return 0
    now = utcnow()
    rows = session.scalars(select(JobRecord).where(*where, or_(*conditions))).all()
    for row in rows:
        payload = scrub(row.payload, identity)
        if payload != row.payload and row.status == QUEUED:
            row.status, row.error, row.finished_at = FAILED, ERASED_ERROR, now
        row.payload = payload
        row.result = scrub(row.result, identity)
        row.error = scrub(row.error, identity)
        row.message = scrub(row.message, identity)
        row.updated_at = now
    session.flush()
    return len(rows)


def retry_job(session: Session, job_id: int, program_id: int | None = None) -> JobRecord:
    """Queue a failed job again for one more attempt (handed over after commit)."""
    record = get_job(session, job_id, program_id)
    now = utcnow()
    done = session.execute(
        update(JobRecord)
        .where(JobRecord.id == record.id, JobRecord.status == FAILED)
        .values(
            status=QUEUED,
            max_attempts=JobRecord.attempts + 1,
            run_after=now,
            dispatched_at=None,
            finished_at=None,
            updated_at=now,
        )
        .returning(JobRecord.id)
        .execution_options(synchronize_session=False)
    ).first()
    if not done:
        raise Conflict(
            f"job {job_id} is {record.status}; only failed jobs can be retried",
            fields={"status": record.status},
        )
    session.refresh(record)
    session.info.setdefault(_PENDING, []).append(record.id)
    return record


# --- the sweeper ---------------------------------------------------------------------------


@dataclass
class SweepResult:
    requeued: int = 0  # attempts whose worker died, queued again
    failed: int = 0  # attempts whose worker died, with no attempt left
    dispatched: int = 0  # jobs handed (again) to the queue
    purged: int = 0  # old finished jobs deleted


def sweep(
    *,
    grace: float = 30.0,
    redispatch_after: float = 600.0,
    purge_after_days: float | None = None,
) -> SweepResult:
    """Repair what a dead process left behind. Safe to run from several workers at once.

    - running jobs whose lease expired: queued again (or failed on their last attempt);
    - queued, due jobs never handed to the queue ``grace`` seconds after they were
      written (their process died between commit and push): handed over;
    - queued jobs handed over more than ``redispatch_after`` seconds ago and due as
      long: handed over again (a duplicate is harmless: claims are exclusive);
    - with ``purge_after_days``, finished jobs older than that are deleted.
    """
    now = utcnow()
    out = SweepResult()
    with unit_of_work() as session:
        expired = (
            JobRecord.status == RUNNING,
            JobRecord.lease_until.is_not(None),
            JobRecord.lease_until < now,
        )
        requeued = session.execute(
            update(JobRecord)
            .where(*expired, JobRecord.attempts < JobRecord.max_attempts)
            .values(
                status=QUEUED,
                error="the worker stopped during the attempt (its lease expired)",
                run_after=now,
                dispatched_at=None,
                lease_until=None,
                updated_at=now,
            )
            .returning(JobRecord.id)
        ).all()
        out.requeued = len(requeued)
        lost = session.execute(
            update(JobRecord)
            .where(*expired, JobRecord.attempts >= JobRecord.max_attempts)
            .values(
                status=FAILED,
                error="the worker stopped during the last attempt (its lease expired)",
                finished_at=now,
                lease_until=None,
                updated_at=now,
            )
            .returning(
                JobRecord.id,
                JobRecord.kind,
                JobRecord.program_id,
                JobRecord.payload,
                JobRecord.attempts,
                JobRecord.max_attempts,
                JobRecord.error,
            )
        ).all()
        out.failed = len(lost)
        undispatched = list(
            session.scalars(
                select(JobRecord.id)
                .where(
                    JobRecord.status == QUEUED,
                    JobRecord.dispatched_at.is_(None),
                    JobRecord.run_after <= now,
                    JobRecord.updated_at < now - timedelta(seconds=grace),
                )
                .limit(1000)
            )
        )
        stale_cutoff = now - timedelta(seconds=redispatch_after)
        stale = session.execute(
            update(JobRecord)
            .where(
                JobRecord.status == QUEUED,
                JobRecord.dispatched_at < stale_cutoff,
                JobRecord.run_after < stale_cutoff,
            )
            .values(dispatched_at=now)
            .returning(JobRecord.id, JobRecord.kind, JobRecord.run_after)
        ).all()
        if purge_after_days is not None:
            purged = session.execute(
                delete(JobRecord)
                .where(
                    JobRecord.status.in_((SUCCEEDED, FAILED)),
                    JobRecord.finished_at < now - timedelta(days=purge_after_days),
                )
                .returning(JobRecord.id)
            ).all()
            out.purged = len(purged)
    for job_id, kind, program_id, payload, attempts, max_attempts, error in lost:
        ctx = JobContext(
            job_id, kind, program_id, dict(payload or {}), attempts, max_attempts, None
        )
        _on_failure(_specs.get(kind), ctx, error or "")
    out.dispatched = _dispatch([r[0] for r in requeued] + undispatched)
    _push([(r[0], r[1], r[2]) for r in stale])
    out.dispatched += len(stale)
    if out.requeued or out.failed or out.dispatched:
        log.warning("sweep repaired jobs left behind: %s", out)
    elif out.purged:
        log.info("sweep purged %s old jobs", out.purged)
    return out


PERIODIC_INTERVAL = 300.0  # seconds between a worker's looks at periodic jobs


def enqueue_periodic(now: datetime | None = None) -> list[int]:
    """Enqueue each periodic job (declared with ``every=``) once for the current period.

    Workers' schedulers call this every few minutes; several may call it at once: the
    period's dedupe key (``periodic:<kind>:<period number>``) lets one job per period
    through. Returns the ids of the period's jobs (new or already there)."""
    discover_tasks()
    moment = (now or utcnow()).timestamp()
    ids: list[int] = []
    with unit_of_work() as session:
        for spec in sorted(_specs.values(), key=lambda s: s.kind):
            if spec.every is None:
                continue
            key = f"periodic:{spec.kind}:{int(moment // spec.every)}"
            ids.append(enqueue(session, spec, {}, dedupe_key=key).id)
    return ids


def run_due(limit: int | None = None) -> int:
    """Run due queued jobs in this thread until none is left (or ``limit`` ran): the
    ``--burst`` mode of ``budding worker``, cron-style deployments and tests."""
    discover_tasks()
    h = get_huey()
    ran = 0
    if not h.immediate:
        # What a consumer would do, so that the queue's rows are consumed too: move due
        # scheduled tasks (retries, delayed jobs) to the queue, then run the queue.
        for task in h.read_schedule():
            h.enqueue(task)
        while limit is None or ran < limit:
            task = h.dequeue()
            if task is None:
                break
            if h.execute(task):
                ran += 1
        _release_connection()
    # Then any due job that is not (or no longer) in the queue.
    while limit is None or ran < limit:
        with unit_of_work() as session:
            ids = list(
                session.scalars(
                    select(JobRecord.id)
                    .where(JobRecord.status == QUEUED, JobRecord.run_after <= utcnow())
                    .order_by(JobRecord.run_after, JobRecord.id)
                    .limit(100)
                )
            )
        if not ids:
            break
        progressed = False
        for job_id in ids:
            if limit is not None and ran >= limit:
                break
            if execute_job(job_id):
                ran += 1
                progressed = True
        if not progressed:
            break
    return ran


# --- the worker ----------------------------------------------------------------------------


def _consumer_class() -> type[Consumer]:
    from huey.consumer import Consumer, Scheduler

    class SweepingScheduler(Scheduler):
        """huey's scheduler, which also runs ``sweep`` every ``sweep_interval`` seconds."""

        sweep_interval = 15.0
        purge_after_days: float | None = 30.0
        # How often periodic jobs are enqueued (``enqueue_periodic``); None: never.
        periodic_interval: float | None = None

        def loop(self, now: Any = None) -> None:
            clock = time.monotonic()
            if self.periodic_interval and clock >= getattr(self, "_next_periodic", 0.0):
                self._next_periodic = clock + self.periodic_interval
                try:
                    enqueue_periodic()
                except Exception:
                    log.exception("enqueueing periodic jobs failed")
            if clock >= getattr(self, "_next_sweep", 0.0):
                self._next_sweep = clock + self.sweep_interval
                purge = None
                if clock >= getattr(self, "_next_purge", 0.0):
                    self._next_purge = clock + 3600
                    purge = self.purge_after_days
                try:
                    sweep(purge_after_days=purge)
                except Exception:
                    log.exception("sweep failed")
            super().loop(now)

    class BuddingConsumer(Consumer):
        def __init__(
            self,
            h: Huey,
            *,
            sweep_interval: float,
            purge_after_days: float | None,
            install_signal_handlers: bool,
            periodic_interval: float | None = None,
            **options: Any,
        ) -> None:
            self._periodic_interval = periodic_interval
            self._sweep_interval = sweep_interval
            self._purge_after_days = purge_after_days
            self._install_signal_handlers = install_signal_handlers
            super().__init__(h, **options)

        def _create_scheduler(self) -> Any:
            scheduler = SweepingScheduler(
                huey=self.huey,
                stop_flag=self.stop_flag,
                interval=self.scheduler_interval,
                periodic=self.periodic,
            )
            scheduler.sweep_interval = self._sweep_interval
            scheduler.purge_after_days = self._purge_after_days
            scheduler.periodic_interval = self._periodic_interval
            return scheduler

        def _set_signal_handlers(self) -> None:
            if self._install_signal_handlers:
                super()._set_signal_handlers()

    return BuddingConsumer


def _consumer(
    workers: int,
    worker_type: str,
    poll_interval: float,
    sweep_interval: float,
    purge_after_days: float | None,
    install_signal_handlers: bool,
    periodic_interval: float | None = None,
) -> Consumer:
    if workers < 1:
        raise ValueError("workers must be at least 1")
    discover_tasks()
    h = get_huey()
    if h.immediate:
        raise RuntimeError("immediate mode is on: there is nothing for a worker to consume")
    if worker_type == "process":
        from budding.core.db import dispose_engines

        dispose_engines()  # forked workers must not share the parent's connections
    return _consumer_class()(
        h,
        sweep_interval=sweep_interval,
        purge_after_days=purge_after_days,
        install_signal_handlers=install_signal_handlers,
        periodic_interval=periodic_interval,
        workers=workers,
        worker_type=worker_type,
        max_delay=poll_interval,
        periodic=False,
        check_worker_health=True,
        graceful_signal="TERM",  # systemd and docker stop with SIGTERM: finish attempts first
    )


def start_worker(
    workers: int = 2,
    *,
    worker_type: str = "thread",
    poll_interval: float = 1.0,
    sweep_interval: float = 15.0,
    purge_after_days: float | None = 30.0,
    periodic_interval: float | None = None,
) -> Consumer:
    """Start a consumer in this process (threads by default) and return it; stop it with
    ``consumer.stop(graceful=True)``. Installs no signal handlers (tests, embedding).
    Periodic jobs are enqueued only when ``periodic_interval`` (seconds) is given."""
    consumer = _consumer(
        workers,
        worker_type,
        poll_interval,
        sweep_interval,
        purge_after_days,
        False,
        periodic_interval,
    )
    consumer.start()
    return consumer


def run_worker(
    workers: int = 2,
    *,
    worker_type: str = "thread",
    poll_interval: float = 1.0,
    sweep_interval: float = 15.0,
    purge_after_days: float | None = 30.0,
    periodic_interval: float | None = PERIODIC_INTERVAL,
) -> None:
    """Run a consumer until SIGINT/SIGTERM (graceful: running attempts finish first).
    Every ``periodic_interval`` seconds it enqueues the periodic jobs that are due."""
    _consumer(
        workers,
        worker_type,
        poll_interval,
        sweep_interval,
        purge_after_days,
        True,
        periodic_interval,
    ).run()
