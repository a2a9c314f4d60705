"""Where chunked work runs: local threads, or a Dask cluster.

Randomised work (RR sets, Monte-Carlo runs) is cut into fixed-size chunks; chunk
``c`` draws from its own stream seeded by ``(seed, c)`` (see
:mod:`budding.influence._rng`).  An executor only decides *where* ranges of
chunks run; results are concatenated in chunk order, so a Dask run returns
exactly what a single-machine run returns for the same seed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, Protocol, TypeVar

import numba

__all__ = ["DaskExecutor", "Executor", "LocalExecutor", "get_executor", "split_range"]

T = TypeVar("T")


class Executor(Protocol):
    """Runs ``fn(payload, first, count)`` over ranges of chunks, returning results in order."""

    def map_chunks(
        self,
        fn: Callable[[Any, int, int], T],
        payload: Any,
        first: int,
        count: int,
        progress: Callable[[int], None] | None = None,
    ) -> list[T]: ...


def split_range(first: int, count: int, parts: int) -> list[tuple[int, int]]:
    """Split ``count`` chunks starting at ``first`` into at most ``parts`` contiguous ranges."""
    parts = max(1, min(parts, count))
    base, extra = divmod(count, parts)
    out = []
    start = first
    for i in range(parts):
        size = base + (1 if i < extra else 0)
        if size:
            out.append((start, size))
            start += size
    return out


_POOLS: dict[tuple[int, int], ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def _pool(threads: int) -> ThreadPoolExecutor:
    """One long-lived pool per thread count: IMM calls map_chunks once per phase, and
    starting threads each time costs more than a small phase's work.  Keyed by process
    id too: a forked child inherits the dict but not the threads."""
    key = (os.getpid(), threads)
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            pool = _POOLS[key] = ThreadPoolExecutor(threads, "budding-influence")
        return pool


class LocalExecutor:
    """Threads in this process (numba kernels release the GIL)."""

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads or numba.get_num_threads() or os.cpu_count() or 1

    def map_chunks(
        self,
        fn: Callable[[Any, int, int], T],
        payload: Any,
        first: int,
        count: int,
        progress: Callable[[int], None] | None = None,
    ) -> list[T]:
        if count <= 0:
            return []
        ranges = split_range(first, count, self.threads * 4)
        results: list[T | None] = [None] * len(ranges)
        if self.threads == 1 or len(ranges) == 1:
            for i, (a, c) in enumerate(ranges):
                results[i] = fn(payload, a, c)
                if progress is not None:
                    progress(c)
        else:
            pool = _pool(self.threads)
            futures = {pool.submit(fn, payload, a, c): (i, c) for i, (a, c) in enumerate(ranges)}
            for fut in as_completed(futures):
                i, c = futures[fut]
                results[i] = fut.result()
                if progress is not None:
                    progress(c)
        return results  # type: ignore[return-value]


class DaskExecutor:
    """Chunks run as tasks on a ``dask.distributed`` cluster.

    ``client`` is a ``distributed.Client``; the payload (graph arrays and
    parameters) is scattered to every worker once per payload object.
    """

    def __init__(self, client: Any, tasks_per_worker: int = 4) -> None:
        self.client = client
        self.tasks_per_worker = tasks_per_worker
        self._scattered: dict[int, tuple[Any, Any]] = {}

    def _workers(self) -> int:
        info = self.client.scheduler_info()
        return max(1, sum(w.get("nthreads", 1) for w in info.get("workers", {}).values()))

    def map_chunks(
        self,
        fn: Callable[[Any, int, int], T],
        payload: Any,
        first: int,
        count: int,
        progress: Callable[[int], None] | None = None,
    ) -> list[T]:
        from distributed import as_completed as dask_completed

        if count <= 0:
            return []
        key = id(payload)
        if key not in self._scattered or self._scattered[key][0] is not payload:
            future = self.client.scatter(payload, broadcast=True, hash=False)
            self._scattered[key] = (payload, future)
        remote = self._scattered[key][1]
        ranges = split_range(first, count, self._workers() * self.tasks_per_worker)
        futures = [self.client.submit(fn, remote, a, c, pure=False) for a, c in ranges]
        index = {f.key: (i, c) for i, (f, (_, c)) in enumerate(zip(futures, ranges, strict=True))}
        results: list[T | None] = [None] * len(ranges)
        for fut in dask_completed(futures):
            i, c = index[fut.key]
            results[i] = fut.result()
            if progress is not None:
                progress(c)
        return results  # type: ignore[return-value]


def get_executor(scheduler: Any = None) -> Executor:
    """An executor for ``scheduler``: ``None`` (local threads), ``"local"`` (a Dask
    LocalCluster in this process), a ``tcp://host:port`` address, a
    ``distributed.Client``, or an :class:`Executor` (returned as is)."""
    if scheduler is None:
        return LocalExecutor()
    if hasattr(scheduler, "map_chunks"):
        return scheduler
    from distributed import Client

    if isinstance(scheduler, Client):
        return DaskExecutor(scheduler)
    if scheduler == "local":
        return DaskExecutor(Client(processes=False, dashboard_address=None))
    if isinstance(scheduler, str):
        return DaskExecutor(Client(scheduler))
    raise TypeError(f"scheduler {scheduler!r}: give a tcp:// address, 'local' or a Client")
