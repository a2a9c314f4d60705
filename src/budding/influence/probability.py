"""Edge probabilities (Independent Cascade) and weights (Linear Threshold).

Specs accepted everywhere a ``probability=`` is taken:

* ``"wc"`` — weighted cascade, p(u→v) = 1 / in-degree(v) (Kempe, Kleinberg &
  Tardos, "Maximizing the spread of influence through a social network",
  KDD 2003).  Under LT this gives weights summing to 1 at every node.
* ``"uniform:P"`` (or a bare number ``"P"``) — every edge has probability P.
* ``"trivalency"`` — each edge gets 0.1, 0.01 or 0.001, chosen by a hash of
  its endpoints (Chen, Wang & Yang, "Efficient influence maximization in
  social networks", KDD 2009); reproducible, the same for a given edge in both
  directions of storage.
* ``"file"`` — the graph's weights (third column), which must lie in [0, 1];
  under LT every node's incoming weights must sum to at most 1.  Under IC the
  graph must not have merged duplicate edges (their weights were added, which
  probabilities do not do): load such a file with ``dedupe=False``.
* ``"weighted"`` — weighted cascade by strength: p(u→v) = w(u, v) / max(1, Σ w(·, v)),
  so the members v hears from most carry most of the influence on v, and
  faint contact (total weight below 1, e.g. one interaction long ago) stays
  faint.  With unit weights it is exactly ``"wc"``.  The default for a
  program's own graph, whose weights are interaction counts discounted by
  age.  Under LT the weights into each node sum to at most 1.

Multi-edges (``dedupe=False``) each carry their own probability.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from budding.influence._rng import mix64
from budding.influence.graph import Graph, segment_sums

__all__ = ["EdgeProbabilities", "ProbabilityError", "edge_probabilities"]

_TRIVALENCY = np.array([0.1, 0.01, 0.001], dtype=np.float32)


class ProbabilityError(ValueError):
    """An unknown probability spec, or weights that are not valid probabilities."""


@dataclass(frozen=True)
class EdgeProbabilities:
    """Per-edge probabilities aligned with both CSRs of a :class:`Graph`.

    ``in_p[e]`` belongs to in-edge ``e`` (``graph.in_indices[e]`` → v),
    ``out_p[e]`` to out-edge ``e``.  ``node_p[v]`` is the probability shared by
    all of v's in-edges when they are equal (weighted cascade, uniform …), and
    -1 otherwise: RR-set sampling then skips over failed in-edges with one
    geometric draw instead of one coin per edge (SUBSIM).
    """

    spec: str
    in_p: np.ndarray
    out_p: np.ndarray
    node_p: np.ndarray

    @property
    def uniform_per_node(self) -> bool:
        return bool(np.all(self.node_p >= 0))


@njit(cache=True)
def _trivalency(indptr, indices, row_is_src, salt, values):
    n = indptr.shape[0] - 1
    out = np.empty(indices.shape[0], dtype=np.float32)
    for a in range(n):
        for e in range(indptr[a], indptr[a + 1]):
            b = indices[e]
            u, v = (a, b) if row_is_src else (b, a)
            h = mix64(np.uint64(u) * np.uint64(0x100000001B3) ^ np.uint64(v) ^ salt)
            out[e] = values[h % np.uint64(3)]
    return out


@njit(cache=True)
def _node_uniform(in_indptr, in_p):
    n = in_indptr.shape[0] - 1
    out = np.empty(n, dtype=np.float64)
    for v in range(n):
        s, e = in_indptr[v], in_indptr[v + 1]
        if s == e:
            out[v] = 0.0
            continue
        first = in_p[s]
        same = True
        for j in range(s + 1, e):
            if in_p[j] != first:
                same = False
                break
        out[v] = first if same else -1.0
    return out


def edge_probabilities(graph: Graph, spec: str = "wc", model: str = "ic") -> EdgeProbabilities:
    """Edge probabilities for ``spec`` (see the module docstring) under ``model``.

    O(n + m).  Raises :class:`ProbabilityError` naming the problem for an
    unknown spec, a missing or out-of-range weight, or LT weights summing over 1.

    >>> g = Graph.from_edges([1, 2, 3], [3, 3, 1])
    >>> p = edge_probabilities(g, "wc")
    >>> p.node_p.tolist()
    [1.0, 0.0, 0.5]
    """
    spec = spec.strip().lower()
    in_deg = graph.in_degree
    if spec == "wc":
        inv = np.zeros(graph.n, dtype=np.float64)
        nz = in_deg > 0
        inv[nz] = 1.0 / in_deg[nz]
        in_p = np.repeat(inv.astype(np.float32), in_deg)
        out_p = inv.astype(np.float32)[graph.out_indices]
        node_p = inv
        node_p[~nz] = 0.0
    elif spec.startswith("uniform") or _is_number(spec):
        text = spec.split(":", 1)[1] if spec.startswith("uniform") else spec
        if spec.startswith("uniform") and ":" not in spec:
            raise ProbabilityError("probability 'uniform' needs a value: 'uniform:0.1'")
        try:
            p = float(text)
        except ValueError:
            raise ProbabilityError(f"probability '{spec}': '{text}' is not a number") from None
        if not 0.0 <= p <= 1.0:
            raise ProbabilityError(f"probability '{spec}': {p} is not in [0, 1]")
        in_p = np.full(graph.m, p, dtype=np.float32)
        out_p = in_p
        node_p = np.where(in_deg > 0, float(np.float32(p)), 0.0)
    elif spec == "trivalency":
        salt = np.uint64(0x5EED)
        out_p = _trivalency(graph.out_indptr, graph.out_indices, True, salt, _TRIVALENCY)
        in_p = _trivalency(graph.in_indptr, graph.in_indices, False, salt, _TRIVALENCY)
        node_p = _node_uniform(graph.in_indptr, in_p)
    elif spec == "weighted":
        if graph.out_weight is None or graph.in_weight is None:
            raise ProbabilityError("probability 'weighted' needs a weighted graph")
        if graph.m and float(graph.in_weight.min()) < 0.0:
            raise ProbabilityError("probability 'weighted': weights must be non-negative")
        in_sum = segment_sums(graph.in_weight, graph.in_indptr)
        inv = np.zeros(graph.n)
        nz = in_sum > 0
        inv[nz] = 1.0 / np.maximum(in_sum[nz], 1.0)
        in_p = (graph.in_weight * np.repeat(inv, in_deg)).astype(np.float32)
        out_p = (graph.out_weight * inv[graph.out_indices]).astype(np.float32)
        node_p = _node_uniform(graph.in_indptr, in_p)
    elif spec == "file":
        if graph.out_weight is None or graph.in_weight is None:
            raise ProbabilityError(
                "probability 'file' needs a weight per edge: a third column of numbers "
                "(a file whose first line's third field is not a number is read without one)"
            )
        if model == "ic" and graph.merged_duplicates:
            count = graph.merged_duplicates
            raise ProbabilityError(
                f"probability 'file': {count} duplicate edge"
                f"{' was' if count == 1 else 's were'} merged by adding their weights, but IC probabilities do not add (two chances "
                "of 0.5 make 0.75); load with dedupe=False (CLI --keep-duplicates) to keep "
                "each as its own chance"
            )
        out_p, in_p = graph.out_weight, graph.in_weight
        if graph.m and (float(in_p.min()) < 0.0 or float(in_p.max()) > 1.0):
            raise ProbabilityError(
                "probability 'file': weights must lie in [0, 1] "
                f"(found {float(in_p.min()):g} .. {float(in_p.max()):g})"
            )
        node_p = _node_uniform(graph.in_indptr, in_p)
    else:
        raise ProbabilityError(
            f"unknown probability '{spec}': use wc, uniform:P, trivalency, file or weighted"
        )
    if model == "lt":
        sums = segment_sums(in_p, graph.in_indptr) if graph.m else None
        if sums is not None:
            worst = float(sums.max())
            if worst > 1.0 + 1e-4:
                v = int(sums.argmax())
                raise ProbabilityError(
                    f"probability '{spec}' under LT: weights into node {graph.id_list([v])[0]} sum to "
                    f"{worst:.4g} > 1 (use 'wc', or scale the weights)"
                )
    elif model != "ic":
        raise ProbabilityError(f"unknown model '{model}': use ic or lt")
    return EdgeProbabilities(spec, in_p, out_p, node_p)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
