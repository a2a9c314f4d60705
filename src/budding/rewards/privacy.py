"""Rewards in a member's data export. Erasure keeps them: a reward holds amounts, codes
and rule names, no personal data, and the program's books must stay true."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from budding.members.models import Member
from budding.programs.service import get_program_by_id
from budding.rewards import service


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
    """Nothing to remove: rewards carry no personal data."""
