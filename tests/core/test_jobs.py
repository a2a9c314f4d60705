"""The durable job queue: outbox enqueue, claims, retries, progress, the sweeper, a real
consumer on the real database, the API route, the admin page and the CLI."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from budding.core import jobs
from budding.core.db import unit_of_work, utcnow
from budding.core.errors import Conflict, NotFound, ValidationFailed
from budding.core.jobs import JobContext, JobFailed, job
from budding.core.mail import MailError
from budding.jobs.models import HueySchedule, HueyTask, JobRecord

calls: dict[str, int] = {}
failure_log: list[tuple[int, str]] = []


@job("tests.add")
def add(ctx: JobContext, a: int, b: int) -> dict[str, int]:
    ctx.progress(0.5, "adding")
    return {"sum": a + b, "attempt": ctx.attempt}


@job("tests.flaky", retries=3, retry_delay=0.2, backoff=1.0, jitter=0.0)
def flaky(ctx: JobContext, key: str, fail_times: int) -> int:
    n = calls[key] = calls.get(key, 0) + 1
    if n <= fail_times:
        raise RuntimeError(f"failure {n}")
    return n


@job("tests.retry_later", retries=1, retry_delay=1.0, backoff=1.0, jitter=0.0)
def retry_later(ctx: JobContext, key: str, fail_times: int) -> int:
    return int(flaky.func(ctx, key, fail_times))


def _record_failure(ctx: JobContext, error: str) -> None:
    failure_log.append((ctx.job_id, error))


@job("tests.doomed", retries=1, retry_delay=0.1, jitter=0.0, on_failure=_record_failure)
def doomed(ctx: JobContext) -> None:
    raise RuntimeError("always broken")


@job("tests.give_up", retries=5, on_failure=_record_failure)
def give_up(ctx: JobContext) -> None:
    raise JobFailed("no point in retrying")


@job("tests.stale_request", retries=5, on_failure=_record_failure)
def stale_request(ctx: JobContext, error: str) -> None:
    # the data changed between the request and the job: another attempt reads the same
    raise {"validation": ValidationFailed, "missing": NotFound}[error]("target: no member matches")


@job("tests.busy", retries=1, retry_delay=0.1, jitter=0.0)
def busy(ctx: JobContext, key: str) -> int:
    n = calls[key] = calls.get(key, 0) + 1
    if n == 1:
        raise {"conflict": Conflict, "mail": MailError}[key]("busy, try again later")
    return n


@job("tests.slow", lease=30)
def slow(ctx: JobContext, steps: int, pause: float) -> str:
    for i in range(steps):
        time.sleep(pause)
        jobs.report_progress(ctx.job_id, (i + 1) / steps, f"step {i + 1} of {steps}")
    return "done"


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    calls.clear()
    failure_log.clear()
    yield


@pytest.fixture
def immediate_jobs() -> Iterator[None]:
    with jobs.immediate():
        yield


def _enqueue(kind: str, payload: dict[str, Any] | None = None, **kw: Any) -> int:
    with unit_of_work() as session:
        return jobs.enqueue(session, kind, payload or {}, **kw).id


def _job(job_id: int) -> JobRecord:
    with unit_of_work() as session:
        return jobs.get_job(session, job_id)


def _wait(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


# --- enqueue: the outbox ---------------------------------------------------------------


def test_enqueue_runs_after_commit(immediate_jobs: None, program: Any) -> None:
    job_id = _enqueue("tests.add", {"a": 2, "b": 3}, program_id=program.id)
    record = _job(job_id)
    assert record.status == "succeeded"
    assert record.result == {"sum": 5, "attempt": 1}
    assert record.progress == 1.0
    assert record.attempts == 1 and record.max_attempts == 1
    assert record.program_id == program.id
    assert record.started_at and record.finished_at and record.dispatched_at


def test_rollback_enqueues_nothing(immediate_jobs: None) -> None:
    with pytest.raises(RuntimeError), unit_of_work() as session:
        jobs.enqueue(session, "tests.flaky", {"key": "rb", "fail_times": 0})
        raise RuntimeError("the caller's work failed")
    assert "rb" not in calls
    with unit_of_work() as session:
        assert session.scalars(select(JobRecord)).all() == []
        assert session.scalars(select(HueyTask)).all() == []


def test_nothing_runs_before_commit(immediate_jobs: None) -> None:
    with unit_of_work() as session:
        record = jobs.enqueue(session, "tests.flaky", {"key": "late", "fail_times": 0})
        session.flush()
        assert "late" not in calls
        assert record.status == "queued"
    assert calls["late"] == 1


def test_payload_is_checked_when_enqueued() -> None:
    with unit_of_work() as session:
        with pytest.raises(TypeError, match="missing a required argument: 'b'"):
            jobs.enqueue(session, "tests.add", {"a": 1})
        with pytest.raises(TypeError, match="not JSON"):
            jobs.enqueue(session, "tests.add", {"a": 1, "b": {1, 2}})
        with pytest.raises(jobs.UnknownJobKind):
            jobs.enqueue(session, "tests.nope", {})


def test_without_a_worker_jobs_wait_in_the_queue(program: Any) -> None:
    job_id = _enqueue("tests.add", {"a": 1, "b": 1}, program_id=program.id)
    record = _job(job_id)
    assert record.status == "queued" and record.dispatched_at is not None
    with unit_of_work() as session:
        assert len(session.scalars(select(HueyTask)).all()) == 1
    assert jobs.run_due() == 1
    assert _job(job_id).status == "succeeded"
    with unit_of_work() as session:
        assert session.scalars(select(HueyTask)).all() == []  # consumed, not left behind


def test_burst_runs_retries_from_the_queue_schedule() -> None:
    job_id = _enqueue("tests.retry_later", {"key": "burst", "fail_times": 1})
    assert jobs.run_due() == 1
    assert _job(job_id).status == "queued"
    with unit_of_work() as session:  # the retry waits in huey's schedule
        assert len(session.scalars(select(HueySchedule)).all()) == 1

    def done() -> bool:
        jobs.run_due()
        return _job(job_id).status == "succeeded"

    _wait(done)

    def drained() -> bool:
        # On a loaded machine the sweeper may have handed the retry over twice; the
        # second copy is dropped when it comes due, and the job never runs again.
        jobs.run_due()
        with unit_of_work() as session:
            return not session.scalars(select(HueySchedule)).all() and not (
                session.scalars(select(HueyTask)).all()
            )

    _wait(drained)
    assert _job(job_id).attempts == 2


def test_dedupe_key_gives_the_first_job_back() -> None:
    first = _enqueue("tests.add", {"a": 1, "b": 2}, dedupe_key="sum:1:2")
    second = _enqueue("tests.add", {"a": 1, "b": 2}, dedupe_key="sum:1:2")
    assert first == second
    with unit_of_work() as session:
        assert len(session.scalars(select(JobRecord)).all()) == 1


def test_run_at_delays_the_first_attempt() -> None:
    job_id = _enqueue("tests.add", {"a": 1, "b": 1}, run_at=utcnow() + timedelta(hours=1))
    assert jobs.run_due() == 0
    assert _job(job_id).status == "queued"


# --- attempts, retries, failure ----------------------------------------------------------


def test_retries_with_backoff_then_success(immediate_jobs: None) -> None:
    job_id = _enqueue("tests.flaky", {"key": "f", "fail_times": 2})
    record = _job(job_id)
    if record.attempts == 1:  # (a loaded machine may already have reached the retry)
        assert record.status == "queued" and record.error == "RuntimeError: failure 1"
        assert record.run_after > record.started_at  # type: ignore[operator]

    def done() -> bool:
        jobs.run_due()
        return _job(job_id).status != "queued"

    _wait(done)
    record = _job(job_id)
    assert record.status == "succeeded" and record.attempts == 3
    assert record.result == 3 and record.error is None


def test_exhausted_retries_fail_and_call_on_failure(immediate_jobs: None) -> None:
    job_id = _enqueue("tests.doomed")

    def done() -> bool:
        jobs.run_due()
        return _job(job_id).status != "queued"

    _wait(done)
    record = _job(job_id)
    assert record.status == "failed" and record.attempts == 2
    assert record.error == "RuntimeError: always broken"
    assert failure_log == [(job_id, "RuntimeError: always broken")]


def test_job_failed_skips_the_remaining_retries(immediate_jobs: None) -> None:
    job_id = _enqueue("tests.give_up")
    record = _job(job_id)
    assert record.status == "failed" and record.attempts == 1 and record.max_attempts == 6
    assert record.error == "no point in retrying"
    assert failure_log == [(job_id, "no point in retrying")]


@pytest.mark.parametrize("error", ["validation", "missing"])
def test_a_request_the_data_no_longer_allows_fails_at_once(
    immediate_jobs: None, error: str
) -> None:
    job_id = _enqueue("tests.stale_request", {"error": error})
    record = _job(job_id)
    assert record.status == "failed" and record.attempts == 1
    assert record.error == "target: no member matches"
    assert failure_log == [(job_id, "target: no member matches")]


@pytest.mark.parametrize("error", ["conflict", "mail"])
def test_a_conflict_or_a_server_side_failure_is_retried(immediate_jobs: None, error: str) -> None:
    job_id = _enqueue("tests.busy", {"key": error})
    _wait(lambda: jobs.run_due() >= 0 and _job(job_id).status == "succeeded")
    assert _job(job_id).attempts == 2


def test_retry_job_gives_a_failed_job_one_more_attempt(immediate_jobs: None) -> None:
    job_id = _enqueue("tests.give_up")
    with unit_of_work() as session:
        record = jobs.retry_job(session, job_id)
        assert record.status == "queued" and record.max_attempts == 2
    record = _job(job_id)
    assert record.status == "failed" and record.attempts == 2
    done = _enqueue("tests.add", {"a": 1, "b": 1})
    with pytest.raises(Conflict, match="only failed jobs"), unit_of_work() as session:
        jobs.retry_job(session, done)


def test_retry_delay_grows_and_is_capped() -> None:
    spec = jobs.JobSpec("x", add, retries=7, retry_delay=60, backoff=3, jitter=0, max_delay=10**6)
    delays = [spec.delay(n) for n in range(1, 8)]
    assert delays == [60, 180, 540, 1620, 4860, 14580, 43740]
    jittery = jobs.JobSpec("x", add, retry_delay=100, jitter=0.2)
    assert all(80 <= jittery.delay(1) <= 120 for _ in range(50))
    capped = jobs.JobSpec("x", add, retry_delay=100, backoff=10, jitter=0, max_delay=500)
    assert capped.delay(5) == 500


def test_a_job_handed_over_twice_runs_once() -> None:
    job_id = _enqueue("tests.flaky", {"key": "twice", "fail_times": 0})
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def run() -> None:
        barrier.wait()
        results.append(jobs.execute_job(job_id))

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]
    assert calls["twice"] == 1
    assert jobs.execute_job(job_id) is False


# --- progress ------------------------------------------------------------------------------


def test_report_progress_only_while_running() -> None:
    job_id = _enqueue("tests.add", {"a": 1, "b": 1})
    jobs.report_progress(job_id, 0.4, "ignored while queued")
    assert _job(job_id).progress == 0.0
    with unit_of_work() as session:
        session.execute(update(JobRecord).where(JobRecord.id == job_id).values(status="running"))
    jobs.report_progress(job_id, 1.7, "clamped")
    record = _job(job_id)
    assert record.progress == 1.0 and record.message == "clamped"
    assert record.lease_until is not None
    with pytest.raises(ValueError):
        jobs.report_progress(job_id, float("nan"))


# --- the sweeper -------------------------------------------------------------------------


def test_sweeper_hands_over_a_job_lost_between_commit_and_push(
    immediate_jobs: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(_ids: Any) -> int:
        raise RuntimeError("the process died right after commit")

    monkeypatch.setattr(jobs, "_dispatch", crash)
    job_id = _enqueue("tests.flaky", {"key": "lost", "fail_times": 0})
    monkeypatch.undo()
    assert _job(job_id).dispatched_at is None and "lost" not in calls
    assert jobs.sweep().dispatched == 0  # within the grace period: maybe still on its way
    with unit_of_work() as session:
        session.execute(
            update(JobRecord)
            .where(JobRecord.id == job_id)
            .values(updated_at=utcnow() - timedelta(minutes=1))
        )
    assert jobs.sweep().dispatched == 1
    assert calls["lost"] == 1
    assert _job(job_id).status == "succeeded"


def test_sweeper_requeues_the_attempt_of_a_dead_worker(immediate_jobs: None) -> None:
    job_id = _enqueue("tests.add", {"a": 1, "b": 1}, run_at=utcnow() + timedelta(seconds=30))
    with unit_of_work() as session:  # a worker claimed it, then died
        session.execute(
            update(JobRecord)
            .where(JobRecord.id == job_id)
            .values(
                status="running",
                attempts=1,
                max_attempts=2,
                lease_until=utcnow() - timedelta(seconds=1),
            )
        )
    result = jobs.sweep()
    assert result.requeued == 1 and result.dispatched == 1
    record = _job(job_id)
    assert record.status == "succeeded" and record.attempts == 2


def test_sweeper_fails_a_dead_last_attempt_and_calls_on_failure() -> None:
    job_id = _enqueue("tests.doomed", run_at=utcnow() + timedelta(seconds=30))
    with unit_of_work() as session:
        session.execute(
            update(JobRecord)
            .where(JobRecord.id == job_id)
            .values(status="running", attempts=2, lease_until=utcnow() - timedelta(seconds=1))
        )
    assert jobs.sweep().failed == 1
    record = _job(job_id)
    assert record.status == "failed" and "lease expired" in (record.error or "")
    assert failure_log and failure_log[0][0] == job_id


def test_sweeper_purges_old_finished_jobs(immediate_jobs: None) -> None:
    old = _enqueue("tests.add", {"a": 1, "b": 1})
    recent = _enqueue("tests.add", {"a": 1, "b": 2})
    with unit_of_work() as session:
        session.execute(
            update(JobRecord)
            .where(JobRecord.id == old)
            .values(finished_at=utcnow() - timedelta(days=31))
        )
    assert jobs.sweep(purge_after_days=30).purged == 1
    with unit_of_work() as session:
        assert session.scalars(select(JobRecord.id)).all() == [recent]


# --- a real consumer on the real database ------------------------------------------------


def test_real_consumer_runs_jobs_retries_and_reports_progress(program: Any) -> None:
    consumer = jobs.start_worker(workers=2, poll_interval=0.1, sweep_interval=1)
    try:
        quick = _enqueue("tests.add", {"a": 20, "b": 22}, program_id=program.id)
        retried = _enqueue("tests.flaky", {"key": "consumer", "fail_times": 2})
        long = _enqueue("tests.slow", {"steps": 8, "pause": 0.15}, program_id=program.id)
        seen: set[float] = set()

        def long_done() -> bool:
            record = _job(long)
            seen.add(record.progress)
            return record.status == "succeeded"

        _wait(long_done)
        assert any(0 < p < 1 for p in seen), seen  # progress visible while it ran
        _wait(lambda: _job(quick).status == "succeeded")
        assert _job(quick).result == {"sum": 42, "attempt": 1}
        _wait(lambda: _job(retried).status == "succeeded")  # the scheduler moved retries
        assert _job(retried).attempts == 3 and calls["consumer"] == 3
        assert _job(long).message == "step 8 of 8"
    finally:
        consumer.stop(graceful=True)


# --- mapping URLs to huey's storage ----------------------------------------------------------


def test_storage_urls() -> None:
    db = jobs.peewee_database("sqlite:////tmp/budding/x.db")
    assert type(db).__name__ == "SqliteDatabase" and db.database == "/tmp/budding/x.db"
    assert jobs.peewee_database("sqlite:///relative.db").database == "relative.db"
    pg = jobs.peewee_database("postgresql://bud:p%40ss@db.local:6543/budding")
    assert type(pg).__name__ == "PooledPsycopg3Database"
    assert pg.database == "budding"
    assert pg.connect_params == {
        "user": "bud",
        "password": "p@ss",
        "host": "db.local",
        "port": 6543,
    }
    with pytest.raises(ValueError):
        jobs.peewee_database("mysql://x@y/z")


# --- API, pages, CLI -------------------------------------------------------------------------


def test_api_shows_status_progress_and_result(
    client: Any, program: Any, other_program: Any
) -> None:
    job_id = _enqueue("tests.add", {"a": 1, "b": 2}, program_id=program.id)
    r = client.get(f"/api/v1/jobs/{job_id}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "queued" and body["progress"] == 0 and body["result"] is None
    jobs.run_due()
    body = client.get(f"/api/v1/jobs/{job_id}").json()
    assert body["status"] == "succeeded" and body["result"]["sum"] == 3
    assert body["attempts"] == 1 and body["finished_at"]
    listed = client.get("/api/v1/jobs", params={"status": "succeeded"}).json()["jobs"]
    assert [j["id"] for j in listed] == [job_id]
    foreign = _enqueue("tests.add", {"a": 1, "b": 2}, program_id=other_program.id)
    r = client.get(f"/api/v1/jobs/{foreign}")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert client.get("/api/v1/jobs", params={"status": "nope"}).status_code == 422


def staff_client(anon_client: Any) -> str:
    from budding.accounts import service as accounts
    from budding.core.auth import SESSION_COOKIE, session_cookie_value
    from tests.factories import PASSWORD, make_staff

    email = make_staff()
    with unit_of_work() as session:
        login = accounts.login(session, email=email, password=PASSWORD, ip="127.0.0.1")
    assert login is not None
    anon_client.cookies.set(SESSION_COOKIE, session_cookie_value(login.token))
    return login.csrf_token


def test_admin_pages_list_follow_and_retry(anon_client: Any, program: Any) -> None:
    csrf = staff_client(anon_client)
    with jobs.immediate():
        ok = _enqueue("tests.add", {"a": 1, "b": 2}, program_id=program.id)
        bad = _enqueue("tests.give_up", program_id=program.id)
    r = anon_client.get("/admin/acme/jobs")
    assert r.status_code == 200, r.text
    assert "tests.add" in r.text and "tests.give_up" in r.text
    r = anon_client.get(
        "/admin/acme/jobs", params={"status": "failed"}, headers={"HX-Request": "true"}
    )
    assert r.status_code == 200
    assert "tests.give_up" in r.text and "tests.add" not in r.text and "<html" not in r.text
    r = anon_client.get(f"/admin/acme/jobs/{ok}")
    assert r.status_code == 200 and '"sum": 3' in r.text
    r = anon_client.get(f"/admin/acme/jobs/{bad}/status")
    assert 'data-status="failed"' in r.text and "no point in retrying" in r.text
    r = anon_client.post(
        f"/admin/acme/jobs/{bad}/retry", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert r.status_code == 303
    assert _job(bad).status == "queued"
    with jobs.immediate():  # the page's own unit of work hands the job over on commit
        r = anon_client.post(
            f"/admin/acme/jobs/{bad}/retry", data={"csrf_token": csrf}, follow_redirects=False
        )
    assert r.status_code == 409  # queued, not failed
    jobs.run_due()
    assert _job(bad).attempts == 2 and _job(bad).status == "failed"
    with jobs.immediate():
        r = anon_client.post(
            f"/admin/acme/jobs/{bad}/retry", data={"csrf_token": csrf}, follow_redirects=False
        )
    assert r.status_code == 303
    assert _job(bad).attempts == 3 and _job(bad).status == "failed"  # ran at once
    assert anon_client.get("/admin/other/jobs").status_code == 404
    r = anon_client.post(f"/admin/acme/jobs/{bad}/retry", follow_redirects=False)
    assert r.status_code == 403  # no CSRF token


def test_cli_burst_list_show(program: Any) -> None:
    from budding.core.cli import app

    job_id = _enqueue("tests.add", {"a": 4, "b": 5}, program_id=program.id)
    runner = CliRunner(env={"COLUMNS": "200"})
    r = runner.invoke(app, ["worker", "--burst"])
    assert r.exit_code == 0, r.output
    assert "ran 1 job(s)" in r.output
    r = runner.invoke(app, ["jobs", "list", "--program", "acme"])
    assert r.exit_code == 0 and "tests.add" in r.output and "succeeded" in r.output
    r = runner.invoke(app, ["jobs", "show", str(job_id)])
    assert r.exit_code == 0 and '"sum": 9' in r.output
    r = runner.invoke(app, ["jobs", "retry", str(job_id)])
    assert r.exit_code == 1 and "only failed jobs" in r.output
