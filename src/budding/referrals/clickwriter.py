"""Group commit for link clicks: many concurrent ``/r/{code}`` requests, one transaction.

Each request hands its click row to the process's writer and waits until the
transaction holding it has committed; only then is the redirect sent. So a
click that was answered is stored (nothing waits in memory after a response),
and a burst of clicks costs one commit instead of one each: while a batch is
being written, the next requests queue up and go together in the next one.
At low load a batch is a single click and a click costs one short transaction.

On PostgreSQL a batch is **one statement on the event loop**: an ``INSERT …
SELECT … FROM unnest(<one array per column>)`` on one of the writer's own
autocommit ``psycopg.AsyncConnection``s (two batches may be in flight), planned for
the table as it is, that also looks up the visitor id of the click each browser
still carried (a ``LEFT JOIN`` on its token). It commits
when it returns: one round trip per batch, no thread. (A worker thread running
SQLAlchemy held the GIL against the event loop: every ``os.urandom`` of a click
id or socket write on the loop waited up to the 5 ms switch interval for it,
and the loop's requests stalled behind a batch's three round trips.)
On SQLite the batch goes through SQLAlchemy in a worker thread of its own.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

import anyio
from sqlalchemy import Engine, Table, select

from budding.core.db import get_engine, reading
from budding.programs.models import Program
from budding.referrals.links import (
    LinkTarget,
    invite_target,
    link_cache,
    referral_target,
    resolve_links,
)
from budding.referrals.models import ReferralClick

MAX_BATCH = 1000
PG_IN_FLIGHT = 2
_clicks: Table = ReferralClick.__table__  # type: ignore[assignment]

# The columns of a click row, in the order of the arrays handed to ``PG_INSERT``.
PG_COLUMNS = (
    "program_id",
    "token",
    "visitor",
    "previous",
    "code_id",
    "invite_id",
    "referrer_member_id",
    "channel",
    "ip_hash",
    "user_agent",
    "bot",
    "clicked_at",
)
PG_INSERT = """
INSERT INTO referral_clicks (program_id, token, visitor, code_id, invite_id, referrer_member_id,
                             channel, ip_hash, user_agent, bot, clicked_at)
SELECT v.program_id, v.token, COALESCE(p.visitor, v.visitor), v.code_id, v.invite_id,
       v.referrer_member_id, v.channel, v.ip_hash, v.user_agent, v.bot, v.clicked_at
FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::bigint[], %s::bigint[],
            %s::bigint[], %s::text[], %s::text[], %s::text[], %s::bool[], %s::timestamptz[])
     AS v(program_id, token, visitor, previous, code_id, invite_id, referrer_member_id,
          channel, ip_hash, user_agent, bot, clicked_at)
LEFT JOIN referral_clicks AS p ON p.token = v.previous AND p.program_id = v.program_id
"""


# Referral codes first, then invite codes (what ``links.resolve_links`` does), in one query.
PG_RESOLVE = """
SELECT 0 AS kind, c.code, c.id, c.member_id, p.id, p.slug, p.landing_url, p.settings
FROM referral_codes AS c JOIN programs AS p ON p.id = c.program_id
WHERE c.code = ANY(%s::text[])
UNION ALL
SELECT 1, i.code, i.id, i.issuer_member_id, p.id, p.slug, p.landing_url, p.settings
FROM invite_codes AS i JOIN programs AS p ON p.id = i.program_id
WHERE i.code = ANY(%s::text[])
"""


def store_batch(rows: list[dict[str, Any]]) -> None:
    """Insert clicks in one transaction, giving each the visitor id of the click whose id
    its browser still carried (``previous``), when that click is of the same program."""
    with get_engine().begin() as conn:
        previous = {r["previous"] for r in rows if r.get("previous")}
        known: dict[str, tuple[int, str]] = {}
        if previous:
            found = conn.execute(
                select(_clicks.c.token, _clicks.c.program_id, _clicks.c.visitor).where(
                    _clicks.c.token.in_(previous)
                )
            )
            known = {t: (p, v) for t, p, v in found}
        values = []
        for r in rows:
            row = {k: v for k, v in r.items() if k != "previous"}
            prior = known.get(r.get("previous") or "")
            if prior is not None and prior[0] == row["program_id"]:
                row["visitor"] = prior[1]
            values.append(row)
        conn.execute(_clicks.insert(), values)


def pg_arrays(rows: list[dict[str, Any]]) -> list[list[Any]]:
    """The batch as one list per column of ``PG_COLUMNS`` (``previous`` may be missing)."""
    return [[r.get(c) for r in rows] for c in PG_COLUMNS]


def pg_connect_args(engine: Engine) -> dict[str, Any]:
    """``psycopg.connect`` arguments for the engine's database."""
    _, params = engine.dialect.create_connect_args(engine.url)
    params.pop("context", None)  # SQLAlchemy's adapters; the plain ones suit this statement
    return dict(params)


class PgClickStore:
    """The autocommit ``psycopg.AsyncConnection``s of one event loop (one per batch in
    flight), opened on first use and again after one broke. A statement that failed fails
    its batch (the requests answer 500, nothing is claimed stored); it is never retried, so
    no click is stored twice."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._idle: list[Any] = []

    async def _acquire(self) -> Any:
        import psycopg

        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and not conn.broken:
                return conn
        return await psycopg.AsyncConnection.connect(
            **pg_connect_args(self.engine), autocommit=True
        )

    def _release(self, conn: Any) -> None:
        if not conn.closed and not conn.broken:
            self._idle.append(conn)

    async def store(self, rows: list[dict[str, Any]]) -> None:
        conn = await self._acquire()
        try:
            # Planned at each execution, never prepared: PostgreSQL keeps a prepared
            # statement's generic plan, made from the table sizes of that moment, until
            # the next ANALYZE. Prepared while referral_clicks was one page, this insert
            # kept scanning the whole table for ``previous`` (8 ms a click at 24,000
            # rows) until autovacuum analysed it. Planning costs ~0.1 ms per batch.
            await conn.execute(PG_INSERT, pg_arrays(rows), prepare=False)
        finally:
            self._release(conn)

    async def resolve(self, codes: list[str]) -> dict[str, LinkTarget]:
        """The targets of those of ``codes`` (normalised) that exist."""
        conn = await self._acquire()
        try:
            cur = await conn.execute(PG_RESOLVE, (codes, codes), prepare=False)  # as above
            rows = await cur.fetchall()
        finally:
            self._release(conn)
        found: dict[str, LinkTarget] = {}
        for kind, code, row_id, member_id, program_id, slug, landing, settings in sorted(
            rows, key=lambda r: -r[0]
        ):
            program = Program(id=program_id, slug=slug, landing_url=landing, settings=settings)
            found[code] = (
                referral_target(program, row_id, member_id)
                if kind == 0
                else invite_target(program, row_id, member_id, code)
            )
        return found

    async def close(self) -> None:
        while self._idle:
            await self._idle.pop().close()

    def __del__(self) -> None:
        # The event loop (and with it this store) is gone, e.g. a test client's: end the
        # sessions now (libpq's PQfinish, no loop needed) rather than in the collector.
        for conn in self._idle:
            if not conn.closed:
                conn.pgconn.finish()


def _resolve_sync(codes: list[str]) -> dict[str, LinkTarget]:
    with reading() as session:
        return resolve_links(session, codes)


class ClickWriter:
    """Batches click rows of one event loop; ``write`` returns once the row is committed.
    Also resolves codes missing from the link cache (``resolve``)."""

    def __init__(self) -> None:
        self._pending: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._draining = 0  # batches in flight
        self._in_flight: int | None = None  # how many may be: 2 on PostgreSQL, else 1
        self._lookups: dict[str, asyncio.Future[LinkTarget | None]] = {}
        self._resolving = False
        self._pg: PgClickStore | None = None
        # SQLite: its own worker thread, one batch at a time, never waiting behind the sync
        # routes for a slot of the shared thread pool.
        self._limiter = anyio.CapacityLimiter(1)
        # Link look-ups on a cache miss (SQLite) get a thread of their own too: a burst of
        # new codes must not fill the shared pool that requests need to commit.
        self._resolve_limiter = anyio.CapacityLimiter(1)

    def _pg_store(self, engine: Engine) -> PgClickStore:
        if self._pg is None or self._pg.engine is not engine:
            self._pg = PgClickStore(engine)  # a replaced one's connection closes with it
        return self._pg

    async def write(self, row: dict[str, Any]) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((row, future))
        if self._in_flight is None:
            # PostgreSQL: a second batch may go while the first waits for its commit (the
            # server flushes their WAL together), so a click never waits for two commits.
            self._in_flight = PG_IN_FLIGHT if get_engine().dialect.name == "postgresql" else 1
        if self._draining < self._in_flight:
            self._draining += 1
            asyncio.get_running_loop().create_task(self._drain())
        await future

    async def resolve(self, code: str) -> LinkTarget | None:
        """The target of a normalised code, from the link cache or the database (and then
        cached). The misses of one moment share one look-up: on PostgreSQL a query on the
        loop, on SQLite a thread's (many codes expire together, loaded together)."""
        target = link_cache.get(code)
        if target is not None:
            return target
        future = self._lookups.get(code)
        if future is None:
            future = self._lookups[code] = asyncio.get_running_loop().create_future()
            if not self._resolving:
                self._resolving = True
                asyncio.get_running_loop().create_task(self._drain_lookups())
        # Shielded: one request giving up must not cancel the answer the others wait for.
        return await asyncio.shield(future)

    async def _store(self, rows: list[dict[str, Any]]) -> None:
        engine = get_engine()
        if engine.dialect.name == "postgresql":
            await self._pg_store(engine).store(rows)
        else:
            await anyio.to_thread.run_sync(store_batch, rows, limiter=self._limiter)

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._pending[:MAX_BATCH]
                del self._pending[:MAX_BATCH]
                try:
                    await self._store([row for row, _ in batch])
                except Exception as exc:  # every waiter learns that its click failed
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for _, future in batch:
                        if not future.done():
                            future.set_result(None)
        finally:
            self._draining -= 1

    async def _drain_lookups(self) -> None:
        try:
            while self._lookups:
                batch, self._lookups = self._lookups, {}
                try:
                    engine = get_engine()
                    if engine.dialect.name == "postgresql":
                        found = await self._pg_store(engine).resolve(list(batch))
                    else:
                        found = await anyio.to_thread.run_sync(
                            _resolve_sync, list(batch), limiter=self._resolve_limiter
                        )
                except Exception as exc:
                    for future in batch.values():
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for code, future in batch.items():
                        target = found.get(code)
                        if target is not None:
                            link_cache.put(code, target)
                        if not future.done():
                            future.set_result(target)
        finally:
            self._resolving = False


_writers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ClickWriter] = (
    weakref.WeakKeyDictionary()
)


def writer() -> ClickWriter:
    """The running event loop's writer (one per loop: one per server process)."""
    loop = asyncio.get_running_loop()
    found = _writers.get(loop)
    if found is None:
        found = _writers[loop] = ClickWriter()
    return found
