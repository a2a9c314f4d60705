"""SQLite's writers queue on a file lock taken before ``BEGIN IMMEDIATE`` (core/db.py), so a
waiting server process starts as soon as the writer before it commits or rolls back,
instead of sleeping in SQLite's busy handler."""

from __future__ import annotations

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
