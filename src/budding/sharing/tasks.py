"""Background jobs of the share kit."""

from __future__ import annotations

from budding.core.jobs import JobContext, job
from budding.sharing import service


def _gave_up(ctx: JobContext, error: str) -> None:
    mail_id = _mail_id_of(ctx)
    if mail_id is not None:
        service.give_up_tell_a_friend(mail_id, error)


def _mail_id_of(ctx: JobContext) -> int | None:
    from budding.core.db import unit_of_work
    from budding.core.jobs import get_job

    with unit_of_work() as session:
        value = get_job(session, ctx.job_id).payload.get("mail_id")
    return value if isinstance(value, int) else None


@job("sharing.deliver_tell_a_friend", retries=4, retry_delay=60, lease=120, on_failure=_gave_up)
def deliver_tell_a_friend(ctx: JobContext, mail_id: int) -> dict[str, str]:
    """Send one tell-a-friend e-mail; a refused or unreachable server retries with backoff."""
    return {"status": service.deliver_tell_a_friend(mail_id)}
