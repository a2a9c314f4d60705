"""The waitlist: join with an e-mail (optionally through a referral), confirm it (double
opt-in), skip ahead per confirmed referral within a cap, get released with an invite.

Queue order is ``(rank_key, seq)``. ``seq`` is the join order; an entry that
gained ``b`` places has ``rank_key = 2*(seq - b) - 1``, just ahead of the
entry that joined ``b`` places before it (whose key is its own ``2*seq``).
A confirmed referral moves its referrer up ``waitlist_skip_places`` places, at
most ``waitlist_skip_cap`` in total, and never into the first
``waitlist_protected_top`` places; on a tie the earlier joiner stays ahead, so
early joiners keep their place. Every change of position is recorded with its
reason: the skipper's and each entry it passed. (Moving up because entries
ahead were released is not a change of order and is not recorded per entry;
the release itself is.)

Every waitlist write of a program first takes the program's waitlist counter
row (``UPDATE … RETURNING`` / ``SELECT … FOR UPDATE``), so joins, skips and
releases of one program take turns on PostgreSQL as they do on SQLite.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from budding.core import i18n
from budding.core.config import get_settings
from budding.core.db import dialect_insert, utcnow
from budding.core.errors import field
from budding.core.i18n import N_
from budding.core.security import constant_time_equal, keyed_hash
from budding.members import service as members
from budding.members.models import Member
from budding.members.schemas import normalise_email
from budding.programs.models import Program
from budding.referrals import integrations
from budding.referrals.codes import format_code, new_code, normalise_code
from budding.referrals.config import referral_settings
from budding.referrals.errors import AlreadyMember, SignupBlocked, WaitlistClosed, WaitlistNotFound
from budding.referrals.links import get_click, hash_ip, invite_url, referral_url
from budding.referrals.models import (
    InviteCode,
    ReferralCode,
    ReferralCounter,
    WaitlistChange,
    WaitlistEntry,
)
from budding.referrals.schemas import WaitlistEntryInfo

COUNTER = "waitlist"
STATUSES = ("waiting", "released", "joined", "removed")  # what list_entries filters by
LINK_PURPOSE = "waitlist-link"


# --- the lock and the sequence -------------------------------------------------------------


def _next_seq(session: Session, program: Program) -> int:
    """The next join number; also takes the program's waitlist lock until commit."""
    session.execute(
        dialect_insert(session, ReferralCounter)
        .values(program_id=program.id, name=COUNTER, value=0)
        .on_conflict_do_nothing(index_elements=["program_id", "name"])
    )
    value = session.execute(
        update(ReferralCounter)
        .where(ReferralCounter.program_id == program.id, ReferralCounter.name == COUNTER)
        .values(value=ReferralCounter.value + 1)
        .returning(ReferralCounter.value)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    return int(value)


def _lock(session: Session, program: Program) -> None:
    session.execute(
        dialect_insert(session, ReferralCounter)
        .values(program_id=program.id, name=COUNTER, value=0)
        .on_conflict_do_nothing(index_elements=["program_id", "name"])
    )
    session.execute(
        select(ReferralCounter.value)
        .where(ReferralCounter.program_id == program.id, ReferralCounter.name == COUNTER)
        .with_for_update()
    )


# --- positions -------------------------------------------------------------------------


def _ahead(entry_key: int, entry_seq: int) -> Any:
    return or_(
        WaitlistEntry.rank_key < entry_key,
        and_(WaitlistEntry.rank_key == entry_key, WaitlistEntry.seq < entry_seq),
    )


def _waiting(program: Program) -> Any:
    return and_(WaitlistEntry.program_id == program.id, WaitlistEntry.status == "waiting")


def position_of(session: Session, program: Program, entry: WaitlistEntry) -> int | None:
    """1-based place in the queue, or None when the entry is no longer waiting."""
    if entry.status != "waiting":
        return None
    ahead = session.scalar(
        select(func.count())
        .select_from(WaitlistEntry)
        .where(_waiting(program), _ahead(entry.rank_key, entry.seq))
    )
    return int(ahead or 0) + 1


def waiting_count(session: Session, program: Program) -> int:
    return int(
        session.scalar(select(func.count()).select_from(WaitlistEntry).where(_waiting(program)))
        or 0
    )


def _change(
    session: Session,
    program: Program,
    entry_id: int,
    old: int | None,
    new: int | None,
    reason: str,
    detail: str = "",
) -> None:
    session.add(
        WaitlistChange(
            program_id=program.id,
            entry_id=entry_id,
            old_position=old,
            new_position=new,
            reason=reason,
            detail=detail[:300],
            changed_at=utcnow(),
        )
    )


# --- links and look-ups --------------------------------------------------------------------


def status_token(entry: WaitlistEntry) -> str:
    """The secret in a person's status and confirmation links: ``<id>.<keyed hash>``."""
    return f"{entry.id}.{keyed_hash(f'{entry.program_id}:{entry.id}', LINK_PURPOSE)}"


def status_url(program: Program, entry: WaitlistEntry) -> str:
    return f"{get_settings().base_url}/p/{program.slug}/waitlist/me?t={status_token(entry)}"


def confirm_url(program: Program, entry: WaitlistEntry) -> str:
    return f"{get_settings().base_url}/p/{program.slug}/waitlist/confirm?t={status_token(entry)}"


def entry_by_token(session: Session, program: Program, token: str) -> WaitlistEntry:
    entry_id = (token or "").partition(".")[0]
    entry = (
        session.get(WaitlistEntry, int(entry_id))
        if entry_id.isdigit() and len(entry_id) < 19
        else None
    )
    if (
        entry is None
        or entry.program_id != program.id
        or entry.email is None
        or not constant_time_equal(token, status_token(entry))
    ):
        raise WaitlistNotFound("this link is not valid", fields={"t": "unknown or altered link"})
    return entry


def _entry_by_email(session: Session, program: Program, email: str) -> WaitlistEntry | None:
    try:
        address = normalise_email(email)
    except ValueError as exc:
        raise field("email", str(exc)) from None
    return session.scalar(
        select(WaitlistEntry).where(
            WaitlistEntry.program_id == program.id, WaitlistEntry.email == address
        )
    )


def _entry_code(session: Session, program: Program, entry: WaitlistEntry) -> str:
    """The entry's referral code (the member's own code once the entry has joined)."""
    found = session.scalar(
        select(ReferralCode.code).where(
            ReferralCode.program_id == program.id, ReferralCode.waitlist_entry_id == entry.id
        )
    )
    if found is not None:
        return found
    session.execute(
        dialect_insert(session, ReferralCode)
        .values(
            program_id=program.id, code=new_code(), waitlist_entry_id=entry.id, created_at=utcnow()
        )
        .on_conflict_do_nothing(index_elements=["program_id", "waitlist_entry_id"])
    )
    code = session.scalar(
        select(ReferralCode.code).where(
            ReferralCode.program_id == program.id, ReferralCode.waitlist_entry_id == entry.id
        )
    )
    assert code is not None
    return code


def _confirmed_referrals(session: Session, program: Program, entry: WaitlistEntry) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(WaitlistEntry)
            .join(ReferralCode, ReferralCode.id == WaitlistEntry.referred_by_code_id)
            .where(
                WaitlistEntry.program_id == program.id,
                ReferralCode.waitlist_entry_id == entry.id,
                WaitlistEntry.credited_at.is_not(None),
            )
        )
        or 0
    )


def entry_info(session: Session, program: Program, entry: WaitlistEntry) -> WaitlistEntryInfo:
    code = _entry_code(session, program, entry)
    invite = (
        session.scalar(
            select(InviteCode.code)
            .where(InviteCode.waitlist_entry_id == entry.id)
            .order_by(InviteCode.id.desc())
            .limit(1)
        )
        if entry.status in ("released", "joined")
        else None
    )
    return WaitlistEntryInfo(
        email=entry.email or "",
        position=position_of(session, program, entry),
        total=waiting_count(session, program),
        status=entry.status,
        confirmed=entry.confirmed_at is not None,
        referral_code=code,
        referral_url=referral_url(program, code),
        confirmed_referrals=_confirmed_referrals(session, program, entry),
        places_gained=entry.boost,
        joined_at=entry.created_at,
        released_at=entry.released_at,
        invite_code=invite,
    )


def waitlist_position(session: Session, program: Program, email: str) -> WaitlistEntryInfo | None:
    """Where this e-mail stands on the waitlist, or None when it is not on it."""
    entry = _entry_by_email(session, program, email)
    return entry_info(session, program, entry) if entry is not None else None


def get_entry(session: Session, program: Program, email: str) -> WaitlistEntry:
    entry = _entry_by_email(session, program, email)
    if entry is None:
        raise WaitlistNotFound("this e-mail is not on the waitlist", fields={"email": "not found"})
    return entry


def history(session: Session, program: Program, entry: WaitlistEntry) -> list[WaitlistChange]:
    return list(
        session.scalars(
            select(WaitlistChange)
            .where(WaitlistChange.entry_id == entry.id)
            .order_by(WaitlistChange.id)
        )
    )


# --- joining and confirming ----------------------------------------------------------------


@dataclass(frozen=True)
class JoinResult:
    entry: WaitlistEntry
    info: WaitlistEntryInfo
    created: bool


def join_waitlist(
    session: Session,
    program: Program,
    email: str,
    *,
    referral_code: str | None = None,
    click_token: str | None = None,
    locale: str | None = None,
    ip: str | None = None,
    send_confirmation: bool = True,
) -> JoinResult:
    """Put an e-mail on the waitlist (joining twice returns the same entry). The referral
    (a code, or the click id of a referral link) counts once the e-mail is confirmed."""
    mode = referral_settings(program).mode
    if mode == "open":
        raise WaitlistClosed(
            "this program is open: sign up directly", fields={"mode": "is open, not waitlist"}
        )
    try:
        address = normalise_email(email)
    except ValueError as exc:
        raise field("email", str(exc)) from None
    loc = i18n.normalise_locale(locale) if locale else None
    if locale and loc is None:
        raise field("locale", "supported locales are en, ko, es, id, zh-Hans")
    existing = _entry_by_email(session, program, address)
    if existing is not None:
        if send_confirmation and existing.confirmed_at is None and existing.status == "waiting":
            _send_confirmation(session, program, existing)
        return JoinResult(existing, entry_info(session, program, existing), False)
    if members.find_member_by_email(session, program.id, address) is not None:
        raise AlreadyMember(
            "this e-mail is already a member's", fields={"email": "already a member"}
        )
    code_row: ReferralCode | None = None
    click = get_click(session, program, click_token) if click_token else None
    if referral_code:
        norm = normalise_code(referral_code)
        code_row = (
            session.scalar(
                select(ReferralCode).where(
                    ReferralCode.code == norm, ReferralCode.program_id == program.id
                )
            )
            if norm
            else None
        )
        if code_row is None:
            raise field("referral_code", "unknown referral code")
    elif click is not None and click.code_id is not None:
        code_row = session.get(ReferralCode, click.code_id)
    ip_hash = hash_ip(ip) if ip else (click.ip_hash if click is not None else "")
    assessment = integrations.assess_signup(
        session,
        program,
        referrer_id=code_row.member_id if code_row is not None else None,
        email=address,
        ip_hash=ip_hash or None,
        device_hash=None,
        properties=integrations.with_network({"source": "waitlist"}, ip),
    )
    if assessment.action == "block":
        raise SignupBlocked(
            "this signup was refused by the fraud checks",
            fields={"email": "refused"},
            extra={"reasons": assessment.reasons},
        )
    seq = _next_seq(session, program)
    entry = WaitlistEntry(
        program_id=program.id,
        email=address,
        seq=seq,
        boost=0,
        rank_key=2 * seq,
        status="waiting",
        locale=loc,
        # A held referral never credits its referrer.
        referred_by_code_id=code_row.id
        if code_row is not None and assessment.action not in ("hold",)
        else None,
        click_id=click.id if click is not None else None,
        ip_hash=ip_hash or "",
        created_at=utcnow(),
    )
    session.add(entry)
    session.flush()
    position = position_of(session, program, entry)
    _change(session, program, entry.id, None, position, "joined")
    if send_confirmation:
        _send_confirmation(session, program, entry)
    return JoinResult(entry, entry_info(session, program, entry), True)


def confirm(session: Session, program: Program, entry: WaitlistEntry) -> bool:
    """Confirm the e-mail (double opt-in); credits the referrer once. False if already done."""
    _lock(session, program)
    done = session.execute(
        update(WaitlistEntry)
        .where(WaitlistEntry.id == entry.id, WaitlistEntry.confirmed_at.is_(None))
        .values(confirmed_at=utcnow())
        .returning(WaitlistEntry.id)
        .execution_options(synchronize_session=False)
    ).scalar()
    session.refresh(entry)
    if done is None:
        return False
    _change(session, program, entry.id, position_of(session, program, entry), None, "confirmed")
    _credit_referrer(session, program, entry)
    return True


def _credit_referrer(session: Session, program: Program, entry: WaitlistEntry) -> None:
    if entry.referred_by_code_id is None:
        return
    credited = session.execute(
        update(WaitlistEntry)
        .where(WaitlistEntry.id == entry.id, WaitlistEntry.credited_at.is_(None))
        .values(credited_at=utcnow())
        .returning(WaitlistEntry.id)
        .execution_options(synchronize_session=False)
    ).scalar()
    if credited is None:
        return
    code = session.get(ReferralCode, entry.referred_by_code_id)
    if code is None or code.waitlist_entry_id is None:
        return
    referrer = session.get(WaitlistEntry, code.waitlist_entry_id)
    if referrer is None or referrer.status != "waiting" or referrer.id == entry.id:
        return
    skip_ahead(session, program, referrer, detail=f"referral of entry {entry.id} confirmed")


def skip_ahead(
    session: Session, program: Program, entry: WaitlistEntry, *, detail: str = ""
) -> int:
    """Move ``entry`` up for one confirmed referral, within the cap and outside the
    protected top. Returns the places it moved (0 when capped or protected)."""
    settings = referral_settings(program)
    session.refresh(entry)
    old_pos = position_of(session, program, entry)
    if old_pos is None:
        return 0
    room = max(settings.waitlist_skip_cap - entry.boost, 0)
    step = min(settings.waitlist_skip_places, room)
    new_key = (
        min(entry.rank_key, 2 * (entry.seq - entry.boost - step) - 1) if step else entry.rank_key
    )
    if settings.waitlist_protected_top > 0 and new_key < entry.rank_key:
        floor = session.execute(
            select(WaitlistEntry.rank_key, WaitlistEntry.seq)
            .where(_waiting(program), WaitlistEntry.id != entry.id)
            .order_by(WaitlistEntry.rank_key, WaitlistEntry.seq)
            .offset(settings.waitlist_protected_top - 1)
            .limit(1)
        ).first()
        if floor is None:
            new_key = entry.rank_key  # the whole queue is inside the protected top
        else:
            floor_key, floor_seq = floor
            new_key = max(new_key, floor_key if entry.seq > floor_seq else floor_key + 1)
    passed = (
        []
        if new_key >= entry.rank_key
        else list(
            session.scalars(
                select(WaitlistEntry)
                .where(
                    _waiting(program),
                    WaitlistEntry.id != entry.id,
                    _ahead(entry.rank_key, entry.seq),
                    ~_ahead(new_key, entry.seq),
                )
                .order_by(WaitlistEntry.rank_key, WaitlistEntry.seq)
            )
        )
    )
    if not passed:
        # capped, or nobody ahead it may pass (the protected top, or it is first): a
        # lower rank_key that passes no one would spend the cap for nothing
        reason = "skip_capped" if step == 0 else "skip_protected"
        _change(session, program, entry.id, old_pos, old_pos, reason, detail)
        return 0
    entry.boost = max(entry.boost, entry.seq - (new_key + 1) // 2)
    entry.rank_key = new_key
    new_pos = old_pos - len(passed)
    _change(session, program, entry.id, old_pos, new_pos, "skip_ahead", detail)
    for i, other in enumerate(passed):
        before = new_pos + i
        _change(
            session,
            program,
            other.id,
            before,
            before + 1,
            "passed",
            f"entry {entry.id} moved ahead after a confirmed referral",
        )
    session.flush()
    return len(passed)


# --- release ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Released:
    email: str
    position: int
    invite_code: str
    invite_url: str


def release(session: Session, program: Program, count: int) -> list[Released]:
    """Release the first ``count`` waiting entries (confirmed ones only when the program
    requires confirmation): each gets a single-use invite by e-mail, and a
    ``waitlist.released`` webhook lists them."""
    from budding.referrals.invites import issue_waitlist_invite

    if not 1 <= count <= 10_000:
        raise field("count", N_("must be between %(low)s and %(high)s"), low=1, high=10000)
    settings = referral_settings(program)
    _lock(session, program)
    queue = (
        select(WaitlistEntry)
        .where(_waiting(program))
        .order_by(WaitlistEntry.rank_key, WaitlistEntry.seq)
    )
    released: list[Released] = []
    now = utcnow()
    position = 0
    page = 500
    while len(released) < count:
        # Positions count every waiting entry, so page by position over a queue whose
        # released entries are no longer waiting: skip the ones already released.
        batch = list(session.scalars(queue.offset(position - len(released)).limit(page)))
        if not batch:
            break
        for entry in batch:
            position += 1
            if len(released) >= count:
                break
            if settings.waitlist_require_confirmation and entry.confirmed_at is None:
                continue
            invite = issue_waitlist_invite(session, program, entry.id)
            entry.status = "released"
            entry.released_at = now
            session.flush()
            _change(session, program, entry.id, position, None, "released", f"invite {invite.code}")
            released.append(
                Released(
                    email=entry.email or "",
                    position=position,
                    invite_code=invite.code,
                    invite_url=invite_url(program, invite.code),
                )
            )
            _send_invite(session, program, entry, invite)
    session.flush()
    if released:
        integrations.emit(
            session,
            program,
            "waitlist.released",
            {
                "count": len(released),
                "released_at": now.isoformat(),
                "entries": [
                    {
                        "email": r.email,
                        "position": r.position,
                        "invite_code": r.invite_code,
                        "invite_url": r.invite_url,
                    }
                    for r in released
                ],
            },
        )
    return released


def list_entries(
    session: Session,
    program: Program,
    *,
    status: str | None = "waiting",
    limit: int = 100,
    offset: int = 0,
) -> list[tuple[WaitlistEntry, int | None]]:
    """Entries in queue order with their positions (waiting ones), or newest first."""
    if not 1 <= limit <= 1000:
        raise field("limit", "must be between 1 and 1000")
    if status is not None and status not in STATUSES:
        raise field("status", "must be waiting, released, joined or removed")
    if status == "waiting":
        rows = session.scalars(
            select(WaitlistEntry)
            .where(_waiting(program))
            .order_by(WaitlistEntry.rank_key, WaitlistEntry.seq)
            .offset(offset)
            .limit(limit)
        )
        return [(e, offset + i + 1) for i, e in enumerate(rows)]
    stmt = select(WaitlistEntry).where(WaitlistEntry.program_id == program.id)
    if status is not None:
        stmt = stmt.where(WaitlistEntry.status == status)
    rows = session.scalars(stmt.order_by(WaitlistEntry.id.desc()).offset(offset).limit(limit))
    return [(e, None) for e in rows]


def waitlist_counts(session: Session, program: Program) -> dict[str, int]:
    rows = session.execute(
        select(WaitlistEntry.status, func.count())
        .where(WaitlistEntry.program_id == program.id)
        .group_by(WaitlistEntry.status)
    )
    out = {"waiting": 0, "released": 0, "joined": 0, "removed": 0}
    out.update({s: int(n) for s, n in rows})
    out["confirmed_waiting"] = int(
        session.scalar(
            select(func.count())
            .select_from(WaitlistEntry)
            .where(_waiting(program), WaitlistEntry.confirmed_at.is_not(None))
        )
        or 0
    )
    return out


# --- the entry becomes a member ------------------------------------------------------------


def waitlist_referrer_of(session: Session, program: Program, email: str) -> int | None:
    """The member who referred this e-mail onto the waitlist (a confirmed referral), if any."""
    row = session.execute(
        select(ReferralCode.member_id)
        .join(WaitlistEntry, WaitlistEntry.referred_by_code_id == ReferralCode.id)
        .where(
            WaitlistEntry.program_id == program.id,
            WaitlistEntry.email == email,
            WaitlistEntry.credited_at.is_not(None),
        )
    ).first()
    return int(row[0]) if row is not None and row[0] is not None else None


@dataclass(frozen=True)
class EntryOfEmail:
    """A waitlist entry found by e-mail, with the member who referred it (a confirmed
    referral), if any."""

    entry: WaitlistEntry
    referrer_id: int | None


def waitlist_entry_of(session: Session, program: Program, email: str | None) -> EntryOfEmail | None:
    """The entry with this e-mail and its referrer, in one query (what ``waitlist_referrer_of``
    and ``mark_joined`` would each look up)."""
    if not email:
        return None
    row = session.execute(
        select(WaitlistEntry, ReferralCode.member_id)
        .outerjoin(ReferralCode, ReferralCode.id == WaitlistEntry.referred_by_code_id)
        .where(WaitlistEntry.program_id == program.id, WaitlistEntry.email == email)
    ).first()
    if row is None:
        return None
    entry, referrer = row
    if entry.credited_at is None or referrer is None:
        return EntryOfEmail(entry, None)
    return EntryOfEmail(entry, int(referrer))


def mark_joined(
    session: Session,
    program: Program,
    member: Member,
    *,
    invite_id: int | None = None,
    waitlist_entry_id: int | None = None,
    email_entry: EntryOfEmail | None = None,
    email_looked_up: bool = False,
) -> None:
    """The entry with this member's e-mail (or the released entry of ``invite_id`` /
    ``waitlist_entry_id``) has joined: record it, and hand the entry's referral code over to
    the member. With ``email_looked_up`` the caller found the e-mail's entry already
    (``email_entry``, None when there is none). The signup event's listener (no invite
    given) skips a member whose signup this transaction handled (``attributed_in``)."""
    from budding.referrals.attribution import attributed_in

    listener = invite_id is None and waitlist_entry_id is None and not email_looked_up
    if listener and member.id in attributed_in(session):
        return
    if invite_id is not None and waitlist_entry_id is None:
        waitlist_entry_id = session.scalar(
            select(InviteCode.waitlist_entry_id).where(InviteCode.id == invite_id)
        )
    entry = session.get(WaitlistEntry, waitlist_entry_id) if waitlist_entry_id else None
    if entry is None and member.email:
        if email_looked_up:
            entry = email_entry.entry if email_entry is not None else None
        else:
            entry = session.scalar(
                select(WaitlistEntry).where(
                    WaitlistEntry.program_id == program.id, WaitlistEntry.email == member.email
                )
            )
    if entry is None or entry.status == "joined":
        return
    _lock(session, program)
    old = position_of(session, program, entry)
    entry.status = "joined"
    entry.member_id = member.id
    _change(session, program, entry.id, old, None, "joined_program", member.external_id)
    has_code = session.scalar(
        select(ReferralCode.id).where(
            ReferralCode.program_id == program.id, ReferralCode.member_id == member.id
        )
    )
    if has_code is None:
        session.execute(
            update(ReferralCode)
            .where(
                ReferralCode.program_id == program.id,
                ReferralCode.waitlist_entry_id == entry.id,
                ReferralCode.member_id.is_(None),
            )
            .values(member_id=member.id)
            .execution_options(synchronize_session=False)
        )
    session.flush()


# --- e-mail ------------------------------------------------------------------------------


def _send_confirmation(session: Session, program: Program, entry: WaitlistEntry) -> None:
    from budding.core.mail import Mail

    with i18n.use_locale(entry.locale or program.default_locale):
        subject = i18n.gettext(
            "Confirm your place on the %(program)s waitlist", program=program.name
        )
        text = i18n.gettext(
            "Thanks for joining the %(program)s waitlist.\n\n"
            "Confirm your e-mail address to keep your place and to let your referrals count:\n"
            "%(url)s\n\n"
            "See your place in the queue at any time (keep this link to yourself):\n"
            "%(status_url)s\n\n"
            "If you did not ask for this, ignore this message.",
            program=program.name,
            url=confirm_url(program, entry),
            status_url=status_url(program, entry),
        )
    if entry.email:
        # Joining again resends it, at most once an hour: the public join form must not
        # become a way to flood someone's inbox.
        hour = int(utcnow().timestamp() // 3600)
        integrations.send_mail_after_commit(
            session,
            program,
            Mail(entry.email, subject, text),
            dedupe_key=f"waitlist-confirmation:{entry.id}:{hour}",
        )


def _send_invite(
    session: Session, program: Program, entry: WaitlistEntry, invite: InviteCode
) -> None:
    from budding.core.mail import Mail

    with i18n.use_locale(entry.locale or program.default_locale):
        subject = i18n.gettext("Your invitation to %(program)s", program=program.name)
        text = i18n.gettext(
            "Good news: your wait is over. Your personal invite code is %(code)s.\n\n"
            "Join here: %(url)s",
            code=format_code(invite.code),
            url=invite_url(program, invite.code),
        )
    if entry.email:
        integrations.send_mail_after_commit(session, program, Mail(entry.email, subject, text))


def _entries_of(
    session: Session, program_id: int, email: str | None, member_id: int | None
) -> list[WaitlistEntry]:
    conditions = []
    if email:
        conditions.append(WaitlistEntry.email == email)
    if member_id is not None:
        conditions.append(WaitlistEntry.member_id == member_id)
    if not conditions:
        return []
    return list(
        session.scalars(
            select(WaitlistEntry).where(WaitlistEntry.program_id == program_id, or_(*conditions))
        )
    )


def erase_entries(
    session: Session, program_id: int, email: str | None, member_id: int | None = None
) -> None:
    """Forget the e-mail of a person's waitlist entries, and which member they became
    (privacy erasure); the entries' history of positions stays."""
    entries = _entries_of(session, program_id, email, member_id)
    for entry in entries:
        entry.email = None
        entry.ip_hash = ""
        if entry.status == "waiting":
            entry.status = "removed"
    if entries:
        session.execute(
            update(WaitlistChange)
            .where(
                WaitlistChange.entry_id.in_([e.id for e in entries]),
                WaitlistChange.reason == "joined_program",  # its detail: the external id
            )
            .values(detail="")
            .execution_options(synchronize_session=False)
        )


def entry_export(
    session: Session, program_id: int, email: str | None, member_id: int | None = None
) -> list[dict[str, Any]]:
    out = []
    for entry in _entries_of(session, program_id, email, member_id):
        out.append(
            {
                "email": entry.email,
                "status": entry.status,
                "joined_at": entry.created_at.isoformat(),
                "confirmed_at": entry.confirmed_at.isoformat() if entry.confirmed_at else None,
                "released_at": entry.released_at.isoformat() if entry.released_at else None,
                "places_gained": entry.boost,
                "history": [
                    {
                        "at": c.changed_at.isoformat(),
                        "from": c.old_position,
                        "to": c.new_position,
                        "reason": c.reason,
                    }
                    for c in session.scalars(
                        select(WaitlistChange)
                        .where(WaitlistChange.entry_id == entry.id)
                        .order_by(WaitlistChange.id)
                    )
                ],
            }
        )
    return out
