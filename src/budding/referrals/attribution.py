"""Referrals: who brought whom, attributed from invites, links and codes, by the
program's window and model; qualifying conversions; review outcomes.

A member has at most one referrer (a unique key on the referee), so
concurrent attributions of one signup store one referral; the first wins.
Conversions are marked by a conditional update (``WHERE converted_at IS
NULL``), so one referral converts once whatever the retries.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, union_all, update
from sqlalchemy.orm import Session

from budding.core.db import decayed, dialect_insert, pair_weights_array, utcnow
from budding.core.errors import field
from budding.members import service as members
from budding.members.models import Event, Member
from budding.programs.models import Program
from budding.referrals import integrations
from budding.referrals.codes import normalise_code
from budding.referrals.config import referral_settings
from budding.referrals.errors import ReferralNotFound
from budding.referrals.links import (
    CLICK_PARAM,
    get_click,
    hash_device,
    hash_ip,
)
from budding.referrals.models import (
    InviteCode,
    Referral,
    ReferralClick,
    ReferralCode,
    ReferralStatusChange,
)
from budding.referrals.schemas import (
    ReferralEdge,
    ReferralFact,
    ReferredMember,
    check_channel,
)

COUNTING = ("active", "approved")
STATUSES = ("active", "held", "approved", "rejected")
REVIEW_STATUSES = ("held", "approved", "rejected")
CLOCK_SKEW = timedelta(minutes=5)


def _fact(ref: Referral, invite_code: str | None = None) -> ReferralFact:
    return ReferralFact(
        id=ref.id,
        program_id=ref.program_id,
        referrer_id=ref.referrer_member_id,
        referee_id=ref.referee_member_id,
        source=ref.source,
        channel=ref.channel,
        generation=ref.generation,
        status=ref.status,
        status_reason=ref.status_reason,
        fraud_reasons=list(ref.fraud_reasons or []),
        signed_up_at=ref.signed_up_at,
        converted_at=ref.converted_at,
        conversion_event_id=ref.conversion_event_id,
        invite_code=invite_code,
        click_id=ref.click_id,
    )


def get_referral(session: Session, referral_id: int) -> ReferralFact:
    """A referral by id (``ReferralNotFound`` when there is none)."""
    ref = session.get(Referral, referral_id)
    if ref is None:
        raise ReferralNotFound(f"no referral {referral_id}", fields={"referral_id": "unknown"})
    # The invite is usually in the session already (the redemption that made the referral).
    invite = session.get(InviteCode, ref.invite_id) if ref.invite_id is not None else None
    return _fact(ref, invite.code if invite is not None else None)


def referral_of(session: Session, program: Program, referee_id: int) -> ReferralFact | None:
    """The referral that brought this member in, if any."""
    ref = session.scalar(
        select(Referral).where(
            Referral.program_id == program.id, Referral.referee_member_id == referee_id
        )
    )
    return _fact(ref) if ref is not None else None


def referrals_of(
    session: Session, program: Program, referee_ids: Sequence[int]
) -> dict[int, ReferralFact]:
    """The referrals that brought these members in, by referee id, in one query (the
    batch form of ``referral_of``, for event listeners)."""
    if not referee_ids:
        return {}
    rows = session.scalars(
        select(Referral).where(
            Referral.program_id == program.id, Referral.referee_member_id.in_(referee_ids)
        )
    )
    return {ref.referee_member_id: _fact(ref) for ref in rows}


def _is_ancestor(session: Session, program_id: int, candidate: int, member_id: int) -> bool:
    """Whether ``candidate`` is ``member_id`` or one of its referrers up the tree."""
    seen: set[int] = set()
    current: int | None = member_id
    while current is not None and current not in seen:
        if current == candidate:
            return True
        seen.add(current)
        current = session.scalar(
            select(Referral.referrer_member_id).where(
                Referral.program_id == program_id, Referral.referee_member_id == current
            )
        )
    return False


def _generation_of(session: Session, program_id: int, member_id: int) -> int:
    """0 for a member nobody referred, else their referral's generation."""
    gen = session.scalar(
        select(Referral.generation).where(
            Referral.program_id == program_id, Referral.referee_member_id == member_id
        )
    )
    return int(gen or 0)


def _shift_descendants(session: Session, program_id: int, member_id: int, generation: int) -> None:
    """Renumber generations below a member who was attributed after referring others."""
    frontier = [(member_id, generation)]
    while frontier:
        parent, gen = frontier.pop()
        children = list(
            session.scalars(
                select(Referral).where(
                    Referral.program_id == program_id, Referral.referrer_member_id == parent
                )
            )
        )
        for child in children:
            if child.generation != gen + 1:
                child.generation = gen + 1
                frontier.append((child.referee_member_id, gen + 1))


def record_referral(
    session: Session,
    program: Program,
    *,
    referrer_id: int,
    referee_id: int,
    source: str,
    signed_up_at: datetime,
    channel: str | None = None,
    code_id: int | None = None,
    invite_id: int | None = None,
    click_id: int | None = None,
    status: str = "active",
    fraud_reasons: Iterable[str] = (),
    assessment_id: int | None = None,
    new_referee: bool = False,
) -> ReferralFact | None:
    """Store that ``referrer`` brought ``referee`` in; None when it cannot be (self-referral,
    a loop in the tree, or the referee already has a referrer). The signup goes to the
    rewards capability at once (it holds the rewards of a held referral).

    ``new_referee``: the referee was created in this transaction (an invite redemption), so
    has no referrer and refers nobody yet: no loop to look for, no subtree to renumber, no
    conflict on the referee's unique key (no other transaction can see them)."""
    if referrer_id == referee_id:
        return None
    if not new_referee and _is_ancestor(session, program.id, referee_id, referrer_id):
        return None
    generation = _generation_of(session, program.id, referrer_id) + 1
    now = utcnow()
    values: dict[str, Any] = {
        "program_id": program.id,
        "referrer_member_id": referrer_id,
        "referee_member_id": referee_id,
        "source": source,
        "code_id": code_id,
        "invite_id": invite_id,
        "click_id": click_id,
        "channel": check_channel(channel),
        "generation": generation,
        "status": status,
        "status_reason": "",
        "fraud_reasons": list(fraud_reasons),
        "signed_up_at": signed_up_at,
        "created_at": now,
        "updated_at": now,
    }
    if new_referee:
        ref = Referral(**values)
        session.add(ref)
        session.flush()
        return _stored(session, program, ref, assessment_id, signed_up_at)
    inserted = session.execute(
        dialect_insert(session, Referral)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["program_id", "referee_member_id"])
        .returning(Referral.id)
    ).scalar()
    if inserted is None:
        return None
    _shift_descendants(session, program.id, referee_id, generation)
    return _stored(
        session, program, session.get_one(Referral, inserted), assessment_id, signed_up_at
    )


def _stored(
    session: Session,
    program: Program,
    ref: Referral,
    assessment_id: int | None,
    signed_up_at: datetime,
) -> ReferralFact:
    if assessment_id is not None:
        integrations.attach_assessment(
            session, program, assessment_id, member_id=ref.referee_member_id, referral_id=ref.id
        )
    # The rewards capability reads the referral's status: a held referral's rewards wait
    # (held) until the review releases or reverses them.
    _reward(session, program, ref, "signup", ref.id, signed_up_at)
    return _fact(ref)


def _reward(
    session: Session,
    program: Program,
    ref: Referral,
    trigger: str,
    key: int | str,
    occurred_at: datetime,
) -> None:
    """Signups are keyed ``referral:<id>:signup``; conversions by the converting event's id
    (refunds name that id in ``properties.refund_of``)."""
    integrations.reward_referral(
        session,
        program,
        referral_id=ref.id,
        referrer_id=ref.referrer_member_id,
        referee_id=ref.referee_member_id,
        trigger=trigger,
        trigger_key=f"referral:{key}:signup" if trigger == "signup" else str(key),
        occurred_at=occurred_at,
    )


def _converted_payload(session: Session, program: Program, ref: Referral) -> dict[str, Any]:
    people = members.get_members_by_ids(session, [ref.referrer_member_id, ref.referee_member_id])
    referrer, referee = people.get(ref.referrer_member_id), people.get(ref.referee_member_id)
    return {
        "referral_id": ref.id,
        "referrer": referrer.external_id if referrer else None,
        "referee": referee.external_id if referee else None,
        "channel": ref.channel,
        "signed_up_at": ref.signed_up_at.isoformat(),
        "converted_at": ref.converted_at.isoformat() if ref.converted_at else None,
        "conversion_event_id": ref.conversion_event_id,
    }


# --- attribution from events ----------------------------------------------------------


def _pick_click(
    session: Session, program: Program, click: ReferralClick, signed_up_at: datetime
) -> ReferralClick | None:
    """The click that wins by the program's model among this visitor's clicks in the window."""
    settings = referral_settings(program)
    window_start = signed_up_at - timedelta(days=settings.attribution_window_days)
    order = (
        ReferralClick.clicked_at.asc()
        if settings.attribution_model == "first_touch"
        else ReferralClick.clicked_at.desc()
    )
    return session.scalar(
        select(ReferralClick)
        .where(
            ReferralClick.program_id == program.id,
            ReferralClick.visitor == click.visitor,
            ReferralClick.referrer_member_id.is_not(None),
            ReferralClick.clicked_at >= window_start,
            ReferralClick.clicked_at <= signed_up_at + CLOCK_SKEW,
        )
        .order_by(order, ReferralClick.id)
        .limit(1)
    )


def attribute_signup(
    session: Session,
    program: Program,
    member: Member,
    *,
    signed_up_at: datetime,
    properties: dict[str, Any],
) -> ReferralFact | None:
    """Attribute a signup to a referrer, from its properties: ``bud_click`` (the click id of a
    referral link, by the program's window and model), else ``referral_code`` (a member's
    code), else ``referrer`` (the referrer's external id, when the caller knows it); or
    else from the waitlist entry the member joined through."""
    if member.id in attributed_in(session) or _has_referral(session, program, member.id):
        return None
    referrer_id: int | None = None
    source = "link"
    channel: str | None = check_channel(properties.get("channel"))
    code_id: int | None = None
    invite_id: int | None = None
    click_id: int | None = None
    ip_hash = properties.get("ip_hash") if isinstance(properties.get("ip_hash"), str) else None
    token = properties.get(CLICK_PARAM)
    if isinstance(token, str) and token:
        click = get_click(session, program, token)
        if click is not None:
            chosen = _pick_click(session, program, click, signed_up_at)
            if chosen is not None:
                referrer_id = chosen.referrer_member_id
                channel = chosen.channel or channel
                code_id, invite_id, click_id = chosen.code_id, chosen.invite_id, chosen.id
                ip_hash = ip_hash or click.ip_hash or None
    code_value = properties.get("referral_code")
    if referrer_id is None and isinstance(code_value, str):
        norm = normalise_code(code_value)
        row = (
            session.execute(
                select(ReferralCode.id, ReferralCode.member_id).where(
                    ReferralCode.code == norm, ReferralCode.program_id == program.id
                )
            ).first()
            if norm
            else None
        )
        if row is not None and row[1] is not None:
            code_id, referrer_id, source = row[0], row[1], "code"
    referrer_value = properties.get("referrer")
    if referrer_id is None and isinstance(referrer_value, str) and referrer_value:
        # The customer's backend already knows who referred the person (its own referral
        # flow, an import): the referrer's external id.
        known = members.get_member_or_none(session, program.id, referrer_value)
        if known is not None and known.erased_at is None:
            referrer_id, source = known.id, "api"
    if referrer_id is None and member.email:
        from budding.referrals.waitlist import waitlist_referrer_of

        referrer_id = waitlist_referrer_of(session, program, member.email)
        source = "waitlist"
    if referrer_id is None:
        return None
    if isinstance(properties.get("ip"), str):
        ip_hash = hash_ip(properties["ip"])
    device = properties.get("device") or properties.get("device_id")
    email = member.email or (
        properties["email"] if isinstance(properties.get("email"), str) else None
    )
    assessment = integrations.assess_signup(
        session,
        program,
        referrer_id=referrer_id,
        email=email,
        ip_hash=ip_hash,
        device_hash=hash_device(device) if isinstance(device, str) else None,
        properties=integrations.with_network(
            {k: v for k, v in properties.items() if k not in ("ip",)},
            properties["ip"] if isinstance(properties.get("ip"), str) else None,
        ),
        member_id=member.id,
        at=signed_up_at,
    )
    if assessment.action == "block":
        return None
    return record_referral(
        session,
        program,
        referrer_id=referrer_id,
        referee_id=member.id,
        source=source,
        signed_up_at=signed_up_at,
        channel=channel,
        code_id=code_id,
        invite_id=invite_id,
        click_id=click_id,
        status="held" if assessment.action == "hold" else "active",
        fraud_reasons=assessment.reasons,
        assessment_id=assessment.id,
    )


_HANDLED = "budding.referrals.signup_handled"


def attributed_in(session: Session) -> set[int]:
    """Members whose signup is being attributed by the caller in this transaction (an invite
    redemption, while it writes the signup event): the event's listener leaves them alone
    instead of looking again for what the redemption just decided."""
    handled: set[int] = session.info.setdefault(_HANDLED, set())
    return handled


def _has_referral(session: Session, program: Program, member_id: int) -> bool:
    return (
        session.scalar(
            select(Referral.id).where(
                Referral.program_id == program.id, Referral.referee_member_id == member_id
            )
        )
        is not None
    )


def record_conversion(session: Session, program: Program, event: Event) -> ReferralFact | None:
    """Mark the member's referral converted if ``event`` qualifies (type, condition, window);
    returns the referral when this event converted it, None otherwise."""
    settings = referral_settings(program)
    if event.type != settings.conversion_event:
        return None
    condition = settings.condition()
    if condition is not None and not condition.matches(event.properties or {}):
        return None
    ref = session.scalar(
        select(Referral).where(
            Referral.program_id == program.id,
            Referral.referee_member_id == event.member_id,
            Referral.converted_at.is_(None),
        )
    )
    if ref is None or ref.status == "rejected":
        return None
    deadline = ref.signed_up_at + timedelta(days=settings.attribution_window_days)
    if not ref.signed_up_at - CLOCK_SKEW <= event.occurred_at <= deadline:
        return None
    won = session.execute(
        update(Referral)
        .where(Referral.id == ref.id, Referral.converted_at.is_(None))
        .values(
            converted_at=event.occurred_at,
            conversion_event_id=event.event_id,
            updated_at=utcnow(),
        )
        .returning(Referral.id)
        .execution_options(synchronize_session=False)
    ).scalar()
    if won is None:
        return None
    session.refresh(ref)
    if ref.status in COUNTING:
        _announce_conversion(session, program, ref)
    _reward(session, program, ref, "conversion", event.event_id, event.occurred_at)
    return _fact(ref)


def _announce_conversion(session: Session, program: Program, ref: Referral) -> None:
    integrations.emit(
        session, program, "referral.converted", _converted_payload(session, program, ref)
    )


# --- review outcomes ----------------------------------------------------------------------


def set_referral_status(
    session: Session,
    referral_id: int,
    status: str,
    reason: str = "",
    *,
    fraud_reasons: Iterable[str] = (),
) -> ReferralFact:
    """Record a review outcome (held, approved or rejected) with its reason, and the
    fraud checks behind it (``fraud_reasons``, added to the referral's own).

    Only the referral's status changes here (with an audit row); the review
    queue that calls this releases or reverses the rewards
    (``rewards.service.release_referral`` / ``reverse_rewards``). A rejected or held
    referral leaves the tree and the metrics; approving one that converted while
    held sends its ``referral.converted`` webhook. The same status again is a no-op.
    """
    if status not in REVIEW_STATUSES:
        raise field("status", "must be held, approved or rejected")
    ref = session.scalar(select(Referral).where(Referral.id == referral_id).with_for_update())
    if ref is None:
        raise ReferralNotFound(f"no referral {referral_id}", fields={"referral_id": "unknown"})
    found = [r for r in fraud_reasons if r not in (ref.fraud_reasons or [])]
    if found:
        ref.fraud_reasons = [*(ref.fraud_reasons or []), *found]  # a new list: JSON is dirty
    old = ref.status
    if old == status:
        return _fact(ref)
    from budding.programs.service import get_program_by_id

    program = get_program_by_id(session, ref.program_id)
    ref.status = status
    ref.status_reason = reason[:500]
    ref.updated_at = utcnow()
    session.add(
        ReferralStatusChange(
            program_id=ref.program_id,
            referral_id=ref.id,
            old_status=old,
            new_status=status,
            reason=reason[:500],
        )
    )
    session.flush()
    if status in COUNTING and old not in COUNTING and ref.converted_at is not None:
        # The conversion was kept quiet while the referral was under review.
        _announce_conversion(session, program, ref)
    return _fact(ref)


def list_referrals(
    session: Session,
    program: Program,
    *,
    status: str | None = None,
    limit: int = 100,
    before_id: int | None = None,
) -> list[ReferralFact]:
    """Referrals, newest first (``status`` filters, e.g. ``held`` for the review queue)."""
    if status is not None and status not in STATUSES:
        raise field("status", f"must be one of {', '.join(STATUSES)}")
    stmt = select(Referral).where(Referral.program_id == program.id)
    if status is not None:
        stmt = stmt.where(Referral.status == status)
    if before_id is not None:
        stmt = stmt.where(Referral.id < before_id)
    return [_fact(r) for r in session.scalars(stmt.order_by(Referral.id.desc()).limit(limit))]


# --- reading ---------------------------------------------------------------------------


def referred_members(session: Session, program: Program, member: Member) -> list[ReferredMember]:
    """Friends this member brought in, oldest first (rejected referrals left out)."""
    rows = session.execute(
        select(Referral, Member)
        .join(Member, Member.id == Referral.referee_member_id)
        .where(
            Referral.program_id == program.id,
            Referral.referrer_member_id == member.id,
            Referral.status != "rejected",
        )
        .order_by(Referral.signed_up_at, Referral.id)
    ).all()
    return [
        ReferredMember(
            member_id=m.id,
            external_id=m.external_id,
            name=m.name,
            joined_at=r.signed_up_at,
            converted_at=r.converted_at,
            channel=r.channel,
            status=r.status,
            referral_id=r.id,
        )
        for r, m in rows
    ]


def referral_edges(
    session: Session, program: Program, *, include_uncounted: bool = False
) -> list[ReferralEdge]:
    """Every referral of the program as an edge, in signup order. Held and rejected
    referrals are left out unless ``include_uncounted``."""
    stmt = select(
        Referral.referrer_member_id,
        Referral.referee_member_id,
        Referral.signed_up_at,
        Referral.converted_at,
        Referral.channel,
        Referral.generation,
        Referral.status,
    ).where(Referral.program_id == program.id)
    if not include_uncounted:
        stmt = stmt.where(or_(*(Referral.status == s for s in COUNTING)))
    return [
        ReferralEdge(
            referrer_id=a,
            referee_id=b,
            signed_up_at=s,
            converted_at=c,
            channel=ch,
            generation=g,
            status=st,
        )
        for a, b, s, c, ch, g, st in session.execute(
            stmt.order_by(Referral.signed_up_at, Referral.id)
        )
    ]


def referral_weights(
    session: Session,
    program: Program,
    *,
    now: datetime,
    half_life_days: float,
    member: int | None = None,
    sources: Collection[int] | None = None,
) -> Any:
    """``(referrer id, referee id, weight, referrals)`` per pair of the program's counted
    referrals, summed in the database: each weighs 2^(−age / half-life) of its signup
    at ``now`` (held and rejected referrals are left out, as in :func:`referral_edges`).
    A numpy structured array (fields ``a``, ``b``, ``weight``, ``count``;
    :data:`budding.core.db.PAIR_WEIGHTS`). ``member``: only the pairs it is in, as
    referrer or referee (each found by index); ``sources``: only the pairs whose referrer
    is one of these (a few hundred ids)."""
    referrer, referee = Referral.referrer_member_id, Referral.referee_member_id
    rows = select(referrer.label("a"), referee.label("b"), Referral.signed_up_at.label("at")).where(
        Referral.program_id == program.id, or_(*(Referral.status == s for s in COUNTING))
    )
    # Summed outside: SQLite (without statistics) reads, for a GROUP BY on the table, the
    # program's every referral in the order of the unique (program, referee) index. A
    # compound select, or OFFSET 0, keeps the restricted rows a subquery of their own,
    # found by the referrer and referee indexes.
    if sources is not None:
        rows = rows.where(referrer.in_(sorted(set(sources))))
    if member is not None:
        part = union_all(
            rows.where(referrer == member), rows.where(referee == member, referrer != member)
        ).subquery()
    else:
        part = (rows if sources is None else rows.offset(0)).subquery()
    weight = decayed(session, part.c.at, now, half_life_days)
    return pair_weights_array(
        session,
        select(part.c.a, part.c.b, func.sum(weight), func.count()).group_by(part.c.a, part.c.b),
    )


def referral_signature(session: Session, program: Program) -> list[Any]:
    """What changes when the program's counted referrals may: ``[counted, newest id,
    last update]`` (a status change updates the referral)."""
    count, newest, updated = session.execute(
        select(func.count(), func.max(Referral.id), func.max(Referral.updated_at)).where(
            Referral.program_id == program.id, or_(*(Referral.status == s for s in COUNTING))
        )
    ).one()
    return [int(count), int(newest or 0), str(updated or "")]
