"""Counter-based random numbers for numba kernels.

Every kernel in :mod:`budding.influence` draws its randomness from SplitMix64
(Steele, Lea & Flood, "Fast splittable pseudorandom number generators",
OOPSLA 2014), one uint64 of state held in a one-element array.  Work is cut
into fixed-size *chunks* (of RR sets, or of Monte-Carlo runs); chunk ``c`` of a
computation with seed ``s`` starts from ``chunk_state(s, c)``.  Because a
chunk's stream depends only on ``(s, c)``, results are identical whether the
chunks run on one thread, on several threads, or on a Dask cluster.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_S32 = np.uint64(32)
_INV53 = 1.0 / 9007199254740992.0


@njit(cache=True, inline="always")
def mix64(z: np.uint64) -> np.uint64:
    """SplitMix64 finaliser: a bijective avalanche of one 64-bit word."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(cache=True, inline="always")
def next_u64(state: np.ndarray) -> np.uint64:
    """Advance ``state`` (uint64[1]) and return the next 64 random bits."""
    s = state[0] + _GOLDEN
    state[0] = s
    return mix64(s)


@njit(cache=True, inline="always")
def next_float(state: np.ndarray) -> float:
    """Uniform double in [0, 1)."""
    return float(next_u64(state) >> _S11) * _INV53


@njit(cache=True, inline="always")
def next_u32(state: np.ndarray) -> np.uint64:
    """Uniform integer in [0, 2**32) (as uint64), for threshold comparisons."""
    return next_u64(state) >> _S32


@njit(cache=True)
def chunk_state(seed, chunk):
    """The starting state of chunk ``chunk`` of a computation seeded ``seed``."""
    state = np.empty(1, dtype=np.uint64)
    state[0] = mix64(mix64(seed + _GOLDEN) ^ mix64(np.uint64(chunk) * _M1 + _GOLDEN))
    return state


def seed_u64(seed: int | None) -> np.uint64:
    """Normalise a user seed (any int, or None for a fresh random one) to uint64."""
    if seed is None:
        return np.uint64(np.random.SeedSequence().entropy % (1 << 64))  # type: ignore[operator]
    return np.uint64(int(seed) % (1 << 64))
