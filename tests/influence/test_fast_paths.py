"""The engine's shortcuts give the answers of the plain algorithms they replace."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
from tests.influence.test_spread_exact import exact_ic

from budding.influence import Graph, LocalExecutor, centrality, expected_reach, pagerank, rrsets
from budding.influence.probability import edge_probabilities
from budding.influence.rrsets import RRSampler, RRSets, max_coverage


def tiny_graph(n: int, edges: list[tuple[int, int]], probs: list[float]) -> Graph:
    src, dst = zip(*edges, strict=True)
    return Graph.from_edges(list(src), list(dst), weight=probs, ids=list(range(n)), dedupe=False)


def eager_greedy(
    rr: RRSets, k: int, allowed: np.ndarray | None = None
) -> tuple[list[int], list[int]]:
    """Textbook greedy max coverage: recount every node's uncovered sets each round."""
    sets = [set(rr.nodes[rr.offsets[i] : rr.offsets[i + 1]].tolist()) for i in range(rr.count)]
    n = rr.sampler.n
    covered = [False] * len(sets)
    seeds: list[int] = []
    gains: list[int] = []
    for _ in range(k):
        gain = np.zeros(n, dtype=np.int64)
        for i, s in enumerate(sets):
            if not covered[i]:
                for v in s:
                    gain[v] += 1
        gain[seeds] = -1
        if allowed is not None:
            gain[~allowed] = -1
        v = int(np.argmax(gain))  # first maximum: ties go to the lowest index
        seeds.append(v)
        gains.append(int(gain[v]))
        for i, s in enumerate(sets):
            if v in s:
                covered[i] = True
    return seeds, gains


@pytest.mark.parametrize("k", [1, 5, 40, 150])
def test_lazy_partial_index_greedy_equals_eager_greedy(k: int) -> None:
    g = Graph.from_networkx(nx.gnp_random_graph(160, 0.03, directed=True, seed=k))
    probs = edge_probabilities(g, "uniform:0.3")
    allowed = np.arange(g.n) % 3 != 0
    for mask in (None, allowed):
        rr = RRSets(RRSampler.build(g, probs, seed=k), LocalExecutor(2))
        # grow the collection between calls, as IMM's phases do (the index is extended)
        for size in (300, 700, 2000):
            rr.extend_to(size)
            seeds, gains = max_coverage(rr, min(k, 100), mask)
            ref_seeds, ref_gains = eager_greedy(rr, min(k, 100), mask)
            assert seeds.tolist() == ref_seeds
            assert gains.tolist() == ref_gains
    with pytest.raises(ValueError, match="between 0 and"):
        max_coverage(rr, g.n + 1)


def test_collection_counts_and_layout() -> None:
    g = Graph.from_networkx(nx.gnp_random_graph(300, 0.02, directed=True, seed=2))
    rr = RRSets(RRSampler.build(g, edge_probabilities(g, "wc"), seed=4), LocalExecutor(3))
    for size in (100, 1000, 5000):
        rr.extend_to(size)
        assert rr.count == -(-size // 256) * 256
        assert rr.offsets[0] == 0 and rr.offsets[-1] == rr.nodes.shape[0]
        assert np.array_equal(rr.counts, np.bincount(rr.nodes, minlength=g.n))
        # every set starts with its root and holds no node twice
        for i in range(0, rr.count, 97):
            members = rr.nodes[rr.offsets[i] : rr.offsets[i + 1]]
            assert len(set(members.tolist())) == members.shape[0]


def test_rr_shortcuts_match_exact() -> None:
    """Rows with p = 1 (no draw), p = 0, a shared p < 1 (the q^d test, then the binomial
    count and Floyd's positions) and differing p (one coin per edge), and roots without
    in-edges."""
    n = 9
    edges = (
        [(u, 5) for u in range(5)]  # shared p = 0.2 over five in-edges: q^d test + jumps
        + [(0, 6), (1, 6)]  # p = 1: always live
        + [(2, 7)]  # p = 0: never live
        + [(3, 8), (6, 8)]  # differing p: one coin per edge
        + [(5, 0)]
    )
    probs = [0.2] * 5 + [1.0, 1.0] + [0.0] + [0.3, 0.6] + [0.5]
    g = tiny_graph(n, edges, probs)
    sampler = RRSampler.build(g, edge_probabilities(g, "file"))
    assert sampler.kind.tolist()[5:9] == [
        rrsets._BINOMIAL,
        rrsets._ALL,
        rrsets._NONE,
        rrsets._COINS,
    ]
    assert sampler.node_f[5].tolist() == pytest.approx([0.8**5, 0.2 / 0.8])
    est = expected_reach(g, 400_000, probability="file", seed=3)
    exact = np.array([exact_ic(n, edges, probs, [v]) for v in range(n)])
    assert np.allclose(est, exact, atol=0.02)


@pytest.mark.parametrize(
    ("d", "p", "kind"),
    [(8, 0.6, rrsets._BINOMIAL), (60, 0.45, rrsets._GEOMETRIC), (300, 0.01, rrsets._BINOMIAL)],
)
def test_shared_p_live_in_edges_are_binomial_and_uniform(d: int, p: float, kind: int) -> None:
    """d leaves → one hub, every edge p: from the hub, the number of live in-edges is
    Binomial(d, p) and each leaf is in with chance p, whichever way the row is sampled
    (a binomial count with Floyd's positions, or geometric jumps)."""
    g = tiny_graph(d + 1, [(u, d) for u in range(d)], [p] * d)
    sampler = RRSampler.build(g, edge_probabilities(g, "file"), roots=np.array([d]), seed=5)
    assert sampler.kind[d] == kind
    rr = RRSets(sampler, LocalExecutor(2))
    rr.extend_to(60_000)
    sizes = np.diff(rr.offsets) - 1
    pmf = np.array([math.comb(d, c) * p**c * (1 - p) ** (d - c) for c in range(d + 1)])
    seen = np.bincount(sizes, minlength=d + 1) / rr.count
    # each frequency within 5 standard errors of its probability
    assert np.all(np.abs(seen - pmf) <= 5 * np.sqrt(pmf * (1 - pmf) / rr.count) + 1e-9)
    leaf = rr.counts[:d] / rr.count
    assert np.all(np.abs(leaf - p) <= 5 * math.sqrt(p * (1 - p) / rr.count))
    assert np.array_equal(rr.counts, np.bincount(rr.nodes, minlength=d + 1))


def test_many_live_edges_fall_back_to_selection_sampling(monkeypatch: pytest.MonkeyPatch) -> None:
    """More live edges than Floyd's buffer holds (all but impossible at d·p ≤ 12, so the
    buffer is shrunk to 1 and the kernel run as Python): still Binomial(d, p) and uniform."""
    d, p = 8, 0.6
    g = tiny_graph(d + 1, [(u, d) for u in range(d)], [p] * d)
    sampler = RRSampler.build(g, edge_probabilities(g, "file"), roots=np.array([d]), seed=2)
    monkeypatch.setattr(rrsets, "_PICK", 1)
    with np.errstate(over="ignore"):  # SplitMix64 wraps around by design
        nodes, offsets, counts = rrsets._rr_batch.py_func(
            sampler.in_indptr, sampler.in_indices, sampler.in_p, sampler.kind, sampler.node_f,
            sampler.roots, sampler.n, sampler.seed, 256, 0, 16, True,
        )  # fmt: skip
    sets = offsets.shape[0] - 1
    sizes = np.diff(offsets) - 1
    pmf = np.array([math.comb(d, c) * p**c * (1 - p) ** (d - c) for c in range(d + 1)])
    seen = np.bincount(sizes, minlength=d + 1) / sets
    assert np.all(np.abs(seen - pmf) <= 5 * np.sqrt(pmf * (1 - pmf) / sets) + 1e-9)
    assert np.all(np.abs(counts[:d] / sets - p) <= 5 * math.sqrt(p * (1 - p) / sets))
    assert all(
        len(set(nodes[offsets[i] : offsets[i + 1]].tolist())) == sizes[i] + 1 for i in range(sets)
    )


def test_pagerank_error_is_within_tol() -> None:
    """tol bounds the L1 error (against igraph, and NetworkX run to 1e-14 for the
    personalised case) on a graph with dangling nodes, isolated nodes and skewed degrees."""
    graph = nx.DiGraph(nx.scale_free_graph(800, seed=5))
    graph.remove_edges_from(list(nx.selfloop_edges(graph)))
    graph.add_nodes_from(range(800, 810))  # isolated
    g = Graph.from_networkx(graph)
    assert (g.out_degree == 0).sum() > 50
    ref = np.array(g.to_igraph().pagerank())
    pers = {node: float(node % 5) for node in graph}
    ref_p = np.array(
        [
            nx.pagerank(graph, personalization=pers, tol=1e-14, max_iter=100_000, weight=None)[v]
            for v in g.ids.tolist()
        ]
    )
    for tol in (1e-4, 1e-6, 1e-8, 1e-10):
        assert np.abs(pagerank(g, tol=tol) - ref).sum() <= tol
        assert np.abs(pagerank(g, tol=tol, personalization=pers) - ref_p).sum() <= tol + 1e-12


def test_pagerank_parallel_kernels_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    g = Graph.from_networkx(nx.gnp_random_graph(3000, 0.003, directed=True, seed=8))
    serial = pagerank(g, tol=1e-12)
    monkeypatch.setattr(centrality, "PARALLEL_MIN_EDGES", 0)
    parallel = pagerank(g, tol=1e-12)
    assert np.abs(serial - parallel).sum() < 1e-11


@pytest.mark.parametrize("k", [1, 5, 40])
def test_coverage_bound_is_at_least_the_greedy_coverage(k: int) -> None:
    # IMM skips a phase's greedy when this bound is already too small: safe only if no
    # k nodes cover more sets than it says
    g = Graph.from_networkx(nx.gnp_random_graph(160, 0.04, directed=True, seed=k))
    rr = RRSets(RRSampler.build(g, edge_probabilities(g, "wc"), seed=k), LocalExecutor(2))
    allowed = np.arange(g.n) % 3 != 0
    for size in (300, 2000):
        rr.extend_to(size)
        for mask in (None, allowed):
            bound = rrsets.coverage_bound(rr, k, mask)
            _, gains = max_coverage(rr, k, mask)
            assert bound >= int(gains.sum())
            counts = rr.counts if mask is None else np.where(mask, rr.counts, 0)
            assert bound == int(np.sort(counts)[::-1][:k].sum())
