"""The demo's fraud: attempts the checks stop, and friends who pay with their referrer's card.

The community's referred signups are checked already (the referrals capability asks
the fraud checks when the demo's signup events arrive). On top of that, without adding
a member:

- a few members try to refer themselves under an alias of their own address (``+tag``,
  Gmail dots) or from a disposable mailbox: the checks block them, and the attempts
  stay in the log;
- a few referred friends make their first purchase with a card their referrer saved:
  ``self_payment`` is found at the purchase, and those referrals (and their rewards)
  wait in the review queue.

Everything is keyed, so building the demo again adds nothing twice.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from budding.fraud import service
from budding.fraud.models import FraudAssessment
from budding.fraud.scenarios import DISPOSABLE
from budding.programs.models import Program

ALIAS_ATTEMPTS = 0.02  # of members with an e-mail
SHARED_CARD = 0.08  # of the friends who may be chosen (see below)
EVENT_PREFIX = "fraud-demo-"


def contribute(
    session: Session, program: Program, community: Any, rng: np.random.Generator
) -> None:
    from budding.members import events as member_events

    end = community.end
    for i in range(community.size):
        email = community.emails[i]
        if not email or rng.random() >= ALIAS_ATTEMPTS:
            continue
        local, _, domain = email.partition("@")
        if rng.random() < 0.7:
            attempt = f"{local}+{rng.choice(['promo', 'bonus', 'x', 'friend'])}@{domain}"
        else:
            attempt = f"{local}{int(rng.integers(1, 99))}@{rng.choice(list(DISPOSABLE))}"
        at = min(end, community.signup_at[i] + timedelta(days=float(rng.uniform(1, 20))))
        if _attempted(session, program, community.member_ids[i], attempt):
            continue  # the demo was built before
        service.assess_signup(
            session,
            program,
            referrer_id=community.member_ids[i],
            email=attempt,
            ip_hash=None,
            device_hash=None,
            properties={},
            at=at,
        )
    purchases: list[dict[str, Any]] = []
    for parent, child in community.referrals():
        # Only friends who brought nobody, of referrers who brought others too: holding
        # them leaves the rest of the fission tree as it was.
        if community.children(child) or len(community.children(parent)) < 2:
            continue
        if rng.random() >= SHARED_CARD:
            continue
        card = f"demo-card-{int(rng.integers(0, 2**40)):010x}"
        service.record_signals(
            session, program, community.member_ids[parent], payment_fingerprint=card
        )
        at = community.signup_at[child] + timedelta(hours=float(rng.uniform(1, 72)))
        if at >= end:
            continue
        purchases.append(
            {
                "id": f"{EVENT_PREFIX}purchase-{child}",
                "type": "purchase",
                "member": community.external_ids[child],
                "occurred_at": at.isoformat(),
                "properties": {
                    "amount": round(float(rng.uniform(8, 40)), 2),
                    "currency": "USD",
                    "order_id": f"{EVENT_PREFIX}order-{child}",
                    "payment_fingerprint": card,
                },
            }
        )
    if purchases:
        member_events.ingest_events(session, program, purchases)


def _attempted(session: Session, program: Program, referrer_id: int, email: str) -> bool:
    found = session.scalar(
        select(FraudAssessment.id)
        .where(
            FraudAssessment.program_id == program.id,
            FraudAssessment.referrer_id == referrer_id,
            FraudAssessment.email_key == service.email_key(email),
        )
        .limit(1)
    )
    return found is not None
