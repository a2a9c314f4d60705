"""Edge probabilities: specs, their checks, and how duplicate edges combine."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.influence.test_spread_exact import exact_ic

from budding.influence import Graph, ProbabilityError, edge_probabilities, spread


@pytest.fixture
def repeated(tmp_path: Path) -> Path:
    # 0 → 1 twice with probability 0.5 each: two independent chances, 0.75 together
    path = tmp_path / "repeated.txt"
    path.write_text("0 1 0.5\n0 1 0.5\n1 2 0.2\n")
    return path


def test_file_probabilities_refuse_merged_duplicates_under_ic(repeated: Path) -> None:
    merged = Graph.from_edgelist(repeated)
    assert merged.merged_duplicates == 1 and merged.m == 2
    with pytest.raises(ProbabilityError, match=r"1 duplicate edge was merged.*--keep-duplicates"):
        edge_probabilities(merged, "file", "ic")
    # weights that are not probabilities may add up: LT weights, weighted cascade, wc
    assert edge_probabilities(merged, "file", "lt").in_p.tolist() == [1.0, pytest.approx(0.2)]
    edge_probabilities(merged, "weighted", "ic")
    edge_probabilities(merged, "wc", "ic")


def test_kept_duplicates_are_independent_chances(repeated: Path) -> None:
    kept = Graph.from_edgelist(repeated, dedupe=False)
    assert kept.merged_duplicates == 0 and kept.m == 3
    probs = edge_probabilities(kept, "file", "ic")
    src, dst = kept.edges()
    edges = list(zip(src.tolist(), dst.tolist(), strict=True))
    exact = exact_ic(kept.n, edges, probs.out_p.tolist(), [kept.index_of(0)])
    assert exact == pytest.approx(1 + 0.75 + 0.75 * 0.2)
    mc = spread(kept, [0], 40_000, probability="file", seed=3)
    assert mc.ci95[0] <= exact <= mc.ci95[1]


def test_unweighted_duplicates_count_too() -> None:
    g = Graph.from_edges([0, 0, 1, 1, 1], [1, 1, 2, 2, 2])
    assert g.merged_duplicates == 3 and g.m == 2
    assert Graph.from_edges([0, 1], [1, 0]).merged_duplicates == 0


def test_lt_overflow_names_the_node_as_in_the_file() -> None:
    g = Graph.from_edges([1, 2, 160], [160, 160, 2])
    with pytest.raises(ProbabilityError, match=r"node 160 sum to 1\.2") as err:
        edge_probabilities(g, "uniform:0.6", "lt")
    assert "np." not in str(err.value)
