"""Members' contribution to a member's data export and erasure."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from budding.members.events import events_of_member
from budding.members.models import Member
from budding.members.schemas import MemberOut
from budding.members.service import _erase_member_row


def export(session: Session, member: Member) -> dict[str, Any]:
    return {
        "profile": MemberOut.model_validate(member).model_dump(mode="json"),
        "events": [
            {
                "id": e.event_id,
                "type": e.type,
                "occurred_at": e.occurred_at.isoformat(),
                "properties": e.properties,
            }
            for e in events_of_member(session, member.id)
        ],
    }


def erase(session: Session, member: Member) -> None:
    _erase_member_row(session, member)
