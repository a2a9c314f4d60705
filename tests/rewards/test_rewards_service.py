"""Issuing rewards exactly once, milestones, coupons, reversal, vesting, review."""

from __future__ import annotations

from datetime import timedelta

import pytest

from budding.core.db import unit_of_work
from budding.core.errors import Conflict, ValidationFailed
from budding.honors import ledger
from budding.rewards import coupons, service
from budding.rewards import events as history
from tests.rewards.helpers import WHEN, concurrently, deliver, member, pool, rewards, rule


@pytest.fixture
def pair(program):  # type: ignore[no-untyped-def]
    return member(program, "ann", "ann@example.com"), member(program, "bob", "bob@example.com")


def _balance(program, member_id: int) -> int:  # type: ignore[no-untyped-def]
    with unit_of_work() as session:
        return ledger.balance(session, program, member_id)


def test_double_sided_conversion_rewards_both(program, pair) -> None:  # type: ignore[no-untyped-def]
    ann, bob = pair
    pool(program, "welcome", 5)
    rule(
        program,
        name="Referrer points",
        side="referrer",
        trigger="conversion",
        kind="points",
        amount=100,
    )
    rule(
        program,
        name="Friend coupon",
        side="referee",
        trigger="conversion",
        kind="coupon",
        pool="welcome",
    )
    rule(program, name="Signup points", side="referrer", trigger="signup", kind="points", amount=5)
    created = deliver(program, referral_id=1, referrer_id=ann, referee_id=bob)
    assert len(created) == 2
    rows = {r["rule"]: r for r in rewards(program)}
    assert (
        rows["Referrer points"]["status"] == "issued" and rows["Referrer points"]["member"] == "ann"
    )
    assert rows["Friend coupon"]["status"] == "issued" and rows["Friend coupon"]["member"] == "bob"
    assert rows["Friend coupon"]["coupon_code"] == "welcome-0000"
    assert _balance(program, ann) == 100 and _balance(program, bob) == 0
    with unit_of_work() as session:
        types = [e.type for e in history.history(session, rows["Referrer points"]["id"])]
    assert types == ["created", "issued"]


def test_retries_pay_once_and_return_nothing_new(program, pair) -> None:  # type: ignore[no-untyped-def]
    ann, bob = pair
    rule(program, name="Points", side="referrer", trigger="conversion", kind="points", amount=50)
    assert len(deliver(program, referral_id=1, referrer_id=ann, referee_id=bob)) == 1
    for _ in range(3):
        assert deliver(program, referral_id=1, referrer_id=ann, referee_id=bob) == []
    assert _balance(program, ann) == 50
    # A second conversion (another key) pays again.
    deliver(program, referral_id=1, referrer_id=ann, referee_id=bob, trigger_key="purchase-2")
    assert _balance(program, ann) == 100


def test_conversion_delivered_10_times_concurrently_pays_each_reward_once(program, pair) -> None:  # type: ignore[no-untyped-def]
    """Ten deliveries of one conversion at once, each its own unit of work (SQLite here,
    PostgreSQL when the suite runs there)."""
    ann, bob = pair
    pool(program, "spring", 20)
    rule(program, name="Points", side="referrer", trigger="conversion", kind="points", amount=100)
    rule(program, name="Coupon", side="referee", trigger="conversion", kind="coupon", pool="spring")
    rule(
        program,
        name="First",
        side="referrer",
        trigger="milestone",
        milestone=1,
        kind="points",
        amount=7,
    )
    created = concurrently(
        10, lambda i: deliver(program, referral_id=1, referrer_id=ann, referee_id=bob)
    )
    assert sorted(len(c) for c in created) == [0] * 9 + [3]
    rows = rewards(program)
    assert len(rows) == 3 and {r["status"] for r in rows} == {"issued"}
    assert _balance(program, ann) == 107
    with unit_of_work() as session:
        stats = coupons.pool_stats(session, program)[0]
        assert (stats.claimed, stats.available) == (1, 19)


def test_postgres_many_conversions_of_many_referrals_at_once(program, postgres) -> None:  # type: ignore[no-untyped-def]
    """On PostgreSQL: 5 conversions, each delivered 10 times, all 50 at once; milestones at 3
    and 5 successful referrals are each paid once and neither is missed."""
    ann = member(program, "ann")
    friends = [member(program, f"f{i}") for i in range(5)]
    rule(program, name="Points", side="referrer", trigger="conversion", kind="points", amount=10)
    rule(
        program,
        name="Three",
        side="referrer",
        trigger="milestone",
        milestone=3,
        kind="points",
        amount=300,
    )
    rule(
        program,
        name="Five",
        side="referrer",
        trigger="milestone",
        milestone=5,
        kind="points",
        amount=500,
    )

    def work(i: int) -> list[int]:
        n = i % 5
        return deliver(
            program,
            referral_id=100 + n,
            referrer_id=ann,
            referee_id=friends[n],
            trigger_key=f"p{n}",
        )

    concurrently(50, work)
    names = sorted(r["rule"] for r in rewards(program))
    assert names == ["Five", "Points", "Points", "Points", "Points", "Points", "Three"]
    assert _balance(program, ann) == 50 + 300 + 500


def test_milestones_pay_once_per_member(program) -> None:  # type: ignore[no-untyped-def]
    ann = member(program, "ann")
    friends = [member(program, f"f{i}") for i in range(12)]
    rule(
        program,
        name="3 friends",
        side="referrer",
        trigger="milestone",
        milestone=3,
        kind="points",
        amount=30,
    )
    rule(
        program,
        name="10 friends",
        side="referrer",
        trigger="milestone",
        milestone=10,
        kind="points",
        amount=100,
    )
    rule(
        program,
        name="25 friends",
        side="referrer",
        trigger="milestone",
        milestone=25,
        kind="points",
        amount=250,
    )
    rule(
        program,
        name="Signups count",
        side="referrer",
        trigger="milestone",
        milestone=2,
        milestone_on="signup",
        kind="points",
        amount=1,
    )
    for i, f in enumerate(friends):
        deliver(program, referral_id=10 + i, referrer_id=ann, referee_id=f, trigger_key=f"c{i}")
        deliver(
            program, referral_id=10 + i, referrer_id=ann, referee_id=f, trigger_key=f"c{i}-again"
        )
    names = sorted(r["rule"] for r in rewards(program))
    # Two conversions of one referral are one successful referral; no signups were delivered.
    assert names == ["10 friends", "3 friends"]
    deliver(
        program,
        referral_id=10,
        referrer_id=ann,
        referee_id=friends[0],
        trigger="signup",
        trigger_key="s0",
    )
    deliver(
        program,
        referral_id=11,
        referrer_id=ann,
        referee_id=friends[1],
        trigger="signup",
        trigger_key="s1",
    )
    deliver(
        program,
        referral_id=12,
        referrer_id=ann,
        referee_id=friends[2],
        trigger="signup",
        trigger_key="s2",
    )
    assert sorted(r["rule"] for r in rewards(program)) == [
        "10 friends",
        "3 friends",
        "Signups count",
    ]
    assert _balance(program, ann) == 131


def test_refund_reverses_with_compensating_entries(program, pair) -> None:  # type: ignore[no-untyped-def]
    ann, bob = pair
    pool(program, "p", 3)
    rule(program, name="Points", side="referrer", trigger="conversion", kind="points", amount=100)
    rule(program, name="Coupon", side="referee", trigger="conversion", kind="coupon", pool="p")
    deliver(program, referral_id=1, referrer_id=ann, referee_id=bob, trigger_key="order-1")
    with unit_of_work() as session:
        undone = service.reverse_rewards(session, program, trigger_key="order-1", reason="refund")
        assert len(undone) == 2
        assert (
            service.reverse_rewards(session, program, trigger_key="order-1", reason="again") == []
        )
        entries = ledger.entries(session, program, ann)
        assert [e.points for e in entries] == [-100, 100]  # the original entry stays
        stats = coupons.pool_stats(session, program)[0]
        assert (stats.claimed, stats.voided, stats.available) == (1, 1, 2)
    assert _balance(program, ann) == 0
    assert {r["status"] for r in rewards(program)} == {"reversed"}
    # A retried conversion after the refund pays nothing again.
    assert (
        deliver(program, referral_id=1, referrer_id=ann, referee_id=bob, trigger_key="order-1")
        == []
    )


def test_fraud_reversal_takes_milestones_back_and_they_can_be_earned_again(program) -> None:  # type: ignore[no-untyped-def]
    ann = member(program, "ann")
    friends = [member(program, f"f{i}") for i in range(4)]
    rule(
        program,
        name="Three",
        side="referrer",
        trigger="milestone",
        milestone=3,
        kind="points",
        amount=30,
    )
    for i in range(3):
        deliver(
            program, referral_id=i + 1, referrer_id=ann, referee_id=friends[i], trigger_key=f"k{i}"
        )
    assert _balance(program, ann) == 30
    with unit_of_work() as session:
        undone = service.reverse_rewards(session, program, referral_id=2, reason="fraud")
    assert [r.trigger for r in undone] == ["milestone"]
    assert _balance(program, ann) == 0
    deliver(program, referral_id=4, referrer_id=ann, referee_id=friends[3], trigger_key="k3")
    assert _balance(program, ann) == 30
    statuses = sorted(r["status"] for r in rewards(program))
    assert statuses == ["issued", "reversed"]


def test_empty_pool_holds_the_reward_until_codes_come(program, pair) -> None:  # type: ignore[no-untyped-def]
    ann, bob = pair
    with unit_of_work() as session:
        coupons.create_pool(session, program, "tiny")
    rule(program, name="Coupon", side="referee", trigger="conversion", kind="coupon", pool="tiny")
    deliver(program, referral_id=1, referrer_id=ann, referee_id=bob)
    (row,) = rewards(program)
    assert row["status"] == "held" and "empty" in row["reason"]
    with unit_of_work() as session, pytest.raises(service.CouponPoolEmpty):
        service.approve_reward(session, program, row["id"], actor="t")
    pool(program, "tiny", 1)
    with unit_of_work() as session:
        approved = service.approve_reward(session, program, row["id"], actor="t")
        assert approved.status == "issued"
    assert rewards(program)[0]["coupon_code"] == "tiny-0000"


def test_coupon_pool_never_hands_a_code_twice_under_50_concurrent_claims(program) -> None:  # type: ignore[no-untyped-def]
    ann = member(program, "ann")
    friends = [member(program, f"f{i}") for i in range(50)]
    pool(program, "limited", 30)
    rule(
        program, name="Coupon", side="referee", trigger="conversion", kind="coupon", pool="limited"
    )
    concurrently(
        50,
        lambda i: deliver(
            program, referral_id=i + 1, referrer_id=ann, referee_id=friends[i], trigger_key=f"o{i}"
        ),
    )
    rows = rewards(program)
    codes = [r["coupon_code"] for r in rows if r["status"] == "issued"]
    assert len(rows) == 50
    assert len(codes) == 30 and len(set(codes)) == 30
    assert sum(1 for r in rows if r["status"] == "held") == 20
    with unit_of_work() as session:
        stats = coupons.pool_stats(session, program)[0]
        assert (stats.available, stats.claimed) == (0, 30)


def test_vesting_waits_then_vests(program, pair) -> None:  # type: ignore[no-untyped-def]
    ann, bob = pair
    rule(
        program,
        name="Vested",
        side="referrer",
        trigger="conversion",
        kind="points",
        amount=40,
        vesting_days=30,
    )
    from budding.core.db import utcnow

    now = utcnow()
    deliver(program, referral_id=1, referrer_id=ann, referee_id=bob, occurred_at=now)
    (row,) = rewards(program)
    assert row["status"] == "pending" and row["vests_at"] is not None
    assert _balance(program, ann) == 0
    with unit_of_work() as session:
        early = service.vest_due(session, program, now=now + timedelta(days=29))
        assert early.vested == 0
        done = service.vest_due(session, program, now=now + timedelta(days=31))
        assert done.vested == 1
    assert _balance(program, ann) == 40
    with unit_of_work() as session:  # the scheduled job finds nothing left to do
        assert service.vest_by_id(session, row["id"]) == "unchanged"


def test_vesting_job_is_scheduled_at_the_vesting_time(program, pair) -> None:  # type: ignore[no-untyped-def]
    from budding.core import jobs
    from budding.core.db import utcnow

    ann, bob = pair
    rule(
        program,
        name="Vested",
        side="referrer",
        trigger="conversion",
        kind="points",
        amount=40,
        vesting_days=7,
    )
    now = utcnow()
    deliver(program, referral_id=1, referrer_id=ann, referee_id=bob, occurred_at=now)
    with unit_of_work() as session:
        found = jobs.list_jobs(session, program.id, kind="rewards.vest_reward")
    assert len(found) == 1
    assert abs((found[0].run_after - (now + timedelta(days=7))).total_seconds()) < 1


def test_referee_who_churns_before_vesting_loses_the_reward(program, pair, client) -> None:  # type: ignore[no-untyped-def]
    from budding.core.db import utcnow

    ann, bob = pair
    rule(
        program,
        name="Vested",
        side="referrer",
        trigger="conversion",
        kind="points",
        amount=40,
        vesting_days=30,
    )
    start = utcnow() - timedelta(days=10)
    deliver(program, referral_id=1, referrer_id=ann, referee_id=bob, occurred_at=start)
    churn = {
        "id": "churn-1",
        "type": "churn",
        "member": "bob",
        "occurred_at": (start + timedelta(days=3)).isoformat(),
    }
    assert client.post("/api/v1/events", json={"events": [churn]}).json()["accepted"] == 1
    with unit_of_work() as session:
        result = service.vest_due(session, program, now=start + timedelta(days=31))
        assert (result.vested, result.rejected) == (0, 1)
    assert rewards(program)[0]["status"] == "rejected"
    # A conversion delivered late, after its vesting time, vests at once only if the
    # referee stayed: bob churned, so nothing is paid.
    late = start - timedelta(days=25)
    deliver(
        program,
        referral_id=1,
        referrer_id=ann,
        referee_id=bob,
        trigger_key="late",
        occurred_at=late,
    )
    assert [r["status"] for r in rewards(program)] == ["rejected", "rejected"]
    assert _balance(program, ann) == 0


def test_approve_and_reject(program, pair) -> None:  # type: ignore[no-untyped-def]
    ann, bob = pair
    rule(
        program,
        name="Vested",
        side="referrer",
        trigger="conversion",
        kind="points",
        amount=10,
        vesting_days=30,
    )
    rule(program, name="Now", side="referee", trigger="conversion", kind="points", amount=5)
    from budding.core.db import utcnow

    deliver(
        program,
        referral_id=1,
        referrer_id=ann,
        referee_id=bob,
        trigger_key="a",
        occurred_at=utcnow(),
    )
    deliver(
        program,
        referral_id=1,
        referrer_id=ann,
        referee_id=bob,
        trigger_key="b",
        occurred_at=utcnow(),
    )
    rows = {(r["rule"], r["trigger_key"]): r["id"] for r in rewards(program)}
    with unit_of_work() as session:
        assert (
            service.approve_reward(session, program, rows[("Vested", "a")], actor="t").status
            == "issued"
        )
        assert (
            service.approve_reward(session, program, rows[("Vested", "a")], actor="t").status
            == "issued"
        )
        assert (
            service.reject_reward(session, program, rows[("Vested", "b")], reason="no").status
            == "rejected"
        )
        with pytest.raises(Conflict):
            service.approve_reward(session, program, rows[("Vested", "b")])
        # Rejecting an issued reward takes it back.
        assert (
            service.reject_reward(session, program, rows[("Now", "a")], reason="oops").status
            == "reversed"
        )
        assert ledger.balance(session, program, bob) == 5
        assert ledger.balance(session, program, ann) == 10


def test_bad_trigger_input_names_the_field(program, pair) -> None:  # type: ignore[no-untyped-def]
    ann, bob = pair
    for kwargs, name in (
        ({"trigger": "purchase"}, "trigger"),
        ({"trigger_key": ""}, "trigger_key"),
    ):
        with pytest.raises(ValidationFailed) as exc:
            deliver(program, referral_id=1, referrer_id=ann, referee_id=bob, **kwargs)
        assert name in exc.value.fields
    with unit_of_work() as session, pytest.raises(ValidationFailed) as exc:
        service.reverse_rewards(session, program, reason="x")
    assert "trigger_key" in exc.value.fields


def test_when_is_stored_as_given(program, pair) -> None:  # type: ignore[no-untyped-def]
    ann, bob = pair
    rule(program, name="P", side="referrer", trigger="signup", kind="points", amount=1)
    deliver(
        program, referral_id=1, referrer_id=ann, referee_id=bob, trigger="signup", trigger_key="s"
    )
    assert rewards(program)[0]["occurred_at"] == WHEN


def test_concurrent_approvals_issue_once(program, pair) -> None:  # type: ignore[no-untyped-def]
    from budding.core.db import utcnow

    ann, bob = pair
    rule(
        program,
        name="Vested",
        side="referrer",
        trigger="conversion",
        kind="points",
        amount=9,
        vesting_days=30,
    )
    deliver(program, referral_id=1, referrer_id=ann, referee_id=bob, occurred_at=utcnow())
    (row,) = rewards(program)

    def approve(i: int) -> str:
        with unit_of_work() as session:
            if i % 2:
                return service.approve_reward(session, program, row["id"], actor=f"t{i}").status
            return service.vest(
                session,
                service.get_reward(session, program, row["id"]),
                now=utcnow() + timedelta(days=31),
            )

    concurrently(8, approve)
    assert _balance(program, ann) == 9
    with unit_of_work() as session:
        issued = [e for e in history.history(session, row["id"]) if e.type == "issued"]
    assert len(issued) == 1


def test_issue_and_reversal_send_webhooks(program, pair) -> None:  # type: ignore[no-untyped-def]
    webhooks = pytest.importorskip("budding.webhooks.service")
    import json

    from budding.programs.service import get_program

    ann, bob = pair
    with unit_of_work() as session:
        webhooks.create_endpoint(
            session,
            get_program(session, program.slug),
            url="https://hooks.example.com/in",
            event_types=["reward.issued", "reward.reversed"],
        )
    pool(program, "gift", 1)
    rule(
        program,
        name="Tote",
        side="referrer",
        trigger="conversion",
        kind="custom",
        payload={"sku": "TOTE"},
    )
    rule(program, name="Coupon", side="referee", trigger="conversion", kind="coupon", pool="gift")
    deliver(program, referral_id=1, referrer_id=ann, referee_id=bob, trigger_key="buy-1")
    with unit_of_work() as session:
        service.reverse_rewards(session, program, trigger_key="buy-1", reason="refund r-1")
        sent, _ = webhooks.list_deliveries(session, program.id, limit=10)
        bodies = [json.loads(d.body) for d in sent]
    types = sorted(b["type"] for b in bodies)
    assert types == ["reward.issued", "reward.issued", "reward.reversed", "reward.reversed"]
    tote = next(
        b["data"]["reward"]
        for b in bodies
        if b["type"] == "reward.issued" and b["data"]["reward"]["kind"] == "custom"
    )
    assert tote["payload"] == {"sku": "TOTE"} and tote["member"] == "ann"
    coupon = next(
        b["data"]["reward"]
        for b in bodies
        if b["type"] == "reward.reversed" and b["data"]["reward"]["kind"] == "coupon"
    )
    assert coupon["coupon_code"] == "gift-0000" and coupon["status"] == "reversed"
