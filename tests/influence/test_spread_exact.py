"""Spread estimates against exact values from enumerating every live-edge world."""

from __future__ import annotations

import itertools
from collections import deque

import numpy as np
import pytest

from budding.influence import Graph, ShareModel, expected_reach, imm, simulate, spread

# (n, edges, probabilities): small enough to enumerate 2^m IC worlds
TINY = [
    (4, [(0, 1), (1, 2), (2, 3), (0, 2)], [0.5, 0.4, 0.7, 0.3]),
    (5, [(0, 1), (0, 2), (1, 3), (2, 3), (3, 4), (4, 0)], [0.6, 0.3, 0.5, 0.5, 0.8, 0.2]),
    (6, [(0, 1), (1, 0), (1, 2), (2, 3), (3, 1), (4, 5), (5, 4), (2, 4), (0, 5)],
     [0.3, 0.2, 0.9, 0.4, 0.5, 0.6, 0.6, 0.1, 0.25]),
]  # fmt: skip


def reach(n: int, adj: list[list[int]], seeds: list[int]) -> int:
    seen = set(seeds)
    queue = deque(seeds)
    while queue:
        u = queue.popleft()
        for v in adj[u]:
            if v not in seen:
                seen.add(v)
                queue.append(v)
    return len(seen)


def exact_ic(n: int, edges: list[tuple[int, int]], probs: list[float], seeds: list[int]) -> float:
    total = 0.0
    for live in itertools.product([False, True], repeat=len(edges)):
        weight = 1.0
        adj: list[list[int]] = [[] for _ in range(n)]
        for (u, v), p, on in zip(edges, probs, live, strict=True):
            weight *= p if on else 1 - p
            if on:
                adj[u].append(v)
        total += weight * reach(n, adj, seeds)
    return total


def exact_lt(n: int, edges: list[tuple[int, int]], weights: list[float], seeds: list[int]) -> float:
    """LT equals reachability when every node keeps at most one in-edge (Kempe et al. 2003)."""
    options = []
    for v in range(n):
        ins = [(u, w) for (u, x), w in zip(edges, weights, strict=True) if x == v]
        opts = [(u, w) for u, w in ins] + [(None, 1 - sum(w for _, w in ins))]
        options.append(opts)
    total = 0.0
    for choice in itertools.product(*options):
        weight = 1.0
        adj: list[list[int]] = [[] for _ in range(n)]
        for v, (u, w) in enumerate(choice):
            weight *= w
            if u is not None:
                adj[u].append(v)
        total += weight * reach(n, adj, seeds)
    return total


def tiny_graph(n: int, edges: list[tuple[int, int]], probs: list[float]) -> Graph:
    src, dst = zip(*edges, strict=True)
    return Graph.from_edges(list(src), list(dst), weight=probs, ids=list(range(n)))


def lt_weights(n: int, edges: list[tuple[int, int]], probs: list[float]) -> list[float]:
    """Scale the probabilities so every node's in-weights sum to at most 0.9."""
    sums = [sum(p for (_, v), p in zip(edges, probs, strict=True) if v == x) for x in range(n)]
    return [p * min(1.0, 0.9 / sums[v]) for (_, v), p in zip(edges, probs, strict=True)]


@pytest.mark.parametrize("case", range(len(TINY)))
def test_monte_carlo_ic_matches_exact(case: int) -> None:
    n, edges, probs = TINY[case]
    g = tiny_graph(n, edges, probs)
    for seeds in ([0], [1, 3]):
        exact = exact_ic(n, edges, probs, seeds)
        est = spread(g, seeds, 40_000, probability="file", seed=case)
        assert abs(est.mean - exact) < 4 * est.sd / np.sqrt(est.runs) + 1e-9
        assert est.ci95[0] - 0.02 <= exact <= est.ci95[1] + 0.02


@pytest.mark.parametrize("case", range(len(TINY)))
def test_monte_carlo_lt_matches_exact(case: int) -> None:
    n, edges, probs = TINY[case]
    weights = lt_weights(n, edges, probs)
    g = tiny_graph(n, edges, weights)
    exact = exact_lt(n, edges, weights, [0])
    est = spread(g, [0], 40_000, model="lt", probability="file", seed=case)
    assert abs(est.mean - exact) < 4 * est.sd / np.sqrt(est.runs) + 1e-9


@pytest.mark.parametrize("model", ["ic", "lt"])
@pytest.mark.parametrize("case", range(len(TINY)))
def test_rr_set_reach_matches_exact(case: int, model: str) -> None:
    n, edges, probs = TINY[case]
    weights = lt_weights(n, edges, probs) if model == "lt" else probs
    g = tiny_graph(n, edges, weights)
    est = expected_reach(g, 200_000, model=model, probability="file", seed=case)
    exact_fn = exact_lt if model == "lt" else exact_ic
    exact = np.array([exact_fn(n, edges, weights, [v]) for v in range(n)])
    assert np.allclose(est, exact, atol=0.05 * n / 4)


@pytest.mark.parametrize("case", range(len(TINY)))
def test_imm_finds_the_best_pair(case: int) -> None:
    n, edges, probs = TINY[case]
    g = tiny_graph(n, edges, probs)
    values = {
        pair: exact_ic(n, edges, probs, list(pair)) for pair in itertools.combinations(range(n), 2)
    }
    best = max(values.values())
    result = imm(g, 2, epsilon=0.1, probability="file", seed=case)
    chosen = values[tuple(sorted(result.seeds))]
    assert chosen >= (1 - 1 / np.e - 0.1) * best
    assert chosen >= 0.97 * best
    assert result.spread == pytest.approx(chosen, rel=0.05)
    assert result.cumulative[-1] == pytest.approx(result.spread)


def test_geometric_skipping_matches_coin_flips() -> None:
    """Uniform-probability nodes (skipping) and mixed nodes (coins) agree with exact."""
    n = 6
    edges = [(u, 5) for u in range(5)] + [(0, 1), (2, 1)]
    uniform = [0.3] * 5 + [0.5, 0.5]
    mixed = [0.3, 0.3, 0.3, 0.3, 0.31, 0.5, 0.5]
    for probs in (uniform, mixed):
        g = tiny_graph(n, edges, probs)
        est = expected_reach(g, 300_000, probability="file", seed=9)
        exact = np.array([exact_ic(n, edges, probs, [v]) for v in range(n)])
        assert np.allclose(est, exact, atol=0.02)


def test_campaign_model_reduces_to_ic() -> None:
    n, edges, probs = TINY[1]
    g = tiny_graph(n, edges, probs)
    exact = exact_ic(n, edges, probs, [0])
    ic_like = ShareModel(base=1.0, saturation=1.0)
    r = simulate(g, [0], 40_000, share=ic_like, probability="file", seed=2)
    assert abs(r.reach.mean - exact) < 4 * r.reach.sd / np.sqrt(r.runs)
    assert r.reach_per_step[-1] == pytest.approx(r.reach.mean)
    saturated = simulate(
        g, [0], 40_000, share=ShareModel(saturation=0.3), probability="file", seed=2
    )
    assert saturated.reach.mean < r.reach.mean
