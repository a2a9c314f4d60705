"""Group commit for link clicks: many concurrent ``/r/{code}`` requests, one transaction.

Each request hands its click row to the process's writer and waits until the
transaction holding it has committed; only then is the redirect sent. So a
click that was answered is stored (nothing waits in memory after a response),
and a burst of clicks costs one commit instead of one each: while a batch is
being written, the next requests queue up and go together in the next one.
At low load a batch is a single click and a click costs one short transaction.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

import anyio
from sqlalchemy import Table, select

from budding.core.db import get_engine
from budding.referrals.models import ReferralClick

MAX_BATCH = 1000
_clicks: Table = ReferralClick.__table__  # type: ignore[assignment]


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


class ClickWriter:
    """Batches click rows of one event loop; ``write`` returns once the row is committed."""

    def __init__(self) -> None:
        self._pending: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._running = False
        # Its own worker thread: one batch at a time, never waiting behind the sync routes
        # for a slot of the shared thread pool.
        self._limiter = anyio.CapacityLimiter(1)
        # Link look-ups on a cache miss get threads of their own too: a burst of new codes
        # must not fill the shared pool that requests need to commit.
        self.resolve_limiter = anyio.CapacityLimiter(4)

    async def write(self, row: dict[str, Any]) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((row, future))
        if not self._running:
            self._running = True
            asyncio.get_running_loop().create_task(self._drain())
        await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._pending[:MAX_BATCH]
                del self._pending[:MAX_BATCH]
                try:
                    await anyio.to_thread.run_sync(
                        store_batch, [row for row, _ in batch], limiter=self._limiter
                    )
                except Exception as exc:  # every waiter learns that its click failed
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for _, future in batch:
                        if not future.done():
                            future.set_result(None)
        finally:
            self._running = False


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
