"""What the HTTP benchmarks' load generators share (``ingest.py``, ``referrals.py``)."""

from __future__ import annotations

import gc
import socket
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
