"""Attribution from the event log: signups (``bud_click`` or ``referral_code`` in the
properties, or a waitlist referral) and qualifying conversions, in the same
transaction as the events."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from budding.members import service as members
from budding.members.models import Event
from budding.programs.models import Program
from budding.referrals.attribution import attribute_signup, record_conversion
from budding.referrals.config import referral_settings
from budding.referrals.waitlist import mark_joined


def on_events(session: Session, program: Program, events: Sequence[Event]) -> None:
    conversion_type = referral_settings(program).conversion_event
    for event in events:
        if event.type == "signup":
            member = members.get_member_by_id(session, event.member_id)
            attribute_signup(
                session,
                program,
                member,
                signed_up_at=event.occurred_at,
                properties=dict(event.properties or {}),
            )
            if member.email:
                mark_joined(session, program, member)
        if event.type == conversion_type:
            record_conversion(session, program, event)
