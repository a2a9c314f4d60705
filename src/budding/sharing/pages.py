"""Pages of the share kit: the member portal's "Invite friends" page and its step beacon,
the embeddable widget, public QR images, and the admin dashboards (share funnel and
launch cost, virality, share messages)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Body, Form, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from budding.core import i18n
from budding.core.auth import DB, STAFF, StaffContext, require_program
from budding.core.errors import (
    BuddingError,
    NotFound,
    field,
    field_messages,
    from_pydantic,
    refusal_banner,
)
from budding.core.i18n import N_, gettext
from budding.core.templating import render
from budding.members.portal import MEMBER, PortalContext
from budding.referrals.pages import MEMBER_INVITE_STATUSES
from budding.sharing import channels as ch
from budding.sharing import funnel, qr, service, sources, virality
from budding.sharing.schemas import (
    STEP_TYPES,
    SharingSettingsPatch,
    StepIn,
    TellAFriendIn,
)

router = APIRouter(include_in_schema=False)

ADMIN_NAV = [
    (40, N_("Share funnel"), "/sharing"),
    (41, N_("Virality"), "/virality"),
    (42, N_("Share messages"), "/sharing/messages"),
]
PORTAL_NAV = [(20, N_("Invite friends"), "/invite")]

STATIC = Path(__file__).parent / "static"
ASSETS = {
    "invite.js": "text/javascript",
    "widget.js": "text/javascript",
    "sharing.css": "text/css",
}
CODE_RE = re.compile(r"^[0-9A-Z]{8,16}$")
LINK_CHANNELS = set(ch.CHANNEL_KEYS) | set(ch.EXTRA_LINK_CHANNELS)
REWARD_KINDS = {
    "points": N_("%(amount)s points"),
    "coupon": N_("A coupon"),
    "invites": N_("%(amount)s extra invites"),
    "custom": N_("A gift"),
}
REWARD_STATUSES = {
    "pending": N_("on its way"),
    "held": N_("being checked"),
    "issued": N_("yours"),
    "rejected": N_("not given"),
    "reversed": N_("taken back"),
}
RECENT_REWARDS = 5
DONE = {
    "sent": N_("Your invitation is on its way."),
    "code": N_("Here is a new invite code: copy it and send it to a friend."),
}


# --- shared pieces -------------------------------------------------------------------


@router.get("/share/static/{name}")
def asset(name: str) -> Response:
    if name not in ASSETS:
        raise NotFound("no such file")
    if name == "widget.js":  # the embed script, as /w/widget.js serves it: never the raw file
        return widget_script()
    return FileResponse(
        STATIC / name, media_type=ASSETS[name], headers={"Cache-Control": "public, max-age=300"}
    )


WIDGET_TITLE_LINE = 'const defaultTitle = "Invite friends";'


@cache
def _widget_script_in(locale: str) -> str:
    source = (STATIC / "widget.js").read_text(encoding="utf-8")
    # Not an assert: under python -O it would vanish, and the frame keep its English title.
    if WIDGET_TITLE_LINE not in source:
        raise RuntimeError(f"widget.js lost its defaultTitle line ({WIDGET_TITLE_LINE})")
    with i18n.use_locale(locale):
        title = json.dumps(gettext("Invite friends"), ensure_ascii=False)
    return source.replace(WIDGET_TITLE_LINE, f"const defaultTitle = {title};", 1)


@router.get("/w/widget.js")
def widget_script() -> Response:
    """The embed script: ``<script src=".../w/widget.js" data-program data-token async>``.
    It names the iframe it makes in the visitor's language (negotiated by ``RequestGuard``
    from Accept-Language) until the widget, once loaded, says its own title."""
    return Response(
        _widget_script_in(i18n.get_locale()),
        media_type="text/javascript",
        headers={
            "Cache-Control": "public, max-age=300",
            "Vary": "Accept-Language",
            "Access-Control-Allow-Origin": "*",
        },
    )


@router.get("/share/{slug}/qr/{code}.{fmt}")
def public_qr(
    slug: str,
    code: str,
    fmt: str,
    ch_: str = Query("qr", alias="ch", max_length=32),
    scale: int = Query(8, ge=1, le=40),
    download: bool = False,
    session: Session = DB,
) -> Response:
    """The QR code of a referral link. Public (the link is public); it only ever encodes
    this program's ``/r/{code}`` link, so it is no open QR generator."""
    if fmt not in ("png", "svg"):
        raise NotFound("QR codes come as .png or .svg")
    if not CODE_RE.match(code):
        raise field("code", "is not a referral code", NotFound)
    if ch_ not in LINK_CHANNELS:
        raise field("ch", "unknown channel")
    program = require_program(session, slug)
    link = sources.referral_link(program, code, ch_)
    headers = {"Cache-Control": "public, max-age=86400"}
    if download:
        headers["Content-Disposition"] = f'attachment; filename="invite-{code}.{fmt}"'
    if fmt == "png":
        return Response(qr.png(link, scale), media_type="image/png", headers=headers)
    return Response(qr.svg(link, scale, title=link), media_type="image/svg+xml", headers=headers)


def _steps_from(payload: Any) -> list[StepIn]:
    if not isinstance(payload, dict) or not isinstance(payload.get("steps"), list):
        raise field("steps", 'send {"steps": [...]}')
    steps = payload["steps"]
    if not 1 <= len(steps) <= 20:
        raise field("steps", "send 1 to 20 steps")
    out = []
    for i, raw in enumerate(steps):
        if not isinstance(raw, dict):
            raise field(f"steps.{i}", "must be an object")
        data = {
            k: raw.get(k) for k in ("id", "type", "share_id", "channel") if raw.get(k) is not None
        }
        if data.get("type") not in STEP_TYPES or data.get("type") == "share_opened":
            raise field(f"steps.{i}.type", "must be channel_chosen or share_sent")
        try:
            out.append(StepIn.model_validate(data))
        except ValidationError as exc:
            raise from_pydantic(exc) from None
    return out


def _channel_view(kit: Any) -> list[dict[str, Any]]:
    return [c.model_dump() for c in kit.channels]


# --- the member portal -----------------------------------------------------------------


def invite_context(pctx: PortalContext) -> dict[str, Any]:
    member = pctx.member
    assert member is not None
    kit = service.share_kit(pctx.session, pctx.program, member, pctx.locale)
    share_id = service.open_share_session(pctx.session, pctx.program, member, "portal")
    settings = service.settings_of(pctx.program)
    limit = settings.tell_a_friend_daily_limit
    sent_today = service.sends_today(pctx.session, member)
    # Invite codes matter in an invite-only launch (or once a member holds some).
    invites = sources.invite_summary(pctx.session, pctx.program, member)
    show_invites = invites is not None and (
        sources.referral_mode(pctx.program) == "invite_only" or bool(invites.codes)
    )
    return {
        "kit": kit,
        "channels_view": _channel_view(kit),
        "chat_message": next(
            (c.message for c in kit.channels if c.channel in ("copy_link", "whatsapp")),
            kit.channels[0].message if kit.channels else kit.link,
        ),
        "share_id": share_id,
        "invites": invites if show_invites else None,
        "friends": sources.referred_members(pctx.session, pctx.program, member),
        "rewards": sources.rewards_of(pctx.session, pctx.program, member)[:RECENT_REWARDS],
        "reward_kinds": REWARD_KINDS,
        "reward_statuses": REWARD_STATUSES,
        "points": sources.points_balance(pctx.session, pctx.program, member),
        "waitlist": sources.waitlist_position(pctx.session, pctx.program, member.email),
        "tell_limit": limit,
        "tell_left": max(0, limit - sent_today),
        "tell_enabled": limit > 0 and "tell_a_friend" in settings.channels,
        "steps_url": f"{pctx.base_path}/invite/steps",
        "qr_svg": f"{pctx.base_path}/invite/qr.svg",
        "qr_png_download": kit.qr.png.replace("?ch=qr", "?ch=qr&download=1&scale=12"),
        "wechat_qr": f"/share/{pctx.program.slug}/qr/{kit.code}.svg?ch=wechat",
        "code_statuses": MEMBER_INVITE_STATUSES,
    }


@router.get("/p/{slug}/invite")
def invite_page(done: str | None = None, pctx: PortalContext = MEMBER) -> Response:
    """Invite friends: the member's link, QR, channel buttons, codes, friends, rewards."""
    with i18n.use_locale(pctx.locale):
        context = invite_context(pctx)
    return pctx.render("sharing/portal/invite.html", flash=DONE.get(done or ""), **context)


@router.get("/p/{slug}/invite/qr.svg")
def invite_qr(pctx: PortalContext = MEMBER) -> Response:
    member = pctx.member
    assert member is not None
    code = sources.referral_code(pctx.session, pctx.program, member)
    link = sources.referral_link(pctx.program, code, "qr")
    return Response(
        qr.svg(link, 8, title=link, responsive=True),
        media_type="image/svg+xml",
        headers={"Cache-Control": "private, max-age=3600"},
    )


@router.post("/p/{slug}/invite/steps")
def invite_steps(payload: Any = Body(...), pctx: PortalContext = MEMBER) -> Response:
    """The page's beacon: funnel steps (channel chosen, share sent) of this member."""
    member = pctx.member
    assert member is not None
    result = service.record_steps(
        pctx.session, pctx.program, member, _steps_from(payload), "portal"
    )
    return Response(result.model_dump_json(), media_type="application/json")


@router.post("/p/{slug}/invite/tell")
def invite_tell(
    to: str = Form("", max_length=320),
    note: str = Form("", max_length=300),
    share_id: str = Form("", max_length=64),
    pctx: PortalContext = MEMBER,
) -> Response:
    member = pctx.member
    assert member is not None
    # No savepoint here: every refusal comes before the first write, and a savepoint would
    # hand the delivery job to the queue before this transaction commits.
    try:
        service.tell_a_friend(
            pctx.session,
            pctx.program,
            member,
            TellAFriendIn(to=to, note=note, share_id=share_id or None, locale=pctx.locale),
        )
    except (BuddingError, ValidationError) as exc:
        # The fields the refusal is about: the address is named under its input too.
        fields = set((exc if isinstance(exc, BuddingError) else from_pydantic(exc)).fields)
        if isinstance(exc, ValidationError):
            reason = (
                N_("Enter a valid e-mail address.")
                if "to" in fields
                else N_("The invitation could not be sent. Check the address.")
            )
        elif exc.code == "daily_limit":
            reason = N_("You have sent all of today's invitation e-mails. Try again tomorrow.")
        elif exc.code == "already_told":
            reason = N_("You already invited this friend today.")
        elif exc.code == "tell_a_friend_disabled":
            reason = N_("This program does not send invitation e-mails.")
        else:
            reason = N_("The invitation could not be sent. Check the address.")
        with i18n.use_locale(pctx.locale):
            context = invite_context(pctx)
        return pctx.render(
            "sharing/portal/invite.html",
            status_code=429 if getattr(exc, "code", "") == "daily_limit" else 422,
            flash=reason,
            flash_kind="error",
            tell_to=to,
            tell_note=note,
            tell_errors={"to": pctx.translate(reason)} if "to" in fields else {},
            **context,
        )
    return RedirectResponse(f"{pctx.base_path}/invite?done=sent#tell", status_code=303)


@router.post("/p/{slug}/invite/codes")
def invite_code(pctx: PortalContext = MEMBER) -> Response:
    """Take one invite code from the member's quota (invite-only launches)."""
    member = pctx.member
    assert member is not None
    try:
        sources.issue_invite(pctx.session, pctx.program, member)
    except BuddingError as exc:
        with i18n.use_locale(pctx.locale):
            context = invite_context(pctx)
        reason = (
            N_("You have no invites left.")
            if exc.code == "quota_exceeded"
            else N_("No invite code could be made. Try again later.")
        )
        return pctx.render(
            "sharing/portal/invite.html",
            status_code=exc.status,
            flash=reason,
            flash_kind="error",
            **context,
        )
    return RedirectResponse(f"{pctx.base_path}/invite?done=code#codes", status_code=303)


# --- the embeddable widget ---------------------------------------------------------------


def _frame_headers(program: Any) -> dict[str, str]:
    origins = service.settings_of(program).widget_origins
    ancestors = "*" if "*" in origins else " ".join(origins)
    return {
        "Content-Security-Policy": f"frame-ancestors {ancestors}",
        "Referrer-Policy": "no-referrer",  # the token is in the URL
        "Cache-Control": "no-store",
    }


@router.get("/w/{slug}")
def widget(
    request: Request,
    slug: str,
    token: str = Query("", max_length=2000),
    locale: str | None = Query(None, max_length=16),
    session: Session = DB,
) -> Response:
    """The widget a customer embeds (iframe): the signed-in member's link and buttons."""
    program = require_program(session, slug)
    member = service.member_from_widget_token(session, program, token)
    chosen = i18n.normalise_locale(locale) if locale else None
    loc = i18n.negotiate(
        chosen or member.locale, request.headers.get("accept-language"), program.default_locale
    )
    with i18n.use_locale(loc):
        kit = service.share_kit(session, program, member, loc)
        share_id = service.open_share_session(session, program, member, "widget")
        response: Response = render(
            request,
            "sharing/widget.html",
            program=program,
            member=member,
            kit=kit,
            channels_view=[c for c in _channel_view(kit) if c["channel"] != "tell_a_friend"],
            share_id=share_id,
            token=token,
            steps_url=f"/w/{program.slug}/steps",
            qr_svg=f"/share/{program.slug}/qr/{kit.code}.svg?ch=qr",
            wechat_qr=f"/share/{program.slug}/qr/{kit.code}.svg?ch=wechat",
            qr_png_download=kit.qr.png.replace("?ch=qr", "?ch=qr&download=1&scale=12"),
        )
    response.headers.update(_frame_headers(program))
    return response


@router.post("/w/{slug}/steps")
def widget_steps(slug: str, payload: Any = Body(...), session: Session = DB) -> Response:
    """The widget's beacon; authenticated by the member token in the body (no cookies:
    third-party iframes often have none)."""
    program = require_program(session, slug)
    token = payload.get("token") if isinstance(payload, dict) else None
    member = service.member_from_widget_token(
        session, program, token if isinstance(token, str) else None
    )
    result = service.record_steps(session, program, member, _steps_from(payload), "widget")
    return Response(result.model_dump_json(), media_type="application/json")


# --- admin: share funnel ---------------------------------------------------------------


def _parse_day(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        raise field(name, "must be a date, YYYY-MM-DD") from None
    return day.replace(tzinfo=UTC)


def _range(
    since: str | None, until: str | None, prefix: str = ""
) -> tuple[datetime | None, datetime | None]:
    start = _parse_day(since, f"{prefix}since")
    end = _parse_day(until, f"{prefix}until")
    return start, (end + timedelta(days=1) if end else None)  # until is inclusive on the page


def _pct(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 1)


def funnel_charts(report: Any) -> dict[str, Any]:
    rows = [r for r in report.channels if r.sent or r.chosen or r.clicks or r.signups]
    labels = [r.label for r in rows]
    return {
        "seconds": {
            "type": "bar",
            "x": labels,
            "series": [
                {
                    "name": gettext("Median seconds to share"),
                    "data": [r.median_seconds for r in rows],
                }
            ],
        },
        "funnel": {
            "type": "bar",
            "x": labels,
            "series": [
                {"name": gettext("Shares sent"), "data": [r.sent for r in rows]},
                {"name": gettext("Clicks"), "data": [r.clicks for r in rows]},
                {"name": gettext("Signups"), "data": [r.signups for r in rows]},
                {"name": gettext("Conversions"), "data": [r.conversions for r in rows]},
            ],
        },
    }


@router.get("/admin/{slug}/sharing")
def funnel_page(
    request: Request,
    slug: str,
    since: str | None = Query(None, max_length=10),
    until: str | None = Query(None, max_length=10),
    before_since: str | None = Query(None, max_length=10),
    before_until: str | None = Query(None, max_length=10),
    after_since: str | None = Query(None, max_length=10),
    after_until: str | None = Query(None, max_length=10),
    ctx: StaffContext = STAFF,
) -> Response:
    program = ctx.program(slug)
    if not since and not until:
        today = datetime.now(UTC).date()
        since, until = (today - timedelta(days=89)).isoformat(), today.isoformat()
    report = funnel.launch_cost(ctx.session, program, *_range(since, until))
    comparison = None
    if before_since and before_until and after_since and after_until:
        comparison = funnel.compare(
            ctx.session,
            program,
            _range(before_since, before_until, "before_"),
            _range(after_since, after_until, "after_"),
        )
    return ctx.render(
        request,
        "sharing/admin/funnel.html",
        program=program,
        report=report,
        charts=funnel_charts(report),
        comparison=comparison,
        pct=_pct,
        form={
            "since": since,
            "until": until,
            "before_since": before_since or "",
            "before_until": before_until or "",
            "after_since": after_since or "",
            "after_until": after_until or "",
        },
    )


# --- admin: virality ------------------------------------------------------------------


def virality_charts(report: Any) -> dict[str, Any]:
    projection_days = [p.day for p in report.projection]
    actual = {round(p.day): p.users for p in report.actual}
    return {
        "cohorts": {
            "type": "bar",
            "x": [r.key for r in report.by_cohort],
            "series": [{"name": "K", "data": [r.k for r in report.by_cohort]}],
        },
        "generations": {
            "type": "bar",
            "x": [str(g) for g in report.generation_sizes],
            "series": [
                {"name": gettext("Members"), "data": list(report.generation_sizes.values())}
            ],
        },
        "channels": {
            "type": "bar",
            "x": [r.key for r in report.by_channel],
            "series": [{"name": "K", "data": [r.k for r in report.by_channel]}],
        },
        "projection": {
            "type": "line",
            "x": [f"{d:g}" for d in projection_days],
            "series": [
                {
                    "name": gettext("Projected U(t)"),
                    "data": [round(p.users, 2) for p in report.projection],
                },
                {
                    "name": gettext("Actual"),
                    "data": [actual.get(round(d)) for d in projection_days],
                },
            ],
        },
    }


@router.get("/admin/{slug}/virality")
def virality_page(
    request: Request,
    slug: str,
    since: str | None = Query(None, max_length=10),
    until: str | None = Query(None, max_length=10),
    cohort: str = Query("week", pattern="^(day|week|month)$"),
    horizon: int = Query(180, ge=1, le=3650),
    ctx: StaffContext = STAFF,
) -> Response:
    program = ctx.program(slug)
    report = virality.virality_report(
        ctx.session, program, *_range(since, until), cohort=cohort, horizon_days=horizon
    )
    return ctx.render(
        request,
        "sharing/admin/virality.html",
        program=program,
        report=report,
        charts=virality_charts(report),
        form={"since": since or "", "until": until or "", "cohort": cohort, "horizon": horizon},
    )


# --- admin: messages and settings ------------------------------------------------------


def _messages_context(ctx: StaffContext, program: Any, **extra: Any) -> dict[str, Any]:
    templates = service.list_templates(ctx.session, program)
    by_key: dict[str, list[Any]] = {}
    for t in templates:
        by_key.setdefault(t.key, []).append(t)
    return {
        "program": program,
        "templates": by_key,
        "settings": service.settings_of(program),
        "channels": ch.CHANNELS,
        "kinds": ch.MESSAGE_KINDS,
        "errors": {},
        "settings_errors": {},
        **extra,
    }


@router.get("/admin/{slug}/sharing/messages")
def messages_page(
    request: Request, slug: str, done: str | None = None, ctx: StaffContext = STAFF
) -> Response:
    program = ctx.program(slug)
    flash = {"saved": gettext("Saved."), "reset": gettext("Back to the default wording.")}.get(
        done or ""
    )
    return ctx.render(
        request, "sharing/admin/messages.html", **_messages_context(ctx, program, flash=flash)
    )


@router.post("/admin/{slug}/sharing/messages")
def save_message(
    request: Request,
    slug: str,
    key: str = Form(..., max_length=32),
    locale: str = Form(..., max_length=16),
    # No length cap on what staff type: check_wording names a too-long subject or message
    # under its field (a cap here would answer a bare 422 page); the request's size limit
    # bounds them.
    subject: str = Form(""),
    body: str = Form(""),
    action: str = Form("save", max_length=10),
    ctx: StaffContext = STAFF,
) -> Response:
    ctx.require_write()
    program = ctx.program(slug)
    try:
        with ctx.session.begin_nested():
            if action == "reset":
                service.reset_template(ctx.session, program, key, locale)
            else:
                service.set_template(
                    ctx.session, program, key, locale, subject=subject, body=body, by=ctx.user.email
                )
    except BuddingError as exc:
        reasons = field_messages(exc)
        return ctx.render(
            request,
            "sharing/admin/messages.html",
            status_code=exc.status,
            **_messages_context(
                ctx,
                program,
                flash=refusal_banner(
                    reasons,
                    ("subject", "body"),
                    N_("The message was not saved. Check the fields below."),
                ),
                flash_kind="error",
                errors={f"{key}:{locale}": reasons},
                draft={"key": key, "locale": locale, "subject": subject, "body": body},
            ),
        )
    done = "reset" if action == "reset" else "saved"
    return RedirectResponse(
        f"/admin/{program.slug}/sharing/messages?done={done}#{key}-{locale}", status_code=303
    )


# The inputs of the share kit's settings form.
SETTINGS_FIELDS = (
    "channels",
    "tell_a_friend_daily_limit",
    "kakao_js_key",
    "kakao_sdk_url",
    "widget_origins",
)


@router.post("/admin/{slug}/sharing/settings")
async def save_settings(request: Request, slug: str, ctx: StaffContext = STAFF) -> Response:
    ctx.require_manage()
    program = ctx.program(slug)
    form = await request.form()
    patch: dict[str, Any] = {
        "channels": [str(v) for v in form.getlist("channels")],
        # emptied by mistake is an error, not 0 (0 turns tell-a-friend off)
        "tell_a_friend_daily_limit": str(form.get("tell_a_friend_daily_limit", "")).strip(),
        "kakao_js_key": str(form.get("kakao_js_key") or "").strip() or None,
        "kakao_sdk_url": str(form.get("kakao_sdk_url") or "").strip() or None,
        "widget_origins": [
            o.strip() for o in str(form.get("widget_origins") or "*").split() if o.strip()
        ],
    }
    try:
        with ctx.session.begin_nested():
            service.update_settings(
                ctx.session, program, SharingSettingsPatch.model_validate(patch)
            )
    except (BuddingError, ValidationError) as exc:
        error = exc if isinstance(exc, BuddingError) else from_pydantic(exc)
        # Each reason under its field ("widget_origins.0" under widget_origins), and the
        # form as it was typed.
        errors: dict[str, str] = {}
        for name, reason in field_messages(error).items():
            errors.setdefault(name.split(".")[0], reason)
        return ctx.render(
            request,
            "sharing/admin/messages.html",
            status_code=422,
            **_messages_context(
                ctx,
                program,
                flash=refusal_banner(
                    errors,
                    SETTINGS_FIELDS,
                    N_("The settings were not saved. Check the fields below."),
                ),
                flash_kind="error",
                settings=patch,
                settings_errors=errors,
            ),
        )
    return RedirectResponse(f"/admin/{program.slug}/sharing/messages?done=saved", status_code=303)
