"""The program graph read through ``members.service.interaction_weights`` (the events with
a target, summed per pair by the database) is the graph the events API paging used to
build."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from budding.core.db import unit_of_work

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _reference_graph(session: Any, program: Any, now: datetime) -> dict[str, Any]:
    """The former construction: every event, 1,000 at a time, through the events API."""
    from budding.members import events as member_events
    from budding.members import service as members
    from budding.referrals import service as referrals

    by_pk: dict[int, str] = {}
    cursor: str | None = None
    while True:
        page, cursor = members.search_members(session, program.id, cursor=cursor, limit=500)
        by_pk.update({m.id: m.external_id for m in page})
        if cursor is None:
            break
    known = set(by_pk.values())
    decay = math.log(2) / (90.0 * 86400.0)
    weights: dict[tuple[str, str], float] = {}

    def add(a: str, b: str, at: datetime) -> None:
        if a != b:
            age = max(0.0, (now - at).total_seconds())
            weights[(a, b)] = weights.get((a, b), 0.0) + math.exp(-decay * age)

    n_ref = n_int = 0
    for edge in referrals.referral_edges(session, program):
        a, b = by_pk.get(edge.referrer_id), by_pk.get(edge.referee_id)
        if a is not None and b is not None:
            add(a, b, edge.signed_up_at)
            n_ref += 1
    active: set[str] = set()
    cursor = None
    while True:
        events, cursor = member_events.query_events(session, program, cursor=cursor, limit=1000)
        for ev in events:
            if ev.occurred_at >= now - timedelta(days=30):
                active.add(ev.member)
            if ev.target and ev.member in known and ev.target in known:
                add(ev.member, ev.target, ev.occurred_at)
                n_int += 1
        if cursor is None:
            break
    return {
        "weights": weights,
        "active": active & known,
        "referrals": n_ref,
        "interactions": n_int,
    }


def test_program_graph_is_unchanged_on_demo_data(database_url) -> None:  # type: ignore[no-untyped-def]
    from budding.demo.build import build_demo
    from budding.influence.program import program_graph
    from budding.members import service as members
    from budding.programs import service as programs

    with unit_of_work() as session:
        build_demo(session, slug="demo", members=150, days=30, seed=11, now=NOW)
    with unit_of_work() as session:
        program = programs.get_program(session, "demo")
        # An erased member's interactions drop out of both constructions alike.
        actor_id = int(
            members.interaction_weights(session, program.id, now=NOW, half_life_days=90)["a"][0]
        )
        members.erase_member(session, program, members.get_member_by_id(session, actor_id))
    with unit_of_work() as session:
        program = programs.get_program(session, "demo")
        expected = _reference_graph(session, program, NOW)
        pg = program_graph(session, program, now=NOW)
    assert expected["interactions"] > 100  # the demo has replies and mentions
    assert pg.interactions == expected["interactions"]
    assert pg.referrals == expected["referrals"]
    assert pg.active == expected["active"] and pg.active
    g = pg.graph
    src, dst = g.edges()
    got = {(g.ids[a], g.ids[b]): float(w) for a, b, w in zip(src, dst, g.out_weight, strict=True)}
    assert set(got) == set(expected["weights"])  # the same edges
    keys = sorted(got)
    want = np.asarray([expected["weights"][k] for k in keys], dtype=np.float32)
    np.testing.assert_allclose([got[k] for k in keys], want, rtol=1e-6)  # the same weights


def test_interaction_weights_sum_the_targeted_events_per_pair(community: dict[str, Any]) -> None:
    from budding.members import service as members

    program_id = community["program"].id
    now = datetime.now(UTC)
    with unit_of_work() as session:
        rows = members.interaction_weights(session, program_id, now=now, half_life_days=90).tolist()
        names = {
            m.id: m.external_id for m in members.search_members(session, program_id, limit=500)[0]
        }
    assert sum(count for *_, count in rows) == 3 * 17 + 1  # every event with a target
    assert len({(a, b) for a, b, _, _ in rows}) == len(rows)  # one row per pair
    bridge = [w for a, b, w, _ in rows if (names[a], names[b]) == ("m5", "m10")]
    assert bridge == [pytest.approx(2 ** (-400 / 90), rel=1e-3)]  # one event, 400 days old
    assert all(0 < w <= count for _, _, w, count in rows)


def test_program_graph_edge_cases(client: Any, community: dict[str, Any]) -> None:
    """A self-loop counts but is no edge; a pair both referred and interacting is one edge
    whose float32 weight is its two float64 sums added; an erased member's edges (either
    way) are gone; a member without edges is a node."""
    from budding.influence.program import program_graph
    from budding.members import service as members
    from budding.programs import service as programs
    from budding.referrals import service as referrals

    now = datetime.now(UTC)
    extra = [
        {"id": "self", "type": "comment", "member": "m2", "target": "m2"},  # a self-loop
        {"id": "both", "type": "reply", "member": "m1", "target": "m11"},  # m1 referred m11
        {"id": "gone1", "type": "reply", "member": "m3", "target": "m12"},  # m3 is erased
        {"id": "gone2", "type": "reply", "member": "m13", "target": "m3"},
    ]
    for e in extra:
        e["occurred_at"] = (now - timedelta(days=3)).isoformat()
    assert client.post("/api/v1/events", json={"events": extra}).json()["accepted"] == 4
    with unit_of_work() as session:
        program = programs.get_program_by_id(session, community["program"].id)
        by_ext = {m.external_id: m for m in members.members_by_external_ids(
            session, program.id, ["m3", "m4", "m14"]
        )}  # fmt: skip
        referrals.record_referral(
            session, program, referrer_id=by_ext["m3"].id, referee_id=by_ext["m14"].id,
            source="test", signed_up_at=now - timedelta(days=1),
        )  # fmt: skip
        members.erase_member(session, program, by_ext["m3"])
    with unit_of_work() as session:
        program = programs.get_program_by_id(session, community["program"].id)
        pg = program_graph(session, program, now=now)
        ref = referrals.referral_weights(session, program, now=now, half_life_days=90).tolist()
        inter = members.interaction_weights(
            session, program.id, now=now, half_life_days=90
        ).tolist()
        pk = {
            m.id: m.external_id for m in members.search_members(session, program.id, limit=500)[0]
        }
    g = pg.graph
    assert g.n == 19 and "m3" not in list(g.ids) and "m19" in list(g.ids)
    assert g.out_weight is not None and g.out_weight.dtype == np.float32
    assert g.in_weight is not None and g.in_weight.dtype == np.float32
    src, dst = g.edges()
    got = {
        (str(g.ids[a]), str(g.ids[b])): w for a, b, w in zip(src, dst, g.out_weight, strict=True)
    }
    sums: dict[tuple[str, str], float] = {}
    for a, b, w, _ in ref + inter:  # referrals first, as the graph adds them
        if a in pk and b in pk and a != b:
            sums[(pk[a], pk[b])] = sums.get((pk[a], pk[b]), 0.0) + w
    assert got == {k: np.float32(v) for k, v in sums.items()}  # bit for bit
    assert ("m2", "m2") not in got and ("m1", "m11") in got
    assert not any("m3" in pair for pair in got)
    assert pg.referrals == 1  # m3's referral left out with m3
    # with the self-loop and m1 → m11; without m0's three comments to m3 nor m3's two
    assert pg.interactions == 3 * 17 + 1 + 2 - 3
    assert pg.attributes["m1"] == {"lang": "ko"} and "m3" not in pg.attributes
    assert pg.names["m19"] == "Member m19" and "m3" not in pg.names
