"""The share kit's part of a member's data export and erasure.

Erasure also reaches other members' tell-a-friend e-mails to the erased person (found by
the keyed hash of their address, which stays after the address is forgotten): one not
sent yet never goes out, and the sender's note and any refusal lose the erased person's
name and address. The rows stay: they still take the senders' daily slots."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from budding.core import jobs
from budding.core.erasure import Identity, replace_exact, scrub_mentions
from budding.members import service as members
from budding.members.models import Member
from budding.programs.service import get_program_by_id
from budding.sharing.models import ShareStep, TellAFriendMail
from budding.sharing.service import recipient_hash, tell_a_friend_job_key


def export(session: Session, member: Member) -> dict[str, Any]:
    steps = session.execute(
        select(ShareStep.type, ShareStep.channel, func.count())
        .where(ShareStep.member_id == member.id)
        .group_by(ShareStep.type, ShareStep.channel)
    ).all()
    mails = session.scalars(
        select(TellAFriendMail)
        .where(TellAFriendMail.member_id == member.id)
        .order_by(TellAFriendMail.created_at)
    )
    return {
        "share_steps": [{"type": t, "channel": c, "count": int(n)} for t, c, n in steps],
        "tell_a_friend": [
            {
                "sent_at": (m.sent_at or m.created_at).isoformat(),
                "status": m.status,
                "locale": m.locale,
                "note": m.note,
                # The friend's address is kept only until the mail is sent.
                "to": m.recipient,
            }
            for m in mails
        ],
    }


def erase(session: Session, member: Member) -> None:
    """Drop the member's words and any friend's address still waiting, also where a mail
    server's refusal quoted it in the sending job's error; the funnel steps (no personal
    data) stay so that aggregates do not change. A step whose event id names the member
    gets the event's new id: the projection still has one row per event of the log, and a
    rebuild does not count the event twice."""
    replace_exact(
        session,
        ShareStep.event_id,
        members.event_id_replacements(session, member),
        ShareStep.program_id == member.program_id,
    )
    mail_ids = session.scalars(
        select(TellAFriendMail.id).where(TellAFriendMail.member_id == member.id)
    )
    jobs.forget_job_texts(session, [tell_a_friend_job_key(i) for i in mail_ids])
    session.execute(
        update(TellAFriendMail)
        .where(TellAFriendMail.member_id == member.id)
        .values(
            note="",
            recipient=None,
            status="failed",
            error="member erased",
        )
        .where(TellAFriendMail.status != "sent")
    )
    session.execute(
        update(TellAFriendMail)
        .where(TellAFriendMail.member_id == member.id, TellAFriendMail.status == "sent")
        .values(note="")
    )
    if member.email:
        _erase_as_friend(session, member, member.email)


def _erase_as_friend(session: Session, member: Member, email: str) -> None:
    """Other members' e-mails to ``email``: not sent, and their texts without the erased
    person's name or address."""
    program = get_program_by_id(session, member.program_id)
    to_them = (
        TellAFriendMail.program_id == member.program_id,
        TellAFriendMail.member_id != member.id,
        (TellAFriendMail.recipient_hash == recipient_hash(program, email))
        | (TellAFriendMail.recipient == email),
    )
    # (their sending jobs' texts are scrubbed by the job queue's eraser, jobs/privacy.py)
    session.execute(
        update(TellAFriendMail)
        .where(*to_them, TellAFriendMail.status != "sent")
        .values(recipient=None, status="failed", error="the friend's data was erased")
        .execution_options(synchronize_session=False)
    )
    scrub_mentions(
        session,
        member.program_id,
        Identity.of(email=email, name=member.name),
        TellAFriendMail.note,
        TellAFriendMail.error,
    )
