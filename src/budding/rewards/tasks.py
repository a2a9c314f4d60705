"""Background jobs of the rewards capability (on the durable job queue, ``core.jobs``)."""

from __future__ import annotations

from typing import Any

from budding.core.db import unit_of_work
from budding.core.jobs import JobContext, job


class NotDueYet(Exception):
    """The job ran before the reward's vesting time (clocks apart): retried later."""


@job(retries=5, retry_delay=60)
def vest_reward(ctx: JobContext, reward_id: int) -> dict[str, Any]:
    """Vest one pending reward at its vesting time (enqueued when the reward is created or
    released from review). Idempotent: a reward no longer pending is left as it is."""
    from budding.rewards import service

    with unit_of_work() as session:
        outcome = service.vest_by_id(session, reward_id)
    if outcome == "not_due":
        raise NotDueYet(f"reward {reward_id} is not due yet")
    return {"reward_id": reward_id, "outcome": outcome}


@job(retries=2, retry_delay=60, lease=1800)
def vest_due(ctx: JobContext, program_id: int | None = None) -> dict[str, int]:
    """Vest every pending reward whose time has come (a sweep, batch by batch)."""
    from budding.programs.service import get_program_by_id
    from budding.rewards import service

    total = service.VestResult()
    while True:
        with unit_of_work() as session:
            program = get_program_by_id(session, program_id) if program_id else None
            result = service.vest_due(session, program)
        total.vested += result.vested
        total.rejected += result.rejected
        total.held += result.held
        if result.vested + result.rejected + result.held < service.VEST_BATCH:
            break
    return {"vested": total.vested, "rejected": total.rejected, "held": total.held}
