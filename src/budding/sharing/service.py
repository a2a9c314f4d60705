"""The share kit: settings, per-member kits, funnel steps, templates, widget tokens and the
tell-a-friend e-mail. Plain functions taking a ``Session``; they never commit."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from budding.core import i18n
from budding.core.config import get_settings
from budding.core.db import dialect_insert, utcnow
from budding.core.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unauthorized,
    ValidationFailed,
    field,
    from_pydantic,
)
from budding.core.security import keyed_hash, new_token, sign, unsign
from budding.members import events as member_events
from budding.members import service as members
from budding.members.models import Member
from budding.programs.models import Program
from budding.programs.service import update_program_settings
from budding.sharing import channels as ch
from budding.sharing import sources
from budding.sharing.messages import (
    Wording,
    check_wording,
    default_wording,
    fill,
    tell_a_friend_footer,
)
from budding.sharing.models import ShareTemplate, TellAFriendMail
from budding.sharing.schemas import (
    ChannelShareOut,
    QrOut,
    ShareKitOut,
    SharingSettings,
    SharingSettingsPatch,
    SignatureOut,
    StepIn,
    StepsOut,
    TellAFriendIn,
    TemplateOut,
)

WIDGET_SALT = "share-widget"
MAX_WIDGET_TTL = 86400


# --- settings ----------------------------------------------------------------------------


def settings_of(program: Program) -> SharingSettings:
    raw = (program.settings or {}).get("sharing", {})
    try:
        return SharingSettings.model_validate(raw)
    except ValidationError:
        # Stored settings predate a validation rule: keep what still validates.
        good = {}
        for key, value in raw.items():
            try:
                SharingSettings.model_validate({key: value})
                good[key] = value
            except ValidationError:
                continue
        return SharingSettings.model_validate(good)


def update_settings(
    session: Session, program: Program, patch: SharingSettingsPatch | dict[str, Any]
) -> SharingSettings:
    """Change the given settings; the others keep their stored value or default (only
    what was set is stored, so a later release's new defaults still apply)."""
    try:
        given = (
            patch
            if isinstance(patch, SharingSettingsPatch)
            else SharingSettingsPatch.model_validate(patch)
        ).model_dump(exclude_unset=True)
        stored = dict((program.settings or {}).get("sharing", {}))
        spec = SharingSettings.model_validate(stored | given)
    except ValidationError as exc:
        raise from_pydantic(exc) from None
    checked = spec.model_dump()
    update_program_settings(session, program, "sharing", {k: checked[k] for k in given})
    return spec


# --- funnel events -------------------------------------------------------------------------


def record_steps(
    session: Session,
    program: Program,
    member: Member,
    steps: list[StepIn],
    surface: str,
) -> StepsOut:
    """Store funnel steps in the members' event log (idempotent on each step's id)."""
    for i, step in enumerate(steps):
        if step.type != "share_opened" and step.channel is None:
            raise field(f"steps.{i}.channel", f"is required for {step.type}")
    now = utcnow()
    events: list[dict[str, Any]] = []
    for step in steps:
        properties: dict[str, Any] = {"share_id": step.share_id, "surface": surface}
        if step.channel:
            properties["channel"] = step.channel
        events.append(
            {
                "id": f"share.{step.id}",
                "type": step.type,
                "member": member.external_id,
                "occurred_at": step.occurred_at or now,
                "properties": properties,
            }
        )
    result = member_events.ingest_events(session, program, events)
    if result.rejected:
        bad = result.rejected[0]
        name, reason = next(iter(bad.errors.items()))
        raise ValidationFailed(
            f"steps.{bad.index}.{name}: {reason}", fields={f"steps.{bad.index}.{name}": reason}
        )
    return StepsOut(accepted=result.accepted, duplicates=result.duplicates)


def open_share_session(session: Session, program: Program, member: Member, surface: str) -> str:
    """Start a share session (one opening of the kit) and record ``share_opened``."""
    share_id = new_token(16)
    record_steps(
        session,
        program,
        member,
        [StepIn(id=f"{share_id}-o", type="share_opened", share_id=share_id)],
        surface,
    )
    return share_id


def record_funnel_event(
    session: Session,
    program: Program,
    member: Member,
    type: str,
    *,
    event_id: str,
    channel: str | None,
    occurred_at: datetime | None = None,
    target: Member | None = None,
    properties: dict[str, Any] | None = None,
) -> bool:
    """Record a ``link_click`` or ``conversion`` for the referrer ``member`` (for other
    capabilities and the demo). Returns whether it was new."""
    if type not in ("link_click", "conversion"):
        raise field("type", "must be link_click or conversion")
    event: dict[str, Any] = {
        "id": event_id,
        "type": type,
        "member": member.external_id,
        "occurred_at": occurred_at or utcnow(),
        "properties": {**(properties or {}), **({"channel": channel} if channel else {})},
    }
    if target is not None:
        event["target"] = target.external_id
    result = member_events.ingest_events(session, program, [event])
    if result.rejected:
        name, reason = next(iter(result.rejected[0].errors.items()))
        raise field(name, reason)
    return result.accepted == 1


# --- templates -------------------------------------------------------------------------


def template_kind(key: str) -> str:
    if key in ch.MESSAGE_KINDS:
        return key
    if key in ch.BY_KEY:
        return ch.BY_KEY[key].message_kind
    raise NotFound(
        f"no template {key!r}",
        fields={"key": "a message kind (" + ", ".join(ch.MESSAGE_KINDS) + ") or a channel"},
    )


def _check_locale(locale: str) -> str:
    loc = i18n.normalise_locale(locale)
    if loc is None:
        raise field("locale", "supported locales are en, ko, es, id, zh-Hans")
    return loc


def _overrides(session: Session, program: Program, locale: str) -> dict[str, ShareTemplate]:
    rows = session.scalars(
        select(ShareTemplate).where(
            ShareTemplate.program_id == program.id, ShareTemplate.locale == locale
        )
    )
    return {r.key: r for r in rows}


def wording_for(
    overrides: dict[str, ShareTemplate], key: str, kind: str, locale: str
) -> tuple[Wording, ShareTemplate | None]:
    """A channel's own override, else its kind's override, else the translated default."""
    for candidate in (key, kind):
        row = overrides.get(candidate)
        if row is not None:
            default = default_wording(kind, locale)
            return Wording(subject=row.subject or default.subject, body=row.body), row
    return default_wording(kind, locale), None


def list_templates(session: Session, program: Program) -> list[TemplateOut]:
    """Every message kind in every locale (effective wording), and channel overrides."""
    out: list[TemplateOut] = []
    for locale in i18n.LOCALES:
        overrides = _overrides(session, program, locale)
        keys = list(ch.MESSAGE_KINDS) + sorted(
            k for k in overrides if k in ch.BY_KEY and k not in ch.MESSAGE_KINDS
        )
        for key in keys:
            kind = template_kind(key)
            wording, row = wording_for(
                {key: overrides[key]} if key in overrides else {}, key, kind, locale
            )
            out.append(
                TemplateOut(
                    key=key,
                    kind=kind,
                    locale=locale,
                    subject=wording.subject,
                    body=wording.body,
                    overridden=row is not None,
                    updated_at=row.updated_at if row else None,
                    updated_by=row.updated_by if row else "",
                )
            )
    return out


def get_template(session: Session, program: Program, key: str, locale: str) -> TemplateOut:
    kind = template_kind(key)
    locale = _check_locale(locale)
    overrides = _overrides(session, program, locale)
    wording, row = wording_for({key: overrides[key]} if key in overrides else {}, key, kind, locale)
    return TemplateOut(
        key=key,
        kind=kind,
        locale=locale,
        subject=wording.subject,
        body=wording.body,
        overridden=row is not None,
        updated_at=row.updated_at if row else None,
        updated_by=row.updated_by if row else "",
    )


def set_template(
    session: Session,
    program: Program,
    key: str,
    locale: str,
    *,
    subject: str,
    body: str,
    by: str = "",
) -> TemplateOut:
    """Store an admin's wording (validated) for one key and locale."""
    kind = template_kind(key)
    locale = _check_locale(locale)
    wording = check_wording(key, kind, subject, body)
    now = utcnow()
    stmt = dialect_insert(session, ShareTemplate).values(
        program_id=program.id,
        key=key,
        locale=locale,
        subject=wording.subject,
        body=wording.body,
        updated_at=now,
        updated_by=by[:320],
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["program_id", "key", "locale"],
            set_={
                "subject": stmt.excluded.subject,
                "body": stmt.excluded.body,
                "updated_at": stmt.excluded.updated_at,
                "updated_by": stmt.excluded.updated_by,
            },
        )
    )
    session.expire_all()
    return get_template(session, program, key, locale)


def reset_template(session: Session, program: Program, key: str, locale: str) -> TemplateOut:
    """Back to the default wording."""
    template_kind(key)
    locale = _check_locale(locale)
    session.execute(
        delete(ShareTemplate).where(
            ShareTemplate.program_id == program.id,
            ShareTemplate.key == key,
            ShareTemplate.locale == locale,
        )
    )
    return get_template(session, program, key, locale)


# --- the share kit -------------------------------------------------------------------


def kit_locale(program: Program, member: Member, requested: str | None) -> str:
    if requested:
        return _check_locale(requested)
    return i18n.negotiate(member.locale, None, program.default_locale)


def display_name(member: Member, locale: str) -> str:
    if member.name.strip():
        return member.name.strip()
    with i18n.use_locale(locale):
        return i18n.gettext("Your friend")


def qr_urls(program: Program, code: str, channel: str = "qr") -> QrOut:
    base = f"{get_settings().base_url}/share/{program.slug}/qr/{code}"
    return QrOut(png=f"{base}.png?ch={channel}", svg=f"{base}.svg?ch={channel}")


def share_kit(
    session: Session, program: Program, member: Member, locale: str | None = None
) -> ShareKitOut:
    """The member's fission material: link, QR, and per channel a share URL and message."""
    if member.erased_at is not None:
        raise NotFound("no such member")
    locale = kit_locale(program, member, locale)
    settings = settings_of(program)
    code = sources.referral_code(session, program, member)
    link = sources.referral_link(program, code)
    overrides = _overrides(session, program, locale)
    base = {"name": display_name(member, locale), "program": program.name, "code": code}
    kakao: dict[str, object] | None = None
    out: list[ChannelShareOut] = []
    with i18n.use_locale(locale):
        for channel in ch.ordered(locale, settings.channels):
            channel_link = sources.referral_link(program, code, channel.key)
            wording, _row = wording_for(overrides, channel.key, channel.message_kind, locale)
            values = {**base, "link": channel_link, "note": ""}
            subject = fill(wording.subject, values).strip()
            message = fill(wording.body, values).strip()
            method = channel.method
            share_url = channel.build(channel_link, message, subject)
            if channel.key == "wechat":
                share_url = qr_urls(program, code, "wechat").png
            if channel.key == "kakaotalk" and settings.kakao_js_key and settings.kakao_sdk_url:
                method = ch.SDK
                kakao = {
                    "app_key": settings.kakao_js_key,
                    "sdk_url": settings.kakao_sdk_url,
                    "template": {
                        "objectType": "text",
                        "text": message,
                        "link": {"webUrl": channel_link, "mobileWebUrl": channel_link},
                    },
                }
            out.append(
                ChannelShareOut(
                    channel=channel.key,
                    label=i18n.gettext(channel.label),
                    method=method,
                    share_url=share_url,
                    link=channel_link,
                    subject=(
                        subject
                        if channel.message_kind in (ch.EMAIL, ch.TELL) or channel.key == "qq"
                        else None
                    ),
                    message=message,
                    steps=channel.steps - (1 if method == ch.SDK else 0),
                    needs=channel.needs,
                )
            )
    signature_link = sources.referral_link(program, code, "signature")
    sig_wording, _ = wording_for(overrides, ch.SIGNATURE, ch.SIGNATURE, locale)
    sig_values = {**base, "link": signature_link}
    text = fill(sig_wording.body, sig_values).strip()
    marker = "\x00link\x00"
    html_text = escape(fill(sig_wording.body, {**sig_values, "link": marker}).strip())
    html = html_text.replace(
        escape(marker), f'<a href="{escape(signature_link)}">{escape(signature_link)}</a>'
    ).replace("\n", "<br>")
    return ShareKitOut(
        member=member.external_id,
        locale=locale,
        code=code,
        link=link,
        qr=qr_urls(program, code),
        signature=SignatureOut(text=text, html=html),
        channels=out,
        kakao=kakao,
    )


# --- widget tokens -------------------------------------------------------------------


def issue_widget_token(
    program: Program, member: Member, ttl_seconds: int | None = None
) -> tuple[str, datetime]:
    """A signed, expiring token that lets the widget show this member's kit."""
    ttl = ttl_seconds or settings_of(program).widget_token_ttl_seconds
    if not 60 <= ttl <= MAX_WIDGET_TTL:
        raise field("ttl_seconds", f"must be between 60 and {MAX_WIDGET_TTL}")
    expires = int(time.time()) + ttl
    token = sign({"p": program.id, "m": member.id, "x": expires}, WIDGET_SALT)
    return token, datetime.fromtimestamp(expires, UTC)


def member_from_widget_token(session: Session, program: Program, token: str | None) -> Member:
    """The member a widget token names; 401 when missing, forged, expired or foreign."""
    data = unsign(token, WIDGET_SALT, max_age=MAX_WIDGET_TTL) if token else None
    if (
        not isinstance(data, dict)
        or data.get("p") != program.id
        or not isinstance(data.get("m"), int)
        or not isinstance(data.get("x"), int)
        or data["x"] < time.time()
    ):
        raise Unauthorized(
            "the widget token is missing, invalid or expired; ask your backend for a new one "
            "(POST /api/v1/members/{external_id}/widget-token)",
            code="invalid_widget_token",
        )
    member = session.get(Member, data["m"])
    if member is None or member.program_id != program.id or member.erased_at is not None:
        raise Unauthorized(
            "the widget token's member no longer exists", code="invalid_widget_token"
        )
    return member


# --- tell a friend -----------------------------------------------------------------


def _today() -> datetime:
    return utcnow()


def sends_today(session: Session, member: Member) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(TellAFriendMail)
            .where(TellAFriendMail.member_id == member.id, TellAFriendMail.day == _today().date())
        )
        or 0
    )


def recipient_hash(program: Program, address: str) -> str:
    """The keyed hash a tell-a-friend row keeps of the friend's (normalised) address."""
    return keyed_hash(f"{program.id}:{address}", "tell-a-friend")


def tell_a_friend(
    session: Session, program: Program, member: Member, data: TellAFriendIn | dict[str, Any]
) -> tuple[TellAFriendMail, int, int]:
    """Queue a tell-a-friend e-mail from ``member``; returns (mail, sent today, left today).

    The daily limit holds under any concurrency: each send takes a numbered slot of the
    member's day under a unique key, and there are only ``limit`` slots. One friend gets at
    most one such e-mail per member per day. The mail itself goes out after the commit
    (a ``sharing.deliver_tell_a_friend`` job, enqueued in this transaction), never while
    this transaction holds its locks.
    """
    try:
        spec = data if isinstance(data, TellAFriendIn) else TellAFriendIn.model_validate(data)
    except ValidationError as exc:
        raise from_pydantic(exc) from None
    limit = settings_of(program).tell_a_friend_daily_limit
    if limit <= 0:
        raise PermissionDenied(
            "this program does not send tell-a-friend e-mails", code="tell_a_friend_disabled"
        )
    if member.erased_at is not None:
        raise NotFound("no such member")
    if member.email and spec.to == member.email:
        raise field("to", "is your own address")
    now = _today()
    day = now.date()
    to_hash = recipient_hash(program, spec.to)
    locale = spec.locale or kit_locale(program, member, None)

    def told_already() -> bool:
        return (
            session.scalar(
                select(TellAFriendMail.id).where(
                    TellAFriendMail.member_id == member.id,
                    TellAFriendMail.day == day,
                    TellAFriendMail.recipient_hash == to_hash,
                )
            )
            is not None
        )

    if told_already():
        raise Conflict(
            "you already told this friend today",
            fields={"to": "already sent today"},
            code="already_told",
        )
    used = sends_today(session, member)
    mail_id: int | None = None
    for slot in range(used + 1, limit + 1):
        mail_id = session.execute(
            dialect_insert(session, TellAFriendMail)
            .values(
                program_id=program.id,
                member_id=member.id,
                day=day,
                slot=slot,
                recipient_hash=to_hash,
                recipient=spec.to,
                locale=locale,
                note=spec.note,
                share_id=spec.share_id,
                status="queued",
                attempts=0,
                error="",
                created_at=now,
            )
            .on_conflict_do_nothing()
            .returning(TellAFriendMail.id)
        ).scalar()
        if mail_id is not None:
            break
        if told_already():  # a concurrent request mailed this friend first
            raise Conflict(
                "you already told this friend today",
                fields={"to": "already sent today"},
                code="already_told",
            )
    if mail_id is None:
        midnight = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC)
        raise RateLimited(
            f"you can send {limit} tell-a-friend e-mails a day; try again tomorrow",
            retry_after=max(1, int((midnight - now).total_seconds())),
            fields={"to": "daily limit reached"},
            code="daily_limit",
        )
    mail = session.get_one(TellAFriendMail, mail_id)
    record_steps(
        session,
        program,
        member,
        [
            StepIn(
                id=f"tell-a-friend-{mail_id}",
                type="share_sent",
                share_id=spec.share_id or new_token(16),
                channel="tell_a_friend",
                occurred_at=now,
            )
        ],
        "portal" if spec.share_id else "api",
    )
    # Last, after any savepoint: the job is handed to the queue when this transaction
    # commits (see core.jobs).
    from budding.core import jobs

    jobs.enqueue(
        session,
        "sharing.deliver_tell_a_friend",
        {"mail_id": mail_id},
        program_id=program.id,
        dedupe_key=tell_a_friend_job_key(mail_id),
    )
    sent = sends_today(session, member)
    return mail, sent, max(0, limit - sent)


def tell_a_friend_job_key(mail_id: int) -> str:
    """The ``dedupe_key`` of the job that sends tell-a-friend e-mail ``mail_id``."""
    return f"sharing.tell_a_friend.{mail_id}"


def compose_tell_a_friend(session: Session, mail: TellAFriendMail) -> Any:
    """The ``core.mail.Mail`` for a queued tell-a-friend row."""
    from budding.core.mail import Mail, mailbox

    program = session.get_one(Program, mail.program_id)
    member = session.get_one(Member, mail.member_id)
    locale = mail.locale if mail.locale in i18n.LOCALES else "en"
    code = sources.referral_code(session, program, member)
    link = sources.referral_link(program, code, "tell_a_friend")
    name = display_name(member, locale)
    overrides = _overrides(session, program, locale)
    wording, _ = wording_for(overrides, "tell_a_friend", ch.TELL, locale)
    values = {"name": name, "program": program.name, "code": code, "link": link, "note": mail.note}
    body = fill(wording.body, values).strip()
    footer = tell_a_friend_footer(locale, name, program.name)
    return Mail(
        to=mail.recipient or "",
        subject=fill(wording.subject, values).strip(),
        text=f"{body}\n\n--\n{footer}\n",
        reply_to=mailbox(member.email, member.name) if member.email else None,
    )


# A claim older than this is presumed lost (its worker died mid-send) and may be retaken.
STUCK_AFTER = timedelta(minutes=10)


def deliver_tell_a_friend(mail_id: int) -> str:
    """Send one queued tell-a-friend e-mail, in its own units of work; returns the status
    (``sent``, or what the row already was) or raises ``MailError`` (the job retries).

    Claims the row (queued or failed -> sending) with a conditional UPDATE, so that a job
    run twice never sends twice; sends outside any transaction; then records the outcome
    and forgets the address once sent.
    """
    from budding.core.db import unit_of_work
    from budding.core.mail import MailError, send_mail

    now = utcnow()
    with unit_of_work() as session:
        claimed = session.execute(
            update(TellAFriendMail)
            .where(
                TellAFriendMail.id == mail_id,
                TellAFriendMail.recipient.is_not(None),  # None: given up on, or erased
                TellAFriendMail.status.in_(("queued", "failed"))
                | (
                    (TellAFriendMail.status == "sending")
                    & (TellAFriendMail.claimed_at < now - STUCK_AFTER)
                ),
            )
            .values(status="sending", claimed_at=now, attempts=TellAFriendMail.attempts + 1)
            .returning(TellAFriendMail.id)
        ).scalar()
        if claimed is None:
            row = session.get(TellAFriendMail, mail_id)
            return row.status if row else "missing"
        mail = compose_tell_a_friend(session, session.get_one(TellAFriendMail, mail_id))
    try:
        send_mail(mail)
    except MailError as exc:
        # A refusal quotes the friend's address: the row, the job and the log keep it
        # without (``from None``: the log's traceback leaves out the original too).
        error = exc.without_recipient(mail.to)
        with unit_of_work() as session:
            session.execute(
                update(TellAFriendMail)
                .where(TellAFriendMail.id == mail_id)
                .values(status="failed", error=error.message[:500])
            )
        raise error from None
    with unit_of_work() as session:
        session.execute(
            update(TellAFriendMail)
            .where(TellAFriendMail.id == mail_id)
            .values(status="sent", recipient=None, error="", sent_at=utcnow())
        )
    return "sent"


def give_up_tell_a_friend(mail_id: int, error: str) -> None:
    """After the last attempt: forget the address, keep the row (it still takes its slot)."""
    from budding.core.db import unit_of_work

    with unit_of_work() as session:
        session.execute(
            update(TellAFriendMail)
            .where(TellAFriendMail.id == mail_id, TellAFriendMail.status != "sent")
            .values(status="failed", recipient=None, error=error[:500])
        )


def member_by_external_id(session: Session, program: Program, external_id: str) -> Member:
    return members.get_member(session, program.id, external_id)
