"""Reverse-reachable (RR) sets: sampling, greedy max coverage, expected reach.

An RR set for a root v is the set of nodes that reach v in a random live-edge
world (IC: each edge live with its probability; LT: each node keeps at most one
in-edge, chosen with probability equal to its weight).  For any seed set S,
σ(S) = n · Pr[S ∩ R ≠ ∅] (Borgs, Brautbar, Chayes & Lucier, "Maximizing social
influence in nearly optimal time", SODA 2014).

Sampling cost is what IMM spends its time on; two things make it fast here:

* **O(1 + live edges) per node** where all in-edges of v share one probability
  p (weighted cascade, uniform p, NetHEPT's file), instead of O(in-degree): the
  number of live in-edges is Binomial(d, p) and, given it, they are a uniform
  subset.  Where few are expected (d·p ≤ 12) one uniform is inverted through the
  binomial's CDF and the edges placed with Floyd's algorithm; elsewhere they are
  found by geometric jumps of ⌊log U / log(1 − p)⌋ edges (Guo, Wang, Wei & Chen,
  "Influence maximization revisited: efficient reverse reachable set generation
  with bound tightened", SIGMOD 2020, SUBSIM).  Both are exact; the first needs
  no logarithm, about 20 % less time on NetHEPT than geometric jumps alone.
  Rows with p = 1 take every edge without a draw; nodes with differing
  probabilities flip one coin per edge.  See :func:`_rr_batch`.
* Chunked, counter-based random streams (one per 256 RR sets) so batches run
  on threads or Dask workers and still give the same sets for the same seed.

Sets are kept in the parts the sampling threads return (int32 nodes, int64
offsets), never copied; each thread counts the sets holding each node as it
samples.  Greedy max coverage indexes only the nodes that can become seeds (see
:func:`max_coverage`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numba import njit

from budding.influence._rng import _GOLDEN, _INV53, _S11, chunk_state, mix64, seed_u64
from budding.influence.graph import Graph
from budding.influence.parallel import Executor, LocalExecutor
from budding.influence.probability import EdgeProbabilities, edge_probabilities

__all__ = [
    "RRSampler",
    "RRSets",
    "coverage_bound",
    "expected_reach",
    "max_coverage",
    "sample_rr_sets",
]

CHUNK = 256


@njit(cache=True, nogil=True)
def _grow(a, need):
    size = a.shape[0] * 2
    while size < need:
        size *= 2
    b = np.empty(size, dtype=a.dtype)
    b[: a.shape[0]] = a
    return b


_ix = np.uintp  # an index known to be >= 0 (see _rr_batch)

# How a node's in-edges are sampled (RRSampler.kind); IC unless named LT
_NONE = 0  # no in-edge can be live (none, or p = 0)
_BINOMIAL = 1  # one p < 1 shared, few live edges expected: count, then positions
_GEOMETRIC = 2  # one p < 1 shared, many live edges expected: geometric jumps
_ALL = 3  # p = 1: every in-edge is live
_COINS = 4  # differing p: a coin per edge
_LT_SHARED = 5  # LT, one weight shared by the in-edges
_LT_EDGES = 6  # LT, differing weights
BINOMIAL_MAX_MEAN = 12.0  # d·p up to which a node is _BINOMIAL
_PICK = 64  # live edges of a _BINOMIAL node placed by Floyd's algorithm


@njit(cache=True, nogil=True)
def _rr_batch(
    in_indptr, in_indices, in_p, kind, node_f, roots, n, seed, chunk, first, count, dense
):  # fmt: skip
    """RR sets of chunks ``first .. first+count-1`` as (nodes, offsets, counts): set i is
    ``nodes[offsets[i]:offsets[i + 1]]``, ``counts[v]`` the number of sets holding v
    (only if ``dense``, else empty: where the graph has many more nodes than the batch
    has sets, a count per node costs more to zero, page in and add up than counting the
    sets' nodes afterwards).

    The SplitMix64 state is a local scalar (kept in a register; the one-element
    array of :mod:`_rng` is reloaded after every store to ``nodes``), and a
    node's way of sampling its in-edges is one byte (``kind``), its two
    constants one 16-byte row (``node_f``), so a visit touches few cache lines.

    IC with one p < 1 shared by v's d in-edges: the number of live ones is
    Binomial(d, p), and given that number they are a uniform subset.  Where
    d·p ≤ :data:`BINOMIAL_MAX_MEAN` (weighted cascade: always) one uniform
    is inverted through the binomial's CDF (``node_f[v] = (q^d, p/q)``, the
    pmf by its recurrence; q^d, the chance that none is live, settles the
    commonest case with one comparison), and the positions are drawn with
    Floyd's algorithm (Bentley & Floyd, "Programming pearls: a sample of
    brilliance", CACM 1987): no logarithm, one draw per live edge.  Elsewhere
    the live edges are found by geometric jumps of ⌊log U / log q⌋ (SUBSIM,
    Guo et al. SIGMOD 2020; ``node_f[v] = (q^d, 1/log q)``), O(1 + live) per
    node instead of O(d).  p = 1 takes every edge without a draw; differing
    p flips a coin per edge.

    Every index is cast to unsigned (``_ix``): numba then leaves out the
    negative-index wraparound it adds to each signed access (a shift, a mask
    and a register each), about 8 % of this kernel's time on NetHEPT.  Adding a
    node to the set is written out at each of its seven places: the same lines
    as an inlined helper (``inline="always"``) measured 9 % slower.
    """
    n_sets = chunk * count
    offsets = np.empty(n_sets + 1, dtype=np.int64)
    offsets[0] = 0
    nodes = np.empty(max(1024, n_sets * 3), dtype=np.int32)
    # per node: the set it was last put in, and (dense) the number of sets holding it
    mark = np.zeros((n, 2 if dense else 1), dtype=np.int32)
    pick = np.empty(_PICK, dtype=np.int64)
    n_roots = roots.shape[0]
    stamp = 0
    total = 0
    k = 0
    for c in range(first, first + count):
        st = chunk_state(seed, c)[0]
        for _ in range(chunk):
            st += _GOLDEN
            r = float(mix64(st) >> _S11) * _INV53
            root = roots[_ix(int(r * n_roots))] if n_roots > 0 else int(r * n)
            # room for the largest possible set (n nodes), checked once per set: the
            # kernel is then free of reallocation in its inner loops
            if total + n > nodes.shape[0]:
                nodes = _grow(nodes, total + n)
            nodes[_ix(total)] = root
            if dense:
                mark[_ix(root), 1] += 1
            total += 1
            k += 1
            if kind[_ix(root)] == _NONE:
                offsets[_ix(k)] = total
                continue
            stamp += 1
            mark[_ix(root), 0] = stamp
            head = total - 1
            while head < total:
                v = nodes[_ix(head)]
                head += 1
                kv = kind[_ix(v)]
                if kv == _NONE:
                    continue
                s = in_indptr[_ix(v)]
                if kv == _BINOMIAL:
                    st += _GOLDEN
                    x = float(mix64(st) >> _S11) * _INV53
                    pmf = node_f[_ix(v), 0]
                    if x < pmf:
                        continue
                    d = in_indptr[_ix(v + 1)] - s
                    ratio = node_f[_ix(v), 1]
                    cum = pmf
                    live = 0
                    while x >= cum and live < d:
                        pmf *= (d - live) * ratio / (live + 1)
                        live += 1
                        cum += pmf
                    if live == 1:
                        st += _GOLDEN
                        u = in_indices[_ix(s + int(float(mix64(st) >> _S11) * _INV53 * d))]
                        if mark[_ix(u), 0] != stamp:
                            mark[_ix(u), 0] = stamp
                            if dense:
                                mark[_ix(u), 1] += 1
                            nodes[_ix(total)] = u
                            total += 1
                        continue
                    if live <= _PICK:
                        # Floyd: for t = d − live .. d − 1 a uniform j ≤ t, or t if j is taken
                        low = d - live
                        for t in range(low, d):
                            st += _GOLDEN
                            j = int(float(mix64(st) >> _S11) * _INV53 * (t + 1))
                            for q in range(t - low):
                                if pick[_ix(q)] == j:
                                    j = t
                                    break
                            pick[_ix(t - low)] = j
                            u = in_indices[_ix(s + j)]
                            if mark[_ix(u), 0] != stamp:
                                mark[_ix(u), 0] = stamp
                                if dense:
                                    mark[_ix(u), 1] += 1
                                nodes[_ix(total)] = u
                                total += 1
                        continue
                    # more than _PICK live (all but impossible with d·p ≤ 12): selection
                    # sampling, each edge taken with chance (still needed) / (still left);
                    # growing `pick` instead would cost every visit ~7 % (refcounts)
                    for j in range(d):
                        st += _GOLDEN
                        if float(mix64(st) >> _S11) * _INV53 * (d - j) < live:
                            live -= 1
                            u = in_indices[_ix(s + j)]
                            if mark[_ix(u), 0] != stamp:
                                mark[_ix(u), 0] = stamp
                                if dense:
                                    mark[_ix(u), 1] += 1
                                nodes[_ix(total)] = u
                                total += 1
                elif kv == _GEOMETRIC:
                    e = in_indptr[_ix(v + 1)]
                    st += _GOLDEN
                    x = float(mix64(st) >> _S11) * _INV53
                    if 1.0 - x <= node_f[_ix(v), 0]:
                        continue
                    ilq = node_f[_ix(v), 1]
                    j = s - 1
                    while True:
                        # geometric jump ⌊log(1 − U) / log(1 − p)⌋ to the next live in-edge
                        gap = math.log(1.0 - x) * ilq
                        if gap >= e - j - 1:
                            break
                        j += 1 + int(gap)
                        u = in_indices[_ix(j)]
                        if mark[_ix(u), 0] != stamp:
                            mark[_ix(u), 0] = stamp
                            if dense:
                                mark[_ix(u), 1] += 1
                            nodes[_ix(total)] = u
                            total += 1
                        st += _GOLDEN
                        x = float(mix64(st) >> _S11) * _INV53
                elif kv == _ALL:
                    for j in range(s, in_indptr[_ix(v + 1)]):
                        u = in_indices[_ix(j)]
                        if mark[_ix(u), 0] != stamp:
                            mark[_ix(u), 0] = stamp
                            if dense:
                                mark[_ix(u), 1] += 1
                            nodes[_ix(total)] = u
                            total += 1
                elif kv == _COINS:
                    for j in range(s, in_indptr[_ix(v + 1)]):
                        st += _GOLDEN
                        if float(mix64(st) >> _S11) * _INV53 < in_p[_ix(j)]:
                            u = in_indices[_ix(j)]
                            if mark[_ix(u), 0] != stamp:
                                mark[_ix(u), 0] = stamp
                                if dense:
                                    mark[_ix(u), 1] += 1
                                nodes[_ix(total)] = u
                                total += 1
                else:  # LT: at most one in-edge, chosen with probability its weight
                    st += _GOLDEN
                    x = float(mix64(st) >> _S11) * _INV53
                    u = -1
                    if kv == _LT_SHARED:
                        idx = int(x / node_f[_ix(v), 0])
                        if idx < in_indptr[_ix(v + 1)] - s:
                            u = in_indices[_ix(s + idx)]
                    else:
                        acc = 0.0
                        for j in range(s, in_indptr[_ix(v + 1)]):
                            acc += in_p[_ix(j)]
                            if x < acc:
                                u = in_indices[_ix(j)]
                                break
                    if u >= 0 and mark[_ix(u), 0] != stamp:
                        mark[_ix(u), 0] = stamp
                        if dense:
                            mark[_ix(u), 1] += 1
                        nodes[_ix(total)] = u
                        total += 1
            offsets[_ix(k)] = total
    counts = mark[:, 1].copy() if dense else np.empty(0, dtype=np.int32)
    if 2 * nodes.shape[0] > 3 * total + 8192:
        return nodes[:total].copy(), offsets, counts  # do not keep a mostly empty buffer alive
    return nodes[:total], offsets, counts


def sampling_plan(
    graph: Graph, probs: EdgeProbabilities, model: str = "ic"
) -> tuple[np.ndarray, np.ndarray]:
    """Each node's ``kind`` (how its in-edges are sampled) and ``node_f`` row (see
    :func:`_rr_batch`)."""
    node_p = np.asarray(probs.node_p, dtype=np.float64)
    d = graph.in_degree.astype(np.float64)
    kind = np.full(graph.n, _COINS, dtype=np.uint8)
    node_f = np.zeros((graph.n, 2))
    if model == "lt":
        kind[:] = _LT_EDGES
        shared = node_p > 0
        kind[shared] = _LT_SHARED
        node_f[shared, 0] = node_p[shared]
        kind[(node_p == 0) | (d == 0)] = _NONE
        return kind, node_f
    kind[node_p >= 1] = _ALL
    shared = (node_p > 0) & (node_p < 1) & (d > 0)
    logq = np.log1p(-node_p[shared])
    node_f[shared, 0] = np.exp(logq * d[shared])
    few = d[shared] * node_p[shared] <= BINOMIAL_MAX_MEAN
    p = node_p[shared]
    node_f[shared, 1] = np.where(few, p / (1.0 - p), 1.0 / logq)
    kind[shared] = np.where(few, _BINOMIAL, _GEOMETRIC)
    kind[(node_p == 0) | (d == 0)] = _NONE
    return kind, node_f


@dataclass(frozen=True)
class RRSampler:
    """Everything a worker needs to generate chunks of RR sets (picklable for Dask).

    ``kind[v]`` says how v's in-edges are sampled and ``node_f[v]`` holds its
    two constants (see :func:`_rr_batch`); ``in_p`` holds a probability per
    in-edge where a node's differ (empty when none do).
    """

    in_indptr: np.ndarray
    in_indices: np.ndarray
    in_p: np.ndarray
    kind: np.ndarray
    node_f: np.ndarray
    roots: np.ndarray
    n: int
    seed: np.uint64
    chunk: int = CHUNK

    @classmethod
    def build(
        cls,
        graph: Graph,
        probs: EdgeProbabilities,
        *,
        model: str = "ic",
        roots: np.ndarray | None = None,
        seed: int | None = 0,
        chunk: int = CHUNK,
    ) -> RRSampler:
        kind, node_f = sampling_plan(graph, probs, model)
        in_p = probs.in_p if not probs.uniform_per_node else np.empty(0, dtype=np.float32)
        return cls(
            graph.in_indptr,
            graph.in_indices,
            in_p,
            kind,
            node_f,
            np.empty(0, dtype=np.int32) if roots is None else np.asarray(roots, dtype=np.int32),
            graph.n,
            seed_u64(seed),
            chunk,
        )

    def batch(self, first: int, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """RR sets of chunks ``first .. first+count-1``: (nodes, offsets, counts)."""
        return _rr_batch(
            self.in_indptr, self.in_indices, self.in_p, self.kind, self.node_f, self.roots,
            self.n, self.seed, self.chunk, first, count, self.n <= 2 * self.chunk * count,
        )  # fmt: skip


def _run_batch(
    sampler: RRSampler, first: int, count: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return sampler.batch(first, count)


@njit(cache=True, nogil=True)
def _count_nodes(nodes, counts):
    for v in nodes:
        counts[v] += 1


class RRSets:
    """A growing collection of RR sets, kept as the parts the samplers returned.

    Part ``p`` holds sets ``first[p] ..`` as ``nodes[offsets[i]:offsets[i+1]]``;
    nothing is copied or re-concatenated as IMM's phases extend the
    collection.  ``counts[v]``, the number of sets holding v, is the sum of
    the parts' counts (a sampler counts while it samples where the graph has fewer
    nodes than it draws sets, twice over; the collection counts the others' sets).
    """

    def __init__(self, sampler: RRSampler, executor: Executor | None = None) -> None:
        self.sampler = sampler
        self.executor: Executor = executor or LocalExecutor()
        self.parts: list[tuple[np.ndarray, np.ndarray]] = []
        self.first: list[int] = []
        self._count = 0
        self.counts = np.zeros(sampler.n, dtype=np.int64)
        self.chunks = 0
        self._coverage: _CoverageIndex | None = None

    @property
    def count(self) -> int:
        return self._count

    @property
    def offsets(self) -> np.ndarray:
        """All sets' offsets into :attr:`nodes` (a copy, for inspection)."""
        out = np.zeros(self._count + 1, dtype=np.int64)
        base = 0
        for (nodes, offsets), first in zip(self.parts, self.first, strict=True):
            out[first + 1 : first + offsets.shape[0]] = offsets[1:] + base
            base += nodes.shape[0]
        return out

    @property
    def nodes(self) -> np.ndarray:
        """All sets' nodes, set after set (a copy, for inspection)."""
        return np.concatenate([p[0] for p in self.parts] or [np.empty(0, dtype=np.int32)])

    def extend_to(self, n_sets: int, progress: Callable[[int], None] | None = None) -> None:
        """Generate chunks until there are at least ``n_sets`` RR sets."""
        need = -(-int(n_sets) // self.sampler.chunk) - self.chunks
        if need <= 0:
            return
        step = self.sampler.chunk

        def tick(chunks: int) -> None:
            if progress is not None:
                progress(chunks * step)

        parts = self.executor.map_chunks(_run_batch, self.sampler, self.chunks, need, tick)
        for nodes, offsets, counts in parts:
            self.parts.append((nodes, offsets))
            self.first.append(self._count)
            if counts.shape[0]:
                self.counts += counts
            else:
                _count_nodes(nodes, self.counts)
            self._count += int(offsets.shape[0]) - 1
        self.chunks += need


@njit(cache=True, nogil=True)
def _index_part(nodes, offsets, first_set, slot, pos, inv):
    """Write to ``inv`` the ids of one part's sets holding each tracked node
    (``slot[v] >= 0``): slot t's next id goes to ``inv[pos[t]]``, and ``pos[t]`` moves on.

    One sequential pass over the part's nodes; the set id is advanced only at a tracked
    entry (a loop per set would mispredict its exit once per set).
    """
    r = 0
    for j in range(nodes.shape[0]):
        sv = slot[_ix(nodes[j])]
        if sv >= 0:
            while offsets[r + 1] <= j:
                r += 1
            inv[pos[sv]] = first_set + r
            pos[sv] += 1


@njit(cache=True, nogil=True)
def _lazy_greedy(counts, tracked, eligible, threshold, ptrs, inv, n_sets, k):
    """Lazy greedy over the tracked nodes (see :func:`max_coverage`).

    ``ptrs[b, t]..ptrs[b, t+1]`` are tracked node t's set ids in block b.  Returns
    (seeds, gains, chosen): ``chosen < k`` means the best tracked gain fell below
    ``threshold`` (a node outside the index might tie or win) and more nodes must be
    tracked.
    """
    n_tracked = tracked.shape[0]
    n_blocks = ptrs.shape[0]
    covered = np.zeros(n_sets, dtype=np.bool_)
    bound = np.empty(n_tracked, dtype=np.int64)
    fresh = np.full(n_tracked, -1, dtype=np.int64)
    for t in range(n_tracked):
        bound[t] = counts[tracked[t]] if eligible[tracked[t]] else -1
    seeds = np.empty(k, dtype=np.int64)
    gains = np.empty(k, dtype=np.int64)
    i = 0
    while i < k:
        best = -1
        bt = -1
        for t in range(n_tracked):
            if bound[t] > best:  # strict: ties go to the lowest index (tracked is sorted)
                best = bound[t]
                bt = t
        if bt < 0:
            break
        if fresh[bt] != i:
            # a stale bound on top: recount that node's uncovered sets and look again
            g = 0
            for b in range(n_blocks):
                for j in range(ptrs[b, bt], ptrs[b, bt + 1]):
                    if not covered[inv[j]]:
                        g += 1
            bound[bt] = g
            fresh[bt] = i
            continue
        if best < threshold:
            break
        seeds[i] = tracked[bt]
        gains[i] = best
        for b in range(n_blocks):
            for j in range(ptrs[b, bt], ptrs[b, bt + 1]):
                covered[inv[j]] = True
        bound[bt] = -1
        i += 1
    return seeds, gains, i


class _CoverageIndex:
    """Node → set index of the nodes that can become seeds, kept across IMM's phases.

    Only the ``tracked`` nodes (the eligible nodes in the most sets) are indexed; parts
    added since the last call are indexed as a new block, so each set is scanned once
    over all of IMM's greedy calls instead of once per call.
    """

    def __init__(self, rr: RRSets, allowed: np.ndarray, want: int) -> None:
        self.allowed = allowed
        n = rr.sampler.n
        self.eligible = allowed.copy() if allowed.shape[0] else np.ones(n, dtype=np.bool_)
        counts = np.where(self.eligible, rr.counts, -1)
        want = min(want, int(self.eligible.sum()))
        # the `want` eligible nodes in the most sets (ties: lower index), sorted by index
        top = np.argsort(-counts, kind="stable")[:want]
        self.tracked = np.sort(top).astype(np.int64)
        self.slot = np.full(n, -1, dtype=np.int32)
        self.slot[self.tracked] = np.arange(self.tracked.shape[0])
        self.want = want
        self.ptrs: list[np.ndarray] = []
        self.inv = np.empty(0, dtype=np.int32)
        self.used = 0
        self.indexed_parts = 0
        self.indexed_counts = np.zeros(self.tracked.shape[0], dtype=np.int64)

    def update(self, rr: RRSets) -> None:
        """Index the parts added since the last call, as one block."""
        if self.indexed_parts == len(rr.parts):
            return
        now = rr.counts[self.tracked]
        sizes = now - self.indexed_counts
        ptr = np.empty(sizes.shape[0] + 1, dtype=np.int64)
        ptr[0] = self.used
        np.cumsum(sizes, out=ptr[1:])
        ptr[1:] += self.used
        if ptr[-1] > self.inv.shape[0]:
            inv = np.empty(max(int(ptr[-1]), 2 * self.inv.shape[0]), dtype=np.int32)
            inv[: self.used] = self.inv[: self.used]
            self.inv = inv
        pos = ptr[:-1].copy()
        for i in range(self.indexed_parts, len(rr.parts)):
            _index_part(*rr.parts[i], rr.first[i], self.slot, pos, self.inv)
        self.ptrs.append(ptr)
        self.used = int(ptr[-1])
        self.indexed_parts = len(rr.parts)
        self.indexed_counts = now

    def threshold(self, rr: RRSets) -> int:
        """1 + the most sets an eligible untracked node is in (0 if there is none)."""
        mask = self.eligible.copy()
        mask[self.tracked] = False
        return int(rr.counts[mask].max()) + 1 if mask.any() else 0


def coverage_bound(rr: RRSets, k: int, allowed: np.ndarray | None = None) -> int:
    """An upper bound on the sets any ``k`` allowed nodes cover: their k largest counts
    summed (no overlap). O(n); IMM's sampling phase uses it to skip greedy runs that
    cannot reach their threshold."""
    counts = rr.counts if allowed is None else rr.counts[np.asarray(allowed, dtype=np.bool_)]
    k = min(int(k), counts.shape[0])
    if k <= 0:
        return 0
    return int(np.partition(counts, counts.shape[0] - k)[counts.shape[0] - k :].sum())


def max_coverage(
    rr: RRSets, k: int, allowed: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy maximum coverage of RR sets: ``k`` nodes and the number of sets each newly covers.

    The greedy choice is a (1 − 1/e)-approximation of the best k-set coverage
    (Nemhauser, Wolsey & Fisher, "An analysis of approximations for maximizing
    submodular set functions", Math. Programming 1978).  Ties go to the lowest
    index, so the result is deterministic.  ``allowed`` (bool per node) limits
    the candidates.

    Only nodes that can still win need to know their sets: the node → set
    index covers the ≈ 8k + 64 eligible nodes in the most sets.  An untracked
    node's gain is at most its number of sets, so while the best tracked gain
    exceeds the largest such count it is the greedy choice; otherwise (rare)
    twice as many nodes are tracked.  The index is kept on ``rr`` and extended
    with only the sets added since the last call, so IMM's doubling phases scan
    each set once.  Gains are evaluated lazily (Leskovec et al., "Cost-effective
    outbreak detection in networks", KDD 2007, CELF): a gain only falls, so its
    last value bounds it and only the node with the largest bound is recounted;
    choosing a seed just flags its sets as covered.  The choice is exactly the
    eager greedy's, ties included.

    Time O(new Σ|R| + n + Σ recounted lists) per call (plus a full rescan
    when the tracked set grows); extra memory O(n + θ/8 + the tracked nodes'
    sets).
    """
    mask = np.empty(0, dtype=np.bool_) if allowed is None else np.asarray(allowed, dtype=np.bool_)
    k = int(k)
    available = rr.sampler.n if allowed is None else int(mask.sum())
    if not 0 <= k <= available:
        raise ValueError(f"k = {k}: between 0 and the {available} nodes that may be chosen")
    index = rr._coverage
    # 8k + 64: with 4k + 64, NetHEPT (k = 50) outgrew the index at IMM's third phase, and
    # the rebuild re-read every set (~5 ms of ~65)
    if (
        index is None
        or index.want < min(8 * k + 64, available)
        or index.allowed.shape != mask.shape
        or not np.array_equal(index.allowed, mask)
    ):
        index = rr._coverage = _CoverageIndex(rr, mask, 8 * k + 64)
    while True:
        index.update(rr)
        ptrs = np.stack(index.ptrs)
        seeds, gains, chosen = _lazy_greedy(
            rr.counts, index.tracked, index.eligible, index.threshold(rr), ptrs, index.inv,
            rr.count, k,
        )  # fmt: skip
        if chosen == k:
            return seeds, gains
        # rare: the greedy reached nodes outside the index; track twice as many
        index = rr._coverage = _CoverageIndex(rr, mask, 2 * index.want)


def sample_rr_sets(
    graph: Graph,
    count: int,
    *,
    model: str = "ic",
    probability: str | EdgeProbabilities = "wc",
    seed: int | None = 0,
    roots: np.ndarray | None = None,
    executor: Executor | None = None,
    progress: Callable[[int], None] | None = None,
) -> RRSets:
    """Sample at least ``count`` RR sets (rounded up to whole chunks of 256).

    Model: IC or LT with the given edge probabilities; roots uniform over all
    nodes, or over ``roots`` (dense indices) for targeted spread.  Papers:
    Borgs et al. SODA 2014 (RR sets); Guo et al. SIGMOD 2020 (geometric
    skipping).  Complexity: O(Σ over sets of the live in-edges explored).

    >>> g = Graph.from_edges([0, 1], [1, 2])
    >>> rr = sample_rr_sets(g, 1000, probability="uniform:1")
    >>> rr.count, int(rr.offsets[-1]) > 0
    (1024, True)
    """
    probs = (
        probability
        if isinstance(probability, EdgeProbabilities)
        else edge_probabilities(graph, probability, model)
    )
    sampler = RRSampler.build(graph, probs, model=model, roots=roots, seed=seed)
    rr = RRSets(sampler, executor)
    rr.extend_to(count, progress)
    return rr


def expected_reach(
    graph: Graph,
    rr_sets: int = 100_000,
    *,
    model: str = "ic",
    probability: str | EdgeProbabilities = "wc",
    seed: int | None = 0,
    executor: Executor | None = None,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Each node's expected influence spread σ({v}), estimated from RR sets.

    σ({v}) = n · Pr[v ∈ R] (Borgs et al., SODA 2014), so one pass of
    ``rr_sets`` samples estimates every node at once; the standard error of a
    node's estimate is n·√(q(1 − q)/θ) with q = σ({v})/n.  The estimate
    counts v itself.  O(Σ|R|).

    >>> g = Graph.from_edges([0, 0], [1, 2])
    >>> expected_reach(g, 2000, probability="uniform:1").round(1).tolist()
    [3.0, 1.0, 1.0]
    """
    rr = sample_rr_sets(
        graph, rr_sets, model=model, probability=probability, seed=seed,
        executor=executor, progress=progress,
    )  # fmt: skip
    return rr.counts * (graph.n / rr.count)
