"""Rewards in a member's data export. Erasure keeps them: a reward holds amounts, codes
and rule names, and the program's books must stay true. A reason or history note that
names the member or quotes their e-mail (a reviewer's note copied into the referrer's
reward history) has those words blanked, on anyone's reward."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from budding.core.erasure import Identity, scrub_mentions
from budding.members.models import Member
from budding.programs.service import get_program_by_id
from budding.rewards import service
from budding.rewards.models import Reward, RewardEvent, RewardProgress


def export(session: Session, member: Member) -> dict[str, Any]:
    program = get_program_by_id(session, member.program_id)
    rows = service.rewards_of(session, program, member.id)
    return {
        "rewards": [
            {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items()}
            for r in service.rewards_out(session, program, rows)
        ]
    }


def erase(session: Session, member: Member) -> None:
    scrub_mentions(
        session,
        member.program_id,
        Identity.of(email=member.email, name=member.name),
        Reward.reason,
        Reward.payload,
        RewardEvent.note,
        RewardProgress.revoked_reason,
    )
