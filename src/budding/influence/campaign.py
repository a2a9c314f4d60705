"""Monte-Carlo diffusion: IC/LT spread estimates and the campaign model.

Campaign model (documented in docs/influence.md):

* Step 0: the seeds hear the campaign and are *active*.
* Each active member decides once, in the step after activation, whether to
  pass it on: with the share probability q(c, r) for launch cost c and
  reward r.  A sharer exposes each out-neighbour v once, and the exposure
  converts v with probability p(u→v) · s^j, where j is the number of
  exposures v had before (repeated exposure saturates: s = ``saturation``).
* q(c, r): q₀ · h(c), h(c) = (1 + (1/c½)^β) / (1 + (c/c½)^β) a logistic in
  log-cost normalised to h(1) = 1; a reward multiplies the odds by
  (1 + r)^κ.  Defaults q₀ = 1, c½ = 2, β = 7, κ = 1, s = 0.8: twice the
  launch cost halves sharing, four times cuts it to 0.8 % — the spec's walk
  (3 → 12 minutes, 90 walks → 0).  :func:`calibrate` fits q₀, c½, β from a
  measured share funnel.

With q = 1 and s = 1 the campaign model is exactly Independent Cascade.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numba import njit

from budding.influence._rng import chunk_state, next_float, seed_u64
from budding.influence.graph import Graph
from budding.influence.measures import MAX_RUNS
from budding.influence.parallel import get_executor
from budding.influence.probability import EdgeProbabilities, edge_probabilities

__all__ = [
    "CampaignResult",
    "Plan",
    "ShareModel",
    "SpreadEstimate",
    "calibrate",
    "compare",
    "simulate",
    "spread",
]

CHUNK = 64


# -- kernels ------------------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _ic_batch(out_indptr, out_indices, out_p, seeds, n, seed, chunk, first, count):
    runs = chunk * count
    reach = np.empty(runs, dtype=np.int64)
    mark = np.zeros(n, dtype=np.int32)
    queue = np.empty(n, dtype=np.int32)
    stamp = 0
    r = 0
    for c in range(first, first + count):
        st = chunk_state(seed, c)
        for _ in range(chunk):
            stamp += 1
            tail = 0
            for i in range(seeds.shape[0]):
                s = seeds[i]
                if mark[s] != stamp:
                    mark[s] = stamp
                    queue[tail] = s
                    tail += 1
            head = 0
            while head < tail:
                u = queue[head]
                head += 1
                for e in range(out_indptr[u], out_indptr[u + 1]):
                    v = out_indices[e]
                    if mark[v] != stamp and next_float(st) < out_p[e]:
                        mark[v] = stamp
                        queue[tail] = v
                        tail += 1
            reach[r] = tail
            r += 1
    return reach


@njit(cache=True, nogil=True)
def _lt_batch(out_indptr, out_indices, out_p, seeds, n, seed, chunk, first, count):
    runs = chunk * count
    reach = np.empty(runs, dtype=np.int64)
    active = np.zeros(n, dtype=np.int32)
    touched = np.zeros(n, dtype=np.int32)
    weight = np.zeros(n, dtype=np.float64)
    thresh = np.zeros(n, dtype=np.float64)
    queue = np.empty(n, dtype=np.int32)
    stamp = 0
    r = 0
    for c in range(first, first + count):
        st = chunk_state(seed, c)
        for _ in range(chunk):
            stamp += 1
            tail = 0
            for i in range(seeds.shape[0]):
                s = seeds[i]
                if active[s] != stamp:
                    active[s] = stamp
                    queue[tail] = s
                    tail += 1
            head = 0
            while head < tail:
                u = queue[head]
                head += 1
                for e in range(out_indptr[u], out_indptr[u + 1]):
                    v = out_indices[e]
                    if active[v] == stamp:
                        continue
                    if touched[v] != stamp:
                        touched[v] = stamp
                        weight[v] = 0.0
                        thresh[v] = 1.0 - next_float(st)
                    weight[v] += out_p[e]
                    if weight[v] >= thresh[v]:
                        active[v] = stamp
                        queue[tail] = v
                        tail += 1
            reach[r] = tail
            r += 1
    return reach


@njit(cache=True, nogil=True)
def _campaign_batch(
    out_indptr, out_indices, out_p, seeds, n, q, sat, max_steps, seed, chunk, first, count
):
    runs = chunk * count
    reach = np.empty(runs, dtype=np.int64)
    per_step = np.zeros((runs, max_steps + 1), dtype=np.int32)
    active = np.zeros(n, dtype=np.int32)
    exposed = np.zeros(n, dtype=np.int32)
    seen = np.zeros(n, dtype=np.int32)
    queue = np.empty(n, dtype=np.int32)
    stamp = 0
    r = 0
    for c in range(first, first + count):
        st = chunk_state(seed, c)
        for _ in range(chunk):
            stamp += 1
            tail = 0
            for i in range(seeds.shape[0]):
                s = seeds[i]
                if active[s] != stamp:
                    active[s] = stamp
                    queue[tail] = s
                    tail += 1
            per_step[r, 0] = tail
            head = 0
            step = 0
            while head < tail and step < max_steps:
                step += 1
                level_end = tail
                while head < level_end:
                    u = queue[head]
                    head += 1
                    if next_float(st) >= q:
                        continue
                    for e in range(out_indptr[u], out_indptr[u + 1]):
                        v = out_indices[e]
                        if active[v] == stamp:
                            continue
                        if seen[v] != stamp:
                            seen[v] = stamp
                            exposed[v] = 0
                        p = out_p[e]
                        if exposed[v] > 0:
                            p *= sat ** exposed[v]
                        exposed[v] += 1
                        if next_float(st) < p:
                            active[v] = stamp
                            queue[tail] = v
                            tail += 1
                per_step[r, step] = tail - level_end
            reach[r] = tail
            r += 1
    return reach, per_step


@dataclass(frozen=True)
class _SpreadJob:
    out_indptr: np.ndarray
    out_indices: np.ndarray
    out_p: np.ndarray
    seeds: np.ndarray
    n: int
    lt: bool
    seed: np.uint64
    chunk: int


def _spread_batch(job: _SpreadJob, first: int, count: int) -> np.ndarray:
    fn = _lt_batch if job.lt else _ic_batch
    return fn(
        job.out_indptr, job.out_indices, job.out_p, job.seeds, job.n, job.seed,
        job.chunk, first, count,
    )  # fmt: skip


@dataclass(frozen=True)
class _CampaignJob:
    out_indptr: np.ndarray
    out_indices: np.ndarray
    out_p: np.ndarray
    seeds: np.ndarray
    n: int
    q: float
    saturation: float
    max_steps: int
    seed: np.uint64
    chunk: int


def _campaign_run(job: _CampaignJob, first: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    return _campaign_batch(
        job.out_indptr, job.out_indices, job.out_p, job.seeds, job.n, job.q,
        job.saturation, job.max_steps, job.seed, job.chunk, first, count,
    )  # fmt: skip


# -- plain spread --------------------------------------------------------------------------------


@dataclass
class SpreadEstimate:
    """Monte-Carlo spread: mean, standard deviation and 95 % interval of the mean."""

    mean: float
    sd: float
    runs: int
    ci95: tuple[float, float]
    samples: np.ndarray = field(repr=False)

    @classmethod
    def of(cls, samples: np.ndarray) -> SpreadEstimate:
        x = samples.astype(np.float64)
        mean = float(x.mean())
        sd = float(x.std(ddof=1)) if x.shape[0] > 1 else 0.0
        half = 1.96 * sd / math.sqrt(max(x.shape[0], 1))
        return cls(mean, sd, int(x.shape[0]), (mean - half, mean + half), samples)


def _chunks(runs: int, chunk: int) -> int:
    return max(1, -(-int(runs) // chunk))


def spread(
    graph: Graph,
    seeds: Iterable[Hashable],
    runs: int = 10_000,
    *,
    model: str = "ic",
    probability: str | EdgeProbabilities = "wc",
    seed: int | None = 0,
    scheduler: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> SpreadEstimate:
    """Expected influence spread σ(S) of seed set S by Monte-Carlo simulation.

    Model: Independent Cascade (each newly active u gets one chance to
    activate each out-neighbour v, with probability p(u→v)) or Linear
    Threshold (v activates once the summed weights of its active
    in-neighbours reach a threshold drawn uniformly from (0, 1]).
    Paper: Kempe, Kleinberg & Tardos, "Maximizing the spread of influence
    through a social network", KDD 2003.

    Runs are generated in chunks of 64 (the last one cut to ``runs``) and
    split across threads or Dask workers with per-chunk random streams, so
    the result depends only on ``seed``.  Complexity: O(runs · edges explored); memory
    O(n) per thread.

    >>> g = Graph.from_edges([0, 0], [1, 2])
    >>> round(spread(g, [0], 6400, probability="uniform:0.5").mean, 1)
    2.0
    """
    probs = (
        probability
        if isinstance(probability, EdgeProbabilities)
        else edge_probabilities(graph, probability, model)
    )
    seed_idx = np.unique(graph.indices_of(seeds)).astype(np.int32)
    job = _SpreadJob(
        graph.out_indptr, graph.out_indices, probs.out_p, seed_idx, graph.n,
        model == "lt", seed_u64(seed), CHUNK,
    )  # fmt: skip
    n_chunks = _chunks(runs, CHUNK)
    done = [0]

    def tick(chunks: int) -> None:
        done[0] += chunks * CHUNK
        if progress is not None:
            progress(done[0], n_chunks * CHUNK)

    parts = get_executor(scheduler).map_chunks(_spread_batch, job, 0, n_chunks, tick)
    return SpreadEstimate.of(np.concatenate(parts)[: int(runs)])


# -- campaign model ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShareModel:
    """How likely a member who heard is to pass it on, as launch cost and reward change.

    q(c, r) = logistic-odds(q₀ · h(c)) × (1 + r)^κ, h(c) = (1 + c½^−β)/(1 + (c/c½)^β).
    ``saturation`` s: the j-th exposure of a member (j = 0, 1, …) converts with
    p(u→v) · s^j.  Defaults: twice the launch cost halves sharing, four times
    the launch cost cuts it below 1 % (the spec's walk example).
    """

    base: float = 1.0
    half_cost: float = 2.0
    steepness: float = 7.0
    reward_odds: float = 1.0
    saturation: float = 0.8

    def share_probability(self, launch_cost: float = 1.0, reward: float = 0.0) -> float:
        """q(c, r).

        >>> m = ShareModel()
        >>> round(m.share_probability(1), 3), round(m.share_probability(2), 3), m.share_probability(4) < 0.01
        (1.0, 0.504, True)
        """
        if launch_cost <= 0:
            raise ValueError(f"launch_cost must be positive, got {launch_cost}")
        if reward < 0:
            raise ValueError(f"reward must be non-negative, got {reward}")
        h = (1 + self.half_cost**-self.steepness) / (
            1 + (launch_cost / self.half_cost) ** self.steepness
        )
        q = min(1.0, self.base * h)
        if reward > 0 and 0 < q < 1:
            odds = q / (1 - q) * (1 + reward) ** self.reward_odds
            q = odds / (1 + odds)
        return q


def calibrate(step_rates: Sequence[float], *, base: ShareModel | None = None) -> ShareModel:
    """Fit a :class:`ShareModel` to a measured share funnel.

    ``step_rates[i]`` is the fraction of members at step i of the share flow
    who go on to the next (intent → open share sheet → pick channel → send).
    A flow of j steps is a launch cost of j, so the cumulative conversion
    C_j = r₁ ⋯ r_j is the share probability at launch cost j: q₀ = C₁, and
    (c½, β) are fitted by least squares to log(C_j / C₁) = log h(j)
    (β kept from ``base`` with two steps; only q₀ with one).

    >>> m = calibrate([0.8, 0.5, 0.2])
    >>> round(m.base, 2), round(m.share_probability(2), 2), round(m.share_probability(3), 3)
    (0.8, 0.4, 0.08)
    """
    from scipy.optimize import least_squares

    rates = np.asarray(step_rates, dtype=np.float64)
    if rates.ndim != 1 or rates.shape[0] == 0:
        raise ValueError("step_rates: give at least one step conversion rate")
    if np.any((rates <= 0) | (rates > 1)):
        raise ValueError("step_rates: every rate must be in (0, 1]")
    model = base or ShareModel()
    cum = np.cumprod(rates)
    model = replace(model, base=float(cum[0]))
    if rates.shape[0] == 1:
        return model
    cost = np.arange(1, rates.shape[0] + 1, dtype=np.float64)
    target = np.log(cum / cum[0])
    fit_beta = rates.shape[0] >= 3

    def log_h(params: np.ndarray) -> np.ndarray:
        half = math.exp(params[0])
        beta = math.exp(params[1]) if fit_beta else model.steepness
        return np.log((1 + half**-beta) / (1 + (cost / half) ** beta)) - target

    x0 = np.array([math.log(model.half_cost), math.log(model.steepness)])
    if fit_beta:
        sol = least_squares(log_h, x0)
    else:
        sol = least_squares(lambda p: log_h(np.array([p[0], 0.0])), x0[:1])
    half = float(math.exp(sol.x[0]))
    beta = float(math.exp(sol.x[1])) if fit_beta else model.steepness
    return replace(model, half_cost=half, steepness=beta)


@dataclass
class Plan:
    """One campaign plan: who gets the material, at what launch cost and reward."""

    seeds: Sequence[Hashable]
    launch_cost: float = 1.0
    reward: float = 0.0
    name: str = ""


@dataclass
class CampaignResult:
    """Outcome of :func:`simulate` for one plan.

    ``reach`` is the number of members who heard and converted, seeds
    included; ``reach_per_step[t]`` the mean cumulative reach after step t
    (``reach_per_step_ci95[t]`` its 95 % interval);
    ``new_per_step[t]`` the mean number converted at step t (generation t);
    ``k_per_generation[t]`` = new_per_step[t+1] / new_per_step[t], the viral
    K-factor of generation t.
    """

    name: str
    seeds: list[Any]
    launch_cost: float
    reward: float
    share_probability: float
    runs: int
    reach: SpreadEstimate
    reach_per_step: np.ndarray
    new_per_step: np.ndarray
    k_per_generation: np.ndarray
    reach_per_step_ci95: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "seeds": self.seeds,
            "launch_cost": self.launch_cost,
            "reward": self.reward,
            "share_probability": self.share_probability,
            "runs": self.runs,
            "reach": {
                "mean": self.reach.mean,
                "sd": self.reach.sd,
                "ci95": list(self.reach.ci95),
            },
            "reach_per_step": [float(x) for x in self.reach_per_step],
            "reach_per_step_ci95": [[float(a), float(b)] for a, b in self.reach_per_step_ci95],
            "k_per_generation": [float(x) for x in self.k_per_generation],
        }


def simulate(
    graph: Graph,
    seeds: Iterable[Hashable],
    runs: int = 10_000,
    *,
    launch_cost: float = 1.0,
    reward: float = 0.0,
    share: ShareModel | None = None,
    probability: str | EdgeProbabilities = "wc",
    max_steps: int = 50,
    seed: int | None = 0,
    scheduler: Any = None,
    name: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> CampaignResult:
    """Simulate a word-of-mouth campaign from ``seeds`` in discrete steps (Monte-Carlo).

    Model: the campaign model of this module's docstring — Independent
    Cascade (Kempe, Kleinberg & Tardos, KDD 2003) in which each active member
    shares with probability q(launch cost, reward) and repeated exposures of
    the same member saturate geometrically.  The launch-cost curve follows
    the activation-cost argument of the source articles; a
    :func:`calibrate`d ``share`` model replaces the default curve.

    Returns expected reach with a 95 % interval, mean cumulative reach per
    step (steps capped at ``max_steps``) and K per generation.  Runs are
    chunked (64 per chunk, per-chunk random streams): the same ``seed`` gives
    the same result on threads or on Dask.  Complexity: O(runs · edges
    explored).

    >>> g = Graph.from_edges([0, 1, 2], [1, 2, 3])
    >>> r = simulate(g, [0], 640, probability="uniform:1", share=ShareModel(saturation=1))
    >>> r.reach.mean, r.reach_per_step.tolist()
    (4.0, [1.0, 2.0, 3.0, 4.0])
    """
    if not 1 <= runs <= MAX_RUNS:
        raise ValueError(f"runs must be between 1 and {MAX_RUNS:,}, got {runs}")
    model = share or ShareModel()
    q = model.share_probability(launch_cost, reward)
    probs = (
        probability
        if isinstance(probability, EdgeProbabilities)
        else edge_probabilities(graph, probability, "ic")
    )
    seed_list = list(seeds)
    seed_idx = np.unique(graph.indices_of(seed_list)).astype(np.int32)
    job = _CampaignJob(
        graph.out_indptr, graph.out_indices, probs.out_p, seed_idx, graph.n, float(q),
        float(model.saturation), int(max_steps), seed_u64(seed), CHUNK,
    )  # fmt: skip
    n_chunks = _chunks(runs, CHUNK)
    done = [0]

    def tick(chunks: int) -> None:
        done[0] += chunks * CHUNK
        if progress is not None:
            progress(done[0], n_chunks * CHUNK)

    parts = get_executor(scheduler).map_chunks(_campaign_run, job, 0, n_chunks, tick)
    reach = np.concatenate([p[0] for p in parts])[: int(runs)]
    steps = np.concatenate([p[1] for p in parts])[: int(runs)]
    new = steps.mean(axis=0)
    last = int(np.max(np.flatnonzero(new > 0))) if np.any(new > 0) else 0
    new = new[: last + 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        k_gen = np.where(new[:-1] > 0, new[1:] / np.where(new[:-1] > 0, new[:-1], 1), 0.0)
    cum = np.cumsum(steps[:, : last + 1], axis=1, dtype=np.float64)
    half = (
        1.96 * cum.std(axis=0, ddof=1) / math.sqrt(cum.shape[0])
        if cum.shape[0] > 1
        else np.zeros(cum.shape[1])
    )
    cum_mean = cum.mean(axis=0)
    return CampaignResult(
        name=name,
        seeds=[_plain(s) for s in seed_list],
        launch_cost=float(launch_cost),
        reward=float(reward),
        share_probability=float(q),
        runs=int(reach.shape[0]),
        reach=SpreadEstimate.of(reach),
        reach_per_step=cum_mean,
        new_per_step=new,
        k_per_generation=k_gen,
        reach_per_step_ci95=np.column_stack([cum_mean - half, cum_mean + half]),
    )


def compare(
    graph: Graph,
    plans: Mapping[str, Plan] | Sequence[Plan],
    runs: int = 10_000,
    **kwargs: Any,
) -> list[CampaignResult]:
    """Simulate several plans with the same random streams (common random numbers).

    Each plan runs :func:`simulate` with the same ``seed``, so differences
    between plans are not noise from different draws.  Typical plans: "top 50
    by IMM" vs "top 50 by followers"; "launch cost 1" vs "launch cost 3".

    >>> g = Graph.from_edges([0, 1, 2], [1, 2, 3])
    >>> rows = compare(g, {"cheap": Plan([0], 1.0), "costly": Plan([0], 4.0)}, 640)
    >>> [r.name for r in rows], rows[0].reach.mean > rows[1].reach.mean
    (['cheap', 'costly'], True)
    """
    items = (
        [(name, plan) for name, plan in plans.items()]
        if isinstance(plans, Mapping)
        else [(plan.name or f"plan {i + 1}", plan) for i, plan in enumerate(plans)]
    )
    return [
        simulate(
            graph,
            plan.seeds,
            runs,
            launch_cost=plan.launch_cost,
            reward=plan.reward,
            name=name,
            **kwargs,
        )
        for name, plan in items
    ]


def _plain(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else x
