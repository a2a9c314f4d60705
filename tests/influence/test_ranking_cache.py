"""The program's ranking kept in the database (``influence_rankings``): the same answer as
ranking the graph, a hit computes nothing, new data is answered from the older ranking while
a job ranks it, a new hour is a miss, erasure forgets it, and the planner lists attributes
without building the graph."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from budding.core.db import unit_of_work

HUB = "m0"  # the community fixture (conftest.py)
KIND = "influence.refresh_ranking"


def _program(session: Any, community: dict[str, Any]) -> Any:
    from budding.programs import service as programs

    return programs.get_program_by_id(session, community["program"].id)


def _kept(session: Any, program_id: int) -> list[dict[str, Any]]:
    from budding.influence import cache

    return cache.kept(session, program_id)


def _no_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building the program's graph fails the test."""
    from budding.influence import service

    def refuse(*_: Any, **__: Any) -> None:
        raise AssertionError("the program's graph was built")

    monkeypatch.setattr(service, "program_graph", refuse)
    monkeypatch.setattr(service, "load_graph", refuse)


def test_kept_ranking_is_the_graphs_ranking(database_url: str) -> None:
    """On a fixed program, every measure and order equals ranking the graph directly."""
    from budding.demo.build import build_demo
    from budding.influence import cache, service
    from budding.influence.program import program_graph
    from budding.influence.ranking import rank
    from budding.programs import service as programs

    with unit_of_work() as session:
        build_demo(session, slug="demo", members=150, days=30, seed=11)
    with unit_of_work() as session:
        program = programs.get_program(session, "demo")
        pg = program_graph(session, program, now=cache.period_start())
        for by in ("reach", "pagerank", "betweenness", "out_degree"):
            got = service.leaders(session, program, top=30, by=by)
            want = rank(pg.graph, 30, by=by, rr_sets=service.RR_SETS, probability="weighted")
            assert [r["id"] for r in got["leaders"]] == [str(i) for i in want.ids]
            for name, values in want.measures.items():
                np.testing.assert_allclose([r[name] for r in got["leaders"]], values, rtol=1e-12)
            assert all(r["name"] == pg.names[r["id"]] for r in got["leaders"])
        grouped = service.leaders(session, program, top=3, group="city")
        assert grouped["groups"] and all(len(v) <= 3 for v in grouped["groups"].values())


def test_a_hit_computes_nothing_and_answers_the_same(
    community: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from budding.influence import service

    with unit_of_work() as session:
        first = service.leaders(session, _program(session, community), top=5)
    with unit_of_work() as session:  # another unit of work (or server process) reads it
        _no_graph(monkeypatch)
        again = service.leaders(session, _program(session, community), top=5)
        by_group = service.leaders(session, _program(session, community), top=1, group="lang")
    assert again == first and first["leaders"][0]["id"] in (HUB, "m10")
    assert {k: [r["id"] for r in v] for k, v in by_group["groups"].items()} == {
        "ko": [HUB], "es": ["m10"], "id": ["m19"],
    }  # fmt: skip
    with unit_of_work() as session:
        assert len(_kept(session, community["program"].id)) == 1


def test_new_data_is_answered_at_once_while_a_job_ranks_it(
    client: Any, community: dict[str, Any]
) -> None:
    """A busy program's data changes all the time and ranking it takes seconds: a view
    answers from the older ranking, saying so, and one job computes the current one."""
    from budding.core import jobs

    def leaders() -> tuple[bool, dict[str, Any]]:
        body: dict[str, Any] = client.get("/api/v1/influence/leaders", params={"top": 20}).json()
        return body["current"], {r["id"]: r for r in body["leaders"]}

    def refreshes() -> int:
        with unit_of_work() as session:
            return len(jobs.list_jobs(session, community["program"].id, kind=KIND))

    current, before = leaders()
    assert current and before["m19"]["out_degree"] == 0 and refreshes() == 0
    # a targeted event: m19 now talks to five members
    now = datetime.now(UTC).isoformat()
    events = [
        {"id": f"new{i}", "type": "comment", "member": "m19", "target": f"m{i}", "occurred_at": now}
        for i in range(1, 6)
    ]
    assert client.post("/api/v1/events", json={"events": events}).json()["accepted"] == 5
    for _ in range(3):  # answered from the older ranking; one job however many views
        current, stale = leaders()
        assert not current and stale["m19"]["out_degree"] == 0
    assert refreshes() == 1 and jobs.run_due() == 1
    current, after = leaders()
    assert current and after["m19"]["out_degree"] == 5
    # an event without a target changes nothing in the graph: still the kept answer
    plain = {"id": "plain", "type": "login", "member": "m19", "occurred_at": now}
    assert client.post("/api/v1/events", json={"events": [plain]}).json()["accepted"] == 1
    assert leaders()[0]
    # a new member is a new node
    body = {"external_id": "m20", "name": "Member m20"}
    assert client.post("/api/v1/members", json=body).status_code == 201
    assert "m20" not in leaders()[1] and jobs.run_due() == 1
    assert "m20" in leaders()[1]
    with unit_of_work() as session:
        assert len(_kept(session, community["program"].id)) == 1  # older rows removed


def test_the_page_says_it_shows_an_older_ranking(
    anon_client: Any, client: Any, community: dict[str, Any]
) -> None:
    from tests.influence.test_pages import sign_in

    sign_in(anon_client)
    assert 'data-testid="ranking-updating"' not in anon_client.get("/admin/acme/influence").text
    now = datetime.now(UTC).isoformat()
    event = {"id": "late", "type": "comment", "member": "m19", "target": "m1", "occurred_at": now}
    answer = client.post("/api/v1/events", json={"events": [event]}).json()
    assert answer["accepted"] == 1, answer
    page = anon_client.get("/admin/acme/influence", headers={"accept-language": "ko"}).text
    assert 'data-testid="ranking-updating"' in page and "새로고침" in page


def test_a_new_hour_is_a_miss(community: dict[str, Any]) -> None:
    from budding.influence import cache

    calls: list[datetime] = []

    def compute(now: datetime) -> dict[str, Any]:
        calls.append(now)
        return {"n": len(calls)}

    at = datetime(2026, 3, 1, 12, 10, tzinfo=UTC)
    with unit_of_work() as session:
        program = _program(session, community)
        assert cache.cached(session, program, compute, now=at).payload == {"n": 1}
        later = at + timedelta(minutes=40)
        assert cache.cached(session, program, compute, now=later).payload == {"n": 1}
        next_hour = at + timedelta(hours=1)
        assert cache.cached(session, program, compute, now=next_hour).payload == {"n": 2}
    # computed at the hour's start, so every process that misses computes the same
    assert calls == [datetime(2026, 3, 1, 12, tzinfo=UTC), datetime(2026, 3, 1, 13, tzinfo=UTC)]


def test_erasure_forgets_the_kept_ranking(community: dict[str, Any]) -> None:
    from budding.influence import service
    from budding.members import service as members

    with unit_of_work() as session:
        program = _program(session, community)
        leaders = service.leaders(session, program, top=20)
        assert any(r["name"] == "Member m5" for r in leaders["leaders"])
        assert "m5" in str(_kept(session, program.id))
        export = members.member_export(
            session, program, members.get_member(session, program.id, "m5")
        )
        assert export["influence"]["ranking"]["id"] == "m5"
    with unit_of_work() as session:
        program = _program(session, community)
        members.erase_member(session, program, members.get_member(session, program.id, "m5"))
    with unit_of_work() as session:
        program = _program(session, community)
        assert _kept(session, program.id) == []
        leaders = service.leaders(session, program, top=20)
        kept = str(_kept(session, program.id))
    ids = {r["id"] for r in leaders["leaders"]}
    assert "m5" not in ids and "m5" not in kept and "Member m5" not in kept
    assert "m6" in ids


def test_pages_read_the_kept_ranking_and_list_attributes_cheaply(
    anon_client: Any, community: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.influence.test_pages import sign_in

    sign_in(anon_client)
    first = anon_client.get("/admin/acme/influence")
    assert first.status_code == 200 and "Member m0" in first.text
    _no_graph(monkeypatch)
    again = anon_client.get("/admin/acme/influence", params={"group": "lang"})
    assert again.status_code == 200 and "Member m10" in again.text
    planner = anon_client.get("/admin/acme/influence/planner")
    assert planner.status_code == 200 and 'value="lang="' in planner.text


def test_attribute_names_query(community: dict[str, Any]) -> None:
    from budding.members import service as members

    with unit_of_work() as session:
        program = _program(session, community)
        member = members.get_member(session, program.id, "m3")
        member.attributes = {"lang": "ko", "vip": True, "score": 3, "tags": ["a"], "none": None}
        session.flush()
        assert members.attribute_names(session, program.id) == ["lang", "score", "vip"]
