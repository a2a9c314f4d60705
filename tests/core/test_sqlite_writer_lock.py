"""SQLite's writers queue on a file lock taken before ``BEGIN IMMEDIATE`` (core/db.py), so a
waiting server process starts as soon as the writer before it commits or rolls back,
instead of sleeping in SQLite's busy handler."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from budding.core.db import make_engine, sqlite_writer_lock_path


@pytest.fixture
def engines(tmp_path: Path) -> list[Engine]:
    """Two engines on one file: two processes' connection pools, as far as locks go."""
    url = f"sqlite:///{tmp_path / 'lock.db'}"
    first, second = make_engine(url), make_engine(url)
    with first.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    yield [first, second]
    first.dispose()
    second.dispose()


def _hold(engine: Engine, seconds: float, started: threading.Event, commit: bool) -> float:
    conn = engine.connect()
    conn.execute(text("INSERT INTO t VALUES (1)"))  # BEGIN IMMEDIATE: the write lock
    started.set()
    time.sleep(seconds)
    if commit:
        conn.commit()
    else:
        conn.rollback()
    ended = time.monotonic()
    conn.close()
    return ended


@pytest.mark.parametrize("commit", [True, False])
def test_a_waiting_writer_starts_when_the_holder_ends(engines: list[Engine], commit: bool) -> None:
    first, second = engines
    started = threading.Event()
    ended: list[float] = []
    holder = threading.Thread(
        target=lambda: ended.append(_hold(first, 0.45, started, commit)), daemon=True
    )
    holder.start()
    assert started.wait(5)
    with second.begin() as conn:  # waits for the holder's transaction to end
        began = time.monotonic()
        conn.execute(text("INSERT INTO t VALUES (2)"))
    holder.join(5)
    assert ended and began >= ended[0] - 0.005
    # SQLite's busy handler alone wakes 78 ms late here (it sleeps 1, 2, 5, … 100 ms).
    assert began - ended[0] < 0.05
    with first.connect() as conn:
        rows = sorted(n for (n,) in conn.execute(text("SELECT n FROM t")))
    assert rows == ([1, 2] if commit else [2])


def test_the_lock_is_released_when_a_statement_fails(engines: list[Engine]) -> None:
    first, second = engines
    with pytest.raises(Exception, match="no such table"), first.begin() as conn:
        conn.execute(text("INSERT INTO missing VALUES (1)"))
    done = threading.Event()

    def write() -> None:
        with second.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (3)"))
        done.set()

    threading.Thread(target=write, daemon=True).start()
    assert done.wait(2)


def test_the_lock_file_sits_beside_the_database(tmp_path: Path) -> None:
    assert sqlite_writer_lock_path(f"sqlite:///{tmp_path}/x.db") == tmp_path / "x.db-writer.lock"
    assert sqlite_writer_lock_path("sqlite:///:memory:") is None


def test_writers_checkpoint_the_wal_after_releasing_the_lock(
    engines: list[Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's own checkpoint (inside COMMIT, under the writer lock) only backs up the
    writers' own: once a connection has changed enough rows, it has the WAL copied into
    the database after its commit, with the writer lock already free for the next writer."""
    from budding.core import db

    first, second = engines
    monkeypatch.setattr(db, "SQLITE_CHECKPOINT_ROWS", 50)
    lock_free_at_checkpoint: list[bool] = []
    checkpointed_at: list[int] = []
    with first.connect() as conn:
        driver = conn.connection.driver_connection
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == (
            db.SQLITE_AUTOCHECKPOINT_PAGES
        )
        checkpoint = driver._checkpoint_if_due

        def watched() -> None:
            # The other engine (another process's pool) can take the lock at once.
            probe = db.WriterLock(driver.writer_lock.path)
            probe.acquire(timeout=0)
            lock_free_at_checkpoint.append(probe.held)
            probe.close()
            checkpoint()
            checkpointed_at.append(getattr(driver, "checkpointed_changes", 0))

        driver._checkpoint_if_due = watched
        for _ in range(3):
            conn.execute(text("INSERT INTO t VALUES (:n)"), [{"n": i} for i in range(30)])
            conn.commit()
        assert lock_free_at_checkpoint == [True, True, True]
        assert checkpointed_at == [0, 60, 60]  # due after 60 changed rows, then not
    assert db.wal_checkpointer(_database(first)).wait()
    raw = second.raw_connection()  # outside a transaction, as checkpoints must be
    try:
        busy, frames, copied = raw.driver_connection.execute(
            "PRAGMA wal_checkpoint(PASSIVE)"
        ).fetchone()
    finally:
        raw.close()
    assert busy == 0 and frames == copied


def test_a_failed_checkpoint_does_not_fail_the_commit(
    engines: list[Engine], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The checkpoint after a commit is an optimisation: when it fails, the commit that
    came before it still stands and is reported as done."""
    from budding.core import db

    def failing(self: db.WalCheckpointer, conn: sqlite3.Connection) -> None:
        raise sqlite3.OperationalError("database table is locked")

    monkeypatch.setattr(db.WalCheckpointer, "_checkpoint", failing)
    first, _ = engines
    with first.connect() as conn:
        driver = conn.connection.driver_connection
        driver.checkpointed_changes = -db.SQLITE_CHECKPOINT_ROWS  # due at the next commit
        conn.execute(text("INSERT INTO t VALUES (7)"))
        conn.commit()  # does not raise
        assert driver.checkpointed_changes == driver.total_changes  # it was asked for
    checkpointer = db.wal_checkpointer(_database(first))
    assert checkpointer.wait() and checkpointer.failures == 1
    assert "WAL checkpoint of" in caplog.text
    with first.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t WHERE n = 7")).scalar() == 1


def test_a_commit_does_not_wait_for_the_checkpoint(
    engines: list[Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checkpoint runs on the checkpointer's thread: the committing thread (the click
    writer, a request) goes on while it copies the WAL."""
    from budding.core import db

    started, release = threading.Event(), threading.Event()
    checkpoint = db.WalCheckpointer._checkpoint

    def slow(self: db.WalCheckpointer, conn: sqlite3.Connection) -> None:
        started.set()
        release.wait(10)
        checkpoint(self, conn)

    monkeypatch.setattr(db.WalCheckpointer, "_checkpoint", slow)
    first, _ = engines
    with first.connect() as conn:
        driver = conn.connection.driver_connection
        driver.checkpointed_changes = -db.SQLITE_CHECKPOINT_ROWS
        conn.execute(text("INSERT INTO t VALUES (8)"))
        conn.commit()
        assert started.wait(10)  # the checkpoint is running, and this thread is here
        conn.execute(text("INSERT INTO t VALUES (9)"))
        conn.commit()  # a writer is not held up by it either
    release.set()
    assert db.wal_checkpointer(_database(first)).wait()


def _database(engine: Engine) -> Path:
    from budding.core import db

    path = db.sqlite_database_path(str(engine.url))
    assert path is not None
    return path.resolve()


def test_writers_of_one_process_wait_without_spending_cpu(engines: list[Engine]) -> None:
    """Threads of one process that wait for the writer lock sleep on a lock of the
    process's (only one of them polls the file lock at a time): a click writer and the
    link look-ups beside it once spent a core's quarter polling it."""
    first, second = engines
    started = threading.Event()
    holder = threading.Thread(target=_hold, args=(first, 0.6, started, True), daemon=True)
    holder.start()
    assert started.wait(5)

    def write(n: int) -> None:
        with second.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})

    waiters = [threading.Thread(target=write, args=(n,), daemon=True) for n in range(10, 14)]
    cpu = time.process_time()
    for w in waiters:
        w.start()
    holder.join(5)
    spent = time.process_time() - cpu
    for w in waiters:
        w.join(5)
    with first.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 5
    # four pollers of the file lock spent 40-90 ms of CPU in these 0.6 s
    assert spent < 0.015, f"{spent * 1000:.1f} ms of CPU while waiting"


def test_a_reading_transaction_does_not_wait_for_the_writer(tmp_path: Path) -> None:
    from budding.core import db

    url = f"sqlite:///{tmp_path / 'read.db'}"
    engine = db.get_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    started = threading.Event()
    holder = threading.Thread(target=_hold, args=(engine, 0.8, started, True), daemon=True)
    holder.start()
    assert started.wait(5)
    began = time.monotonic()
    with db.reading(url) as session:
        # the last commit, not the holder's uncommitted row, and at once
        assert session.execute(text("SELECT count(*) FROM t")).scalar() == 1
    assert time.monotonic() - began < 0.3
    holder.join(5)
    with db.reading(url) as session:
        assert session.execute(text("SELECT count(*) FROM t")).scalar() == 2
    engine.dispose()
