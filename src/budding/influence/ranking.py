"""One ranked table of opinion-leader measures, and leaders per group."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from budding.influence.centrality import betweenness, coreness, pagerank
from budding.influence.graph import Graph
from budding.influence.measures import MEASURES
from budding.influence.rrsets import expected_reach

__all__ = ["MEASURES", "Ranking", "leaders_by_group", "rank", "ranking_of"]


@dataclass
class Ranking:
    """Nodes ranked by one measure, with every measure alongside.

    ``nodes`` are dense indices in rank order; ``measures[name][i]`` is the
    value of ``name`` for ``nodes[i]``; ``ranks[name][i]`` its 1-based rank by
    that measure among all nodes (ties share the best rank).
    """

    by: str
    nodes: np.ndarray
    ids: list[Any]
    measures: dict[str, np.ndarray]
    ranks: dict[str, np.ndarray]

    def __len__(self) -> int:
        return int(self.nodes.shape[0])

    def rows(self) -> list[dict[str, Any]]:
        """One dict per node: ``rank``, ``id`` and each measure (plain Python values)."""
        out = []
        for i, node_id in enumerate(self.ids):
            row: dict[str, Any] = {"rank": i + 1, "id": node_id}
            for name, values in self.measures.items():
                v = values[i]
                row[name] = int(v) if values.dtype.kind in "iu" else float(v)
            out.append(row)
        return out

    def to_json(self) -> dict[str, Any]:
        """The ``rank --json`` object of the CLI (see docs/influence.md)."""
        return {"by": self.by, "measures": list(self.measures), "leaders": self.rows()}


def _ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(-values.astype(np.float64), kind="stable")
    sorted_vals = values[order]
    first = np.ones(values.shape[0], dtype=bool)
    first[1:] = sorted_vals[1:] != sorted_vals[:-1]
    rank_sorted = np.maximum.accumulate(np.where(first, np.arange(1, values.shape[0] + 1), 0))
    out = np.empty(values.shape[0], dtype=np.int64)
    out[order] = rank_sorted
    return out


def rank(
    graph: Graph,
    top: int | None = 20,
    *,
    by: str = "reach",
    measures: tuple[str, ...] = MEASURES,
    rr_sets: int = 100_000,
    betweenness_samples: int | None = None,
    probability: str = "wc",
    model: str = "ic",
    seed: int | None = 0,
    scheduler: Any = None,
    progress: Callable[[str], None] | None = None,
) -> Ranking:
    """Rank opinion leaders by ``by``, reporting every measure for each node.

    Measures: ``reach`` (expected IC/LT spread of the node alone, from
    ``rr_sets`` RR sets — Borgs et al., SODA 2014), ``pagerank`` (Page et al.
    1999), ``betweenness`` (sampled Brandes, Brandes & Pich 2007),
    ``coreness`` (Batagelj & Zaversnik 2003), ``in_degree``, ``out_degree``.
    Ties in ``by`` keep index order.  ``top=None`` returns every node.
    ``progress(measure)`` is called before each measure is computed.

    Complexity: the sum of the measures' — O(Σ|R|) for reach, O((n + m) ·
    matvecs) for PageRank, O(samples · (n + m)) for betweenness, O(n + m) for
    the rest.

    >>> g = Graph.from_edges([0, 0, 0, 1], [1, 2, 3, 2])
    >>> r = rank(g, 2, by="out_degree", measures=("out_degree", "coreness"))
    >>> [(row["id"], row["out_degree"]) for row in r.rows()]
    [(0, 3), (1, 1)]
    """
    if by not in measures:
        raise ValueError(f"by='{by}' must be one of the measures {measures}")
    unknown = set(measures) - set(MEASURES)
    if unknown:
        raise ValueError(f"unknown measures {sorted(unknown)}: use {MEASURES}")
    values: dict[str, np.ndarray] = {}
    for name in measures:
        if progress is not None:
            progress(name)
        if name == "reach":
            values[name] = expected_reach(
                graph, rr_sets, model=model, probability=probability, seed=seed,
                executor=_executor(scheduler),
            )  # fmt: skip
        elif name == "pagerank":
            values[name] = pagerank(graph)
        elif name == "betweenness":
            values[name] = betweenness(graph, betweenness_samples, seed=seed)
        elif name == "coreness":
            values[name] = coreness(graph)
        elif name == "in_degree":
            values[name] = graph.in_degree
        elif name == "out_degree":
            values[name] = graph.out_degree
    return ranking_of(graph, values, by=by, top=top)


def ranking_of(
    graph: Graph, values: Mapping[str, np.ndarray], *, by: str, top: int | None = None
) -> Ranking:
    """The :class:`Ranking` by ``by`` of measures already computed (``values[name][i]``
    for node ``i``), e.g. kept from an earlier :func:`rank`; only ``graph.ids`` is read."""
    key = values[by]
    order = np.argsort(-key.astype(np.float64), kind="stable")
    if top is not None:
        order = order[: max(0, int(top))]
    ranks = {name: _ranks(v)[order] for name, v in values.items()}
    return Ranking(
        by=by,
        nodes=order,
        ids=graph.id_list(order),
        measures={name: v[order] for name, v in values.items()},
        ranks=ranks,
    )


def _executor(scheduler: Any) -> Any:
    from budding.influence.parallel import get_executor

    return get_executor(scheduler)


def leaders_by_group(
    graph: Graph,
    groups: Mapping[Any, Hashable],
    top: int = 5,
    *,
    ranking: Ranking | None = None,
    **rank_kwargs: Any,
) -> dict[Hashable, Ranking]:
    """The top ``top`` leaders within each group (community, segment, age band …).

    ``groups`` maps node ids to a group label; nodes without a group are left
    out.  Opinion leaders exist in every group and class (the method's point):
    ranking within groups keeps the list from being only the loudest cluster.
    ``ranking`` may be a full ranking (``top=None``) computed before; otherwise
    :func:`rank` runs with ``rank_kwargs``.  O(n log n) after ranking.

    >>> g = Graph.from_edges([0, 0, 1, 3, 3], [1, 2, 2, 4, 5])
    >>> out = leaders_by_group(g, {0: "a", 1: "a", 2: "a", 3: "b", 4: "b"}, 1,
    ...                        by="out_degree", measures=("out_degree",))
    >>> {k: v.ids for k, v in out.items()}
    {'a': [0], 'b': [3]}
    """
    full = ranking if ranking is not None else rank(graph, None, **rank_kwargs)
    label = np.full(graph.n, -1, dtype=np.int64)
    names: list[Hashable] = []
    code: dict[Hashable, int] = {}
    for node, group in groups.items():
        try:
            i = graph.index_of(node)
        except KeyError:
            continue
        if group not in code:
            code[group] = len(names)
            names.append(group)
        label[i] = code[group]
    node_group = label[full.nodes]
    out: dict[Hashable, Ranking] = {}
    for c, name in enumerate(names):
        pos = np.flatnonzero(node_group == c)[:top]
        out[name] = Ranking(
            by=full.by,
            nodes=full.nodes[pos],
            ids=[full.ids[p] for p in pos],
            measures={k: v[pos] for k, v in full.measures.items()},
            ranks={k: v[pos] for k, v in full.ranks.items()},
        )
    return out
