"""A member's neighbourhood read from the edges that touch them (``service.neighbourhood``)
is the one the whole program graph gave: the same nodes, links, weights, "more" count and
whole-graph out-degrees; and the service queries restricted to one member or to some
sources return exactly the whole-program rows that match."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from budding.core.db import unit_of_work

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _whole_graph_neighbourhood(pg: Any, member: str, limit: int) -> dict[str, Any]:
    """The former construction, on the whole program graph (``program_graph``)."""
    g = pg.graph
    v = g.index_of(member)
    weights: dict[int, float] = {}
    links: list[tuple[int, int, float]] = []
    for e in range(g.out_indptr[v], g.out_indptr[v + 1]):
        u, w = int(g.out_indices[e]), float(g.out_weight[e])
        weights[u] = weights.get(u, 0.0) + w
        links.append((v, u, w))
    for e in range(g.in_indptr[v], g.in_indptr[v + 1]):
        u, w = int(g.in_indices[e]), float(g.in_weight[e])
        weights[u] = weights.get(u, 0.0) + w
        links.append((u, v, w))
    keep = sorted({v} | {u for u, _ in sorted(weights.items(), key=lambda x: -x[1])[:limit]})
    index = {i: str(x) for i, x in zip(keep, g.id_list(keep), strict=True)}
    return {
        "center": member,
        "nodes": [
            {"id": index[i], "name": pg.names[index[i]], "out_degree": int(g.out_degree[i])}
            for i in keep
        ],
        "links": [
            {"source": index[a], "target": index[b], "weight": round(w, 4)}
            for a, b, w in links
            if a in keep and b in keep
        ],
        "more": max(0, len(weights) - limit),
    }


@pytest.fixture
def demo(database_url: str) -> dict[str, Any]:
    """The 150-member demo, with one member who interacts and was referred erased."""
    from budding.demo.build import build_demo
    from budding.members import service as members
    from budding.programs import service as programs
    from budding.referrals import service as referrals

    with unit_of_work() as session:
        build_demo(session, slug="demo", members=150, days=30, seed=11, now=NOW)
    with unit_of_work() as session:
        program = programs.get_program(session, "demo")
        actors = {a for a, *_ in members.interaction_weights(
            session, program.id, now=NOW, half_life_days=90
        ).tolist()}  # fmt: skip
        referred = {b for _, b, *_ in referrals.referral_weights(
            session, program, now=NOW, half_life_days=90
        ).tolist()}  # fmt: skip
        erased = min(actors & referred)
        members.erase_member(session, program, members.get_member_by_id(session, erased))
        return {"program_id": program.id, "erased": erased}


def test_neighbourhood_is_the_whole_graphs(demo: dict[str, Any]) -> None:
    from budding.influence import service
    from budding.influence.program import program_graph
    from budding.programs import service as programs

    limit = 4
    with unit_of_work() as session:
        program = programs.get_program(session, "demo")
        pg = program_graph(session, program, now=NOW)
        g = pg.graph
        both_ways = beyond_limit = 0
        for member in g.id_list(range(g.n)):
            want = _whole_graph_neighbourhood(pg, str(member), limit)
            got = service.neighbourhood(session, program, str(member), limit, now=NOW)
            assert got == want, member
            ends = {(x["source"] == member, x["target"] == member) for x in got["links"]}
            both_ways += {(True, False), (False, True)} <= ends
            beyond_limit += got["more"] > 0
    # what the comparison covered: members with links both ways, and more than `limit`
    assert both_ways > 20 and beyond_limit > 20
    assert pg.referrals > 50 and pg.interactions > 100


def test_an_unknown_or_erased_member_has_no_neighbourhood(demo: dict[str, Any]) -> None:
    from budding.core.errors import BuddingError
    from budding.influence import service
    from budding.members import service as members
    from budding.programs import service as programs

    with unit_of_work() as session:
        program = programs.get_program(session, "demo")
        erased = members.get_member_by_id(session, demo["erased"]).external_id
        for member in ("nobody", erased):
            with pytest.raises(BuddingError):
                service.neighbourhood(session, program, member, now=NOW)


def test_edge_queries_restricted_to_a_member_or_sources(demo: dict[str, Any]) -> None:
    """The restricted rows are exactly the whole program's rows that match."""
    from budding.members import service as members
    from budding.programs import service as programs
    from budding.referrals import service as referrals

    with unit_of_work() as session:
        program = programs.get_program(session, "demo")

        def interactions(**kw: Any) -> list[tuple[int, int, float, int]]:
            return sorted(members.interaction_weights(
                session, program.id, now=NOW, half_life_days=90, **kw
            ).tolist())  # fmt: skip

        def referred(**kw: Any) -> list[tuple[int, int, float, int]]:
            return sorted(referrals.referral_weights(
                session, program, now=NOW, half_life_days=90, **kw
            ).tolist())  # fmt: skip

        for rows, query in ((interactions(), interactions), (referred(), referred)):
            some = sorted({a for a, *_ in rows})[:5] + sorted({b for _, b, *_ in rows})[-5:]
            for member in some:
                _same(query(member=member), [r for r in rows if member in r[:2]])
            _same(query(sources=some), [r for r in rows if r[0] in some])
            assert query(sources=[]) == []


def _same(got: list[tuple[int, int, float, int]], want: list[tuple[int, int, float, int]]) -> None:
    assert want and [(a, b, c) for a, b, _, c in got] == [(a, b, c) for a, b, _, c in want]
    assert [w for _, _, w, _ in got] == pytest.approx([w for _, _, w, _ in want], rel=1e-12)
