"""The demo gets a rewards program (paid for the community's referrals) and fraud checks run
on every referred signup, with a review queue that has work in it — and no extra members."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from budding.core.db import unit_of_work
from budding.fraud import service as fraud
from budding.fraud.models import FraudAssessment
from budding.members.models import Member
from budding.programs.service import get_program
from budding.rewards import coupons, rules, service

pytest.importorskip("budding.demo.build")


@pytest.mark.slow
def test_demo_has_rewards_and_a_review_queue(database_url) -> None:  # type: ignore[no-untyped-def]
    from budding.demo.build import build_demo

    with unit_of_work() as session:
        build_demo(
            session, slug="demo", members=300, days=60, seed=3, now=datetime(2026, 3, 1, tzinfo=UTC)
        )
    with unit_of_work() as session:
        program = get_program(session, "demo")
        assert session.scalar(select(func.count()).where(Member.program_id == program.id)) == 300
        assert len(rules.list_rules(session, program)) == 5
        counts = service.count_by_status(session, program)
        assert coupons.pool_stats(session, program)[0].claimed >= 0
        checked = session.scalar(
            select(func.count()).where(FraudAssessment.program_id == program.id)
        )
        queue = fraud.queue_size(session, program)
    print("demo rewards by status:", counts, "assessments:", checked, "review queue:", queue)
    assert checked and checked > 0
    assert queue > 0
    # Built again: nothing is added twice.
    with unit_of_work() as session:
        build_demo(
            session, slug="demo", members=300, days=60, seed=3, now=datetime(2026, 3, 1, tzinfo=UTC)
        )
    with unit_of_work() as session:
        program = get_program(session, "demo")
        assert (
            session.scalar(select(func.count()).where(FraudAssessment.program_id == program.id))
            == checked
        )
        assert service.count_by_status(session, program) == counts
