"""Reverse-reachable (RR) sets: sampling, greedy max coverage, expected reach.

An RR set for a root v is the set of nodes that reach v in a random live-edge
world (IC: each edge live with its probability; LT: each node keeps at most one
in-edge, chosen with probability equal to its weight).  For any seed set S,
σ(S) = n · Pr[S ∩ R ≠ ∅] (Borgs, Brautbar, Chayes & Lucier, "Maximizing social
influence in nearly optimal time", SODA 2014).

Sampling cost is what IMM spends its time on; two things make it fast here:

* **Geometric skipping** (Guo, Wang, Wei & Chen, "Influence maximization
  revisited: efficient reverse reachable set generation with bound tightened",
  SIGMOD 2020, SUBSIM): when all in-edges of v share one probability p
  (weighted cascade, uniform p, NetHEPT's file), the live in-edges are found by
  jumping ⌊log U / log(1 − p)⌋ edges at a time: O(1 + live edges) work per node
  instead of O(in-degree).  Nodes with differing probabilities flip one coin
  per edge.
  Before the first jump, one comparison of the uniform with (1 − p)^d (the
  chance that no in-edge is live) settles the commonest case without a
  logarithm; rows with p = 1 take every edge without a draw.
* Chunked, counter-based random streams (one per 256 RR sets) so batches run
  on threads or Dask workers and still give the same sets for the same seed.

Sets are stored flat (int32 nodes, int64 offsets) in buffers that grow by
doubling, with the number of sets holding each node kept up to date; greedy
max coverage indexes only the nodes that can become seeds (see
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

__all__ = ["RRSampler", "RRSets", "expected_reach", "max_coverage", "sample_rr_sets"]

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


@njit(cache=True, nogil=True)
def _rr_batch(
    in_indptr, in_indices, in_p, node_p, node_qd, node_ilq, lt, roots, n, seed, chunk, first,
    count,
):  # fmt: skip
    """RR sets of chunks ``first .. first+count-1`` as (nodes, offsets).

    The SplitMix64 state is a local scalar (kept in a register; the one-element
    array of :mod:`_rng` is reloaded after every store to ``nodes``), and the
    draws are the same as with :func:`next_float`, so the sets do not depend on
    these shortcuts: a root without in-edges is a singleton with no draw; a
    node whose in-edges all have p = 1 takes them all with no draw; under IC
    with one shared p < 1 the first uniform U is compared with q^d = (1 − p)^d,
    the chance that no in-edge is live, before paying for a logarithm
    (1 − U ≤ q^d ⇔ the first geometric jump overshoots the row).

    Every index is cast to unsigned (``_ix``): numba then leaves out the negative-index
    wraparound it adds to each signed access (a shift, a mask and a register each),
    about 8 % of this kernel's time on NetHEPT.
    """
    n_sets = chunk * count
    offsets = np.empty(n_sets + 1, dtype=np.int64)
    offsets[0] = 0
    nodes = np.empty(max(1024, n_sets * 3), dtype=np.int32)
    mark = np.zeros(n, dtype=np.int32)
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
            total += 1
            k += 1
            if in_indptr[_ix(root + 1)] == in_indptr[_ix(root)]:
                offsets[_ix(k)] = total
                continue
            stamp += 1
            mark[_ix(root)] = stamp
            head = total - 1
            while head < total:
                v = nodes[_ix(head)]
                head += 1
                s = in_indptr[_ix(v)]
                e = in_indptr[_ix(v + 1)]
                if s == e:
                    continue
                pv = node_p[_ix(v)]
                if lt:
                    st += _GOLDEN
                    x = float(mix64(st) >> _S11) * _INV53
                    u = -1
                    if pv >= 0.0:
                        if pv > 0.0:
                            idx = int(x / pv)
                            if idx < e - s:
                                u = in_indices[_ix(s + idx)]
                    else:
                        acc = 0.0
                        for j in range(s, e):
                            acc += in_p[_ix(j)]
                            if x < acc:
                                u = in_indices[_ix(j)]
                                break
                    if u >= 0 and mark[_ix(u)] != stamp:
                        mark[_ix(u)] = stamp
                        nodes[_ix(total)] = u
                        total += 1
                elif pv >= 1.0:
                    for j in range(s, e):
                        u = in_indices[_ix(j)]
                        if mark[_ix(u)] != stamp:
                            mark[_ix(u)] = stamp
                            nodes[_ix(total)] = u
                            total += 1
                elif pv > 0.0:
                    st += _GOLDEN
                    x = float(mix64(st) >> _S11) * _INV53
                    if 1.0 - x <= node_qd[_ix(v)]:
                        continue
                    ilq = node_ilq[_ix(v)]
                    j = s - 1
                    while True:
                        # geometric jump ⌊log(1 − U) / log(1 − p)⌋ to the next live in-edge
                        gap = math.log(1.0 - x) * ilq
                        if gap >= e - j - 1:
                            break
                        j += 1 + int(gap)
                        u = in_indices[_ix(j)]
                        if mark[_ix(u)] != stamp:
                            mark[_ix(u)] = stamp
                            nodes[_ix(total)] = u
                            total += 1
                        st += _GOLDEN
                        x = float(mix64(st) >> _S11) * _INV53
                elif pv < 0.0:
                    for j in range(s, e):
                        st += _GOLDEN
                        if float(mix64(st) >> _S11) * _INV53 < in_p[_ix(j)]:
                            u = in_indices[_ix(j)]
                            if mark[_ix(u)] != stamp:
                                mark[_ix(u)] = stamp
                                nodes[_ix(total)] = u
                                total += 1
            offsets[_ix(k)] = total
    if nodes.shape[0] > 2 * total + 4096:
        return nodes[:total].copy(), offsets  # do not keep a mostly empty buffer alive
    # a view, not a copy: the caller copies it into the collection's buffer
    return nodes[:total], offsets


@dataclass(frozen=True)
class RRSampler:
    """Everything a worker needs to generate chunks of RR sets (picklable for Dask).

    ``node_p[v]`` is the probability shared by v's in-edges (−1 when they
    differ: then ``in_p`` holds one per edge), ``node_qd[v]`` = (1 − p)^d(v)
    the chance that none is live, ``node_ilq[v]`` = 1 / log(1 − p).
    """

    in_indptr: np.ndarray
    in_indices: np.ndarray
    in_p: np.ndarray
    node_p: np.ndarray
    node_qd: np.ndarray
    node_ilq: np.ndarray
    lt: bool
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
        node_p = np.asarray(probs.node_p, dtype=np.float64)
        geometric = (node_p > 0) & (node_p < 1)
        logq = np.zeros(graph.n)
        logq[geometric] = np.log1p(-node_p[geometric])
        ilq = np.zeros(graph.n)
        ilq[geometric] = 1.0 / logq[geometric]
        qd = np.where(geometric, np.exp(logq * graph.in_degree), 1.0)
        in_p = probs.in_p if not probs.uniform_per_node else np.empty(0, dtype=np.float32)
        return cls(
            graph.in_indptr,
            graph.in_indices,
            in_p,
            node_p,
            qd,
            ilq,
            model == "lt",
            np.empty(0, dtype=np.int32) if roots is None else np.asarray(roots, dtype=np.int32),
            graph.n,
            seed_u64(seed),
            chunk,
        )

    def batch(self, first: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        """RR sets of chunks ``first .. first+count-1``: (nodes, offsets)."""
        return _rr_batch(
            self.in_indptr, self.in_indices, self.in_p, self.node_p, self.node_qd,
            self.node_ilq, self.lt, self.roots, self.n, self.seed, self.chunk, first, count,
        )  # fmt: skip


def _run_batch(sampler: RRSampler, first: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    return sampler.batch(first, count)


@njit(cache=True, nogil=True)
def _append(buf, offsets, base_set, base_node, part_nodes, part_off, counts):
    """Copy one batch into the collection's buffers and add its node counts."""
    m = part_nodes.shape[0]
    for i in range(m):
        v = part_nodes[i]
        buf[base_node + i] = v
        counts[v] += 1
    for i in range(1, part_off.shape[0]):
        offsets[base_set + i] = part_off[i] + base_node


class RRSets:
    """A growing collection of RR sets, stored flat: ``nodes[offsets[i]:offsets[i+1]]``.

    The buffers grow by doubling (amortised O(1) per node, no re-concatenation
    as IMM's phases extend the collection), and ``counts[v]`` — the number of
    sets holding v — is kept up to date for :func:`max_coverage`.
    """

    def __init__(self, sampler: RRSampler, executor: Executor | None = None) -> None:
        self.sampler = sampler
        self.executor: Executor = executor or LocalExecutor()
        self._nodes = np.empty(0, dtype=np.int32)
        self._offsets = np.zeros(1, dtype=np.int64)
        self._count = 0
        self.counts = np.zeros(sampler.n, dtype=np.int64)
        self.chunks = 0
        self._coverage: _CoverageIndex | None = None

    @property
    def count(self) -> int:
        return self._count

    @property
    def offsets(self) -> np.ndarray:
        return self._offsets[: self._count + 1]

    @property
    def nodes(self) -> np.ndarray:
        return self._nodes[: int(self._offsets[self._count])]

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
        used = int(self._offsets[self._count])
        new_nodes = sum(int(p[0].shape[0]) for p in parts)
        new_sets = sum(int(p[1].shape[0]) - 1 for p in parts)
        if used + new_nodes > self._nodes.shape[0]:
            buf = np.empty(max(used + new_nodes, 2 * self._nodes.shape[0]), dtype=np.int32)
            buf[:used] = self._nodes[:used]
            self._nodes = buf
        if self._count + new_sets + 1 > self._offsets.shape[0]:
            size = max(self._count + new_sets + 1, 2 * self._offsets.shape[0])
            off = np.empty(size, dtype=np.int64)
            off[: self._count + 1] = self._offsets[: self._count + 1]
            self._offsets = off
        for p_nodes, p_off in parts:
            _append(self._nodes, self._offsets, self._count, used, p_nodes, p_off, self.counts)
            used += int(p_nodes.shape[0])
            self._count += int(p_off.shape[0]) - 1
        self.chunks += need


@njit(cache=True, nogil=True)
def _index_block(nodes, offsets, r0, r1, slot, sizes, inv, base):
    """Append to ``inv`` (from ``base``) the ids of sets r0..r1−1 holding each tracked node
    (``slot[v] >= 0``), grouped by slot; ``sizes[t]`` is how many there are for slot t.

    One sequential pass over the sets' nodes; the set id is advanced only at a tracked
    entry (a loop per set would mispredict its exit once per set).  Returns the block's
    row pointers (absolute positions in ``inv``).
    """
    t_count = sizes.shape[0]
    ptr = np.empty(t_count + 1, dtype=np.int64)
    ptr[0] = base
    for t in range(t_count):
        ptr[t + 1] = ptr[t] + sizes[t]
    pos = ptr[:-1].copy()
    r = r0
    for j in range(offsets[r0], offsets[r1]):
        sv = slot[nodes[j]]
        if sv >= 0:
            while offsets[r + 1] <= j:
                r += 1
            inv[pos[sv]] = r
            pos[sv] += 1
    return ptr


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

    Only the ``tracked`` nodes (the eligible nodes in the most sets) are indexed; sets
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
        self.slot = np.full(n, -1, dtype=np.int64)
        self.slot[self.tracked] = np.arange(self.tracked.shape[0])
        self.want = want
        self.ptrs: list[np.ndarray] = []
        self.inv = np.empty(0, dtype=np.int32)
        self.indexed_sets = 0
        self.indexed_counts = np.zeros(self.tracked.shape[0], dtype=np.int64)

    def update(self, rr: RRSets) -> None:
        """Index the sets added since the last call."""
        if rr.count == self.indexed_sets:
            return
        now = rr.counts[self.tracked]
        sizes = now - self.indexed_counts
        base = int(sum(int(p[-1] - p[0]) for p in self.ptrs))
        need = base + int(sizes.sum())
        if need > self.inv.shape[0]:
            inv = np.empty(max(need, 2 * self.inv.shape[0]), dtype=np.int32)
            inv[:base] = self.inv[:base]
            self.inv = inv
        ptr = _index_block(
            rr.nodes, rr.offsets, self.indexed_sets, rr.count, self.slot, sizes, self.inv, base
        )
        self.ptrs.append(ptr)
        self.indexed_sets = rr.count
        self.indexed_counts = now

    def threshold(self, rr: RRSets) -> int:
        """1 + the most sets an eligible untracked node is in (0 if there is none)."""
        mask = self.eligible.copy()
        mask[self.tracked] = False
        return int(rr.counts[mask].max()) + 1 if mask.any() else 0


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
    index covers the ≈ 4k + 64 eligible nodes in the most sets.  An untracked
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
    if (
        index is None
        or index.want < min(4 * k + 64, available)
        or index.allowed.shape != mask.shape
        or not np.array_equal(index.allowed, mask)
    ):
        index = rr._coverage = _CoverageIndex(rr, mask, 4 * k + 64)
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
