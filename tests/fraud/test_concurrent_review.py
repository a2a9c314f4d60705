"""Concurrency on PostgreSQL: reviews of one assessment decided at once, and a rejection
racing with the vesting job. One decision wins; the rewards follow it exactly once.
Each transaction has its own session and connection; the threads start at a barrier."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from budding.core.db import unit_of_work, utcnow
from budding.core.errors import Conflict
from budding.fraud import service
from budding.programs.service import get_program
from budding.referrals import service as referrals
from budding.rewards import events as history
from budding.rewards import service as rewards
from tests.fraud.test_review import _invite, _points, _rule, held_signup  # noqa: F401
from tests.rewards.helpers import concurrently

pytestmark = pytest.mark.postgres


def _decide(slug: str, outcome: str, assessment_id: int, actor: str) -> str:
    with unit_of_work() as session:
        program = get_program(session, slug)
        decide = service.approve if outcome == "approved" else service.reject
        try:
            return decide(session, program, assessment_id, actor=actor).review_status
        except Conflict as exc:
            return f"conflict:{exc.fields.get('status')}"


@pytest.fixture
def flag_shared_devices(program):  # type: ignore[no-untyped-def]
    """A device the referrer used flags (not holds) the signup; the referrer earns 10
    points per signup, vesting after 14 days."""
    with unit_of_work() as session:
        service.update_settings(
            session, get_program(session, program.slug), {"checks": {"self_device": "flag"}}
        )
    _rule(
        program,
        name="Referrer signup",
        side="referrer",
        trigger="signup",
        kind="points",
        amount=10,
        vesting_days=14,
    )


def _flagged_signup(client: Any, owner: str, friend: str, device: str) -> tuple[str, int, int, int]:
    """``friend`` redeems ``owner``'s invite on ``owner``'s device: (owner, the pending
    reward's id, the flag assessment's id, the referral's id)."""
    code = _invite(client, owner)
    login = {
        "id": f"login-{owner}",
        "type": "login",
        "member": owner,
        "occurred_at": datetime.now(UTC).isoformat(),
        "properties": {"device": device},
    }
    assert client.post("/api/v1/events", json={"events": [login]}).json()["accepted"] == 1
    r = client.post(
        f"/api/v1/invites/{code}/redeem",
        json={"external_id": friend, "email": f"{friend}@example.net", "device": device},
    )
    assert r.status_code == 201, r.text
    assert r.json()["referral"]["status"] == "active"
    (reward,) = client.get("/api/v1/rewards", params={"member": owner}).json()["rewards"]
    assert reward["status"] == "pending"
    queue = client.get("/api/v1/fraud/assessments").json()["assessments"]
    (mine,) = [a for a in queue if a["member"] == friend]
    assert mine["action"] == "flag"
    return owner, reward["id"], mine["id"], r.json()["referral"]["id"]


def _statuses(client: Any) -> set[str]:
    return {r["status"] for r in client.get("/api/v1/rewards").json()["rewards"]}


def test_approve_and_reject_the_same_assessment_at_once(
    postgres,
    client,
    program,
    held_signup,  # noqa: F811 (the fixture imported above)
) -> None:  # type: ignore[no-untyped-def]
    """Five approvals and five rejections of one held signup at once: one outcome is
    recorded; its side pays (110 and 5 points, once) or takes back everything."""
    assessment = held_signup["assessment"]

    def work(i: int) -> str:
        return _decide(program.slug, ("approved", "rejected")[i % 2], assessment, f"staff-{i}")

    outcomes = Counter(concurrently(10, work))
    winner = "approved" if outcomes["approved"] else "rejected"
    loser = "rejected" if winner == "approved" else "approved"
    assert outcomes == {winner: 5, f"conflict:{winner}": 5}, outcomes
    assert loser not in outcomes
    item = client.get(f"/api/v1/fraud/assessments/{assessment}").json()
    assert item["review_status"] == winner
    referral = client.get(f"/api/v1/referrals/{held_signup['referral']}").json()
    assert referral["status"] == winner
    if winner == "approved":
        assert _statuses(client) == {"issued"}
        assert _points(client, "ann") == 110 and _points(client, "bea") == 5
    else:
        assert _statuses(client) == {"reversed"}
        assert _points(client, "ann") == 0 and _points(client, "bea") == 0
    with unit_of_work() as session:
        for row in client.get("/api/v1/rewards").json()["rewards"]:
            issued = [e for e in history.history(session, row["id"]) if e.type == "issued"]
            assert len(issued) == (1 if winner == "approved" else 0)


def test_rejection_while_two_workers_vest_the_reward(
    postgres, client, program, flag_shared_devices
) -> None:  # type: ignore[no-untyped-def]
    """A flagged (not held) signup's vesting reward: two job workers vest it while a
    reviewer rejects the signup. Whatever the order, the points end taken back."""
    rounds = 6
    cases = [_flagged_signup(client, f"ann{n}", f"bea{n}", f"d{n}") for n in range(rounds)]

    later = utcnow() + timedelta(days=15)

    def work(i: int) -> str:
        _, reward_id, assessment_id, _ = cases[i // 3]
        if i % 3 == 2:
            return _decide(program.slug, "rejected", assessment_id, "staff")
        with unit_of_work() as session:  # a worker running rewards.vest_reward
            return rewards.vest_by_id(session, reward_id, now=later)

    outcomes = concurrently(3 * rounds, work)
    assert set(outcomes[2::3]) == {"rejected"}, outcomes
    for owner, reward_id, _, referral_id in cases:
        assert _points(client, owner) == 0, (owner, outcomes)
        with unit_of_work() as session:
            prog = get_program(session, program.slug)
            assert rewards.get_reward(session, prog, reward_id).status == "reversed"
            assert referrals.get_referral(session, referral_id).status == "rejected"
            issued = [e for e in history.history(session, reward_id) if e.type == "issued"]
            assert len(issued) <= 1


def test_approval_while_the_vesting_job_holds_the_reward(
    postgres, client, program, flag_shared_devices
) -> None:  # type: ignore[no-untyped-def]
    """The vesting job finds the referral under review and holds its due reward (not yet
    committed) while the reviewer approves the signup: the reward must not stay held (it
    did: the approval's release saw no held reward)."""
    import threading
    import time

    from sqlalchemy import update

    from budding.fraud.models import FraudAssessment

    _, reward_id, assessment_id, referral_id = _flagged_signup(client, "ann", "bea", "d1")
    # the signup comes under review after its reward was granted (a later check held it)
    with unit_of_work() as session:
        session.execute(
            update(FraudAssessment).where(FraudAssessment.id == assessment_id).values(action="hold")
        )
        referrals.set_referral_status(session, referral_id, "held", "review")
    held = threading.Event()

    def work(i: int) -> str:
        if i == 0:  # the vesting job: holds the reward, commits a moment later
            with unit_of_work() as session:
                outcome = rewards.vest_by_id(session, reward_id, now=utcnow() + timedelta(days=15))
                held.set()
                time.sleep(0.5)
                return outcome
        assert held.wait(30)
        return _decide(program.slug, "approved", assessment_id, "staff")

    assert concurrently(2, work) == ["held", "approved"]
    with unit_of_work() as session:
        prog = get_program(session, program.slug)
        # released: back to vesting (its time has not come outside this test's clock)
        assert rewards.get_reward(session, prog, reward_id).status == "pending"
