"""Attribution from the event log: signups (``bud_click`` or ``referral_code`` in the
properties, or a waitlist referral) and qualifying conversions, in the same
transaction as the events."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from budding.members import service as members
from budding.members.models import Event
from budding.programs.models import Program
from budding.referrals.attribution import attribute_signup, record_conversion
from budding.referrals.config import referral_settings
from budding.referrals.models import Referral
from budding.referrals.waitlist import mark_joined


def on_events(session: Session, program: Program, events: Sequence[Event]) -> None:
    conversion_type = _conversion_type(program)
    # A conversion can only convert an unconverted referral of its member: one query finds
    # the members who have one, instead of one query per conversion event. A member who
    # signs up in this batch may be given their referral by the signup, so is kept too.
    converting = {e.member_id for e in events if e.type == conversion_type}
    if converting:
        signing_up = {e.member_id for e in events if e.type == "signup"}
        converting = signing_up | _with_open_referral(session, program, converting - signing_up)
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
        if event.type == conversion_type and event.member_id in converting:
            record_conversion(session, program, event)


# Conversion event types by the program's stored settings (as JSON): reading the settings
# (a pydantic model, validated each time) was a tenth of a single-event request's time.
_CONVERSION_TYPES: dict[tuple[int, bytes], str] = {}


def _conversion_type(program: Program) -> str:
    try:
        key = (program.id, orjson.dumps(program.settings, option=orjson.OPT_SORT_KEYS))
    except TypeError:  # not JSON as stored: no memo
        return referral_settings(program).conversion_event
    found = _CONVERSION_TYPES.get(key)
    if found is None:
        found = referral_settings(program).conversion_event
        if len(_CONVERSION_TYPES) >= 1024:
            _CONVERSION_TYPES.clear()
        _CONVERSION_TYPES[key] = found
    return found


def _with_open_referral(session: Session, program: Program, member_ids: set[int]) -> set[int]:
    """Those of ``member_ids`` whose referral has not converted yet."""
    if not member_ids:
        return set()
    return set(
        session.scalars(
            select(Referral.referee_member_id).where(
                Referral.program_id == program.id,
                Referral.referee_member_id.in_(sorted(member_ids)),
                Referral.converted_at.is_(None),
            )
        )
    )
