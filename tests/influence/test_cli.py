"""The CLI on files: commands, JSON shapes, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from budding.influence.cli import app

runner = CliRunner()

EDGES = "\n".join(
    ["# two communities joined by a bridge"]
    + [f"a{i} a{j}" for i in range(8) for j in range(8) if i != j and (i + j) % 3 == 0]
    + [f"b{i} b{j}" for i in range(8) for j in range(8) if i != j and (i * j) % 4 == 1]
    + ["a0 b0", "b0 a0"]
)


@pytest.fixture
def edges(tmp_path: Path) -> Path:
    path = tmp_path / "edges.txt"
    path.write_text(EDGES + "\n")
    return path


@pytest.fixture
def attributes(tmp_path: Path) -> Path:
    path = tmp_path / "attrs.csv"
    rows = ["id,lang,consent"] + [f"a{i},ko,{'yes' if i % 2 else 'no'}" for i in range(8)]
    rows += [f"b{i},es,yes" for i in range(8)]
    path.write_text("\n".join(rows) + "\n")
    return path


def run(*args: str) -> dict:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_seeds_json_shape(edges: Path) -> None:
    out = run("seeds", str(edges), "--k", "3", "--json", "--seed", "4")
    assert list(out) == ["seeds", "spread", "model", "epsilon", "k", "rr_sets", "seconds"]
    assert len(out["seeds"]) == 3 and all(isinstance(s, str) for s in out["seeds"])
    assert out["model"] == "ic" and out["epsilon"] == 0.5 and out["k"] == 3
    assert isinstance(out["spread"], float) and out["rr_sets"] > 0
    again = run("seeds", str(edges), "--k", "3", "--json", "--seed", "4")
    assert again["seeds"] == out["seeds"]


def test_seeds_targeted_and_allowed(edges: Path, attributes: Path) -> None:
    out = run(
        "seeds", str(edges), "--k", "2", "--model", "lt", "--target", "lang=es",
        "--allowed", "consent=yes", "--attributes", str(attributes), "--json",
    )  # fmt: skip
    consenting = {f"a{i}" for i in range(1, 8, 2)} | {f"b{i}" for i in range(8)}
    assert set(out["seeds"]) <= consenting
    assert out["spread"] <= 8.0 + 1e-9


def test_seeds_say_on_stderr_when_k_is_lowered(tmp_path: Path) -> None:
    """``--k`` past the nodes that may be seeds was lowered without a word: a one-line
    notice on stderr, so that ``--json`` on stdout stays JSON (its "k" is the k used)."""
    edges = tmp_path / "tiny.txt"
    edges.write_text("a b\nb c\nc a\n")
    attrs = tmp_path / "tiny.csv"
    attrs.write_text("id,consent\na,yes\nb,no\nc,yes\n")
    result = runner.invoke(app, ["seeds", str(edges), "--k", "50", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["k"] == 3
    assert result.stderr.strip() == "k lowered from 50 to 3: only 3 nodes may be chosen as seeds"
    allowed = runner.invoke(
        app, ["seeds", str(edges), "--k", "5", "--allowed", "consent=yes",
              "--attributes", str(attrs)],
    )  # fmt: skip
    assert allowed.exit_code == 0, allowed.output
    assert "k lowered from 5 to 2: only 2 nodes may be chosen" in allowed.stderr
    assert "2 seeds" in allowed.stdout
    exact = runner.invoke(app, ["seeds", str(edges), "--k", "3", "--json"])
    assert exact.exit_code == 0 and exact.stderr == ""


def test_seeds_table_and_errors(edges: Path, attributes: Path) -> None:
    result = runner.invoke(app, ["seeds", str(edges), "--k", "2"])
    assert result.exit_code == 0 and "cumulative" in result.output
    bad = runner.invoke(app, ["seeds", str(edges), "--probability", "sometimes"])
    assert bad.exit_code == 2 and "unknown probability" in bad.output
    need = runner.invoke(app, ["seeds", str(edges), "--target", "lang=ko"])
    assert need.exit_code == 2 and "--attributes" in need.output
    missing = runner.invoke(
        app, ["seeds", str(edges), "--target", "lang=fr", "--attributes", str(attributes)]
    )
    assert missing.exit_code == 2 and "lang=fr" in missing.output
    nofile = runner.invoke(app, ["seeds", "/nonexistent/edges.txt"])
    assert nofile.exit_code == 2 and "no such file" in nofile.output


def test_options_are_named_in_errors(edges: Path, tmp_path: Path) -> None:
    for args, option in (
        (["seeds", str(edges), "--ell", "0"], "--ell"),
        (["seeds", str(edges), "--epsilon", "1e-320"], "--epsilon"),
        (["simulate", str(edges), "--seeds", "a0", "--launch-cost", "0"], "--launch-cost"),
        (["simulate", str(edges), "--seeds", "a0", "--runs", "100000000000"], "--runs"),
        (["simulate", str(edges), "--seeds", ""], "--seeds"),
        (["rank", str(edges), "--groups", str(tmp_path / "none.csv")], "--groups"),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and option in result.output, (args, result.output)
        assert "--attributes" not in result.output
    header_only = tmp_path / "groups.csv"
    header_only.write_text("id,team\n")
    empty = runner.invoke(app, ["rank", str(edges), "--groups", str(header_only)])
    assert empty.exit_code == 2 and "--groups" in empty.output


def test_file_probabilities_with_repeated_edges_need_keep_duplicates(tmp_path: Path) -> None:
    # as in NetHEPT, an edge repeated with its probability: merging would add them up
    path = tmp_path / "prob.txt"
    path.write_text("a b 0.6\na b 0.6\nb c 0.3\nc a 0.1\n")
    merged = runner.invoke(app, ["seeds", str(path), "--k", "1", "--probability", "file"])
    assert merged.exit_code == 2 and "--keep-duplicates" in merged.output
    out = run(
        "seeds", str(path), "--k", "1", "--probability", "file", "--keep-duplicates", "--json"
    )  # fmt: skip
    assert out["seeds"] == ["a"]


def test_rank_json_shape(edges: Path, tmp_path: Path) -> None:
    out = run("rank", str(edges), "--top", "4", "--json", "--rr-sets", "2000")
    assert out["by"] == "reach"
    assert len(out["leaders"]) == 4
    first = out["leaders"][0]
    assert list(first) == [
        "rank", "id", "reach", "pagerank", "betweenness", "coreness", "in_degree", "out_degree",
    ]  # fmt: skip
    assert [row["rank"] for row in out["leaders"]] == [1, 2, 3, 4]
    groups = tmp_path / "groups.csv"
    groups.write_text("id,community\n" + "".join(f"a{i},A\nb{i},B\n" for i in range(8)))
    per = run(
        "rank", str(edges), "--top", "2", "--groups", str(groups), "--json", "--by", "pagerank"
    )
    assert set(per["groups"]) == {"A", "B"}
    assert all(len(rows) == 2 for rows in per["groups"].values())
    assert all(r["id"].startswith("a") for r in per["groups"]["A"])


def test_simulate_json_shape_and_plans(edges: Path, tmp_path: Path) -> None:
    out = run(
        "simulate", str(edges), "--seeds", "a0,b0", "--runs", "500",
        "--launch-cost", "1", "--launch-cost", "4", "--json",
    )  # fmt: skip
    assert list(out) == ["runs", "seed", "seconds", "plans"]
    assert out["runs"] == 500 and len(out["plans"]) == 2
    plan = out["plans"][0]
    assert list(plan) == [
        "name", "seeds", "launch_cost", "reward", "share_probability", "runs", "reach",
        "reach_per_step", "reach_per_step_ci95", "k_per_generation",
    ]  # fmt: skip
    assert set(plan["reach"]) == {"mean", "sd", "ci95"}
    assert out["plans"][1]["reach"]["mean"] < plan["reach"]["mean"]
    seeds_json = tmp_path / "seeds.json"
    seeds_json.write_text(json.dumps(run("seeds", str(edges), "--k", "2", "--json")))
    again = run("simulate", str(edges), "--seeds-file", str(seeds_json), "--runs", "64",
                "--funnel", "0.9,0.5", "--json")  # fmt: skip
    assert again["plans"][0]["share_probability"] == pytest.approx(0.9)


def test_simulate_errors(edges: Path) -> None:
    none = runner.invoke(app, ["simulate", str(edges)])
    assert none.exit_code == 2 and "exactly one of" in none.output
    unknown = runner.invoke(app, ["simulate", str(edges), "--seeds", "zz"])
    assert unknown.exit_code == 2 and "zz" in unknown.output


def test_side_files_that_are_not_utf8_are_named(edges: Path, tmp_path: Path) -> None:
    legacy = tmp_path / "legacy.csv"  # saved by a Korean Excel: CP949, not UTF-8
    legacy.write_bytes("id,lang\na0,한국어\n".encode("cp949"))
    for args, option in (
        (["seeds", str(edges), "--target", "lang=ko", "--attributes", str(legacy)], "--attributes"),
        (["rank", str(edges), "--groups", str(legacy)], "--groups"),
        (["simulate", str(edges), "--seeds-file", str(legacy)], "--seeds-file"),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert isinstance(result.exception, SystemExit)  # no traceback
        flat = "".join(result.output.split())  # the console wraps long paths
        assert f"error:{option}:{legacy}isnotUTF-8text" in flat, result.output


def test_attributes_saved_with_a_byte_order_mark(edges: Path, tmp_path: Path) -> None:
    long = tmp_path / "long.csv"  # Excel's "CSV UTF-8": a BOM before the header
    long.write_bytes("id,attr,value\nb1,언어,es\nb2,언어,es\n".encode("utf-8-sig"))
    out = run(
        "seeds", str(edges), "--k", "1", "--allowed", "언어=es", "--attributes", str(long), "--json"
    )
    assert out["seeds"][0] in {"b1", "b2"}


def test_errors_name_the_option_on_one_line(edges: Path) -> None:
    """Engine errors (edge probabilities, model) say which option was wrong, and no
    message is wrapped to the terminal's width or eaten as console markup."""
    for args, option in (
        (["seeds", str(edges), "--probability", "uniform:2"], "--probability"),
        (["seeds", str(edges), "--probability", "sometimes"], "--probability"),
        (["rank", str(edges), "--model", "zz"], "--model"),
        (["rank", str(edges), "--by", "nosuch"], "--by"),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
        assert result.output.startswith(f"error: {option}:"), (args, result.output)
        assert result.output.count("\n") == 1, (args, result.output)
    bracket = runner.invoke(app, ["simulate", str(edges), "--seeds", "[b]zz"])
    assert bracket.exit_code == 2 and "[b]zz" in bracket.output, bracket.output
    # Python's "could not convert string to float: 'x'" said nothing of what was expected
    funnel = runner.invoke(app, ["simulate", str(edges), "--seeds", "a", "--funnel", "0.8,x"])
    assert funnel.exit_code == 2, funnel.output
    assert funnel.output.startswith("error: --funnel: '0.8,x' must be rates separated by commas")


def test_unknown_target_value_lists_the_known_ones(edges: Path, attributes: Path) -> None:
    result = runner.invoke(
        app, ["seeds", str(edges), "--target", "lang=fr", "--attributes", str(attributes)]
    )
    assert result.exit_code == 2
    assert "lang=fr" in result.output and "(known values: es, ko)" in result.output


def test_simulate_json_writes_seeds_as_the_source_does(tmp_path: Path) -> None:
    """Integer ids come back as numbers, as in ``seeds --json``, so the two outputs compare."""
    path = tmp_path / "numbers.txt"
    path.write_text("1 2\n2 3\n3 1\n3 4\n")
    chosen = run("seeds", str(path), "--k", "2", "--json")
    assert all(isinstance(s, int) for s in chosen["seeds"])
    seeds_json = tmp_path / "seeds.json"
    seeds_json.write_text(json.dumps(chosen))
    out = run("simulate", str(path), "--seeds-file", str(seeds_json), "--runs", "64", "--json")
    assert out["plans"][0]["seeds"] == chosen["seeds"]
    named = run("simulate", str(path), "--seeds", "4, 1", "--runs", "64", "--json")
    assert named["plans"][0]["seeds"] == [4, 1]


def test_tables_keep_whole_ids_and_headers_when_piped(tmp_path: Path) -> None:
    """Redirected to a file the tables were cut to 80 columns: every UUID became
    "0000000…", so the leaders could not be told apart."""
    ids = [f"00000000-0000-0000-0000-{i:012x}" for i in range(6)]
    path = tmp_path / "uuids.csv"
    path.write_text("".join(f"{ids[i]},{ids[(i + 1) % 6]}\n" for i in range(6)))
    result = runner.invoke(app, ["rank", str(path), "--top", "6", "--rr-sets", "1000"])
    assert result.exit_code == 0, result.output
    assert all(i in result.output for i in ids), result.output
    assert "betweenness" in result.output and "out_degree" in result.output
    assert "…" not in result.output
