"""The member graph: a compact directed, weighted graph on CSR arrays.

Conventions (fixed here, used by every algorithm in :mod:`budding.influence`):

* **Direction.** A line ``u v`` (or an edge ``(u, v)``) means influence flows
  from ``u`` to ``v``: ``u`` can activate ``v``.  For "who follows whom" files
  where ``u v`` means *u follows v*, load with ``reverse=True``.
* **Self-loops** are dropped (``drop_self_loops=True``): nobody influences
  themselves.
* **Duplicate edges** are merged (``dedupe=True``) into one edge whose weight
  is the sum of the duplicates' weights (interaction counts add up);
  ``merged_duplicates`` says how many were merged away.  With
  ``dedupe=False`` multi-edges are kept, and under Independent Cascade each is
  an independent chance (NetHEPT is used this way, as distributed).  Summed
  weights are no IC probabilities, so ``probability="file"`` under IC refuses
  a graph that merged any.
* **Weights** (an optional third column) are kept as float32 on both CSRs; they
  become edge probabilities only with ``probability="file"`` (see
  :mod:`budding.influence.probability`).

These follow ``shared/data/graphs/README.md`` (self-loops and duplicates
dropped except for NetHEPT, weighted cascade p(u→v) = 1/in-degree(v)).

Storage: ``out_indptr``/``in_indptr`` int64 (n + 1), ``out_indices``/
``in_indices`` int32 while n < 2³¹, weights float32: 8 bytes per edge without
weights, 16 with.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numba import njit

from budding.influence.io import RawEdges, dense_ids, read_edgelist

__all__ = ["Graph", "GraphError", "segment_sums"]


class GraphError(ValueError):
    """Bad graph input (unknown node id, mismatched arrays, …)."""


@njit(cache=True)
def _fill_rows(src, dst, w, indptr, has_w):
    m = src.shape[0]
    n = indptr.shape[0] - 1
    pos = indptr[:n].copy()
    indices = np.empty(m, dtype=dst.dtype)
    weights = np.empty(m if has_w else 0, dtype=np.float32)
    for e in range(m):
        s = src[e]
        p = pos[s]
        indices[p] = dst[e]
        if has_w:
            weights[p] = w[e]
        pos[s] = p + 1
    return indices, weights


@njit(cache=True)
def _clean_rows(indptr, indices, weights, has_w, drop_self, dedupe):
    """Sort each row (when deduping), drop self-loops / merge duplicates, compact in place.

    Returns (edges kept, duplicates merged away)."""
    n = indptr.shape[0] - 1
    out = 0
    merged = 0
    start = indptr[0]
    for u in range(n):
        end = indptr[u + 1]
        row_start = out
        if dedupe and end - start > 1:
            if has_w:
                order = np.argsort(indices[start:end], kind="mergesort")
                row = indices[start:end][order]
                roww = weights[start:end][order]
            else:
                row = np.sort(indices[start:end])
                roww = weights[0:0]
        else:
            row = indices[start:end].copy()
            roww = weights[start:end].copy() if has_w else weights[0:0]
        for j in range(row.shape[0]):
            v = row[j]
            if drop_self and v == u:
                continue
            if dedupe and out > row_start and indices[out - 1] == v:
                if has_w:
                    weights[out - 1] += roww[j]
                merged += 1
                continue
            indices[out] = v
            if has_w:
                weights[out] = roww[j]
            out += 1
        start = end
        indptr[u + 1] = out
    return out, merged


@njit(cache=True)
def _transpose(indptr, indices, weights, has_w, in_indptr):
    n = indptr.shape[0] - 1
    m = indices.shape[0]
    pos = in_indptr[:n].copy()
    in_indices = np.empty(m, dtype=indices.dtype)
    in_weights = np.empty(m if has_w else 0, dtype=np.float32)
    for u in range(n):
        for e in range(indptr[u], indptr[u + 1]):
            v = indices[e]
            p = pos[v]
            in_indices[p] = u
            if has_w:
                in_weights[p] = weights[e]
            pos[v] = p + 1
    return in_indices, in_weights


class Graph:
    """A directed, weighted graph stored as out- and in-CSR arrays.

    Node ``i`` (0 ≤ i < n) has original id ``ids[i]`` (int64 or str).
    ``out_indices[out_indptr[u]:out_indptr[u+1]]`` are the heads of u's out-edges;
    ``in_indices[in_indptr[v]:in_indptr[v+1]]`` the tails of v's in-edges, in
    increasing order of tail.  ``out_weight``/``in_weight`` are aligned with
    the respective indices, or ``None`` for an unweighted graph.

    Build one with :meth:`from_edgelist` (files), :meth:`from_edges` (ids in
    memory) or :meth:`from_networkx`.

    >>> g = Graph.from_edges(["a", "a", "b"], ["b", "c", "c"])
    >>> g.n, g.m, list(g.ids)
    (3, 3, ['a', 'b', 'c'])
    >>> [str(g.ids[v]) for v in g.successors(g.index_of("a"))]
    ['b', 'c']
    """

    __slots__ = (
        "_index",
        "ids",
        "in_indices",
        "in_indptr",
        "in_weight",
        "merged_duplicates",
        "out_indices",
        "out_indptr",
        "out_weight",
    )

    def __init__(
        self,
        out_indptr: np.ndarray,
        out_indices: np.ndarray,
        in_indptr: np.ndarray,
        in_indices: np.ndarray,
        ids: np.ndarray,
        out_weight: np.ndarray | None = None,
        in_weight: np.ndarray | None = None,
        *,
        merged_duplicates: int = 0,
    ) -> None:
        self.out_indptr = out_indptr
        self.out_indices = out_indices
        self.in_indptr = in_indptr
        self.in_indices = in_indices
        self.ids = ids
        self.out_weight = out_weight
        self.in_weight = in_weight
        self.merged_duplicates = merged_duplicates
        self._index: dict[Any, int] | None = None

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_dense(
        cls,
        src: np.ndarray,
        dst: np.ndarray,
        n: int,
        weight: np.ndarray | None = None,
        ids: np.ndarray | None = None,
        *,
        drop_self_loops: bool = True,
        dedupe: bool = True,
        reverse: bool = False,
    ) -> Graph:
        """Build from dense endpoint indices in ``[0, n)`` (O(n + m), counting sort).

        >>> import numpy as np
        >>> Graph.from_dense(np.array([0, 1]), np.array([1, 2]), 3).m
        2
        """
        if reverse:
            src, dst = dst, src
        src = np.asarray(src)
        dst = np.asarray(dst)
        if src.shape != dst.shape or src.ndim != 1:
            raise GraphError("src and dst must be one-dimensional arrays of the same length")
        if src.shape[0] and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= n):
            raise GraphError(f"node indices must lie in [0, {n})")
        idx_type = np.int32 if n < 2**31 else np.int64
        src = src.astype(idx_type, copy=False)
        dst = dst.astype(idx_type, copy=False)
        has_w = weight is not None
        w = (
            np.asarray(weight, dtype=np.float32)
            if weight is not None
            else np.empty(0, dtype=np.float32)
        )
        if has_w and w.shape != src.shape:
            raise GraphError("weight must have one value per edge")
        if has_w and not np.all(np.isfinite(w)):
            raise GraphError("weights must be finite numbers")
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(src, minlength=n), out=indptr[1:])
        indices, weights = _fill_rows(src, dst, w, indptr, has_w)
        merged = 0
        if drop_self_loops or dedupe:
            m, merged = _clean_rows(indptr, indices, weights, has_w, drop_self_loops, dedupe)
            indices = indices[:m].copy()
            weights = weights[:m].copy() if has_w else weights
        in_indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(indices, minlength=n), out=in_indptr[1:])
        in_indices, in_weights = _transpose(indptr, indices, weights, has_w, in_indptr)
        if ids is None:
            ids = np.arange(n, dtype=np.int64)
        return cls(
            indptr,
            indices,
            in_indptr,
            in_indices,
            ids,
            weights if has_w else None,
            in_weights if has_w else None,
            merged_duplicates=int(merged),
        )

    @classmethod
    def from_edges(
        cls,
        src: Sequence[Hashable] | np.ndarray,
        dst: Sequence[Hashable] | np.ndarray,
        weight: Sequence[float] | np.ndarray | None = None,
        ids: Sequence[Hashable] | np.ndarray | None = None,
        *,
        drop_self_loops: bool = True,
        dedupe: bool = True,
        reverse: bool = False,
    ) -> Graph:
        """Build from edges given by node ids (any hashable: int, str, UUID …).

        ``ids``, when given, lists every node in the order they get indices (so
        isolated members are kept); every endpoint must be among them.  Without
        it, integer ids are indexed in increasing order and other ids in order
        of first appearance.

        >>> g = Graph.from_edges([10, 20], [20, 30], weight=[2.0, 1.0], ids=[30, 20, 10, 40])
        >>> g.n, g.m, g.index_of(10), float(g.out_weight[0])
        (4, 2, 2, 1.0)
        """
        n_edges = len(src)
        if len(dst) != n_edges:
            raise GraphError(f"src has {n_edges} entries but dst has {len(dst)}")
        if weight is not None and len(weight) != n_edges:
            raise GraphError(f"weight has {len(weight)} entries, expected {n_edges}")
        w = None if weight is None else np.asarray(weight, dtype=np.float32)
        if ids is not None:
            id_arr = _id_array(ids)
            index = {k: i for i, k in enumerate(id_arr.tolist())}
            if len(index) != len(id_arr):
                raise GraphError("ids contains duplicates")
            try:
                s = np.fromiter((index[x] for x in _py(src)), dtype=np.int64, count=n_edges)
                d = np.fromiter((index[x] for x in _py(dst)), dtype=np.int64, count=n_edges)
            except KeyError as exc:
                raise GraphError(f"edge endpoint {exc.args[0]!r} is not in ids") from None
            g = cls.from_dense(
                s, d, len(id_arr), w, id_arr,
                drop_self_loops=drop_self_loops, dedupe=dedupe, reverse=reverse,
            )  # fmt: skip
            g._index = index
            return g
        sa, da = np.asarray(src), np.asarray(dst)
        if sa.dtype.kind in "iu" and da.dtype.kind in "iu":
            s, d, id_arr = dense_ids(sa.astype(np.int64), da.astype(np.int64))
        else:
            index = {}
            s = np.fromiter(
                (index.setdefault(x, len(index)) for x in _py(src)), dtype=np.int64, count=n_edges
            )
            d = np.fromiter(
                (index.setdefault(x, len(index)) for x in _py(dst)), dtype=np.int64, count=n_edges
            )
            id_arr = _id_array(list(index))
        return cls.from_dense(
            s, d, len(id_arr), w, id_arr,
            drop_self_loops=drop_self_loops, dedupe=dedupe, reverse=reverse,
        )  # fmt: skip

    @classmethod
    def from_edgelist(
        cls,
        path: str | Path,
        *,
        drop_self_loops: bool = True,
        dedupe: bool = True,
        reverse: bool = False,
        header: bool | None = None,
        weights: bool | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Graph:
        """Load a SNAP-style edge list or CSV file (gzip'd or not).

        One edge ``src dst [weight]`` per line, separated by whitespace, ``,``
        or ``;``; ``#``/``%`` comment lines and blank lines skipped; a header
        (``src,dst,weight`` or NetHEPT's ``n m`` first line) detected when
        ``header=None``.  Integer ids are parsed by a numba kernel (about
        16 bytes of peak memory per edge while loading, 8 per edge kept, 16
        with weights); any non-integer id switches to string ids.
        ``progress(done_bytes, total_bytes)`` is called after each 32 MiB.

        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "g.txt")
        >>> _ = open(path, "w").write("# demo\\n1 2\\n2 3\\n2 3\\n3 3\\n")
        >>> g = Graph.from_edgelist(path)
        >>> g.n, g.m
        (3, 2)
        """
        raw: RawEdges = read_edgelist(path, header=header, weights=weights, progress=progress)
        n = int(raw.ids.shape[0])
        src, dst, w, ids = raw.src, raw.dst, raw.weight, raw.ids
        del raw
        return cls.from_dense(
            src, dst, n, w, ids, drop_self_loops=drop_self_loops, dedupe=dedupe, reverse=reverse
        )

    @classmethod
    def from_networkx(cls, graph: Any, weight: str | None = None) -> Graph:
        """Build from a NetworkX graph (undirected edges become two directed edges).

        >>> import networkx as nx
        >>> Graph.from_networkx(nx.path_graph(3)).m
        4
        """
        nodes = list(graph.nodes())
        index = {v: i for i, v in enumerate(nodes)}
        src: list[int] = []
        dst: list[int] = []
        wts: list[float] = []
        directed = graph.is_directed()
        for u, v, data in graph.edges(data=True):
            pairs = [(u, v)] if directed or u == v else [(u, v), (v, u)]
            for a, b in pairs:
                src.append(index[a])
                dst.append(index[b])
                if weight is not None:
                    wts.append(float(data.get(weight, 1.0)))
        return cls.from_dense(
            np.asarray(src, dtype=np.int64),
            np.asarray(dst, dtype=np.int64),
            len(nodes),
            np.asarray(wts, dtype=np.float32) if weight is not None else None,
            _id_array(nodes),
            drop_self_loops=False,
            dedupe=not graph.is_multigraph(),
        )

    # -- sizes and degrees ---------------------------------------------------------------------

    @property
    def n(self) -> int:
        """Number of nodes."""
        return int(self.out_indptr.shape[0] - 1)

    @property
    def m(self) -> int:
        """Number of (directed) edges."""
        return int(self.out_indices.shape[0])

    @property
    def out_degree(self) -> np.ndarray:
        """Out-degree of every node (int64)."""
        return np.diff(self.out_indptr)

    @property
    def in_degree(self) -> np.ndarray:
        """In-degree of every node (int64)."""
        return np.diff(self.in_indptr)

    @property
    def weighted(self) -> bool:
        return self.out_weight is not None

    @property
    def nbytes(self) -> int:
        """Bytes held by the CSR arrays (ids excluded)."""
        arrays = [self.out_indptr, self.out_indices, self.in_indptr, self.in_indices]
        arrays += [a for a in (self.out_weight, self.in_weight) if a is not None]
        return int(sum(a.nbytes for a in arrays))

    def successors(self, v: int) -> np.ndarray:
        """Heads of v's out-edges (dense indices)."""
        return self.out_indices[self.out_indptr[v] : self.out_indptr[v + 1]]

    def predecessors(self, v: int) -> np.ndarray:
        """Tails of v's in-edges (dense indices)."""
        return self.in_indices[self.in_indptr[v] : self.in_indptr[v + 1]]

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """All edges as dense ``(src, dst)`` arrays, in out-CSR order."""
        src = np.repeat(np.arange(self.n, dtype=self.out_indices.dtype), self.out_degree)
        return src, self.out_indices

    # -- ids --------------------------------------------------------------------------------------

    def index_of(self, node: Hashable) -> int:
        """Dense index of the node with original id ``node``.

        On a graph with integer ids a numeric string (``"42"``) is accepted too.
        Raises ``KeyError`` naming the id when it is not in the graph.
        """
        if self.ids.dtype.kind in "iu":
            try:
                key = int(node)  # type: ignore[call-overload]
            except (TypeError, ValueError):
                raise KeyError(f"node {node!r} is not in the graph") from None
            i = int(np.searchsorted(self.ids, key))
            if i < self.n and self.ids[i] == key and _sorted(self.ids):
                return i
            if self._index is None:
                self._index = {int(k): j for j, k in enumerate(self.ids.tolist())}
            if key in self._index:
                return self._index[key]
            raise KeyError(f"node {node!r} is not in the graph")
        if self._index is None:
            self._index = {k: j for j, k in enumerate(self.ids.tolist())}
        try:
            return self._index[node]
        except KeyError:
            if not isinstance(node, str) and str(node) in self._index:
                return self._index[str(node)]
            raise KeyError(f"node {node!r} is not in the graph") from None

    def indices_of(self, nodes: Iterable[Hashable]) -> np.ndarray:
        """Dense indices (int64) of several original ids."""
        return np.asarray([self.index_of(x) for x in nodes], dtype=np.int64)

    def id_list(self, indices: Iterable[int]) -> list[Any]:
        """Original ids (as plain Python ints or strings) of dense indices."""
        return [_plain(self.ids[int(i)]) for i in indices]

    # -- conversions (tests and benchmarks) ----------------------------------------------------

    def to_networkx(self) -> Any:
        """A ``networkx.DiGraph`` (or ``MultiDiGraph`` with multi-edges) on dense indices."""
        import networkx as nx

        src, dst = self.edges()
        multi = self.m != len(set(zip(src.tolist(), dst.tolist(), strict=True)))
        g = nx.MultiDiGraph() if multi else nx.DiGraph()
        g.add_nodes_from(range(self.n))
        if self.out_weight is not None:
            g.add_weighted_edges_from(
                zip(src.tolist(), dst.tolist(), self.out_weight.tolist(), strict=True)
            )
        else:
            g.add_edges_from(zip(src.tolist(), dst.tolist(), strict=True))
        return g

    def to_igraph(self) -> Any:
        """An ``igraph.Graph`` (directed) on dense indices."""
        import igraph as ig

        src, dst = self.edges()
        return ig.Graph(n=self.n, edges=np.column_stack([src, dst]).tolist(), directed=True)

    def __repr__(self) -> str:
        return f"Graph(n={self.n}, m={self.m}, weighted={self.weighted})"


def segment_sums(values: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """Sum of ``values[indptr[i]:indptr[i+1]]`` for every row i (float64; 0 for empty rows)."""
    c = np.zeros(values.shape[0] + 1, dtype=np.float64)
    np.cumsum(values, dtype=np.float64, out=c[1:])
    return c[indptr[1:]] - c[indptr[:-1]]


def _sorted(ids: np.ndarray) -> bool:
    return bool(ids.shape[0] < 2 or np.all(ids[1:] > ids[:-1]))


def _py(values: Sequence[Hashable] | np.ndarray) -> Iterable[Hashable]:
    return values.tolist() if isinstance(values, np.ndarray) else values


def _plain(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else x


def _id_array(ids: Sequence[Hashable] | np.ndarray) -> np.ndarray:
    values = list(_py(ids))
    if values and all(isinstance(v, int | np.integer) for v in values):
        return np.asarray(values, dtype=np.int64)
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    return arr
