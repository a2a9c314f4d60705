"""A member's referral data in their export, and its erasure.

Erasure keeps the tree's shape (the referral rows, which aggregates and the
other members' trees need) but forgets what identifies the person: their
waitlist e-mail, and the hashed IP and user agent of the clicks that brought
them in: every click of the browser (``ReferralClick.visitor``) that made the click
their signup or waitlist entry was credited to, which the export lists too. Their
referral code no longer credits them. Notes and reasons of the program's rows that name
them or quote their e-mail (a reviewer's note copied into the referrer's referral, an
invite code's note) have those words blanked (``core.erasure``). A referral's conversion
event id that names them gets the event's new opaque id
(``members.service.event_id_replacements``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from budding.core.erasure import Identity, replace_exact, replace_tail, scrub_mentions
from budding.members import service as members
from budding.members.models import Member
from budding.referrals.models import (
    InviteCode,
    InviteGrant,
    Referral,
    ReferralClick,
    ReferralCode,
    ReferralStatusChange,
    WaitlistChange,
    WaitlistEntry,
)
from budding.referrals.waitlist import entry_export, erase_entries


def _own_clicks(member: Member) -> Select[int]:
    """The ids of the clicks of the member's browser(s): the clicks their referral or
    waitlist entry was credited to, and every other click of the same ``visitor``. Runs
    before the waitlist entries lose the e-mail they are found by."""
    credited = select(Referral.click_id).where(
        Referral.referee_member_id == member.id, Referral.click_id.is_not(None)
    )
    email = member.email
    entries = WaitlistEntry.member_id == member.id
    if email:
        entries = entries | (WaitlistEntry.email == email)
    on_waitlist = select(WaitlistEntry.click_id).where(
        WaitlistEntry.program_id == member.program_id,
        WaitlistEntry.click_id.is_not(None),
        entries,
    )
    visitors = select(ReferralClick.visitor).where(
        ReferralClick.id.in_(credited.union(on_waitlist))
    )
    return select(ReferralClick.id).where(
        ReferralClick.program_id == member.program_id, ReferralClick.visitor.in_(visitors)
    )


def export(session: Session, member: Member) -> dict[str, Any]:
    code = session.scalar(select(ReferralCode.code).where(ReferralCode.member_id == member.id))
    referred_by = session.scalar(select(Referral).where(Referral.referee_member_id == member.id))
    referred = session.scalars(
        select(Referral).where(Referral.referrer_member_id == member.id).order_by(Referral.id)
    )
    return {
        "referral_code": code,
        "referred_by": (
            {
                "referrer_member_id": referred_by.referrer_member_id,
                "source": referred_by.source,
                "channel": referred_by.channel,
                "signed_up_at": referred_by.signed_up_at.isoformat(),
                "converted_at": (
                    referred_by.converted_at.isoformat() if referred_by.converted_at else None
                ),
                "status": referred_by.status,
            }
            if referred_by
            else None
        ),
        "referred_members": [
            {"member_id": r.referee_member_id, "signed_up_at": r.signed_up_at.isoformat()}
            for r in referred
        ],
        "invite_codes": [
            {
                "code": i.code,
                "uses": i.uses,
                "used": i.used,
                "created_at": i.created_at.isoformat(),
                "revoked": i.revoked_at is not None,
            }
            for i in session.scalars(
                select(InviteCode).where(InviteCode.issuer_member_id == member.id)
            )
        ],
        "invite_grants": [
            {"count": g.count, "reason": g.reason, "at": g.created_at.isoformat()}
            for g in session.scalars(select(InviteGrant).where(InviteGrant.member_id == member.id))
        ],
        "waitlist": entry_export(session, member.program_id, member.email, member.id),
        # The IP address is stored only as a keyed hash: it is not exported.
        "clicks": [
            {
                "clicked_at": c.clicked_at.isoformat(),
                "channel": c.channel,
                "user_agent": c.user_agent,
            }
            for c in session.scalars(
                select(ReferralClick)
                .where(ReferralClick.id.in_(_own_clicks(member)))
                .order_by(ReferralClick.clicked_at, ReferralClick.id)
            )
        ],
    }


def erase(session: Session, member: Member) -> None:
    # The conversion a referral counted, when its event's id names the member: the new id
    # the event gets (the rewards of that conversion carry it too).
    replacements = members.event_id_replacements(session, member)
    replace_exact(
        session,
        Referral.conversion_event_id,
        replacements,
        Referral.program_id == member.program_id,
    )
    # A reward's reversal reason copied into an invite grant ("refund <event id>").
    replace_tail(
        session, InviteGrant.reason, replacements, InviteGrant.program_id == member.program_id
    )
    # The clicks first: their waitlist entries are found by e-mail too.
    click_ids = list(session.scalars(_own_clicks(member)))
    for start in range(0, len(click_ids), 500):
        session.execute(
            update(ReferralClick)
            .where(ReferralClick.id.in_(click_ids[start : start + 500]))
            .values(ip_hash="", user_agent="")
            .execution_options(synchronize_session=False)
        )
    # Waitlist entries are found by member id as well as by e-mail.
    erase_entries(session, member.program_id, member.email, member.id)
    scrub_mentions(
        session,
        member.program_id,
        Identity.of(email=member.email, name=member.name),
        InviteCode.note,
        InviteCode.revoked_reason,
        InviteGrant.reason,
        Referral.status_reason,
        ReferralStatusChange.reason,
        WaitlistChange.detail,
    )
    # The code stops pointing at the person: its link still redirects, credits nobody,
    # and the clicks it had keep the program's counts.
    session.execute(
        update(ReferralCode)
        .where(ReferralCode.member_id == member.id)
        .values(member_id=None)
        .execution_options(synchronize_session=False)
    )
