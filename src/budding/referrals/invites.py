"""Invite codes: issue within the quota, redeem within the uses, revoke.

Both limits hold under concurrency:

- Issuing locks the member's ``invite_locks`` row (``SELECT … FOR UPDATE``;
  on SQLite every write transaction already runs alone, ``BEGIN IMMEDIATE``),
  then counts the quota ledger and the codes issued, then inserts.
- Redeeming is one conditional ``UPDATE … SET used = used + 1 WHERE used <
  uses AND revoked_at IS NULL AND (not expired) RETURNING id``: of two
  concurrent redemptions of a last use, the second updates nothing.

A GET never consumes anything: only ``redeem_invite`` (reached by POST) does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from budding.core.db import dialect_insert, utcnow
from budding.core.errors import Reason, field, from_pydantic
from budding.core.i18n import N_
from budding.members import events as member_events
from budding.members import service as members
from budding.members.models import Member
from budding.members.schemas import MemberIn
from budding.programs.models import Program
from budding.referrals import integrations
from budding.referrals.attribution import attributed_in, record_referral
from budding.referrals.codes import format_code, new_code, normalise_code
from budding.referrals.config import referral_settings
from budding.referrals.errors import (
    AlreadyMember,
    InviteExpired,
    InviteNotFound,
    InviteRevoked,
    InviteUsedUp,
    QuotaExceeded,
    SignupBlocked,
)
from budding.referrals.links import get_click, hash_device, hash_ip, invite_url
from budding.referrals.models import InviteCode, InviteGrant, InviteLock, InviteRedemption
from budding.referrals.schemas import (
    InviteCodeInfo,
    InviteSummary,
    RedeemIn,
    ReferralFact,
)

STATUSES = ("available", "used", "expired", "revoked")  # what invite_status answers


def invite_status(invite: InviteCode, now: datetime | None = None) -> str:
    """available, used, expired or revoked."""
    now = now or utcnow()
    if invite.revoked_at is not None:
        return "revoked"
    if invite.used >= invite.uses:
        return "used"
    if invite.expires_at is not None and invite.expires_at <= now:
        return "expired"
    return "available"


def _info(
    program: Program, invite: InviteCode, redeemed_by: list[str], issuer: str | None
) -> InviteCodeInfo:
    return InviteCodeInfo(
        code=invite.code,
        display=format_code(invite.code),
        url=invite_url(program, invite.code),
        status=invite_status(invite),
        uses=invite.uses,
        used=invite.used,
        created_at=invite.created_at,
        expires_at=invite.expires_at,
        redeemed_by=redeemed_by,
        issuer=issuer,
    )


def _issuer(session: Session, invite: InviteCode) -> str | None:
    if invite.issuer_member_id is None:
        return None
    return members.get_member_by_id(session, invite.issuer_member_id).external_id


def _redeemers(session: Session, invite_ids: list[int]) -> dict[int, list[str]]:
    if not invite_ids:
        return {}
    out: dict[int, list[str]] = {}
    rows = session.execute(
        select(InviteRedemption.invite_id, Member.external_id)
        .join(Member, Member.id == InviteRedemption.member_id)
        .where(InviteRedemption.invite_id.in_(invite_ids))
        .order_by(InviteRedemption.id)
    )
    for invite_id, external_id in rows:
        out.setdefault(invite_id, []).append(external_id)
    return out


# --- the quota ledger ----------------------------------------------------------------


def grant_invites(
    session: Session, program: Program, member_id: int, count: int, *, reason: str, key: str
) -> None:
    """Add ``count`` invites to a member's quota (negative: take them back, e.g. a reversed
    reward). Idempotent on ``key``: the same key grants once, whatever the retries."""
    if count == 0:
        raise field("count", "must not be zero")
    if not key or len(key) > 200:
        raise field("key", "must be 1-200 characters")
    session.execute(
        dialect_insert(session, InviteGrant)
        .values(
            program_id=program.id,
            member_id=member_id,
            count=count,
            reason=reason[:200],
            key=key,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["program_id", "key"])
    )


def _quota(session: Session, program: Program, member_id: int) -> int:
    granted = session.scalar(
        select(func.coalesce(func.sum(InviteGrant.count), 0)).where(
            InviteGrant.program_id == program.id, InviteGrant.member_id == member_id
        )
    )
    return max(referral_settings(program).invite_quota + int(granted or 0), 0)


def _spent(session: Session, program: Program, member_id: int) -> tuple[int, int]:
    """(codes that count against the quota, redemptions of them). A code revoked before
    anyone used it gives its invite back."""
    issued, redeemed = session.execute(
        select(func.count(), func.coalesce(func.sum(InviteCode.used), 0)).where(
            InviteCode.program_id == program.id,
            InviteCode.issuer_member_id == member_id,
            or_(InviteCode.revoked_at.is_(None), InviteCode.used > 0),
        )
    ).one()
    return int(issued), int(redeemed)


def _lock_member(session: Session, program: Program, member_id: int) -> None:
    session.execute(
        dialect_insert(session, InviteLock)
        .values(program_id=program.id, member_id=member_id)
        .on_conflict_do_nothing(index_elements=["program_id", "member_id"])
    )
    session.execute(
        select(InviteLock.member_id)
        .where(InviteLock.program_id == program.id, InviteLock.member_id == member_id)
        .with_for_update()
    )


def invite_summary(session: Session, program: Program, member: Member) -> InviteSummary:
    """The member's quota, codes issued and redeemed, invites left, and each code's status."""
    quota = _quota(session, program, member.id)
    issued, redeemed = _spent(session, program, member.id)
    codes = list(
        session.scalars(
            select(InviteCode)
            .where(InviteCode.program_id == program.id, InviteCode.issuer_member_id == member.id)
            .order_by(InviteCode.id)
        )
    )
    who = _redeemers(session, [c.id for c in codes])
    return InviteSummary(
        quota=quota,
        issued=issued,
        redeemed=redeemed,
        left=max(quota - issued, 0),
        codes=[_info(program, c, who.get(c.id, []), member.external_id) for c in codes],
    )


def _new_invite(
    program: Program,
    *,
    issuer_member_id: int | None,
    source: str,
    uses: int,
    expires_at: datetime | None,
    note: str = "",
    waitlist_entry_id: int | None = None,
) -> InviteCode:
    return InviteCode(
        program_id=program.id,
        code=new_code(),
        issuer_member_id=issuer_member_id,
        waitlist_entry_id=waitlist_entry_id,
        source=source,
        uses=uses,
        used=0,
        note=note[:200],
        created_at=utcnow(),
        expires_at=expires_at,
        revoked_reason="",
    )


def _expiry(program: Program) -> datetime | None:
    days = referral_settings(program).code_expiry_days
    return utcnow() + timedelta(days=days) if days else None


def issue_invites(
    session: Session, program: Program, member: Member, count: int = 1, *, note: str = ""
) -> list[InviteCodeInfo]:
    """Issue ``count`` codes from the member's quota, or raise ``QuotaExceeded`` (409)
    saying how many are left. Concurrent calls for one member take turns."""
    if not 1 <= count <= 100:
        raise field("count", N_("must be between %(low)s and %(high)s"), low=1, high=100)
    _lock_member(session, program, member.id)
    quota = _quota(session, program, member.id)
    issued, _ = _spent(session, program, member.id)
    left = max(quota - issued, 0)
    if count > left:
        raise QuotaExceeded(
            f"only {left} of {quota} invites left",
            fields={"count": Reason(N_("at most %(left)s"), left=left)},
            extra={"remaining": left, "quota": quota},
        )
    settings = referral_settings(program)
    rows = [
        _new_invite(
            program,
            issuer_member_id=member.id,
            source="member",
            uses=settings.code_uses,
            expires_at=_expiry(program),
            note=note,
        )
        for _ in range(count)
    ]
    session.add_all(rows)
    session.flush()
    return [_info(program, r, [], member.external_id) for r in rows]


def issue_staff_invites(
    session: Session,
    program: Program,
    count: int = 1,
    *,
    uses: int | None = None,
    expires_days: int | None = None,
    note: str = "",
) -> list[InviteCodeInfo]:
    """Codes issued by the team (no member's quota; no referrer in the tree)."""
    if not 1 <= count <= 10_000:
        raise field("count", N_("must be between %(low)s and %(high)s"), low=1, high=10000)
    if uses is not None and not 1 <= uses <= 100_000:
        raise field("uses", N_("must be between %(low)s and %(high)s"), low=1, high=100000)
    if expires_days is not None and not 1 <= expires_days <= 3650:
        raise field("expires_days", N_("must be between %(low)s and %(high)s"), low=1, high=3650)
    settings = referral_settings(program)
    expires = utcnow() + timedelta(days=expires_days) if expires_days else _expiry(program)
    rows = [
        _new_invite(
            program,
            issuer_member_id=None,
            source="staff",
            uses=uses or settings.code_uses,
            expires_at=expires,
            note=note,
        )
        for _ in range(count)
    ]
    session.add_all(rows)
    session.flush()
    return [_info(program, r, [], None) for r in rows]


def issue_waitlist_invite(session: Session, program: Program, entry_id: int) -> InviteCode:
    """The single-use code a released waitlist entry receives."""
    row = _new_invite(
        program,
        issuer_member_id=None,
        source="waitlist",
        uses=1,
        expires_at=_expiry(program),
        waitlist_entry_id=entry_id,
    )
    session.add(row)
    session.flush()
    return row


def find_invite(session: Session, program: Program, code: str) -> InviteCode:
    norm = normalise_code(code)
    invite = (
        session.scalar(
            select(InviteCode).where(InviteCode.code == norm, InviteCode.program_id == program.id)
        )
        if norm
        else None
    )
    if invite is None:
        raise InviteNotFound("no such invite code", fields={"code": "unknown invite code"})
    return invite


def peek_invite(session: Session, program: Program, code: str) -> InviteCodeInfo:
    """An invite's status without consuming it (what a GET, a preview or a scanner sees)."""
    invite = find_invite(session, program, code)
    redeemed_by = _redeemers(session, [invite.id]).get(invite.id, [])
    return _info(program, invite, redeemed_by, _issuer(session, invite))


def _refuse(invite: InviteCode) -> None:
    status = invite_status(invite)
    if status == "revoked":
        raise InviteRevoked("this invite code was revoked", fields={"code": "revoked"})
    if status == "expired":
        raise InviteExpired("this invite code has expired", fields={"code": "expired"})
    raise InviteUsedUp("this invite code has been used up", fields={"code": "used up"})


def revoke_invite(
    session: Session, program: Program, code: str, reason: str = ""
) -> InviteCodeInfo:
    """Revoke a code so it can no longer be redeemed (idempotent)."""
    invite = find_invite(session, program, code)
    session.execute(
        update(InviteCode)
        .where(InviteCode.id == invite.id, InviteCode.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason[:200])
        .execution_options(synchronize_session=False)
    )
    session.refresh(invite)
    redeemed_by = _redeemers(session, [invite.id]).get(invite.id, [])
    return _info(program, invite, redeemed_by, _issuer(session, invite))


@dataclass(frozen=True)
class Redemption:
    member: Member
    referrer: Member | None
    referral: ReferralFact | None
    invite: InviteCodeInfo
    created: bool = True


def parse_redeem(data: dict[str, Any] | RedeemIn) -> RedeemIn:
    if isinstance(data, RedeemIn):
        return data
    try:
        return RedeemIn.model_validate(data)
    except ValidationError as exc:
        raise from_pydantic(exc) from None


def redeem_invite(
    session: Session,
    program: Program,
    code: str,
    data: dict[str, Any] | RedeemIn,
    *,
    click_token: str | None = None,
) -> Redemption:
    """Use one redemption of ``code`` to create a member, attributed to the code's issuer.

    404 unknown code; 410 used up, expired or revoked; 409 when the external id or
    e-mail is already a member's; 403 when the fraud checks block the signup. On any
    refusal nothing is stored and no use is consumed (the unit of work rolls back).
    """
    spec = parse_redeem(data)
    invite = find_invite(session, program, code)
    if invite_status(invite) != "available":
        _refuse(invite)
    existing = members.get_member_or_none(session, program.id, spec.external_id)
    if existing is not None:
        raise AlreadyMember(
            "this person is already a member", fields={"external_id": "already a member"}
        )
    if members.find_member_by_email(session, program.id, spec.email) is not None:
        raise AlreadyMember("this e-mail is already a member's", fields={"email": "already taken"})
    click_token = click_token or spec.click_id
    click = get_click(session, program, click_token) if click_token else None
    ip_hash = hash_ip(spec.ip) if spec.ip else (click.ip_hash if click is not None else None)
    assessment = integrations.assess_signup(
        session,
        program,
        referrer_id=invite.issuer_member_id,
        email=spec.email,
        ip_hash=ip_hash or None,
        device_hash=hash_device(spec.device) if spec.device else None,
        properties=integrations.with_network(
            {**spec.properties, "invite_code": invite.code}, spec.ip
        ),
    )
    if assessment.action == "block":
        raise SignupBlocked(
            "this signup was refused by the fraud checks",
            fields={"email": "refused"},
            extra={"reasons": assessment.reasons},
        )
    now = utcnow()
    consumed = session.execute(
        update(InviteCode)
        .where(
            InviteCode.id == invite.id,
            InviteCode.used < InviteCode.uses,
            InviteCode.revoked_at.is_(None),
            or_(InviteCode.expires_at.is_(None), InviteCode.expires_at > now),
        )
        .values(used=InviteCode.used + 1)
        .returning(InviteCode.used)
        .execution_options(synchronize_session=False)
    ).scalar()
    if consumed is None:
        session.refresh(invite)
        _refuse(invite)
    set_committed_value(invite, "used", consumed)  # what a refresh would read, without one
    member_in = MemberIn(
        external_id=spec.external_id,
        email=spec.email,
        name=spec.name,
        locale=spec.locale,
    )
    member, created = members.upsert_member(session, program, member_in)
    if not created:
        raise AlreadyMember(
            "this person is already a member", fields={"external_id": "already a member"}
        )
    session.add(InviteRedemption(program_id=program.id, invite_id=invite.id, member_id=member.id))
    referral: ReferralFact | None = None
    referrer: Member | None = None
    from budding.referrals.waitlist import mark_joined, waitlist_entry_of

    referrer_id = invite.issuer_member_id
    source = "invite"
    # The waitlist entry of the member's e-mail (its referrer, and the entry joins), in one
    # query: a released entry's invite also names its entry, the same one.
    entry = waitlist_entry_of(session, program, member.email)
    if referrer_id is None:
        referrer_id = entry.referrer_id if entry is not None else None
        source = "waitlist"
    if referrer_id is not None:
        referral = record_referral(
            session,
            program,
            referrer_id=referrer_id,
            referee_id=member.id,
            source=source,
            signed_up_at=now,
            channel=click.channel if click is not None else None,
            invite_id=invite.id,
            click_id=click.id if click is not None else None,
            status="held" if assessment.action == "hold" else "active",
            fraud_reasons=assessment.reasons,
            assessment_id=assessment.id,
            new_referee=True,
        )
        referrer = members.get_member_by_id(session, referrer_id)
    if referral is None and assessment.id is not None:
        integrations.attach_assessment(
            session, program, assessment.id, member_id=member.id, referral_id=None
        )
    mark_joined(
        session,
        program,
        member,
        waitlist_entry_id=invite.waitlist_entry_id,
        email_entry=entry,
        email_looked_up=True,
    )
    # The signup event's listener need not attribute this member or mark their waitlist
    # entry again: done above, in this transaction.
    handled = attributed_in(session)
    handled.add(member.id)
    try:
        member_events.ingest_events(
            session,
            program,
            [
                {
                    "id": f"referrals:signup:{member.id}",
                    "type": "signup",
                    "member": member.external_id,
                    "occurred_at": now.isoformat(),
                    "properties": {"via": "invite", "invite_code": invite.code},
                }
            ],
        )
    finally:
        handled.discard(member.id)
    session.flush()
    return Redemption(
        member=member,
        referrer=referrer,
        referral=referral,
        invite=_info(
            program,
            invite,
            # The first redemption's only redeemer is this member: no query needed.
            [member.external_id]
            if invite.used == 1
            else _redeemers(session, [invite.id]).get(invite.id, []),
            # a member's code: its issuer is the referrer, loaded already
            referrer.external_id if referrer is not None and invite.issuer_member_id else None,
        ),
    )


def list_invites(
    session: Session,
    program: Program,
    *,
    member: Member | None = None,
    status: str | None = None,
    limit: int = 100,
    before_id: int | None = None,
) -> list[InviteCodeInfo]:
    """Codes newest first (``issuer``: the issuing member's external id, None for team
    codes)."""
    if not 1 <= limit <= 1000:
        raise field("limit", "must be between 1 and 1000")
    now = utcnow()
    stmt = (
        select(InviteCode, Member.external_id)
        .outerjoin(Member, Member.id == InviteCode.issuer_member_id)
        .where(InviteCode.program_id == program.id)
    )
    if member is not None:
        stmt = stmt.where(InviteCode.issuer_member_id == member.id)
    if before_id is not None:
        stmt = stmt.where(InviteCode.id < before_id)
    not_expired = or_(InviteCode.expires_at.is_(None), InviteCode.expires_at > now)
    if status == "revoked":
        stmt = stmt.where(InviteCode.revoked_at.is_not(None))
    elif status == "used":
        stmt = stmt.where(InviteCode.revoked_at.is_(None), InviteCode.used >= InviteCode.uses)
    elif status == "expired":
        stmt = stmt.where(
            InviteCode.revoked_at.is_(None),
            InviteCode.used < InviteCode.uses,
            InviteCode.expires_at <= now,
        )
    elif status == "available":
        stmt = stmt.where(
            and_(InviteCode.revoked_at.is_(None), InviteCode.used < InviteCode.uses, not_expired)
        )
    elif status is not None:
        raise field("status", "must be available, used, expired or revoked")
    rows = session.execute(stmt.order_by(InviteCode.id.desc()).limit(limit)).all()
    who = _redeemers(session, [i.id for i, _ in rows])
    return [_info(program, i, who.get(i.id, []), x) for i, x in rows]


def invite_counts(session: Session, program: Program) -> dict[str, int]:
    """Codes issued, redemptions, and codes still available."""
    now = utcnow()
    issued, used = session.execute(
        select(func.count(), func.coalesce(func.sum(InviteCode.used), 0)).where(
            InviteCode.program_id == program.id
        )
    ).one()
    available = session.scalar(
        select(func.count()).where(
            InviteCode.program_id == program.id,
            InviteCode.revoked_at.is_(None),
            InviteCode.used < InviteCode.uses,
            or_(InviteCode.expires_at.is_(None), InviteCode.expires_at > now),
        )
    )
    return {"issued": int(issued), "redeemed": int(used), "available": int(available or 0)}
