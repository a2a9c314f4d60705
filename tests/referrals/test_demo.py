"""The referrals part of ``budding demo``: the community's forest as real referrals."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

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


def _referrals_snapshot(slug: str) -> dict[str, Any]:
    """The referrals part of a demo, by external ids and codes (not row ids)."""
    from budding.members.models import Member
    from budding.referrals.models import InviteRedemption, ReferralCode, WaitlistEntry

    with unit_of_work() as session:
        program = programs.get_program(session, slug)
        ext = dict(
            session.execute(
                select(Member.id, Member.external_id).where(Member.program_id == program.id)
            ).all()
        )
        codes = {
            ext.get(m): c
            for m, c in session.execute(
                select(ReferralCode.member_id, ReferralCode.code).where(
                    ReferralCode.program_id == program.id
                )
            )
        }
        invites = sorted(
            (ext.get(i), c, ext.get(r))
            for i, c, r in session.execute(
                select(InviteCode.issuer_member_id, InviteCode.code, InviteRedemption.member_id)
                .outerjoin(InviteRedemption, InviteRedemption.invite_id == InviteCode.id)
                .where(InviteCode.program_id == program.id)
            )
        )
        clicks = sorted(
            (t, ext.get(r), ch)
            for t, r, ch in session.execute(
                select(
                    ReferralClick.token, ReferralClick.referrer_member_id, ReferralClick.channel
                ).where(ReferralClick.program_id == program.id)
            )
        )
        queue = sorted(
            (e.email, e.seq, e.status, e.referred_by_code_id is not None)
            for e in session.scalars(
                select(WaitlistEntry).where(WaitlistEntry.program_id == program.id)
            )
        )
        return {"codes": codes, "invites": invites, "clicks": clicks, "waitlist": queue}


def _empty_database() -> None:
    from sqlalchemy import text

    from budding.core.db import Base, get_engine, import_models

    import_models()
    engine = get_engine()
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(text(f"DELETE FROM {table.name}"))


def test_demo_referrals_are_the_same_for_a_seed(database_url) -> None:  # type: ignore[no-untyped-def]
    """``budding demo --seed N`` builds the same community: the same referral and invite
    codes, click ids and waitlist, not fresh random ones."""
    built = []
    for _ in range(2):
        with unit_of_work() as session:
            build_demo(
                session,
                slug="demo",
                members=150,
                days=30,
                seed=11,
                now=datetime(2026, 3, 1, 12, tzinfo=UTC),
            )
        built.append(_referrals_snapshot("demo"))
        _empty_database()
    first, second = built
    assert first["codes"] and first["invites"] and first["clicks"] and first["waitlist"]
    assert first == second
