"""Graph construction and edge-list loading."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from budding.influence import EdgeListError, Graph, GraphError


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    if name.endswith(".gz"):
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


def edge_set(g: Graph) -> set[tuple[object, object]]:
    src, dst = g.edges()
    return {(g.id_list([a])[0], g.id_list([b])[0]) for a, b in zip(src, dst, strict=True)}


def test_snap_text_with_comments_self_loops_and_duplicates(tmp_path: Path) -> None:
    path = write(tmp_path, "g.txt", "# comment\n% other\n\n10\t20\n20 30\n20 30\n30 30\n 40  10 \n")
    g = Graph.from_edgelist(path)
    assert (g.n, g.m) == (4, 3)
    assert edge_set(g) == {(10, 20), (20, 30), (40, 10)}
    assert g.ids.tolist() == [10, 20, 30, 40]
    kept = Graph.from_edgelist(path, dedupe=False, drop_self_loops=False)
    assert kept.m == 5


def test_semicolons_separate_string_ids_too(tmp_path: Path) -> None:
    g = Graph.from_edgelist(write(tmp_path, "s.txt", "alice;bob\nbob;carol;0.5\n"))
    assert edge_set(g) == {("alice", "bob"), ("bob", "carol")}
    numbers = Graph.from_edgelist(write(tmp_path, "n.txt", "1;2\n2;3\n"))
    assert edge_set(numbers) == {(1, 2), (2, 3)}


def test_csv_with_header_weights_and_gzip(tmp_path: Path) -> None:
    path = write(tmp_path, "g.csv.gz", "src,dst,weight\n1,2,0.5\n2,3,1e-1\n1,2,0.25\n")
    g = Graph.from_edgelist(path)
    assert (g.n, g.m) == (3, 2)
    assert g.out_weight is not None and g.in_weight is not None
    src, dst = g.edges()
    w = {
        (int(g.ids[a]), int(g.ids[b])): float(x)
        for a, b, x in zip(src, dst, g.out_weight, strict=True)
    }
    assert w == pytest.approx({(1, 2): 0.75, (2, 3): 0.1})
    # in-CSR weights follow the same edges
    assert sorted(g.in_weight.tolist()) == pytest.approx(sorted(g.out_weight.tolist()))


def test_string_ids_and_round_trip(tmp_path: Path) -> None:
    path = write(tmp_path, "g.csv", 'alice,bob\nbob,carol\n"dan, jr",alice\n')
    g = Graph.from_edgelist(path)
    assert g.ids.tolist() == ["alice", "bob", "carol", "dan, jr"]
    assert edge_set(g) == {("alice", "bob"), ("bob", "carol"), ("dan, jr", "alice")}
    assert g.index_of("carol") == 2
    with pytest.raises(KeyError, match="eve"):
        g.index_of("eve")


def test_nethept_header_line_is_skipped(tmp_path: Path) -> None:
    path = write(tmp_path, "h.txt", "3 2\n0 1 0.5\n1 2 1.0\n")
    g = Graph.from_edgelist(path)
    assert (g.n, g.m) == (3, 2)
    two_cols = write(tmp_path, "e.txt", "3 2\n0 1\n")
    assert Graph.from_edgelist(two_cols).m == 2


def test_reverse_flips_direction(tmp_path: Path) -> None:
    path = write(tmp_path, "f.txt", "1 2\n")
    g = Graph.from_edgelist(path, reverse=True)
    assert edge_set(g) == {(2, 1)}


def test_bad_lines_name_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.txt", "1 2 0.5\n2 3 x\n")
    with pytest.raises(EdgeListError, match="line 2"):
        Graph.from_edgelist(path)
    missing = write(tmp_path, "m.txt", "1 2 0.5\n2 3\n")
    with pytest.raises(EdgeListError, match=r"line 2.*missing"):
        Graph.from_edgelist(missing)
    with pytest.raises(EdgeListError, match="no such file"):
        Graph.from_edgelist(tmp_path / "nope.txt")
    with pytest.raises(EdgeListError, match="no edges"):
        Graph.from_edgelist(write(tmp_path, "empty.txt", "# nothing\n"))


def test_large_sparse_ids_use_sort_path(tmp_path: Path) -> None:
    path = write(tmp_path, "big.txt", "1 9000000000\n9000000000 5\n")
    g = Graph.from_edgelist(path)
    assert g.ids.tolist() == [1, 5, 9000000000]
    assert g.index_of("9000000000") == 2


def test_from_edges_with_ids_keeps_isolated_members() -> None:
    g = Graph.from_edges(["a", "b"], ["b", "c"], weight=[1.0, 2.0], ids=["c", "b", "a", "z"])
    assert g.n == 4 and g.m == 2
    assert g.out_degree.tolist() == [0, 1, 1, 0]
    with pytest.raises(GraphError, match="'q' is not in ids"):
        Graph.from_edges(["a"], ["q"], ids=["a"])
    with pytest.raises(GraphError, match="weight has 1"):
        Graph.from_edges([1, 2], [2, 3], weight=[1.0])


def test_csr_invariants_random() -> None:
    rng = np.random.default_rng(5)
    src = rng.integers(0, 50, 400)
    dst = rng.integers(0, 50, 400)
    g = Graph.from_dense(src, dst, 50)
    pairs = {(int(a), int(b)) for a, b in zip(src, dst, strict=True) if a != b}
    assert g.m == len(pairs)
    assert set(zip(*(x.tolist() for x in g.edges()), strict=True)) == pairs
    in_pairs = {(int(u), v) for v in range(50) for u in g.predecessors(v)}
    assert in_pairs == pairs
    for v in range(50):
        assert np.all(np.diff(g.predecessors(v)) > 0)
    assert g.out_indices.dtype == np.int32 and g.nbytes == 8 * g.m + 16 * 51


def test_real_graph_counts_match_readme(real_graph: Callable[[str], Path]) -> None:
    assert Graph.from_edgelist(real_graph("email-Eu-core.txt"), dedupe=False).m == 25571 - 642
    assert Graph.from_edgelist(real_graph("wiki-Vote.txt")).m == 103689
    slash = Graph.from_edgelist(real_graph("soc-Slashdot0902.txt.gz"))
    assert (slash.n, slash.m) == (82168, 870161)
    hept = Graph.from_edgelist(real_graph("NetHEPT_wc.txt"), dedupe=False, drop_self_loops=False)
    assert (hept.n, hept.m) == (15233, 58891)
