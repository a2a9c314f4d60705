"""Builders for rewards tests: members, rules, pools, and deliveries of a trigger."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from budding.core.db import unit_of_work
from budding.members import service as members
from budding.programs.models import Program
from budding.rewards import coupons, rules, service

WHEN = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


def member(program: Program, external_id: str, email: str | None = None) -> int:
    with unit_of_work() as session:
        data: dict[str, Any] = {"external_id": external_id}
        if email:
            data["email"] = email
        m, _ = members.upsert_member(session, program, data)
        return m.id


def rule(program: Program, **data: Any) -> int:
    with unit_of_work() as session:
        return rules.create_rule(session, program, data).id


def pool(program: Program, name: str, codes: int) -> None:
    with unit_of_work() as session:
        coupons.upload_codes(
            session, program, name, "\n".join(f"{name}-{i:04d}" for i in range(codes))
        )


def deliver(
    program: Program,
    *,
    referral_id: int,
    referrer_id: int,
    referee_id: int,
    trigger: str = "conversion",
    trigger_key: str = "purchase-1",
    occurred_at: datetime = WHEN,
) -> list[int]:
    """One delivery of a trigger in its own unit of work; the ids of the rewards it created."""
    with unit_of_work() as session:
        created = service.reward_referral(
            session,
            program,
            referral_id=referral_id,
            referrer_id=referrer_id,
            referee_id=referee_id,
            trigger=trigger,
            trigger_key=trigger_key,
            occurred_at=occurred_at,
        )
        return [r.id for r in created]


def concurrently(n: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in ``n`` threads released at once; re-raise the first error."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    if errors:
        raise errors[0]
    return results


def rewards(program: Program, **filters: Any) -> list[dict[str, Any]]:
    with unit_of_work() as session:
        rows = service.list_rewards(session, program, limit=1000, **filters)
        return service.rewards_out(session, program, rows)
