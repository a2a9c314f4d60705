"""Concurrency on PostgreSQL: taking a reward back (a refund, a rejection on review) while
another transaction issues the same reward (an approval, the vesting job).

Whichever commits first, a reward that is taken back ends ``reversed`` with its points
compensated: never paid and kept, never rejected "successfully" while it stays issued.
Each transaction has its own session and connection; the threads start at a barrier.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from budding.core.db import unit_of_work, utcnow
from budding.core.errors import Conflict
from budding.honors import ledger
from budding.rewards import service
from tests.rewards.helpers import concurrently, deliver, member, rule

pytestmark = pytest.mark.postgres

ISSUERS = ("approve", "vest")
REVERSERS = ("refund", "reject")


@pytest.fixture
def pair(program, postgres):  # type: ignore[no-untyped-def]
    return member(program, "ann", "ann@example.com"), member(program, "bob", "bob@example.com")


def _vesting_rule(program: Any) -> None:
    rule(
        program,
        name="Vested",
        side="referrer",
        trigger="conversion",
        kind="points",
        amount=7,
        vesting_days=30,
    )


def _issue(program: Any, how: str, reward_id: int) -> str:
    """Issue the reward in the caller's transaction, as a reviewer or the vesting job does."""
    with unit_of_work() as session:
        return _issue_in(session, program, how, reward_id)


def _issue_in(session: Any, program: Any, how: str, reward_id: int) -> str:
    if how == "approve":
        return service.approve_reward(session, program, reward_id, actor="staff").status
    reward = service.get_reward(session, program, reward_id)
    return service.vest(session, reward, now=utcnow() + timedelta(days=31))


def _take_back(program: Any, how: str, reward_id: int, trigger_key: str) -> str:
    with unit_of_work() as session:
        if how == "refund":
            done = service.reverse_rewards(
                session, program, trigger_key=trigger_key, reason="refunded"
            )
            return "reversed" if done else "nothing"
        return service.reject_reward(session, program, reward_id, reason="fraud").status


def _state(program: Any, reward_id: int, member_id: int) -> tuple[str, int]:
    with unit_of_work() as session:
        status = service.get_reward(session, program, reward_id).status
        return status, ledger.balance(session, program, member_id)


@pytest.mark.parametrize("issuer", ISSUERS)
@pytest.mark.parametrize("reverser", REVERSERS)
def test_taking_back_a_reward_while_it_is_being_issued(program, pair, issuer, reverser) -> None:  # type: ignore[no-untyped-def]
    """The issuer has issued (not yet committed) when the refund or rejection runs: the
    reward must still end reversed, with the points taken back."""
    ann, bob = pair
    _vesting_rule(program)
    (reward_id,) = deliver(
        program, referral_id=1, referrer_id=ann, referee_id=bob, occurred_at=utcnow()
    )
    barrier = threading.Barrier(2)
    issued = threading.Event()

    def work(i: int) -> str:
        if i == 0:
            with unit_of_work() as session:
                outcome = _issue_in(session, program, issuer, reward_id)
                issued.set()
                time.sleep(0.5)  # the other transaction runs while this one is open
                return outcome
        assert issued.wait(30)
        return _take_back(program, reverser, reward_id, "purchase-1")

    barrier_work = _at_barrier(barrier, work)
    first, second = concurrently(2, barrier_work)
    assert first in ("issued", "vested")
    assert second == "reversed", second
    assert _state(program, reward_id, ann) == ("reversed", 0)


def _at_barrier(barrier: threading.Barrier, work: Any) -> Any:
    def run(i: int) -> Any:
        barrier.wait()
        return work(i)

    return run


def test_many_rewards_issued_and_taken_back_at_once(program, pair) -> None:  # type: ignore[no-untyped-def]
    """20 rewards, each issued by one thread (approval or vesting) and refunded or rejected
    by another, all released together: every reward ends reversed and the balance is 0;
    an approval that lost the race is a conflict naming the reward's state."""
    ann, bob = pair
    _vesting_rule(program)
    ids = [
        deliver(
            program,
            referral_id=1,
            referrer_id=ann,
            referee_id=bob,
            trigger_key=f"purchase-{n}",
            occurred_at=utcnow(),
        )[0]
        for n in range(20)
    ]

    def work(i: int) -> str:
        n = i // 2
        try:
            if i % 2:
                return _take_back(program, REVERSERS[n % 2], ids[n], f"purchase-{n}")
            return _issue(program, ISSUERS[(n // 2) % 2], ids[n])
        except Conflict as exc:
            return f"{type(exc).__name__}:{(exc.fields or {}).get('status')}"

    outcomes = concurrently(40, work)
    takers = Counter(outcomes[1::2])
    # A rejection that comes first refuses the pending reward; any other order reverses it.
    assert set(takers) <= {"reversed", "rejected"}, takers
    issuers = Counter(outcomes[0::2])
    allowed = {"issued", "vested", "unchanged", "Conflict:reversed", "Conflict:rejected"}
    assert set(issuers) <= allowed, issuers
    for n, reward_id in enumerate(ids):
        assert _state(program, reward_id, ann)[0] == outcomes[2 * n + 1]
    assert _state(program, ids[0], ann)[1] == 0
