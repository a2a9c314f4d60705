"""Influence maximization: IMM (Tang, Shi & Xiao, SIGMOD 2015)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from budding.influence.graph import Graph
from budding.influence.measures import MIN_EPSILON
from budding.influence.parallel import Executor, get_executor
from budding.influence.probability import EdgeProbabilities, edge_probabilities
from budding.influence.rrsets import RRSampler, RRSets, coverage_bound, max_coverage

__all__ = ["SeedSet", "imm", "imm_theta"]


@dataclass
class SeedSet:
    """IMM's answer: seeds in the order chosen, with estimated spread.

    ``marginal[i]`` is the estimated extra spread of ``seeds[i]`` given the
    seeds before it; ``cumulative[i]`` the estimated spread of the first i + 1
    seeds (counted over the target audience when targeted).
    """

    seeds: list[Any]
    indices: np.ndarray
    marginal: np.ndarray
    cumulative: np.ndarray
    spread: float
    rr_sets: int
    model: str
    probability: str
    epsilon: float
    ell: float
    k: int
    seconds: float
    audience: int
    lower_bound: float = field(default=0.0)

    def to_json(self) -> dict[str, Any]:
        """The ``seeds --json`` object of the CLI (see docs/influence.md)."""
        return {
            "seeds": self.seeds,
            "spread": float(self.spread),
            "model": self.model,
            "epsilon": float(self.epsilon),
            "k": int(self.k),
            "rr_sets": int(self.rr_sets),
            "seconds": float(self.seconds),
        }


def _log_binom(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def imm_theta(
    n: int, k: int, epsilon: float, ell: float, candidates: int | None = None
) -> tuple[float, float]:
    """IMM's λ' (sampling phase) and λ* (final) constants, with ℓ already adjusted.

    λ' = (2 + 2ε'/3)(log C(c, k) + ℓ log n + log log₂ n) · n / ε'², ε' = √2 ε;
    λ* = 2n((1 − 1/e)α + β)² / ε², α = √(ℓ log n + log 2),
    β = √((1 − 1/e)(log C(c, k) + ℓ log n + log 2)); c = number of candidates.
    """
    c = n if candidates is None else candidates
    logn = math.log(max(n, 2))
    ell = ell * (1 + math.log(2) / logn)
    lcnk = _log_binom(c, k)
    eps_p = math.sqrt(2) * epsilon
    lam_p = (
        (2 + 2 * eps_p / 3)
        * (lcnk + ell * logn + math.log(max(math.log2(max(n, 2)), 1.0)))
        * n
        / eps_p**2
    )
    one = 1 - 1 / math.e
    alpha = math.sqrt(ell * logn + math.log(2))
    beta = math.sqrt(one * (lcnk + ell * logn + math.log(2)))
    lam_s = 2 * n * (one * alpha + beta) ** 2 / epsilon**2
    return lam_p, lam_s


def imm(
    graph: Graph,
    k: int = 50,
    *,
    model: str = "ic",
    epsilon: float = 0.5,
    ell: float = 1.0,
    probability: str | EdgeProbabilities = "wc",
    seed: int | None = 0,
    targets: Iterable[Hashable] | np.ndarray | None = None,
    candidates: Iterable[Hashable] | np.ndarray | None = None,
    scheduler: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> SeedSet:
    """Choose ``k`` seed nodes maximising expected influence spread, with IMM.

    Model: Independent Cascade (``model="ic"``: an active u activates v once,
    with probability p(u→v)) or Linear Threshold (``"lt"``: v activates when the
    weights of its active in-neighbours pass a uniform random threshold).
    Edge probabilities/weights: ``"wc"`` (1/in-degree), ``"uniform:P"``,
    ``"trivalency"`` or ``"file"`` (see :mod:`budding.influence.probability`).

    Paper: Tang, Shi & Xiao, "Influence maximization in near-linear time: a
    martingale approach", SIGMOD 2015 (Algorithms 1–3): a sampling phase
    halves a guess x of OPT until greedy coverage of λ'/x RR sets certifies a
    lower bound LB; then θ = λ*/LB RR sets and greedy max coverage give a
    (1 − 1/e − ε)-approximation with probability ≥ 1 − 1/n^ℓ (ℓ is scaled by
    1 + log 2 / log n as in the paper).  A guess whose threshold even the k
    largest set counts summed cannot reach (:func:`coverage_bound`) is rejected
    without running the greedy: same result, NetHEPT's first three guesses cost
    no greedy.  Where a node's in-edges share one
    probability, RR sets draw its live in-edges as a binomial count placed by
    Floyd's algorithm, or by SUBSIM's geometric skipping (Guo et al., SIGMOD
    2020) where many are expected (see :func:`~budding.influence.rrsets._rr_batch`).
    They are reused between the two phases as in the
    paper (Chen, "An issue in the martingale analysis of the influence
    maximization algorithm IMM", 2018, discusses the small dependence this
    leaves; regenerate with another ``seed`` if it matters to you).  Greedy
    max coverage (:func:`max_coverage`) is lazy (CELF) over a node → set
    index of the likely seeds that grows with the sets, so the doubling
    phases do not re-scan old sets; its choices are the plain greedy's.

    Targeted: with ``targets`` (ids), only those nodes count towards spread:
    RR roots are drawn from the targets and estimates are scaled by |targets|
    (n is replaced by |targets| in IMM's bounds).  ``candidates`` (ids)
    restricts the seeds (members who consented and are active); the
    guarantee is then relative to the best candidate set.

    Reproducible: the same ``seed`` gives the same seeds, locally or on Dask
    (``scheduler``: None for local threads, ``"local"``, a ``tcp://`` address
    or a ``distributed.Client``).  ``progress(rr_sets_done, rr_sets_needed)``.

    Complexity: O((k + ℓ)(n + m) log n / ε²) expected time; memory O(Σ|R|).

    >>> g = Graph.from_edges([0, 0, 0, 4], [1, 2, 3, 5])
    >>> result = imm(g, 2, probability="uniform:1", seed=1)
    >>> result.seeds, round(result.spread)
    ([0, 4], 6)
    """
    started = time.perf_counter()
    if model not in ("ic", "lt"):
        raise ValueError(f"model '{model}': use ic or lt")
    if not MIN_EPSILON <= epsilon < 1:
        raise ValueError(f"epsilon must be in [{MIN_EPSILON}, 1), got {epsilon}")
    if ell <= 0:
        raise ValueError(f"ell must be positive, got {ell}")
    probs = (
        probability
        if isinstance(probability, EdgeProbabilities)
        else edge_probabilities(graph, probability, model)
    )
    roots = None
    audience = graph.n
    if targets is not None:
        roots = np.unique(_indices(graph, targets))
        if roots.shape[0] == 0:
            raise ValueError("targets is empty: no member has that attribute")
        audience = int(roots.shape[0])
    allowed = None
    n_candidates = graph.n
    if candidates is not None:
        cand = np.unique(_indices(graph, candidates))
        if cand.shape[0] == 0:
            raise ValueError("candidates is empty: no member may be chosen as a seed")
        allowed = np.zeros(graph.n, dtype=np.bool_)
        allowed[cand] = True
        n_candidates = int(cand.shape[0])
    k = int(k)
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    k = min(k, n_candidates)
    executor: Executor = get_executor(scheduler)
    sampler = RRSampler.build(graph, probs, model=model, roots=roots, seed=seed)
    rr = RRSets(sampler, executor)
    n_eff = audience
    lam_p, lam_s = imm_theta(n_eff, k, epsilon, ell, n_candidates)
    eps_p = math.sqrt(2) * epsilon
    lower = 1.0
    target_total = [0]

    def tick(done: int) -> None:
        if progress is not None:
            progress(min(rr.count + done, target_total[0]), target_total[0])

    for i in range(1, max(1, int(math.log2(max(n_eff, 2))))):
        x = n_eff / 2**i
        theta_i = lam_p / x
        target_total[0] = int(theta_i)
        rr.extend_to(math.ceil(theta_i), tick)
        if n_eff * coverage_bound(rr, k, allowed) / rr.count < (1 + eps_p) * x:
            continue  # not even k disjoint best nodes reach it: the greedy cannot
        _, gains = max_coverage(rr, k, allowed)
        est = n_eff * gains.sum() / rr.count
        if est >= (1 + eps_p) * x:
            lower = est / (1 + eps_p)
            break
    theta = math.ceil(lam_s / lower)
    target_total[0] = theta
    rr.extend_to(theta, tick)
    seeds, gains = max_coverage(rr, k, allowed)
    marginal = gains * (n_eff / rr.count)
    cumulative = np.cumsum(marginal)
    return SeedSet(
        seeds=graph.id_list(seeds),
        indices=seeds,
        marginal=marginal,
        cumulative=cumulative,
        spread=float(cumulative[-1]),
        rr_sets=rr.count,
        model=model,
        probability=probs.spec,
        epsilon=epsilon,
        ell=ell,
        k=k,
        seconds=time.perf_counter() - started,
        audience=audience,
        lower_bound=lower,
    )


def _indices(graph: Graph, nodes: Iterable[Hashable] | np.ndarray) -> np.ndarray:
    if isinstance(nodes, np.ndarray) and nodes.dtype == np.bool_:
        return np.flatnonzero(nodes)
    return graph.indices_of(nodes)
