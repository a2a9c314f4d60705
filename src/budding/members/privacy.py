"""Members' contribution to a member's data export and erasure.

This eraser removes the member's identity (external id, e-mail, name), so it runs
after every other capability's: ``ORDER`` (see ``budding.core.plugins``) puts it last,
and other erasers can still find the member's data by external id or e-mail. Before it
does, it blanks the member's e-mail in other members' events, and their name in the
events that target them (``core.erasure``); then the event ids of the program that name
them (anyone's events) become opaque ids (``service.erase_event_ids``), the ids other
capabilities' erasers gave their copies of those ids (``service.event_id_replacements``),
and so do other members' event properties that hold such an id (a refund's
``refund_of``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from budding.core.erasure import Identity, scrub_column
from budding.core.plugins import ERASE_IDENTITY_LAST
from budding.members.events import events_of_member
from budding.members.models import Event, Member
from budding.members.schemas import MemberOut
from budding.members.service import (
    _erase_member_row,
    _replace_event_id_values,
    end_member_sessions,
)

ORDER = ERASE_IDENTITY_LAST


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
    end_member_sessions(session, member)  # signs the member out everywhere
    # Other members' events that hold an event id being replaced as a value (a refund's
    # ``refund_of``) get the new id, before the e-mail in such an id would be blanked.
    _replace_event_id_values(session, member)
    # Other members' events that copy the member's e-mail, or name the member they target:
    # those words are blanked; the events (and their numbers) stay.
    others = (Event.program_id == member.program_id, Event.member_id != member.id)
    scrub_column(session, Event.properties, Identity.of(email=member.email), *others)
    # (No program_id: the target implies it, and naming it made SQLite read all the
    # program's targeted events, ix_events_program_targeted, not ix_events_target_member_id.)
    scrub_column(
        session,
        Event.properties,
        Identity.of(name=member.name),
        Event.target_member_id == member.id,
        Event.member_id != member.id,
    )
    _erase_member_row(session, member)
