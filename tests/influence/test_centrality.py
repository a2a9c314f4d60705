"""Degree, PageRank, coreness and betweenness against NetworkX and igraph."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import igraph as ig
import networkx as nx
import numpy as np
import pytest

from budding.influence import Graph, betweenness, coreness, degree, pagerank

BUNDLED = {
    "karate": lambda: nx.karate_club_graph().to_directed(),
    "les_miserables": lambda: nx.les_miserables_graph().to_directed(),
    "florentine": lambda: nx.florentine_families_graph().to_directed(),
    "gn_graph": lambda: nx.gn_graph(300, seed=3),
    "gnp_directed": lambda: nx.gnp_random_graph(400, 0.015, directed=True, seed=7),
    "scale_free": lambda: nx.DiGraph(nx.scale_free_graph(500, seed=11)),
}


def by_index(values: dict[object, float], g: Graph) -> np.ndarray:
    return np.array([values[node] for node in g.ids.tolist()])


def nx_graph(build: Callable[[], nx.DiGraph]) -> nx.DiGraph:
    graph = build()
    graph.remove_edges_from(list(nx.selfloop_edges(graph)))
    return graph


@pytest.mark.parametrize("name", list(BUNDLED))
def test_pagerank_matches_networkx_and_igraph(name: str) -> None:
    graph = nx_graph(BUNDLED[name])
    g = Graph.from_networkx(graph)
    ours = pagerank(g, tol=1e-12)
    ref = by_index(nx.pagerank(graph, tol=1e-13, max_iter=10_000, weight=None), g)
    assert np.abs(ours - ref).sum() < 1e-9
    assert np.abs(ours - np.array(g.to_igraph().pagerank())).sum() < 1e-9
    assert ours.sum() == pytest.approx(1.0)


def test_personalised_and_weighted_pagerank_match_networkx() -> None:
    graph = nx_graph(BUNDLED["gnp_directed"])
    rng = np.random.default_rng(1)
    for u, v in graph.edges():
        graph[u][v]["weight"] = float(rng.uniform(0.1, 3.0))
    g = Graph.from_networkx(graph, weight="weight")
    pers = {node: (1.0 if node % 7 == 0 else 0.0) for node in graph}
    ours = pagerank(g, personalization=pers, tol=1e-12)
    ref = by_index(nx.pagerank(graph, personalization=pers, tol=1e-13, weight=None), g)
    assert np.abs(ours - ref).sum() < 1e-9
    ours_w = pagerank(g, weighted=True, tol=1e-12)
    ref_w = by_index(nx.pagerank(graph, tol=1e-13, weight="weight"), g)
    assert np.abs(ours_w - ref_w).sum() < 1e-6  # weights are stored as float32


def test_pagerank_rejects_bad_input() -> None:
    g = Graph.from_edges([0], [1])
    with pytest.raises(ValueError, match="alpha"):
        pagerank(g, 1.0)
    with pytest.raises(ValueError, match="personalization"):
        pagerank(g, personalization={0: -1.0})
    with pytest.raises(ValueError, match="weighted"):
        pagerank(g, weighted=True)


@pytest.mark.parametrize("name", list(BUNDLED))
def test_coreness_matches_networkx_and_igraph(name: str) -> None:
    graph = nx_graph(BUNDLED[name])
    g = Graph.from_networkx(graph)
    ours = coreness(g)
    assert np.array_equal(ours, by_index(nx.core_number(graph), g))
    gi = g.to_igraph()
    assert np.array_equal(ours, np.array(gi.coreness(mode="all")))
    assert np.array_equal(coreness(g, "in"), np.array(gi.coreness(mode="in")))
    assert np.array_equal(coreness(g, "out"), np.array(gi.coreness(mode="out")))


@pytest.mark.parametrize("name", ["karate", "gn_graph", "gnp_directed"])
def test_exact_betweenness_matches_networkx(name: str) -> None:
    graph = nx_graph(BUNDLED[name])
    g = Graph.from_networkx(graph)
    ref = by_index(nx.betweenness_centrality(graph), g)
    assert np.allclose(betweenness(g), ref, atol=1e-12)
    raw = by_index(nx.betweenness_centrality(graph, normalized=False), g)
    assert np.allclose(betweenness(g, normalized=False), raw, atol=1e-9)


def test_sampled_betweenness_ranks_the_same_leaders() -> None:
    graph = nx_graph(BUNDLED["scale_free"])
    g = Graph.from_networkx(graph)
    exact = betweenness(g, g.n)
    approx = betweenness(g, 200, seed=4)
    top = set(np.argsort(-exact)[:10].tolist())
    assert len(top & set(np.argsort(-approx)[:20].tolist())) >= 8
    assert np.abs(approx - exact).max() < 0.02


def test_degree_modes() -> None:
    g = Graph.from_edges([0, 0, 1], [1, 2, 2])
    assert degree(g, "all").tolist() == [2, 2, 2]
    with pytest.raises(ValueError):
        degree(g, "sideways")


@pytest.mark.parametrize(
    "name", ["email-Eu-core.txt", "wiki-Vote.txt", "soc-Slashdot0902.txt.gz", "NetHEPT_wc.txt"]
)
def test_real_graphs_against_igraph(name: str, real_graph: Callable[[str], Path]) -> None:
    g = Graph.from_edgelist(real_graph(name))
    gi = g.to_igraph()
    ours = pagerank(g, tol=1e-10)
    assert np.abs(ours - np.array(gi.pagerank())).sum() < 1e-9
    assert np.array_equal(coreness(g), np.array(gi.coreness(mode="all")))


def test_real_graph_against_networkx(real_graph: Callable[[str], Path]) -> None:
    g = Graph.from_edgelist(real_graph("wiki-Vote.txt"))
    graph = g.to_networkx()
    ref = nx.pagerank(graph, tol=1e-13, max_iter=10_000)
    assert np.abs(pagerank(g, tol=1e-10) - np.array([ref[i] for i in range(g.n)])).sum() < 1e-9
    core = nx.core_number(graph)
    assert np.array_equal(coreness(g), np.array([core[i] for i in range(g.n)]))


def test_igraph_is_the_reference_we_think() -> None:
    assert ig.__version__ >= "0.10"
