"""The Dask path gives exactly the single-machine answer for the same seed."""

from __future__ import annotations

from collections.abc import Iterator

import networkx as nx
import numpy as np
import pytest

from budding.influence import Graph, LocalExecutor, expected_reach, imm, simulate, spread
from budding.influence.parallel import split_range

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    )
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


@pytest.fixture(scope="module")
def graph() -> Graph:
    return Graph.from_networkx(nx.gnp_random_graph(800, 0.006, directed=True, seed=3))


def test_imm_on_dask_equals_local(client: object, graph: Graph) -> None:
    local = imm(graph, 8, epsilon=0.3, seed=5)
    remote = imm(graph, 8, epsilon=0.3, seed=5, scheduler=client)
    assert remote.seeds == local.seeds
    assert remote.spread == local.spread
    assert remote.rr_sets == local.rr_sets
    lt_local = imm(graph, 4, model="lt", epsilon=0.4, seed=6)
    lt_remote = imm(graph, 4, model="lt", epsilon=0.4, seed=6, scheduler=client)
    assert (lt_local.seeds, lt_local.spread) == (lt_remote.seeds, lt_remote.spread)


def test_monte_carlo_on_dask_equals_local(client: object, graph: Graph) -> None:
    seeds = graph.id_list(range(5))
    a = spread(graph, seeds, 1000, seed=9)
    b = spread(graph, seeds, 1000, seed=9, scheduler=client)
    assert np.array_equal(a.samples, b.samples)
    c = simulate(graph, seeds, 700, launch_cost=1.5, seed=9)
    d = simulate(graph, seeds, 700, launch_cost=1.5, seed=9, scheduler=client)
    assert np.array_equal(c.reach.samples, d.reach.samples)
    assert np.array_equal(c.reach_per_step, d.reach_per_step)


def test_thread_count_does_not_change_results(graph: Graph) -> None:
    one = expected_reach(graph, 5000, executor=LocalExecutor(1))
    many = expected_reach(graph, 5000, executor=LocalExecutor(3))
    assert np.array_equal(one, many)


def test_split_range_covers_every_chunk_once() -> None:
    for first, count, parts in [(0, 10, 3), (5, 2, 8), (0, 1, 1), (7, 100, 9)]:
        ranges = split_range(first, count, parts)
        covered = [c for a, n in ranges for c in range(a, a + n)]
        assert covered == list(range(first, first + count))
