"""The job queue's part of a member's erasure: jobs of the program that recorded the
member's name or e-mail (an e-mail queued to them, a mail server's refusal quoting their
address) are blanked, and a queued one that would still write to them never runs
(``core.jobs.forget_jobs_mentioning``). Jobs hold no data of their own to export."""

from __future__ import annotations

from sqlalchemy.orm import Session

from budding.core import jobs
from budding.core.erasure import Identity
from budding.members.models import Member


def erase(session: Session, member: Member) -> None:
    jobs.forget_jobs_mentioning(
        session, member.program_id, Identity.of(email=member.email, name=member.name)
    )
