"""The points ledger's part of a member's data export. Erasure keeps the entries:
they hold amounts and reasons, and balances must stay true; a reason that names the
member or quotes their e-mail (on anyone's entry) has those words blanked; one that ends
with an event id naming the member ("refund <event id>") gets the event's new id."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from budding.core.erasure import Identity, replace_tail, scrub_mentions
from budding.honors import ledger
from budding.honors.models import PointsEntry
from budding.members import service as members
from budding.members.models import Member
from budding.programs.service import get_program_by_id


def export(session: Session, member: Member) -> dict[str, Any]:
    program = get_program_by_id(session, member.program_id)
    rows: list[Any] = []
    while True:  # every entry, page by page
        page = ledger.entries(
            session, program, member.id, before_id=rows[-1].id if rows else None, limit=1000
        )
        rows.extend(page)
        if len(page) < 1000:
            break
    return {
        "points_balance": ledger.balance(session, program, member.id),
        "points_entries": [
            {
                "points": e.points,
                "reason": e.reason,
                "key": e.key,
                "reversal": e.reverses_id is not None,
                "created_at": e.created_at.isoformat(),
            }
            for e in rows
        ],
    }


def erase(session: Session, member: Member) -> None:
    # A reason that ends with an event id that names the member (a reward taken back,
    # "refund <event id>") gets the event's new id; then the words are blanked.
    replace_tail(
        session,
        PointsEntry.reason,
        members.event_id_replacements(session, member),
        PointsEntry.program_id == member.program_id,
    )
    scrub_mentions(
        session,
        member.program_id,
        Identity.of(email=member.email, name=member.name),
        PointsEntry.reason,
    )
