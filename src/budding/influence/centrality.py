"""Opinion-leader measures on CSR arrays: degree, PageRank, coreness, betweenness.

All kernels are numba-compiled (``cache=True``); betweenness runs in parallel over
``numba.get_num_threads()`` threads, PageRank too from ``PARALLEL_MIN_EDGES`` edges.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import numba
import numpy as np
from numba import njit, prange

from budding.influence._rng import seed_u64
from budding.influence.graph import Graph, segment_sums

__all__ = ["betweenness", "coreness", "degree", "pagerank"]

# Below this many edges PageRank runs on one thread: a matrix-vector product is then
# ~1 ms, and on a busy 2-core machine each parallel region can wait a whole scheduler
# time slice (~5 ms) for a descheduled thread.
PARALLEL_MIN_EDGES = 4_000_000


def degree(graph: Graph, mode: str = "out") -> np.ndarray:
    """In-, out- or total degree (int64) of every node: O(n).

    ``mode`` is ``"in"``, ``"out"`` or ``"all"`` (in + out).  Out-degree is the
    audience a member reaches directly ("followers" in a follow graph loaded
    with ``reverse=True``).

    >>> g = Graph.from_edges([0, 0, 1], [1, 2, 2])
    >>> degree(g, "out").tolist(), degree(g, "in").tolist()
    ([2, 1, 0], [0, 1, 2])
    """
    if mode == "out":
        return graph.out_degree
    if mode == "in":
        return graph.in_degree
    if mode == "all":
        return graph.out_degree + graph.in_degree
    raise ValueError(f"mode '{mode}': use in, out or all")


# Vector kernels: written once with prange, compiled serial (graphs under
# PARALLEL_MIN_EDGES) and parallel.  Reductions may be reassociated (fastmath
# "reassoc") so they vectorise instead of waiting on one add chain per element;
# the results stay deterministic for a given input.
_FAST = {"reassoc", "contract", "nsz"}


def _update_p_py(p, r, v, beta, omega, inv_out, z):
    """p ← r + β(p − ωv); z ← p · inv_out."""
    for i in prange(p.shape[0]):
        val = r[i] + beta * (p[i] - omega * v[i])
        p[i] = val
        z[i] = val * inv_out[i]


def _gather_py(in_indptr, in_indices, in_w, alpha, y, z, out, a_vec, b_vec):
    """out ← y − α P̃ᵀ-gather(z); returns (⟨a, out⟩, ⟨out, out⟩, ⟨out, b⟩).

    ``in_w`` is None for unweighted graphs: numba compiles that case without
    the weight loads.  Two accumulators per row break the add chain; the
    per-edge sum is not reassociated (gathers do not vectorise profitably).
    """
    n = y.shape[0]
    d_a = 0.0
    d_oo = 0.0
    d_ob = 0.0
    for v in prange(n):
        a = 0.0
        b = 0.0
        e = in_indptr[v]
        end = in_indptr[v + 1]
        if in_w is None:
            while e + 2 <= end:
                a += z[in_indices[e]]
                b += z[in_indices[e + 1]]
                e += 2
            if e < end:
                a += z[in_indices[e]]
        else:
            while e + 2 <= end:
                a += z[in_indices[e]] * in_w[e]
                b += z[in_indices[e + 1]] * in_w[e + 1]
                e += 2
            if e < end:
                a += z[in_indices[e]] * in_w[e]
        o = y[v] - alpha * (a + b)
        out[v] = o
        d_a += a_vec[v] * o
        d_oo += o * o
        d_ob += o * b_vec[v]
    return d_a, d_oo, d_ob


def _update_s_py(s, r, alpha_k, v, inv_out, z):
    """s ← r − α_k v; z ← s · inv_out; returns ‖s‖₁."""
    l1s = 0.0
    for i in prange(s.shape[0]):
        val = r[i] - alpha_k * v[i]
        s[i] = val
        z[i] = val * inv_out[i]
        l1s += abs(val)
    return l1s


def _update_xr_py(x, r, s, t, p, alpha_k, omega, r_hat):
    """x ← x + α_k p + ω s; r ← s − ω t; returns (‖r‖₁, ‖x‖₁, ⟨r̂, r⟩)."""
    l1r = 0.0
    l1x = 0.0
    rho = 0.0
    for i in prange(x.shape[0]):
        xi = x[i] + alpha_k * p[i] + omega * s[i]
        x[i] = xi
        ri = s[i] - omega * t[i]
        r[i] = ri
        l1r += abs(ri)
        l1x += abs(xi)
        rho += r_hat[i] * ri
    return l1r, l1x, rho


def _axpy_py(x, a, y):
    """x ← x + a·y."""
    for i in prange(x.shape[0]):
        x[i] += a * y[i]


def _scale_py(y, inv_out, z):
    for i in prange(y.shape[0]):
        z[i] = y[i] * inv_out[i]


def _residual_py(pers, ax, r, x):
    """r ← pers − ax; returns (‖r‖₁, ‖x‖₁)."""
    l1r = 0.0
    l1x = 0.0
    for i in prange(r.shape[0]):
        ri = pers[i] - ax[i]
        r[i] = ri
        l1r += abs(ri)
        l1x += abs(x[i])
    return l1r, l1x


def _rho_py(a, b):
    d = 0.0
    for i in prange(a.shape[0]):
        d += a[i] * b[i]
    return d


class _Kernels:
    """The BiCGSTAB kernels compiled one way: serial, or parallel over nodes."""

    def __init__(self, parallel: bool) -> None:
        def jit(fn: Callable[..., Any], fast: bool = True) -> Any:
            if parallel:
                # a copy under another name: numba's on-disk cache is keyed by the
                # function's name and signature, not by the parallel/fastmath flags, so
                # the two builds of one function would load each other's machine code
                name = fn.__name__ + "_parallel"
                fn = types.FunctionType(fn.__code__, fn.__globals__, name, fn.__defaults__)
                fn.__qualname__ = name
            return njit(parallel=parallel, cache=True, fastmath=_FAST if fast else False)(fn)

        self.update_p = jit(_update_p_py)
        self.gather = jit(_gather_py, fast=False)
        self.update_s = jit(_update_s_py)
        self.update_xr = jit(_update_xr_py)
        self.axpy = jit(_axpy_py)
        self.scale = jit(_scale_py)
        self.residual = jit(_residual_py)
        self.rho = jit(_rho_py)


_SERIAL = _Kernels(parallel=False)
_PARALLEL = _Kernels(parallel=True)


@njit(cache=True)
def _by_in_degree(in_indptr, in_indices, in_w):
    """Relabel nodes in order of in-degree (counting sort, stable): the pull CSR,
    with row ``i`` = node ``order[i]`` and tails renumbered.

    Rows of equal length then follow each other, so the branch ending each row's
    loop is predicted (one misprediction per row otherwise: ~40 % of the time on
    a social graph with ~10 in-edges per node), and the hubs' scores, read most
    often, share cache lines.  O(n + m).
    """
    n = in_indptr.shape[0] - 1
    maxd = 0
    for v in range(n):
        maxd = max(maxd, in_indptr[v + 1] - in_indptr[v])
    start = np.zeros(maxd + 2, dtype=np.int64)
    for v in range(n):
        start[in_indptr[v + 1] - in_indptr[v] + 1] += 1
    for d in range(maxd + 1):
        start[d + 1] += start[d]
    order = np.empty(n, dtype=np.int64)
    rank = np.empty(n, dtype=in_indices.dtype)
    for v in range(n):
        d = in_indptr[v + 1] - in_indptr[v]
        order[start[d]] = v
        rank[v] = start[d]
        start[d] += 1
    indptr = np.empty(n + 1, dtype=np.int64)
    indices = np.empty(in_indices.shape[0], dtype=in_indices.dtype)
    has_w = in_w is not None
    weights = np.empty(in_indices.shape[0] if has_w else 0, dtype=np.float32)
    indptr[0] = 0
    k = 0
    for i in range(n):
        v = order[i]
        for e in range(in_indptr[v], in_indptr[v + 1]):
            indices[k] = rank[in_indices[e]]
            if has_w:
                weights[k] = in_w[e]
            k += 1
        indptr[i + 1] = k
    return order, indptr, indices, weights


def _bicgstab(
    kern: _Kernels,
    in_indptr: np.ndarray,
    in_indices: np.ndarray,
    in_w: np.ndarray | None,
    inv_out: np.ndarray,
    pers: np.ndarray,
    alpha: float,
    tol: float,
    max_iter: int,
) -> tuple[np.ndarray, int]:
    """Solve (I − α P̃ᵀ) y = pers by BiCGSTAB, finish (or fall back) with Jacobi sweeps.

    Stops when ‖pers − (I − α P̃ᵀ) y‖₁ ≤ tol·(1 − α)·‖y‖₁/2, which bounds the L1 error
    of y/‖y‖₁ by tol: ‖y − y*‖₁ ≤ ‖r‖₁/(1 − α) as ‖(I − α P̃ᵀ)⁻¹‖₁ ≤ 1/(1 − α), and
    ‖y/‖y‖₁ − y*/‖y*‖₁‖₁ ≤ 2‖y − y*‖₁/‖y‖₁.  Vector updates and reductions are fused
    into the matrix-vector loops: five passes over the vectors per iteration.
    Returns the (unnormalised, clipped) y and the number of matrix-vector products.
    """
    n = pers.shape[0]
    scale = tol * (1.0 - alpha) / 2.0
    x = pers.copy()
    z = np.empty(n)
    ax = np.empty(n)
    r = np.empty(n)
    kern.scale(x, inv_out, z)
    kern.gather(in_indptr, in_indices, in_w, alpha, x, z, ax, pers, pers)
    l1r, l1x = kern.residual(pers, ax, r, x)
    r_hat = r.copy()
    p = np.zeros(n)
    v = np.zeros(n)
    s = np.empty(n)
    t = np.empty(n)
    rho = kern.rho(r_hat, r)
    rho_old = alpha_k = omega = 1.0
    matvecs = 1
    converged = l1r <= scale * l1x
    while not converged and matvecs < max_iter:
        if rho == 0.0 or omega == 0.0:
            break
        beta = (rho / rho_old) * (alpha_k / omega)
        kern.update_p(p, r, v, beta, omega, inv_out, z)
        denom, _, _ = kern.gather(in_indptr, in_indices, in_w, alpha, p, z, v, r_hat, v)
        matvecs += 1
        if denom == 0.0:
            break
        alpha_k = rho / denom
        l1s = kern.update_s(s, r, alpha_k, v, inv_out, z)
        if l1s <= scale * l1x:  # x has not changed since l1x was taken
            kern.axpy(x, alpha_k, p)
            break
        _, tt, ts = kern.gather(in_indptr, in_indices, in_w, alpha, s, z, t, r_hat, s)
        matvecs += 1
        omega = ts / tt if tt > 0.0 else 0.0
        rho_old = rho
        l1r, l1x, rho = kern.update_xr(x, r, s, t, p, alpha_k, omega, r_hat)
        converged = l1r <= scale * l1x
    # verify on the true residual; Jacobi sweeps y ← pers + α P̃ᵀ y fix any drift
    while matvecs < 10 * max_iter:
        kern.scale(x, inv_out, z)
        kern.gather(in_indptr, in_indices, in_w, alpha, x, z, ax, pers, pers)
        matvecs += 1
        l1r, l1x = kern.residual(pers, ax, r, x)
        if l1r <= scale * l1x:
            break
        kern.axpy(x, 1.0, r)
    np.maximum(x, 0.0, out=x)
    return x, matvecs


def pagerank(
    graph: Graph,
    alpha: float = 0.85,
    *,
    personalization: Mapping[Hashable, float] | np.ndarray | None = None,
    weighted: bool = False,
    tol: float = 1e-10,
    max_iter: int = 1000,
) -> np.ndarray:
    """PageRank (or personalised PageRank) of every node, as a sparse linear system.

    Model: a random surfer follows an out-edge with probability ``alpha`` and
    otherwise jumps to a node drawn from the personalisation vector (uniform by
    default); dangling nodes jump the same way.  With ``weighted=True`` edges
    are followed in proportion to their weight.  Matches
    ``networkx.pagerank`` and ``igraph.Graph.pagerank`` on the same graph.

    Paper: Page, Brin, Motwani & Winograd, "The PageRank citation ranking:
    bringing order to the web", Stanford tech. report, 1999.  Personalised
    variant: Haveliwala, "Topic-sensitive PageRank", WWW 2002.

    Method: PageRank with dangling nodes is y/‖y‖₁ where (I − α P̃ᵀ) y = v, P̃
    the transition matrix with zero rows for dangling nodes and v the
    personalisation vector (Del Corso, Gullì & Romani, "Fast PageRank
    computation via a sparse linear system", Internet Mathematics 2005); we
    solve it with BiCGSTAB (van der Vorst 1992), as Gleich, Zhukov & Berkhin
    ("Fast parallel PageRank: a linear system approach", 2004) recommend, and
    finish with Jacobi (power) sweeps if the Krylov solver stalls.

    Parameters: ``personalization`` maps node ids to non-negative weights (or
    is a length-n array); ``tol`` bounds the L1 error of the result (checked
    on the true residual: ‖r‖₁ ≤ tol·(1 − α)·‖y‖₁/2 guarantees
    ‖x − x*‖₁ ≤ tol, whatever the graph); ``max_iter`` caps Krylov
    matrix-vector products.  NetworkX's ``tol`` is different: it stops when
    one power step changes x by less than N·tol in L1, which bounds the error
    by α·N·tol/(1 − α); ``benchmarks/influence.py`` passes it tol·(1 − α)/N
    for the same guarantee and reports both errors.

    Complexity: O(n + m) set-up, then O(n + m) per matvec; about 50 matvecs
    for tol = 1e-10 on social graphs, against ≈ 140 power iterations.  Each
    matvec is pull-based over the in-CSR, no atomics; below 4M edges it runs
    on one thread over a copy relabelled by in-degree (rows of equal length
    follow each other, so the end of each row's loop is predicted: 1.3×
    faster on Slashdot), from 4M edges in parallel over nodes.

    >>> g = Graph.from_edges([0, 1, 2], [1, 2, 0])
    >>> [round(float(x), 4) for x in pagerank(g)]
    [0.3333, 0.3333, 0.3333]
    """
    n = graph.n
    if n == 0:
        return np.zeros(0)
    if not 0.0 <= alpha < 1.0:
        raise ValueError(f"alpha must be in [0, 1), got {alpha}")
    if personalization is None:
        pers = np.full(n, 1.0 / n)
    else:
        if isinstance(personalization, np.ndarray):
            pers = np.asarray(personalization, dtype=np.float64).copy()
            if pers.shape != (n,):
                raise ValueError(f"personalization must have {n} entries")
        else:
            pers = np.zeros(n)
            for node, w in personalization.items():
                pers[graph.index_of(node)] = float(w)
        if np.any(pers < 0) or pers.sum() <= 0:
            raise ValueError("personalization weights must be non-negative with a positive sum")
        pers /= pers.sum()
    x, _ = _pagerank_solve(graph, alpha, pers, weighted, tol, max_iter)
    return x


def _pagerank_solve(
    graph: Graph, alpha: float, pers: np.ndarray, weighted: bool, tol: float, max_iter: int
) -> tuple[np.ndarray, int]:
    """PageRank for a normalised personalisation vector: (scores, matrix-vector products)."""
    n = graph.n
    in_w: np.ndarray | None = None
    if weighted:
        if graph.out_weight is None or graph.in_weight is None:
            raise ValueError("weighted PageRank needs a weighted graph")
        strength = segment_sums(graph.out_weight, graph.out_indptr)
        in_w = graph.in_weight
    else:
        strength = graph.out_degree.astype(np.float64)
    inv_out = np.zeros(n)
    nz = strength > 0
    inv_out[nz] = 1.0 / strength[nz]
    if graph.m >= PARALLEL_MIN_EDGES:
        # parallel over nodes in their own order: sorted by in-degree, an equal split of
        # the rows between threads would give the last thread most of the edges
        y, matvecs = _bicgstab(
            _PARALLEL, graph.in_indptr, graph.in_indices, in_w, inv_out, pers, alpha, tol,
            max_iter,
        )  # fmt: skip
        return y / y.sum(), matvecs
    order, indptr, indices, weights = _by_in_degree(graph.in_indptr, graph.in_indices, in_w)
    y, matvecs = _bicgstab(
        _SERIAL, indptr, indices, weights if weighted else None, inv_out[order], pers[order],
        alpha, tol, max_iter,
    )  # fmt: skip
    x = np.empty(n)
    x[order] = y / y.sum()
    return x, matvecs


@njit(cache=True)
def _coreness(out_indptr, out_indices, in_indptr, in_indices, use_out, use_in):
    n = out_indptr.shape[0] - 1
    deg = np.zeros(n, dtype=np.int64)
    for v in range(n):
        if use_in:
            for e in range(in_indptr[v], in_indptr[v + 1]):
                if in_indices[e] != v:
                    deg[v] += 1
        if use_out:
            for e in range(out_indptr[v], out_indptr[v + 1]):
                if out_indices[e] != v:
                    deg[v] += 1
    md = 0
    for v in range(n):
        md = max(md, deg[v])
    bins = np.zeros(md + 1, dtype=np.int64)
    for v in range(n):
        bins[deg[v]] += 1
    start = 0
    for d in range(md + 1):
        num = bins[d]
        bins[d] = start
        start += num
    pos = np.empty(n, dtype=np.int64)
    vert = np.empty(n, dtype=np.int64)
    for v in range(n):
        pos[v] = bins[deg[v]]
        vert[pos[v]] = v
        bins[deg[v]] += 1
    for d in range(md, 0, -1):
        bins[d] = bins[d - 1]
    if md >= 0:
        bins[0] = 0
    for i in range(n):
        v = vert[i]
        for side in range(2):
            # peeling v lowers the in-degree of its successors and the out-degree of
            # its predecessors
            if side == 0:
                if not use_in:
                    continue
                lo, hi, nbrs = out_indptr[v], out_indptr[v + 1], out_indices
            else:
                if not use_out:
                    continue
                lo, hi, nbrs = in_indptr[v], in_indptr[v + 1], in_indices
            for e in range(lo, hi):
                u = nbrs[e]
                if u == v or deg[u] <= deg[v]:
                    continue
                du = deg[u]
                pu = pos[u]
                pw = bins[du]
                w = vert[pw]
                if u != w:
                    pos[u] = pw
                    vert[pu] = w
                    pos[w] = pu
                    vert[pw] = u
                bins[du] += 1
                deg[u] -= 1
    return deg


def coreness(graph: Graph, mode: str = "all") -> np.ndarray:
    """Core number (k-core index) of every node.

    The k-core is the largest subgraph in which every node has degree ≥ k;
    a node's coreness is the largest k whose core contains it.  ``mode="all"``
    counts in + out edges (as ``networkx.core_number`` and igraph's
    ``coreness(mode="all")`` do on a directed graph); ``"in"``/``"out"`` use
    one direction.  Self-loops are ignored; multi-edges count once each.
    Kitsak et al. ("Identification of influential spreaders in complex
    networks", Nature Physics 2010) found coreness a better spreader predictor
    than degree.

    Paper: Batagelj & Zaversnik, "An O(m) algorithm for cores decomposition of
    networks", 2003.  Complexity O(n + m).

    >>> g = Graph.from_edges([0, 1, 2, 2], [1, 2, 0, 3])
    >>> coreness(g).tolist()
    [2, 2, 2, 1]
    """
    if mode not in ("all", "in", "out"):
        raise ValueError(f"mode '{mode}': use in, out or all")
    return _coreness(
        graph.out_indptr,
        graph.out_indices,
        graph.in_indptr,
        graph.in_indices,
        mode in ("all", "out"),
        mode in ("all", "in"),
    )


@njit(parallel=True, cache=True)
def _brandes(out_indptr, out_indices, in_indptr, in_indices, sources, threads):
    n = out_indptr.shape[0] - 1
    acc = np.zeros((threads, n), dtype=np.float64)
    for t in prange(threads):
        dist = np.full(n, -1, dtype=np.int64)
        sigma = np.zeros(n, dtype=np.float64)
        delta = np.zeros(n, dtype=np.float64)
        order = np.empty(n, dtype=np.int64)
        for si in range(t, sources.shape[0], threads):
            s = sources[si]
            head = 0
            tail = 1
            order[0] = s
            dist[s] = 0
            sigma[s] = 1.0
            while head < tail:
                v = order[head]
                head += 1
                for e in range(out_indptr[v], out_indptr[v + 1]):
                    w = out_indices[e]
                    if dist[w] < 0:
                        dist[w] = dist[v] + 1
                        order[tail] = w
                        tail += 1
                    if dist[w] == dist[v] + 1:
                        sigma[w] += sigma[v]
            for i in range(tail - 1, -1, -1):
                w = order[i]
                coeff = (1.0 + delta[w]) / sigma[w]
                for e in range(in_indptr[w], in_indptr[w + 1]):
                    v = in_indices[e]
                    if dist[v] >= 0 and dist[v] == dist[w] - 1:
                        delta[v] += sigma[v] * coeff
                if w != s:
                    acc[t, w] += delta[w]
            for i in range(tail):
                w = order[i]
                dist[w] = -1
                sigma[w] = 0.0
                delta[w] = 0.0
    return acc.sum(axis=0)


EXACT_BETWEENNESS_MAX = 500


def betweenness(
    graph: Graph,
    samples: int | None = None,
    *,
    seed: int | None = 0,
    normalized: bool = True,
) -> np.ndarray:
    """Shortest-path betweenness of every node, exact or estimated from sampled sources.

    Model: unweighted directed shortest paths (hops).  The fraction of
    shortest s→t paths through v, summed over pairs.  With ``samples`` < n,
    ``samples`` source nodes are drawn uniformly without replacement and the
    single-source dependencies are scaled by n / samples: an unbiased estimate
    whose error falls as 1/√samples (good enough to rank leaders).  With
    ``samples=None`` all sources are used when n ≤ ``EXACT_BETWEENNESS_MAX`` (500),
    else 256 (a 2,000-member program's exact pass took 0.2–0.37 s of a page view).
    ``normalized`` divides by (n − 1)(n − 2) like ``networkx.betweenness_centrality``.

    Papers: Brandes, "A faster algorithm for betweenness centrality", J. Math.
    Sociology 2001 (dependency accumulation); Brandes & Pich, "Centrality
    estimation in large networks", Int. J. Bifurcation and Chaos 2007 (pivot
    sampling).

    Complexity: O(samples · (n + m)), parallel over sources.

    >>> g = Graph.from_edges([0, 1], [1, 2])
    >>> betweenness(g, normalized=False).tolist()
    [0.0, 1.0, 0.0]
    """
    n = graph.n
    if n == 0:
        return np.zeros(0)
    if samples is None:
        samples = n if n <= EXACT_BETWEENNESS_MAX else 256
    samples = max(1, min(int(samples), n))
    if samples >= n:
        sources = np.arange(n, dtype=np.int64)
    else:
        rng = np.random.default_rng(int(seed_u64(seed)))
        sources = np.sort(rng.choice(n, size=samples, replace=False)).astype(np.int64)
    threads = max(1, min(numba.get_num_threads(), samples))
    bc = _brandes(
        graph.out_indptr, graph.out_indices, graph.in_indptr, graph.in_indices, sources, threads
    )
    scale = n / samples
    if normalized and n > 2:
        scale /= (n - 1) * (n - 2)
    return bc * scale
