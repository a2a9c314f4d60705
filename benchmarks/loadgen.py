"""What the HTTP benchmarks' load generators share (``ingest.py``, ``referrals.py``).

Run alone, it watches the disk: ``python benchmarks/loadgen.py --seconds 60 /tmp``
prints the fsync latencies :class:`FsyncProbe` saw there.
"""

from __future__ import annotations

import gc
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def client_gc_paused() -> Iterator[None]:
    """The load generator's garbage collector off while it sends.

    The client holds what it will send (hundreds of thousands of events as dicts),
    and a full collection walks them all: it stalled every request in flight for
    about 100 ms, which an open loop counts as the server's latency. Collected once
    before, frozen and switched off during the phase, switched back on after.
    """
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


class FsyncProbe:
    """Times a 4 KB write + ``fsync`` in ``directory`` every ``interval`` seconds, on a
    thread, while a latency phase runs.

    A commit waits for the disk: PostgreSQL flushes its WAL on every commit, SQLite's
    checkpoints flush the database file. On a shared virtual disk an ``fsync`` now and
    then takes 30–200 ms, and every request committing meanwhile waits as long. The
    probe's figures, printed beside the server's, tell a slow server from a slow disk.
    Ten fsyncs a second are too few to load the disk themselves, and a probe issued
    during a stall waits it out, so stalls longer than ``interval`` are all seen.
    """

    def __init__(self, directory: str | os.PathLike[str], interval: float = 0.1) -> None:
        self.path = os.path.join(directory, "fsync-probe.tmp")
        self.interval = interval
        self.seconds: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fsync-probe", daemon=True)

    def _run(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
        block = b"\0" * 4096
        try:
            while not self._stop.wait(self.interval):
                started = time.perf_counter()
                os.pwrite(fd, block, 0)
                os.fsync(fd)
                self.seconds.append(time.perf_counter() - started)
        finally:
            os.close(fd)
            os.unlink(self.path)

    def __enter__(self) -> FsyncProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def ms(self, quantile: float) -> float:
        """The fsync time (ms) at ``quantile`` (0.5: the median, 1: the slowest)."""
        ms = sorted(s * 1000 for s in self.seconds)
        return ms[min(int(len(ms) * quantile), len(ms) - 1)] if ms else 0.0

    def summary(self) -> str:
        """``p50/max ms`` of the fsyncs timed, e.g. ``0.9/177``."""
        return f"{self.ms(0.5):.1f}/{self.ms(1):.0f}" if self.seconds else "-"


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Time fsyncs of a 4 KB file in DIRECTORY.")
    parser.add_argument("directory", nargs="?", default=".")
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    with FsyncProbe(args.directory) as probe:
        time.sleep(args.seconds)
    slow = sum(1 for s in probe.seconds if s > 0.03)
    print(
        f"{len(probe.seconds)} fsyncs in {args.seconds:g} s: p50/max {probe.summary()} ms; "
        f"p99 {probe.ms(0.99):.1f} ms; {slow} over 30 ms"
    )
