"""The referrals part of ``budding demo``: the community's forest as real referrals."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from budding.core.db import unit_of_work
from budding.demo.build import build_demo
from budding.programs import service as programs
from budding.referrals import service, tree, waitlist
from budding.referrals.models import InviteCode, ReferralClick


def test_demo_forest_becomes_referrals(database_url) -> None:  # type: ignore[no-untyped-def]
    with unit_of_work() as session:
        info = build_demo(
            session,
            slug="demo",
            members=150,
            days=30,
            seed=11,
            now=datetime(2026, 3, 1, 12, tzinfo=UTC),
        )
    community = info.community
    assert community is not None
    expected = {
        (community.member_ids[p], community.member_ids[c]) for p, c in community.referrals()
    }
    with unit_of_work() as session:
        program = programs.get_program(session, "demo")
        assert service.referral_settings(program).mode == "invite_only"
        ours = set(community.member_ids)  # other capabilities' demos add members of their own
        edges = [
            e
            for e in service.referral_edges(session, program, include_uncounted=True)
            if e.referee_id in ours
        ]
        assert {(e.referrer_id, e.referee_id) for e in edges} == expected
        by_referee = {e.referee_id: e for e in edges}
        for _p, c in community.referrals():
            edge = by_referee[community.member_ids[c]]
            assert edge.generation == int(community.generation[c])
            assert edge.channel == community.channel[c]
        redeemed = session.scalar(
            select(func.count())
            .select_from(InviteCode)
            .where(InviteCode.program_id == program.id, InviteCode.used == 1)
        )
        assert redeemed >= len(expected)
        clicks = session.scalar(
            select(func.count())
            .select_from(ReferralClick)
            .where(ReferralClick.program_id == program.id)
        )
        assert clicks >= len(expected)
        forest = tree.Forest.load(session, program)
        roots = {
            community.member_ids[i]
            for i in range(community.size)
            if community.parent[i] < 0 and community.children(i)
        }
        assert roots <= set(forest.roots())
        counts = waitlist.waitlist_counts(session, program)
        assert counts["waiting"] >= 10 and counts["confirmed_waiting"] > 0
