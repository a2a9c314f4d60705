"""Database: engines, the unit of work, shared column types and migrations.

The unit of work (a request, a CLI command, a job) owns the transaction:
service functions receive a ``Session`` and never commit, so that several
services' writes commit or fail as one.
"""

from __future__ import annotations

import importlib
import json
import logging
import math
import os
import pkgutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import orjson

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: SQLite's busy timeout alone
    fcntl = None  # type: ignore[assignment]
from sqlalchemy import (
    JSON,
    ColumnElement,
    DateTime,
    Engine,
    Float,
    MetaData,
    cast,
    create_engine,
    event,
    func,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

from budding.core.config import get_settings
from budding.core.errors import BuddingError

log = logging.getLogger(__name__)

# Row ids (and offsets) are 64-bit integers: a larger number from a request overflowed
# SQLite's driver (OverflowError, a 500) instead of finding nothing.
MAX_ROW_ID = 2**63 - 1
# Tables with plain Integer keys (referrals, reward rules, webhook endpoints, ...) are 32-bit
# on PostgreSQL: a larger id failed there (integer out of range, a 500) instead of finding
# nothing. Ids of those tables are bounded by this; BigId tables' by MAX_ROW_ID.
MAX_INT_ROW_ID = 2**31 - 1

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def bind_processor(self, dialect: Any) -> Any:
        """On SQLite, one step instead of two (this decorator, then SQLite's DATETIME
        formatter), writing the same text: two timestamps per event made the pair a
        tenth of a batch insert's CPU time. The last value's text is kept, since a
        batch's rows share one ``received_at``."""
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        last: tuple[datetime | None, str | None] = (None, None)

        def process(value: datetime | None) -> str | None:
            nonlocal last
            if value is None:
                return None
            seen = last
            if seen[0] is value:
                return seen[1]
            text = sqlite_timestamp(value)
            last = (value, text)
            return text

        return process


def sqlite_timestamp(value: datetime) -> str:
    """An aware datetime as a :class:`UTCDateTime` column stores it on SQLite (UTC, as
    ``YYYY-MM-DD HH:MM:SS.ffffff``, SQLAlchemy's DATETIME text), for statements that
    bypass SQLAlchemy's parameter processing."""
    offset = value.utcoffset()
    if offset is None:
        raise ValueError("naive datetime given to a UTCDateTime column")
    naive = (value - offset if offset else value).replace(tzinfo=None)
    return naive.isoformat(" ", "microseconds")


class JSONType(TypeDecorator[Any]):
    """JSON, stored as JSONB on PostgreSQL."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        return dialect.type_descriptor(JSONB() if dialect.name == "postgresql" else JSON())


def utcnow() -> datetime:
    return datetime.now(UTC)


def normalise_url(url: str) -> str:
    """Use psycopg 3 for plain ``postgresql://`` URLs."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def json_dumps(value: Any) -> str:
    """JSON columns are written with orjson (the standard library's encoder was a tenth of
    the CPU time of a batch insert); integers beyond 64 bits fall back to ``json``."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value)


def json_loads(text: str | bytes) -> Any:
    """orjson, with ``json`` for what it refuses (NaN stored before it was used)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        connect_args: dict[str, Any] = {
            "timeout": SQLITE_BUSY_TIMEOUT_S,
            "check_same_thread": False,
        }
        database, lock_path = sqlite_database_path(url), sqlite_writer_lock_path(url)
        if database is not None and lock_path is not None and fcntl is not None:
            connect_args["factory"] = _writer_lock_connection(lock_path, database.resolve())
        engine = create_engine(
            url,
            connect_args=connect_args,
            poolclass=NullPool if path == ":memory:" else None,
            json_serializer=json_dumps,
            json_deserializer=json_loads,
        )
        _configure_sqlite(engine)
        return engine
    # UTC sessions, so date arithmetic in SQL (events per day) means the same on every server.
    return create_engine(
        url,
        pool_size=20,
        max_overflow=20,
        pool_pre_ping=True,
        connect_args={"options": "-c timezone=UTC"},
        json_serializer=json_dumps,
        json_deserializer=json_loads,
    )


# How long a SQLite transaction waits for the write lock before failing with "database is
# locked": the writer lock below first, then SQLite's own busy timeout.
SQLITE_BUSY_TIMEOUT_S = 30.0
# Page cache per connection (SQLite's default is 2 MiB): with the events table's indexes
# past it, every insert read index pages back from the OS. Memory-mapped reads skip the
# read() system call per page and share one copy among a server's processes.
SQLITE_CACHE_KIB = 32 * 1024
SQLITE_MMAP_BYTES = 1024**3
# Writers have the WAL checkpointed after releasing the writer lock, every this many
# changed rows, by the process's checkpointer thread. Small checkpoints: each one's
# flush of the database file held every reader and writer for tens of milliseconds
# (about 80 ms after 2,000 clicks, under 40 ms after 250). SQLite's automatic
# checkpoint (inside COMMIT, under the lock) stays as a backstop at a WAL of this many
# pages. It also lets the WAL start over: checkpoints that run beside writers may
# never find it wholly copied while writes go on.
SQLITE_CHECKPOINT_ROWS = 250
SQLITE_AUTOCHECKPOINT_PAGES = 8192


def sqlite_database_path(url: str) -> Path | None:
    """A SQLite URL's database file, or None for an in-memory database."""
    path = normalise_url(url).split("///", 1)[-1].split("?", 1)[0]
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return Path(path)


def sqlite_writer_lock_path(url: str) -> Path | None:
    """The file whose lock orders a SQLite database's writers (``<database>-writer.lock``,
    beside the database), or None for an in-memory database."""
    path = sqlite_database_path(url)
    return None if path is None else path.with_name(path.name + "-writer.lock")


_T = TypeVar("_T")
_per_process_lock = threading.Lock()


def _per_process(registry: dict[tuple[int, Path], _T], path: Path, make: Callable[[], _T]) -> _T:
    """This process's object for ``path`` in ``registry``, made on first use (keyed by
    process id too: a forked child inherits the dict, not the parent's threads)."""
    key = (os.getpid(), path)
    with _per_process_lock:
        found = registry.get(key)
        if found is None:
            found = registry[key] = make()
        return found


_process_writer_locks: dict[tuple[int, Path], threading.Lock] = {}


def _process_writer_lock(path: Path) -> threading.Lock:
    """This process's lock in front of the file lock ``path``."""
    return _per_process(_process_writer_locks, path, threading.Lock)


class WriterLock:
    """An exclusive lock on a file (``flock``), one per database connection, held from
    ``BEGIN IMMEDIATE`` to the end of the transaction.

    SQLite lets one transaction write at a time. A connection that finds the write lock
    taken waits in SQLite's busy handler, which sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25,
    50, 50, then 100 ms between tries: with several server processes the lock was idle
    for up to a transaction's length after each commit while its waiter slept. Waiting
    here instead costs at most a quarter of a millisecond after the holder finishes.
    Every Budding process (server workers, job workers, the CLI) takes this lock before
    SQLite's, so they queue here; SQLite's own lock still guards the database against
    anything else. After ``SQLITE_BUSY_TIMEOUT_S`` a waiter goes on to SQLite's busy
    handler, which fails with "database is locked" after as long again.

    Threads of one process first queue on a ``threading.Lock`` of the process's, so
    only one of them at a time polls the file lock: four threads polling it spent a
    quarter of a core (a link look-up waiting behind the click writer, say).
    """

    POLL_S = (0.0001, 0.0002, 0.00025)  # then 0.25 ms between tries (a syscall each)

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None
        self.held = False
        self._in_process: threading.Lock | None = None  # held with the file lock

    def acquire(self, timeout: float = SQLITE_BUSY_TIMEOUT_S) -> None:
        if self.held:
            return
        if self.fd is None:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + timeout
        in_process = _process_writer_lock(self.path)
        if not in_process.acquire(timeout=timeout):
            return  # let SQLite decide (it waits its own busy timeout, then fails)
        tries = 0
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    in_process.release()
                    return  # let SQLite decide
                time.sleep(self.POLL_S[min(tries, len(self.POLL_S) - 1)])
                tries += 1
                continue
            self.held = True
            self._in_process = in_process
            return

    def release(self) -> None:
        if self.held and self.fd is not None:
            self.held = False
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            if self._in_process is not None:
                self._in_process.release()
                self._in_process = None

    def close(self) -> None:
        self.release()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class WalCheckpointer:
    """Copies a SQLite database's WAL into the database on a thread of its own, one per
    process and database: writers ask for a checkpoint after their commit
    (:meth:`request`), and go on.

    Run by the committing thread, a checkpoint (about 80 ms once 2,000 clicks had
    piled up in the WAL) held up what that thread did next: the click writer's next
    batch, so every referral redirect waiting in it. The thread's own connection runs
    PASSIVE checkpoints, which copy what they can beside readers and writers and never
    wait for them; requests made while one runs are served by one more run.
    """

    def __init__(self, database: Path) -> None:
        self.database = database
        self.failures = 0
        self._requested = 0
        self._completed = 0
        self._running = False
        self._changed = threading.Condition()

    def request(self) -> None:
        with self._changed:
            self._requested += 1
            if not self._running:  # the thread lives while there is work, then ends
                self._running = True
                threading.Thread(target=self._run, name="budding-wal-checkpoint").start()

    def wait(self, timeout: float = 30.0) -> bool:
        """Whether every checkpoint asked for so far has run (within ``timeout`` seconds)."""
        with self._changed:
            asked = self._requested
            return self._changed.wait_for(lambda: self._completed >= asked, timeout)

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def _run(self) -> None:
        while True:
            with self._changed:
                if self._completed == self._requested:
                    self._running = False
                    return
                asked = self._requested
            try:
                conn = sqlite3.connect(self.database, isolation_level=None)
                try:
                    self._checkpoint(conn)
                finally:
                    conn.close()
            except sqlite3.Error:  # the commits stand; the backstop checkpoints later
                self.failures += 1
                log.warning("WAL checkpoint of %s failed", self.database, exc_info=True)
            with self._changed:
                self._completed = asked
                self._changed.notify_all()


_checkpointers: dict[tuple[int, Path], WalCheckpointer] = {}


def wal_checkpointer(database: Path) -> WalCheckpointer:
    """This process's checkpointer of ``database``."""
    return _per_process(_checkpointers, database, lambda: WalCheckpointer(database))


def _writer_lock_connection(lock_path: Path, database: Path) -> type[sqlite3.Connection]:
    """A ``sqlite3.Connection`` class whose connections hold a :class:`WriterLock` on
    ``lock_path`` from ``begin_write`` (before ``BEGIN IMMEDIATE``) until they commit
    or roll back, and have ``database``'s WAL checkpointed after they changed enough."""

    class WriterLockedConnection(sqlite3.Connection):
        writer_lock: WriterLock
        checkpointed_changes: int

        def begin_write(self) -> None:
            lock = getattr(self, "writer_lock", None)
            if lock is None:
                lock = self.writer_lock = WriterLock(lock_path)
            lock.acquire()
            try:
                self.execute("BEGIN IMMEDIATE")
            except BaseException:
                lock.release()
                raise

        def commit(self) -> None:
            try:
                super().commit()
            finally:
                self._release()
            self._checkpoint_if_due()

        def rollback(self) -> None:
            try:
                super().rollback()
            finally:
                self._release()

        def close(self) -> None:
            try:
                super().close()
            finally:
                lock = getattr(self, "writer_lock", None)
                if lock is not None:
                    lock.close()

        def _release(self) -> None:
            lock = getattr(self, "writer_lock", None)
            if lock is not None and not self.in_transaction:
                lock.release()

        def _checkpoint_if_due(self) -> None:
            """Ask for a WAL checkpoint once this connection has changed
            ``SQLITE_CHECKPOINT_ROWS`` rows since it last did, after releasing the
            writer lock: SQLite's own automatic checkpoint runs inside COMMIT, so the
            next writer waited for it (up to two thirds of a 1,000-event batch's time
            under the lock, on a table of a few hundred thousand events). It runs on
            the process's checkpointer thread (:class:`WalCheckpointer`), not here."""
            if self.in_transaction:
                return
            done = getattr(self, "checkpointed_changes", 0)
            if self.total_changes - done < SQLITE_CHECKPOINT_ROWS:
                return
            self.checkpointed_changes = self.total_changes
            wal_checkpointer(database).request()

    return WriterLockedConnection


@cache
def _sqlite_has_exp() -> bool:
    """Whether this SQLite has its math functions (asked at the first connection, not at
    import: every command imports this module)."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("SELECT exp(0)")
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()
    return True


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
        if hasattr(dbapi_connection, "begin_write"):  # checkpoints after commits, unlocked
            cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_AUTOCHECKPOINT_PAGES}")
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.close()
        if not _sqlite_has_exp():  # a SQLite built without its math functions
            dbapi_connection.create_function("exp", 1, math.exp, deterministic=True)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get(READ_ONLY):
            # a reader of a WAL database sees the last commit and waits for no writer
            conn.exec_driver_sql("BEGIN")
            return
        # IMMEDIATE takes the write lock up front: a deferred transaction that
        # reads and then writes fails with "database is locked" under
        # concurrency instead of waiting its turn.
        driver = conn.connection.driver_connection
        begin_write = getattr(driver, "begin_write", None)
        if begin_write is not None:
            begin_write()  # the writer lock, then BEGIN IMMEDIATE
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


_engines: dict[str, Engine] = {}
_factories: dict[str, sessionmaker[Session]] = {}
_lock = threading.Lock()


def get_engine(url: str | None = None) -> Engine:
    url = url or get_settings().database_url
    with _lock:
        if url not in _engines:
            _engines[url] = make_engine(url)
            _factories[url] = sessionmaker(_engines[url], expire_on_commit=False)
        return _engines[url]


def dispose_engines() -> None:
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _factories.clear()


def session_factory(url: str | None = None) -> sessionmaker[Session]:
    url = url or get_settings().database_url
    get_engine(url)
    return _factories[url]


@contextmanager
def unit_of_work(url: str | None = None) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back when it raises (unless
    the error keeps its writes: ``BuddingError.keeps_writes``)."""
    session = session_factory(url)()
    try:
        yield session
        session.commit()
    except BaseException as exc:
        if keeps_writes(exc):
            session.commit()
        else:
            session.rollback()
        raise
    finally:
        session.close()


def keeps_writes(exc: BaseException) -> bool:
    """Whether ``exc`` is a refusal whose writes are kept (``BuddingError.keeps_writes``)."""
    return isinstance(exc, BuddingError) and exc.keeps_writes


@contextmanager
def savepoint(session: Session) -> Iterator[None]:
    """``session.begin_nested()``, except that an error that keeps its writes releases the
    savepoint instead of rolling it back (a page that shows a refusal, then commits)."""
    nested = session.begin_nested()
    try:
        yield
    except BaseException as exc:
        if keeps_writes(exc):
            nested.commit()
        else:
            nested.rollback()
        raise
    nested.commit()


READ_ONLY = "budding_read_only"


@contextmanager
def reading(url: str | None = None) -> Iterator[Session]:
    """A transaction that only reads. On SQLite it takes neither Budding's writer lock nor
    SQLite's (a deferred ``BEGIN``), so it does not queue behind writers: a referral
    link's look-up once waited for the click writer's commits."""
    with unit_of_work(url) as session:
        session.connection(execution_options={READ_ONLY: True})
        yield session


def dialect_insert(session: Session, table: Any) -> Any:
    """An INSERT that supports ``on_conflict_do_nothing`` on both backends."""
    name = session.get_bind().dialect.name
    return (postgresql.insert if name == "postgresql" else sqlite.insert)(table)


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def decayed(session: Session, column: Any, now: datetime, half_life_days: float) -> Any:
    """SQL for 2^(−age / half-life) of a :class:`UTCDateTime` column at ``now`` (1 for a
    future time), so that a ``SUM`` of it weighs rows by recency inside the database."""
    epoch: ColumnElement[Any]
    if is_postgres(session):
        epoch = cast(func.extract("epoch", column), Float)
    else:  # SQLite stores the text; julianday keeps milliseconds
        epoch = (func.julianday(column) - 2440587.5) * 86400.0
    age = now.timestamp() - epoch
    rate = math.log(2) / (half_life_days * 86400.0)
    # exp(-0.0) is exactly 1: the same value as a CASE on the age, whose two mentions of
    # the column SQLite computed twice (0.2 s of a 1,000,000-event sum)
    at_least_0 = func.greatest(age, 0.0) if is_postgres(session) else func.max(age, 0.0)
    return func.exp(-rate * at_least_0)


def driver_rows(session: Session, stmt: Any) -> Iterator[tuple[Any, ...]]:
    """The rows of ``stmt`` as the driver gives them (tuples of plain values), run on the
    session's connection: no ORM loading and no SQLAlchemy row objects, which cost about
    a second per million rows. Only for columns that need no result processing."""
    result = session.connection().execute(stmt)
    try:
        while rows := result.cursor.fetchmany(10_000):
            yield from rows
    finally:
        result.close()


# (id, id, weight, count) per pair: the summed edges of a member graph, as numpy reads them
PAIR_WEIGHTS = [("a", "<i8"), ("b", "<i8"), ("weight", "<f8"), ("count", "<i8")]


def pair_weights_array(session: Session, stmt: Any) -> Any:
    """The rows of ``stmt`` (a select of two ids, a weight and a count) as a numpy
    structured array of ``PAIR_WEIGHTS`` (:func:`driver_rows`: no Python object kept per
    row)."""
    import numpy as np  # only the influence capability's graph build reads arrays

    return np.fromiter(driver_rows(session, stmt), dtype=np.dtype(PAIR_WEIGHTS))


# --- capabilities and migrations -------------------------------------------------


def capability_names() -> list[str]:
    """Sub-packages of ``budding`` that are capabilities (everything but ``core``)."""
    import budding

    return sorted(
        m.name for m in pkgutil.iter_modules(budding.__path__) if m.ispkg and m.name != "core"
    )


def import_models() -> None:
    """Import every capability's ``models`` module so ``Base.metadata`` is complete."""
    for name in ["core", *capability_names()]:
        try:
            importlib.import_module(f"budding.{name}.models")
        except ModuleNotFoundError as exc:
            if exc.name != f"budding.{name}.models":
                raise


def alembic_config(url: str | None = None) -> Any:
    from alembic.config import Config

    import budding

    root = Path(budding.__path__[0])
    cfg = Config()
    cfg.set_main_option("script_location", str(root / "core" / "migrations"))
    locations = [
        str(p) for p in sorted(root.glob("*/migrations/versions")) if p.parent.parent.name != "core"
    ]
    cfg.set_main_option("version_locations", " ".join(locations))
    cfg.set_main_option("path_separator", "space")
    cfg.attributes["database_url"] = normalise_url(url or get_settings().database_url)
    return cfg


def upgrade(url: str | None = None) -> None:
    """Apply every capability's migrations (each capability is an Alembic branch)."""
    from alembic import command

    get_engine(url)  # creates the SQLite file's folder
    command.upgrade(alembic_config(url), "heads")


def migrations_pending(url: str | None = None) -> bool:
    """Whether the database lacks migrations of this version of Budding (all of them on a
    database never upgraded)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    heads = set(ScriptDirectory.from_config(alembic_config(url)).get_heads())
    with get_engine(url).connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads()) != heads


def new_revision(capability: str, message: str, depends_on: list[str] | None = None) -> str:
    """Autogenerate a migration for one capability's tables into its own Alembic branch.

    Compares the capability's models with a scratch SQLite database migrated
    to the current heads, so it needs no running server. Returns the path.
    """
    import tempfile

    from alembic import command
    from alembic.script import ScriptDirectory

    import_models()
    module = importlib.import_module(f"budding.{capability}.models")
    tables = {t.name for t in Base.metadata.sorted_tables if t.name in _tables_of(module)}
    versions = Path(module.__file__ or "").parent / "migrations" / "versions"
    versions.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/scratch.db"
        cfg = alembic_config(url)
        locations = cfg.get_main_option("version_locations") or ""
        if str(versions) not in locations.split():
            cfg.set_main_option("version_locations", f"{locations} {versions}".strip())
        command.upgrade(cfg, "heads")
        script = ScriptDirectory.from_config(cfg)
        try:
            head = script.get_revision(f"{capability}@head")
            kwargs: dict[str, Any] = {"head": f"{capability}@head"}
        except Exception:
            head = None
            kwargs = {"head": "base", "branch_label": capability, "depends_on": depends_on}

        def include(obj: Any, name: str | None, type_: str, reflected: bool, other: Any) -> bool:
            table = obj if type_ == "table" else getattr(obj, "table", None)
            table_name = name if type_ == "table" else getattr(table, "name", None)
            return table_name in tables

        cfg.attributes["include_object"] = include
        rev = command.revision(
            cfg, message=message, autogenerate=True, version_path=str(versions), **kwargs
        )
        del head
    return str(getattr(rev, "path", ""))


def _tables_of(module: Any) -> set[str]:
    names: set[str] = set()
    for value in vars(module).values():
        table = getattr(value, "__table__", None)
        if table is not None and getattr(value, "__module__", None) == module.__name__:
            names.add(table.name)
    return names
