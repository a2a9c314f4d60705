"""The campaign model: launch cost, reward, saturation, calibration, plans side by side."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from budding.influence import Graph, Plan, ShareModel, calibrate, compare, simulate


def chain(n: int) -> Graph:
    return Graph.from_edges(list(range(n - 1)), list(range(1, n)))


def test_launch_cost_curve_follows_the_walk_example() -> None:
    m = ShareModel()
    assert m.share_probability(1.0) == pytest.approx(1.0)
    assert m.share_probability(2.0) == pytest.approx(0.5, abs=0.01)
    assert m.share_probability(4.0) < 0.01  # 3 → 12 minutes: 90 walks → 0
    costs = np.linspace(1, 6, 30)
    q = [m.share_probability(c) for c in costs]
    assert all(a >= b for a, b in itertools.pairwise(q))
    with pytest.raises(ValueError, match="launch_cost"):
        m.share_probability(0)


def test_reward_raises_sharing_without_passing_one() -> None:
    m = ShareModel(base=0.4)
    assert m.share_probability(1, reward=1.0) > m.share_probability(1)
    assert m.share_probability(1, reward=1.0) == pytest.approx(0.4 / 0.6 * 2 / (1 + 0.4 / 0.6 * 2))
    assert m.share_probability(3, reward=50) < 1.0
    with pytest.raises(ValueError, match="reward"):
        m.share_probability(1, reward=-1)


def test_calibrate_recovers_a_known_curve() -> None:
    truth = ShareModel(base=0.7, half_cost=2.6, steepness=4.0)
    funnel_cum = [truth.share_probability(c) for c in (1, 2, 3, 4, 5)]
    rates = [funnel_cum[0]] + [b / a for a, b in itertools.pairwise(funnel_cum)]
    fitted = calibrate(rates)
    assert fitted.base == pytest.approx(0.7)
    assert fitted.half_cost == pytest.approx(2.6, rel=1e-3)
    assert fitted.steepness == pytest.approx(4.0, rel=1e-3)
    assert calibrate([0.5]).base == 0.5
    two = calibrate([0.8, 0.5])
    assert two.share_probability(2) == pytest.approx(0.4, rel=1e-3)
    with pytest.raises(ValueError, match="step_rates"):
        calibrate([1.2])


def test_steps_and_k_per_generation_on_a_chain() -> None:
    g = chain(6)
    r = simulate(g, [0], 128, probability="uniform:1", share=ShareModel(saturation=1.0))
    assert r.reach.mean == 6.0
    assert r.reach_per_step.tolist() == [1, 2, 3, 4, 5, 6]
    assert r.k_per_generation.tolist() == [1.0] * 5
    capped = simulate(g, [0], 128, probability="uniform:1", max_steps=2)
    assert capped.reach.mean == 3.0
    assert capped.runs == 128


def test_interval_and_exact_run_count() -> None:
    g = Graph.from_edges([0] * 20, list(range(1, 21)))
    r = simulate(g, [0], 1000, probability="uniform:0.5", share=ShareModel(saturation=1))
    assert r.runs == 1000
    lo, hi = r.reach.ci95
    assert lo < 11.0 < hi
    assert hi - lo == pytest.approx(2 * 1.96 * r.reach.sd / np.sqrt(1000))
    # a run count that would not fit in memory is refused before anything is allocated
    for runs in (0, 10**11):
        with pytest.raises(ValueError, match="runs must be between 1 and 1,000,000"):
            simulate(g, [0], runs)


def test_compare_plans_side_by_side() -> None:
    g = Graph.from_edges([0] * 20 + [30], [*list(range(1, 21)), 31])
    rows = compare(
        g,
        [
            Plan([0], 1.0, name="hub, 1 step"),
            Plan([0], 3.0, name="hub, 3 steps"),
            Plan([30], 1.0, name="leaf"),
            Plan([0], 3.0, reward=5.0, name="hub, 3 steps, reward"),
        ],
        2000,
        probability="uniform:0.5",
    )
    reach = {r.name: r.reach.mean for r in rows}
    assert reach["hub, 1 step"] > reach["hub, 3 steps, reward"] > reach["hub, 3 steps"]
    assert reach["hub, 1 step"] > reach["leaf"]
    assert rows[0].to_json()["reach"]["ci95"][0] < reach["hub, 1 step"]
