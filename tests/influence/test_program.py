"""The program's own graph, the REST routes and the --program CLI source."""

from __future__ import annotations

from typing import Any

from budding.core import jobs
from budding.core.db import unit_of_work

HUB = "m0"  # the community fixture (conftest.py): m0 leads "ko", m10 leads "es"
ES = [f"m{i}" for i in range(10, 19)]


def test_program_graph_edges_weights_and_members(community: dict[str, Any]) -> None:
    from budding.influence.program import program_graph
    from budding.programs import service as programs

    with unit_of_work() as session:
        pg = program_graph(session, programs.get_program_by_id(session, community["program"].id))
    g = pg.graph
    assert g.n == 20 and "m19" in list(g.ids)  # isolated members are nodes too
    assert pg.referrals == 1 and pg.interactions == 3 * 17 + 1
    src, dst = g.edges()
    edges = {(g.ids[a], g.ids[b]): float(w) for a, b, w in zip(src, dst, g.out_weight, strict=True)}
    assert ("m1", "m11") in edges  # referral: referrer → referee
    assert edges[(HUB, "m1")] > 2.9  # three recent comments
    assert edges[("m5", "m10")] < 0.1  # 400 days old, half-life 90 days
    assert HUB not in pg.consented and "m1" in pg.consented
    assert HUB in pg.active and "m19" not in pg.active
    assert sorted(pg.members_where("lang", "es")) == sorted(ES)


def test_leaders_endpoint(client: Any, community: dict[str, Any]) -> None:
    body = client.get("/api/v1/influence/leaders", params={"top": 3}).json()
    assert body["by"] == "reach"
    assert [row["id"] for row in body["leaders"]][:2] in ([HUB, "m10"], ["m10", HUB])
    assert body["leaders"][0]["name"].startswith("Member")
    grouped = client.get("/api/v1/influence/leaders", params={"top": 1, "group": "lang"}).json()
    assert {k: [r["id"] for r in v] for k, v in grouped["groups"].items()} == {
        "ko": [HUB], "es": ["m10"], "id": ["m19"],
    }  # fmt: skip
    bad = client.get("/api/v1/influence/leaders", params={"by": "charisma"})
    assert bad.status_code == 422


def test_seeds_endpoint_targets_and_consent(client: Any, community: dict[str, Any]) -> None:
    out = client.post("/api/v1/influence/seeds", json={"k": 1}).json()
    assert out["seeds"][0] in (HUB, "m10") and out["k"] == 1 and out["audience"] == 20
    es = client.post("/api/v1/influence/seeds", json={"k": 1, "target": "lang=es"}).json()
    assert es["seeds"] == ["m10"] and es["audience"] == len(ES)
    consent = client.post(
        "/api/v1/influence/seeds", json={"k": 2, "target": "lang=es", "consented_only": True}
    ).json()
    assert "m10" not in consent["seeds"] and HUB not in consent["seeds"]
    bad = client.post("/api/v1/influence/seeds", json={"k": 1, "target": "lang=fr"})
    assert bad.status_code == 422 and "target" in bad.json()["error"]["fields"]
    shape = client.post("/api/v1/influence/seeds", json={"k": 0})
    assert shape.status_code == 422


def test_seeds_endpoint_answers_the_k_it_used(client: Any, community: dict[str, Any]) -> None:
    """More seeds asked for than members may be seeds: all of those, and "k" says how many
    (less than asked), as the CLI's --json does (docs/influence.md)."""
    out = client.post("/api/v1/influence/seeds", json={"k": 1000}).json()
    assert out["k"] == len(out["seeds"]) == 20
    consent = client.post("/api/v1/influence/seeds", json={"k": 1000, "consented_only": True})
    body = consent.json()
    assert consent.status_code == 200 and body["k"] == len(body["seeds"]) < 20
    assert HUB not in body["seeds"]


def test_seeds_refuse_a_vanishing_epsilon(client: Any, community: dict[str, Any]) -> None:
    """IMM samples ~1/ε² RR sets: a tiny ε divided by zero (a 500) or never finished."""
    for epsilon in (5e-324, 1e-9):
        r = client.post("/api/v1/influence/seeds", json={"k": 1, "epsilon": epsilon})
        assert r.status_code == 422, r.text
        assert "epsilon" in r.json()["error"]["fields"]


def test_simulation_job_runs_and_reports(client: Any, community: dict[str, Any]) -> None:
    body = {
        "plans": [
            {"name": "IMM", "strategy": "imm", "k": 2},
            {"name": "followers", "strategy": "followers", "k": 2},
            {"name": "costly", "seeds": [HUB, "m10"], "launch_cost": 4},
        ],
        "runs": 500,
    }
    with jobs.immediate():
        started = client.post("/api/v1/influence/simulations", json=body)
    assert started.status_code == 202, started.text
    job_id = started.json()["job_id"]
    status = client.get(started.json()["status_url"]).json()
    assert status["status"] == "succeeded", status
    assert status["progress"] == 1.0
    plans = status["result"]["plans"]
    assert [p["name"] for p in plans] == ["IMM", "followers", "costly"]
    assert plans[0]["reach"]["mean"] > plans[2]["reach"]["mean"]
    assert len(plans[0]["reach_per_step_ci95"]) == len(plans[0]["reach_per_step"])
    assert client.get(f"/api/v1/jobs/{job_id}").json()["kind"] == "influence.simulate"


def test_simulation_input_errors(client: Any, community: dict[str, Any]) -> None:
    unknown = client.post(
        "/api/v1/influence/simulations", json={"plans": [{"seeds": ["nobody"]}], "runs": 10}
    )
    assert unknown.status_code == 422
    assert "plans.0.seeds" in unknown.json()["error"]["fields"]
    both = client.post(
        "/api/v1/influence/simulations",
        json={"plans": [{"seeds": [HUB], "strategy": "imm"}]},
    )
    assert both.status_code == 422
    assert client.get("/api/v1/influence/simulations/999999").status_code == 404


def test_simulation_refuses_a_bad_audience_before_enqueueing(
    client: Any, community: dict[str, Any]
) -> None:
    """A target no member matches fails the request, not (twice) the job."""
    with unit_of_work() as session:
        before = len(jobs.list_jobs(session, program_id=community["program"].id))
    plans = [{"name": "a", "strategy": "imm", "k": 2}]
    for body, name in (
        ({"plans": plans, "target": "lang=fr"}, "target"),
        ({"plans": plans, "target": "lang"}, "target"),
    ):
        bad = client.post("/api/v1/influence/simulations", json={**body, "runs": 10})
        assert bad.status_code == 422, bad.text
        assert name in bad.json()["error"]["fields"]
    with unit_of_work() as session:
        assert len(jobs.list_jobs(session, program_id=community["program"].id)) == before


def test_leaders_by_an_unknown_attribute_is_an_error(
    client: Any, community: dict[str, Any]
) -> None:
    bad = client.get("/api/v1/influence/leaders", params={"group": "nosuch"})
    assert bad.status_code == 422
    assert "lang" in bad.json()["error"]["fields"]["group"]  # names the known ones


def test_cli_program_source(community: dict[str, Any]) -> None:
    import json

    from typer.testing import CliRunner

    from budding.influence.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["seeds", "--program", "acme", "--k", "1", "--json",
                                 "--target", "lang=es"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["seeds"] == ["m10"]
    ranked = runner.invoke(app, ["rank", "--program", "acme", "--top", "2", "--json"])
    assert ranked.exit_code == 0, ranked.output
    assert len(json.loads(ranked.stdout)["leaders"]) == 2
    missing = runner.invoke(app, ["rank", "--program", "nope"])
    assert missing.exit_code == 2 and "nope" in missing.output
    group = runner.invoke(app, ["rank", "--program", "acme", "--group-by", "nosuch"])
    assert group.exit_code == 2 and "--group-by" in group.output and "lang" in group.output
    target = runner.invoke(app, ["seeds", "--program", "acme", "--target", "locale=ko"])
    assert target.exit_code == 2 and "--target" in target.output
    assert "--attributes" not in target.output  # a program has no attributes file


def test_an_unknown_target_value_lists_the_known_ones(
    client: Any, community: dict[str, Any]
) -> None:
    """city=Seoul where the members say 서울: the answer shows what there is."""
    bad = client.post("/api/v1/influence/seeds", json={"k": 1, "target": "lang=fr"})
    assert bad.status_code == 422
    assert (
        bad.json()["error"]["fields"]["target"]
        == "no member has lang=fr (known values: es, id, ko)"
    )


def test_plans_need_distinct_names(client: Any, community: dict[str, Any]) -> None:
    """Results, table rows and chart lines are told apart by name."""
    with unit_of_work() as session:
        before = len(jobs.list_jobs(session, program_id=community["program"].id))
    plans = [{"name": "a", "strategy": "imm", "k": 2}, {"name": "a", "strategy": "pagerank"}]
    bad = client.post("/api/v1/influence/simulations", json={"plans": plans, "runs": 10})
    assert bad.status_code == 422, bad.text
    assert "plans.1.name" in bad.json()["error"]["fields"]
    with unit_of_work() as session:
        assert len(jobs.list_jobs(session, program_id=community["program"].id)) == before
