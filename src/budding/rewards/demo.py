"""The demo's rewards: a double-sided program with a coupon pool, vesting and milestones,
applied to every referral the referrals capability stored for the community.

Capabilities contribute in name order, so the referrals are already there when this
runs; their signups and conversions are replayed through ``reward_referral`` with the
trigger keys the referrals capability uses (``referral:<id>:signup`` and the
converting event's id), so a later retry from there pays nothing twice. Refunded
purchases then take their rewards back, as the refund listener would have.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from budding.programs.models import Program
from budding.rewards import coupons, rules, service

POOL = "welcome-coffee"
DEMO_RULES: list[dict[str, Any]] = [
    {
        "name": "Welcome points for the friend",
        "side": "referee",
        "trigger": "signup",
        "kind": "points",
        "amount": 50,
    },
    {
        "name": "Thanks for a friend's first order",
        "side": "referrer",
        "trigger": "conversion",
        "kind": "points",
        "amount": 200,
        "vesting_days": 14,
    },
    {
        "name": "Free coffee for the friend",
        "side": "referee",
        "trigger": "conversion",
        "kind": "coupon",
        "pool": POOL,
    },
    {
        "name": "Three friends: three more invites",
        "side": "referrer",
        "trigger": "milestone",
        "milestone": 3,
        "kind": "invites",
        "amount": 3,
    },
    {
        "name": "Ten friends: a Sprout tote bag",
        "side": "referrer",
        "trigger": "milestone",
        "milestone": 10,
        "kind": "custom",
        "payload": {"sku": "TOTE-01", "ship": True},
    },
]
PAGE = 1000


def contribute(
    session: Session, program: Program, community: Any, rng: np.random.Generator
) -> None:
    if rules.list_rules(session, program):
        return  # a demo built before: its rules (and rewards) are there already
    letters = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    codes = {
        "SPROUT-" + "".join(letters[int(x)] for x in rng.integers(0, len(letters), 8))
        for _ in range(max(50, community.size // 4))
    }
    coupons.upload_codes(
        session,
        program,
        POOL,
        [(i + 1, c) for i, c in enumerate(sorted(codes))],
        description="One free coffee per referred friend",
    )
    for data in DEMO_RULES:
        rules.create_rule(session, program, data)
    try:
        from budding.referrals import service as referrals
    except ModuleNotFoundError:
        return
    facts: list[Any] = []
    before: int | None = None
    while True:
        page = referrals.list_referrals(session, program, limit=PAGE, before_id=before)
        facts.extend(page)
        if len(page) < PAGE:
            break
        before = page[-1].id
    from budding.fraud import service as fraud

    fraud.link_referrals(session, program, facts)  # held signups hold their rewards
    for fact in sorted(facts, key=lambda f: (f.signed_up_at, f.id)):
        common = {
            "referral_id": fact.id,
            "referrer_id": fact.referrer_id,
            "referee_id": fact.referee_id,
        }
        service.reward_referral(
            session,
            program,
            trigger="signup",
            trigger_key=f"referral:{fact.id}:signup",
            occurred_at=fact.signed_up_at,
            **common,
        )
        if fact.converted_at is not None and fact.conversion_event_id:
            service.reward_referral(
                session,
                program,
                trigger="conversion",
                trigger_key=fact.conversion_event_id,
                occurred_at=fact.converted_at,
                **common,
            )
    for purchase in community.purchases:
        if purchase.refund_event_id:
            service.reverse_rewards(
                session,
                program,
                trigger_key=service.conversion_key(purchase.event_id),
                reason=f"refund {purchase.refund_event_id}",
            )
