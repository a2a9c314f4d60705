"""Readable, unguessable codes in Crockford base32.

The alphabet has no I, L, O or U, so a code read aloud or copied by hand
cannot be misread; on input, ``O`` is read as ``0`` and ``I``/``L`` as ``1``,
case, spaces and dashes are ignored. Twelve symbols carry 60 random bits.
"""

from __future__ import annotations

import base64
import os
import random
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 12  # 12 x 5 bits = 60 bits from the system's CSPRNG
_DECODE = str.maketrans({"O": "0", "I": "1", "L": "1"})
_VALID = set(ALPHABET)
# RFC 4648 base32 symbols, one for one onto Crockford's (each carries the same 5 bits).
_FROM_RFC4648 = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", ALPHABET.encode())


# Set only by ``seeded_codes`` (the demo): codes from a seeded generator.
_seeded: ContextVar[random.Random | None] = ContextVar("budding_seeded_codes", default=None)


POOL_BYTES = 4096


class _EntropyPool(threading.local):
    """One thread's bytes from the system's CSPRNG, not yet handed out."""

    data = b""
    used = 0


_pool = _EntropyPool()


def _forget_pool() -> None:
    global _pool
    _pool = _EntropyPool()


# A forked child starts with an empty pool: no two processes share bytes.
os.register_at_fork(after_in_child=_forget_pool)


def _random_bytes(size: int) -> bytes:
    """``size`` bytes from the system's CSPRNG, read ``POOL_BYTES`` at a time per thread.

    Why buffered: ``os.urandom`` lets go of the GIL, and taking it back waited behind
    whatever thread held it. On SQLite the click writer's thread does; a ``/r/{code}``
    on the event loop waited 41 µs per click id on average, and up to the 5 ms switch
    interval. Each byte is handed out once, and a forked child reads its own.
    """
    pool = _pool
    if pool.used + size > len(pool.data):
        pool.data = secrets.token_bytes(max(POOL_BYTES, size))
        pool.used = 0
    start = pool.used
    pool.used = start + size
    return pool.data[start : start + size]


def new_code(length: int = CODE_LENGTH) -> str:
    """A fresh random code of ``length`` symbols, 5 random bits each."""
    size = (length * 5 + 7) // 8
    rng = _seeded.get()
    raw = base64.b32encode(rng.randbytes(size) if rng is not None else _random_bytes(size))
    return raw[:length].translate(_FROM_RFC4648).decode()


@contextmanager
def seeded_codes(seed: str) -> Iterator[None]:
    """Within the block, codes and click ids (``new_code``, ``new_token``) come from a
    generator seeded with ``seed`` instead of the system's CSPRNG, so that ``budding demo
    --seed N`` builds the same community twice. Guessable: never for real programs."""
    token = _seeded.set(random.Random(seed))
    try:
        yield
    finally:
        _seeded.reset(token)


def normalise_code(value: str) -> str | None:
    """The canonical form of a typed or pasted code, or None when it cannot be one."""
    if not value or len(value) > 40:
        return None
    text = value.strip().upper().replace("-", "").replace(" ", "").translate(_DECODE)
    if not 8 <= len(text) <= 16 or not set(text) <= _VALID:
        return None
    return text


def format_code(code: str) -> str:
    """Groups of four for display: ``7K3M-Q9XW-2BDE``."""
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def new_token() -> str:
    """A click id: 26 symbols (130 bits), safe in URLs and cookies."""
    return new_code(26)
