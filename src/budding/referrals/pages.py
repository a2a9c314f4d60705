"""Pages: the referral link redirect (``/r/{code}``); the public join page where a friend
redeems an invite; the public waitlist pages; and the admin dashboard (referral
settings, invites, waitlist, the fission tree)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import anyio
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from budding.core.auth import MEMBER_COOKIE, STAFF, StaffContext
from budding.core.config import get_settings
from budding.core.db import savepoint
from budding.core.errors import (
    BuddingError,
    NotFound,
    Reason,
    ValidationFailed,
    field_messages,
    refusal_banner,
)
from budding.core.i18n import N_, gettext
from budding.core.routing import IntRowId, is_head_request
from budding.core.templating import render
from budding.members import service as members
from budding.members.events import event_types
from budding.members.portal import MEMBER, PORTAL, PortalContext, member_session_cookie
from budding.referrals import attribution, invites, tree, waitlist
from budding.referrals.clickwriter import writer
from budding.referrals.codes import format_code, normalise_code
from budding.referrals.config import referral_settings, update_referral_settings
from budding.referrals.links import (
    CLICK_COOKIE,
    CLICK_PARAM,
    click_counts,
    click_row,
    count_clicks,
    referral_code_for,
    referral_url,
)
from budding.referrals.schemas import ReferralSettings

router = APIRouter(include_in_schema=False)

ADMIN_NAV = [
    (30, N_("Referrals"), "/referrals"),
    (31, N_("Invites"), "/invites"),
    (32, N_("Waitlist"), "/waitlist"),
    (33, N_("Fission tree"), "/fission-tree"),
]

BOT_RE = re.compile(
    r"bot|crawl|spider|preview|facebookexternalhit|slurp|whatsapp|telegram|kakaotalk-scrap|"
    r"line-poker|skypeuripreview|discord|embedly|vkshare|outbrain|pinterest|quora link",
    re.IGNORECASE,
)
WAITLIST_REASONS = {
    "joined": N_("Joined the waitlist"),
    "confirmed": N_("E-mail confirmed"),
    "skip_ahead": N_("Moved ahead: a friend you referred confirmed"),
    "skip_capped": N_("A friend confirmed, but you have moved ahead as far as allowed"),
    "skip_protected": N_("A friend confirmed, but the first places are protected"),
    "passed": N_("Someone moved ahead of you after a confirmed referral"),
    "released": N_("Released: you received an invitation"),
    "joined_program": N_("Joined"),
}
INVITE_STATUSES = {  # the staff's words
    "available": N_("Available"),
    "used": N_("Used"),
    "expired": N_("Expired"),
    "revoked": N_("Revoked"),
}
MEMBER_INVITE_STATUSES = {  # a member's own codes, here and in the share kit
    "available": N_("Ready to share"),
    "used": N_("Used by a friend"),
    "expired": N_("No longer valid"),
    "revoked": N_("Cancelled"),
}
REFUSALS = {
    "invite_not_found": N_("This invite code does not exist. Check it and try again."),
    "invite_used_up": N_("This invite code has already been used."),
    "invite_expired": N_("This invite code has expired."),
    "invite_revoked": N_("This invite code is no longer valid."),
    "already_member": N_("You are already a member. Sign in instead."),
    "signup_blocked": N_("We could not accept this signup."),
}


def _client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


CLICK_COOKIE_DAYS = 365  # the longest attribution window; the program's window decides


# --- the referral link ---------------------------------------------------------------------


@router.get("/r/{code}")
async def referral_redirect(code: str, request: Request) -> Response:
    """Record the click and redirect to the landing page with ``bud_click=<click id>``.

    Nothing but a click row is written: a link preview or a mail scanner that
    follows the link consumes nothing. The click is committed (with other
    concurrent clicks, in one transaction) before the redirect is sent.
    """
    if is_head_request(request):  # a link checker's HEAD records no click
        return Response(status_code=405, headers={"allow": "GET"})
    key = normalise_code(code)
    click_writer = writer()
    target = await click_writer.resolve(key) if key else None
    if target is None:
        raise NotFound("no such referral link", fields={"code": "unknown code"})
    user_agent = request.headers.get("user-agent", "")
    row = click_row(
        target,
        channel=request.query_params.get("ch"),
        ip=_client_ip(request),
        user_agent=user_agent,
    )
    row["bot"] = bool(BOT_RE.search(user_agent))
    row["previous"] = request.cookies.get(CLICK_COOKIE)
    await click_writer.write(row)
    token = row["token"]
    # Built by hand: with_query, RedirectResponse and set_cookie (http.cookies) were over a
    # third of the route's CPU time. The same headers as theirs.
    response = Response(status_code=302)
    response.raw_headers = [
        (b"content-length", b"0"),
        (b"location", _header_bytes(target.redirect_url(token))),
        (b"cache-control", b"no-store"),
        (b"referrer-policy", b"no-referrer"),
        (b"set-cookie", _click_cookie(token)),
    ]
    return response


def _header_bytes(url: str) -> bytes:
    # RedirectResponse quotes what is not safe in a header; a click URL usually needs nothing.
    return quote(url, safe=":/%#?=@[]!$&'()*+,;").encode("latin-1")


def _click_cookie(token: str) -> bytes:
    """``bud_click=<token>; HttpOnly; Max-Age=…; Path=/; SameSite=lax`` (and ``Secure``):
    what Starlette's ``set_cookie`` writes for it (a click id needs no quoting)."""
    secure = "; Secure" if get_settings().secure_cookies else ""
    return (
        f"{CLICK_COOKIE}={token}; HttpOnly; Max-Age={CLICK_COOKIE_DAYS * 86400}; "
        f"Path=/; SameSite=lax{secure}"
    ).encode("latin-1")


async def _first_route_redirect(request: Request) -> Response:
    return await referral_redirect(request.path_params["code"], request)


# The redirect, as a route the web app matches before all others: FastAPI's matching of
# included routers costs ~10 µs for each route it passes, and /r/ comes after them all.
# A plain Starlette route: it skips FastAPI's dependency solving (a fifth of the CPU time
# of the whole request). The router keeps the documented FastAPI route too.
_FIRST = Route("/r/{code}", _first_route_redirect, methods=["GET"], include_in_schema=False)
_FIRST.methods = {"GET"}  # Starlette adds HEAD to a GET route; a HEAD records no click
FIRST_ROUTES = [_FIRST]


# --- the public join page ------------------------------------------------------------------


def _click_token(request: Request) -> str | None:
    return request.query_params.get(CLICK_PARAM) or request.cookies.get(CLICK_COOKIE)


@router.get("/p/{slug}/join")
def join_start(code: str = "", pctx: PortalContext = PORTAL) -> Response:
    """Enter an invite code (or, with ``?code=``, go to its page)."""
    norm = normalise_code(code) if code else None
    if norm:
        return RedirectResponse(f"{pctx.base_path}/join/{norm}", status_code=303)
    mode = referral_settings(pctx.program).mode
    return pctx.render(
        "referrals/portal/join_start.html",
        code=code,
        mode=mode,
        errors={"code": pctx.translate(REFUSALS["invite_not_found"])} if code else {},
    )


def _invite_page(
    pctx: PortalContext,
    code: str,
    *,
    status_code: int = 200,
    error: str | None = None,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    """The join page; ``error`` (a msgid) is the form's, ``errors`` (in the member's
    language) each of a field's."""
    try:
        info = invites.peek_invite(pctx.session, pctx.program, code)
        invite = invites.find_invite(pctx.session, pctx.program, code)
    except NotFound:
        return pctx.render(
            "referrals/portal/join_start.html",
            status_code=404,
            code=code,
            mode=referral_settings(pctx.program).mode,
            errors={"code": pctx.translate(REFUSALS["invite_not_found"])},
        )
    inviter = (
        members.get_member_by_id(pctx.session, invite.issuer_member_id)
        if invite.issuer_member_id
        else None
    )
    return pctx.render(
        "referrals/portal/join.html",
        status_code=status_code if info.status == "available" else max(status_code, 410),
        invite=info,
        inviter=inviter,
        error=error,
        errors=errors or {},
        form=form or {},
        refusal=None if info.status == "available" else REFUSALS[f"invite_{_gone(info.status)}"],
    )


def _gone(status: str) -> str:
    return {"used": "used_up", "expired": "expired", "revoked": "revoked"}.get(status, "used_up")


@router.get("/p/{slug}/join/{code}")
def join_page(code: str, pctx: PortalContext = PORTAL) -> Response:
    """The invite's page: who invited you, and a form to join. Viewing it (or a link
    preview fetching it) never uses the code; only the form's POST does."""
    return _invite_page(pctx, code)


@router.post("/p/{slug}/join/{code}")
def join_submit(
    request: Request,
    code: str,
    name: str = Form("", max_length=200),
    email: str = Form("", max_length=320),
    pctx: PortalContext = PORTAL,
) -> Response:
    """Redeem the invite: a new member, signed in, attributed to the inviter."""
    form = {"name": name, "email": email}
    try:
        with savepoint(pctx.session):
            done = invites.redeem_invite(
                pctx.session,
                pctx.program,
                code,
                {
                    "external_id": email.strip().lower() or "-",
                    "email": email,
                    "name": name or None,
                    "locale": pctx.locale,
                    "ip": _client_ip(request),
                    "properties": {"user_agent": request.headers.get("user-agent", "")[:200]},
                },
                click_token=_click_token(request),
            )
    except ValidationFailed as exc:
        if "email" in exc.fields:  # named under the e-mail input
            errors = {"email": pctx.translate(N_("Enter a valid e-mail address."))}
            return _invite_page(pctx, code, status_code=422, errors=errors, form=form)
        return _invite_page(pctx, code, status_code=422, error=N_("Check the form."), form=form)
    except BuddingError as exc:
        reason = REFUSALS.get(exc.code, N_("We could not accept this signup."))
        return _invite_page(pctx, code, status_code=exc.status, error=reason, form=form)
    response = RedirectResponse(f"{pctx.base_path}/welcome", status_code=303)
    response.set_cookie(
        MEMBER_COOKIE,
        member_session_cookie(pctx.program.id, done.member),
        max_age=30 * 86400,
        path=pctx.base_path,
        httponly=True,
        samesite="lax",
        secure=get_settings().secure_cookies,
    )
    response.delete_cookie(CLICK_COOKIE)
    return response


@router.get("/p/{slug}/welcome")
def welcome(pctx: PortalContext = MEMBER) -> Response:
    """After joining: your own link and invites, ready to pass on."""
    member = pctx.member
    assert member is not None
    code = referral_code_for(pctx.session, pctx.program, member)
    summary = invites.invite_summary(pctx.session, pctx.program, member)
    ref = attribution.referral_of(pctx.session, pctx.program, member.id)
    inviter = members.get_member_by_id(pctx.session, ref.referrer_id) if ref else None
    return pctx.render(
        "referrals/portal/welcome.html",
        link=referral_url(pctx.program, code),
        summary=summary,
        inviter=inviter,
        statuses=MEMBER_INVITE_STATUSES,
    )


@router.post("/p/{slug}/invites")
def portal_issue_invite(
    next: str = Form("", max_length=300), pctx: PortalContext = MEMBER
) -> Response:
    """Take one invite code from the signed-in member's quota, then go back to ``next``."""
    member = pctx.member
    assert member is not None
    target = next if next.startswith(pctx.base_path + "/") and "//" not in next else None
    target = target or f"{pctx.base_path}/welcome"
    try:
        with pctx.session.begin_nested():
            invites.issue_invites(pctx.session, pctx.program, member, 1)
    except BuddingError:
        sep = "&" if "?" in target else "?"
        return RedirectResponse(f"{target}{sep}invite=none", status_code=303)
    return RedirectResponse(target, status_code=303)


# --- the public waitlist --------------------------------------------------------------------


@router.get("/p/{slug}/waitlist")
def waitlist_page(request: Request, ref: str = "", pctx: PortalContext = PORTAL) -> Response:
    """Join the waitlist; a referral link's click (cookie or ``bud_click``) or ``?ref=``
    says who referred you."""
    return pctx.render(
        "referrals/portal/waitlist.html",
        ref=normalise_code(ref) or "",
        click=_click_token(request) or "",
        email="",
        error=None,
        errors={},
        total=waitlist.waiting_count(pctx.session, pctx.program),
        open_program=referral_settings(pctx.program).mode == "open",
    )


@router.post("/p/{slug}/waitlist")
def waitlist_join(
    request: Request,
    email: str = Form("", max_length=320),
    ref: str = Form("", max_length=40),
    click: str = Form("", max_length=40),
    pctx: PortalContext = PORTAL,
) -> Response:
    try:
        with savepoint(pctx.session):
            result = waitlist.join_waitlist(
                pctx.session,
                pctx.program,
                email,
                referral_code=ref or None,
                click_token=click or request.cookies.get(CLICK_COOKIE),
                locale=pctx.locale,
                ip=_client_ip(request),
            )
    except BuddingError as exc:
        error: str | None = None
        errors: dict[str, str] = {}
        if "email" in exc.fields and exc.code == "validation_failed":  # under the input
            errors["email"] = pctx.translate(N_("Enter a valid e-mail address."))
        elif exc.code == "already_member":
            error = N_("You are already a member. Sign in instead.")
        elif exc.code == "waitlist_closed":
            error = N_("This program has no waitlist: you can join directly.")
        elif "referral_code" in exc.fields:
            error = N_("This referral code does not exist.")
        else:
            error = N_("We could not accept this signup.")
        return pctx.render(
            "referrals/portal/waitlist.html",
            status_code=exc.status,
            ref=ref,
            click=click,
            email=email,
            error=error,
            errors=errors,
            total=waitlist.waiting_count(pctx.session, pctx.program),
            open_program=False,
        )
    if not result.created:
        # Say nothing about someone else's place: the status link goes by e-mail.
        return pctx.render("referrals/portal/waitlist_sent.html", email=result.info.email)
    token = waitlist.status_token(result.entry)
    return RedirectResponse(f"{pctx.base_path}/waitlist/me?t={quote(token)}&new=1", status_code=303)


@router.get("/p/{slug}/waitlist/me")
def waitlist_me(
    t: str = Query("", max_length=100), new: int = 0, pctx: PortalContext = PORTAL
) -> Response:
    """A person's place, link and history (the link in their e-mails)."""
    entry = waitlist.entry_by_token(pctx.session, pctx.program, t)
    info = waitlist.entry_info(pctx.session, pctx.program, entry)
    return pctx.render(
        "referrals/portal/waitlist_me.html",
        info=info,
        token=t,
        new=bool(new),
        changes=list(reversed(waitlist.history(pctx.session, pctx.program, entry)))[:20],
        reasons=WAITLIST_REASONS,
        invite_link=(
            f"{pctx.base_path}/join/{info.invite_code}"
            if info.invite_code and info.status == "released"
            else None
        ),
    )


@router.get("/p/{slug}/waitlist/confirm")
def waitlist_confirm_page(
    t: str = Query("", max_length=100), pctx: PortalContext = PORTAL
) -> Response:
    """The confirmation link shows a button; a mail scanner opening it confirms nothing."""
    entry = waitlist.entry_by_token(pctx.session, pctx.program, t)
    return pctx.render(
        "referrals/portal/waitlist_confirm.html",
        token=t,
        email=entry.email,
        confirmed=entry.confirmed_at is not None,
    )


@router.post("/p/{slug}/waitlist/confirm")
def waitlist_confirm(t: str = Form("", max_length=100), pctx: PortalContext = PORTAL) -> Response:
    entry = waitlist.entry_by_token(pctx.session, pctx.program, t)
    waitlist.confirm(pctx.session, pctx.program, entry)
    return RedirectResponse(f"{pctx.base_path}/waitlist/me?t={quote(t)}", status_code=303)


# --- admin: overview and settings ------------------------------------------------------------


def _settings_form(values: dict[str, str]) -> dict[str, Any]:
    """Form fields to settings values ('' means unset for optional numbers)."""
    out: dict[str, Any] = {}
    for name, info in ReferralSettings.model_fields.items():
        if name not in values and info.annotation is not bool:
            continue
        raw = values.get(name, "")
        if info.annotation is bool:
            out[name] = raw in ("on", "true", "1")
        elif name in ("code_expiry_days", "conversion_condition") and raw.strip() == "":
            out[name] = None
        else:
            out[name] = raw.strip()
    return out


def _typed_settings(saved: ReferralSettings, values: dict[str, str]) -> dict[str, Any]:
    """The settings form's values as typed, for showing the form again: the saved value of
    a field the form did not send; an unticked box is off."""
    typed: dict[str, Any] = saved.model_dump()
    for name, info in ReferralSettings.model_fields.items():
        if info.annotation is bool:
            typed[name] = values.get(name, "") in ("on", "true", "1")
        elif name in values:
            typed[name] = values[name]
    return typed


def _overview_context(ctx: StaffContext, program: Any) -> dict[str, Any]:
    session = ctx.session
    sizes = tree.generation_sizes(session, program)
    refs = attribution.list_referrals(session, program, limit=20)
    people = members.get_members_by_ids(
        session, [r.referrer_id for r in refs] + [r.referee_id for r in refs]
    )
    edges = attribution.referral_edges(session, program)
    channels = click_counts(session, program)
    chart = {
        "type": "bar",
        "x": [str(g) for g in sizes],
        "series": [{"name": gettext("Members"), "data": list(sizes.values())}],
    }
    return {
        "program": program,
        "settings": referral_settings(program),
        "event_types": sorted(event_types(session, program.id)),
        "sizes": sizes,
        "chart": chart,
        "recent": refs,
        "people": people,
        "referrals_total": len(edges),
        "converted_total": sum(1 for e in edges if e.converted_at is not None),
        "clicks_total": count_clicks(session, program),
        "channels": sorted(channels.items(), key=lambda kv: -kv[1]),
        "invites": invites.invite_counts(session, program),
        "waitlist": waitlist.waitlist_counts(session, program),
        "held": len(attribution.list_referrals(session, program, status="held", limit=1000)),
    }


@router.get("/admin/{slug}/referrals")
def referrals_overview(
    request: Request, slug: str, saved: int = 0, ctx: StaffContext = STAFF
) -> Response:
    program = ctx.program(slug)
    return ctx.render(
        request,
        "referrals/admin/overview.html",
        flash=gettext("Settings saved.") if saved else None,
        errors={},
        **_overview_context(ctx, program),
    )


@router.post("/admin/{slug}/referrals/settings")
async def referrals_settings(request: Request, slug: str, ctx: StaffContext = STAFF) -> Response:
    form = await request.form()
    values = {k: str(v) for k, v in form.items() if k != "csrf_token"}
    return await anyio.to_thread.run_sync(_save_settings, request, slug, ctx, values)


def _save_settings(
    request: Request, slug: str, ctx: StaffContext, values: dict[str, str]
) -> Response:
    ctx.require_manage()
    program = ctx.program(slug)
    try:
        with ctx.session.begin_nested():
            update_referral_settings(ctx.session, program, _settings_form(values))
    except ValidationFailed as exc:
        # Each reason under its field, and the form as it was typed (not the saved
        # settings), like the other dashboard forms.
        context = _overview_context(ctx, program)
        context["settings"] = _typed_settings(context["settings"], values)
        return ctx.render(
            request,
            "referrals/admin/overview.html",
            status_code=422,
            flash=gettext("The settings were not saved. Check the fields below.")
            if exc.fields
            else exc.message,
            flash_kind="error",
            errors=field_messages(exc),
            **context,
        )
    return RedirectResponse(f"/admin/{slug}/referrals?saved=1", status_code=303)


# --- admin: invites -------------------------------------------------------------------------


@router.get("/admin/{slug}/invites")
def invites_page(
    request: Request,
    slug: str,
    member: str = Query(""),  # no cap: one too long is "No member …" on the page
    status: str = Query("", max_length=20),
    issued: str = Query("", max_length=2000),
    ctx: StaffContext = STAFF,
) -> Response:
    program = ctx.program(slug)
    who = members.get_member_or_none(ctx.session, program.id, member) if member else None
    error = None
    if member and who is None:
        error = gettext("No member %(member)s.", member=member)
    rows = (
        invites.list_invites(
            ctx.session,
            program,
            member=who,
            status=status if status in INVITE_STATUSES else None,
            limit=200,
        )
        if not error
        else []
    )
    return ctx.render(
        request,
        "referrals/admin/invites.html",
        program=program,
        rows=rows,
        member=member,
        status=status,
        statuses=INVITE_STATUSES,
        counts=invites.invite_counts(ctx.session, program),
        issued=[c for c in issued.split(",") if c],
        flash=error,
        flash_kind="error" if error else "ok",
        format_code=format_code,
    )


ISSUE_FIELDS = ("count", "member", "uses", "note")  # the inputs of the invites page's form


def _whole_number(text: str, name: str) -> int:
    """A form field that must hold a whole number of 1 or more, or a field error.

    The route takes the field without a length cap (a cap answers a bare 422 page, not
    the form): a number of more than nine digits is over every limit, and is not read.
    """
    # ASCII digits only: "²".isdigit() is true, and int("²") fails.
    digits = text.strip()
    number = digits.lstrip("0") if digits.isascii() and digits.isdigit() else ""
    if len(number) > 9:
        raise ValidationFailed(
            f"{name}: {number[:20]}… is too large", fields={name: Reason(N_("is too large"))}
        )
    if not number:  # not a number, or 0
        raise ValidationFailed(
            f"{name}: {text[:20]!r} is not a whole number of 1 or more",
            fields={name: Reason(N_("must be a whole number of 1 or more"))},
        )
    return int(number)


def _short_text(text: str, name: str, limit: int) -> str:
    """A form field of at most ``limit`` characters, or a field error (the route takes
    it without a length cap, which would answer a bare 422 page instead of the form)."""
    if len(text) > limit:
        raise ValidationFailed(
            f"{name}: must be at most {limit} characters",
            fields={name: Reason(N_("must be at most %(limit)s characters"), limit=limit)},
        )
    return text


@router.post("/admin/{slug}/invites")
def invites_issue(
    request: Request,
    slug: str,
    count: str = Form("1"),
    member: str = Form(""),
    uses: str = Form(""),
    note: str = Form(""),
    ctx: StaffContext = STAFF,
) -> Response:
    ctx.require_write()
    program = ctx.program(slug)
    try:
        how_many = _whole_number(count, "count")
        uses_each = _whole_number(uses, "uses") if uses.strip() else None  # empty: the default
        note = _short_text(note, "note", 200)
        member = _short_text(member, "member", 200)
        with ctx.session.begin_nested():
            if member:
                who = members.get_member(ctx.session, program.id, member)
                codes = invites.issue_invites(ctx.session, program, who, how_many, note=note)
            else:
                codes = invites.issue_staff_invites(
                    ctx.session, program, how_many, uses=uses_each, note=note
                )
    except BuddingError as exc:
        errors = field_messages(exc)
        if "external_id" in errors:  # the member named in the form: get_member's field
            errors.setdefault("member", errors.pop("external_id"))
        return ctx.render(
            request,
            "referrals/admin/invites.html",
            status_code=exc.status,
            program=program,
            rows=invites.list_invites(ctx.session, program, limit=200),
            member=member,
            status="",
            statuses=INVITE_STATUSES,
            counts=invites.invite_counts(ctx.session, program),
            issued=[],
            errors=errors,
            form={"count": count, "uses": uses, "note": note},
            flash=refusal_banner(
                errors, ISSUE_FIELDS, N_("No codes were issued. Check the fields below.")
            ),
            flash_kind="error",
            format_code=format_code,
        )
    listed = ",".join(c.code for c in codes[:50])
    return RedirectResponse(f"/admin/{slug}/invites?issued={listed}", status_code=303)


@router.post("/admin/{slug}/invites/{code}/revoke")
def invites_revoke(
    slug: str, code: str, reason: str = Form("", max_length=200), ctx: StaffContext = STAFF
) -> Response:
    ctx.require_write()
    program = ctx.program(slug)
    invites.revoke_invite(ctx.session, program, code, reason or "revoked by staff")
    return RedirectResponse(f"/admin/{slug}/invites", status_code=303)


# --- admin: waitlist ------------------------------------------------------------------------


@router.get("/admin/{slug}/waitlist")
def waitlist_admin(
    request: Request,
    slug: str,
    status: str = Query("waiting", max_length=20),
    offset: int = Query(0, ge=0),
    released: int = Query(-1),
    ctx: StaffContext = STAFF,
) -> Response:
    program = ctx.program(slug)
    if status not in ("waiting", "released", "joined", "removed"):
        status = "waiting"
    flash = (
        gettext("Released %(n)s people; their invitations are on the way.", n=released)
        if released >= 0
        else None
    )
    return _waitlist_page(request, ctx, program, status, offset, flash=flash)


def _waitlist_page(
    request: Request,
    ctx: StaffContext,
    program: Any,
    status: str = "waiting",
    offset: int = 0,
    *,
    flash: str | None = None,
    flash_kind: str = "ok",
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    rows = waitlist.list_entries(ctx.session, program, status=status, limit=100, offset=offset)
    return ctx.render(
        request,
        "referrals/admin/waitlist.html",
        status_code=status_code,
        program=program,
        rows=rows,
        status=status,
        offset=offset,
        counts=waitlist.waitlist_counts(ctx.session, program),
        settings=referral_settings(program),
        flash=flash,
        flash_kind=flash_kind,
        errors=errors or {},
        form=form or {},
    )


@router.get("/admin/{slug}/waitlist/entry/{entry_id}")
def waitlist_entry_history(
    request: Request, slug: str, entry_id: IntRowId, ctx: StaffContext = STAFF
) -> Response:
    """One entry's position history (an htmx fragment)."""
    program = ctx.program(slug)
    from budding.referrals.models import WaitlistEntry

    entry = ctx.session.get(WaitlistEntry, entry_id)
    if entry is None or entry.program_id != program.id:
        raise NotFound("no such waitlist entry")
    return render(
        request,
        "referrals/admin/_history.html",
        changes=waitlist.history(ctx.session, program, entry),
        reasons=WAITLIST_REASONS,
    )


@router.post("/admin/{slug}/waitlist/release")
def waitlist_release(
    request: Request, slug: str, count: str = Form(""), ctx: StaffContext = STAFF
) -> Response:
    ctx.require_write()
    program = ctx.program(slug)
    try:
        with ctx.session.begin_nested():
            done = waitlist.release(ctx.session, program, _whole_number(count, "count"))
    except BuddingError as exc:
        errors = field_messages(exc)
        return _waitlist_page(
            request,
            ctx,
            program,
            flash=refusal_banner(
                errors, ("count",), N_("Nobody was released. Check the field below.")
            ),
            flash_kind="error",
            status_code=exc.status,
            errors=errors,
            form={"count": count},
        )
    return RedirectResponse(f"/admin/{slug}/waitlist?released={len(done)}", status_code=303)


# --- admin: the fission tree -----------------------------------------------------------------


@router.get("/admin/{slug}/fission-tree")
def tree_page(request: Request, slug: str, ctx: StaffContext = STAFF) -> Response:
    program = ctx.program(slug)
    sizes = tree.generation_sizes(ctx.session, program)
    forest = tree.Forest.load(ctx.session, program)
    chart = {
        "type": "bar",
        "x": [str(g) for g in sizes],
        "series": [{"name": gettext("Members"), "data": list(sizes.values())}],
    }
    return ctx.render(
        request,
        "referrals/admin/tree.html",
        program=program,
        chart=chart,
        sizes=sizes,
        roots=len(forest.roots()),
        nodes=len(forest.parent) + len(forest.roots()),
        largest=max(forest.sizes().values(), default=0),
    )


def _node_json(node: tree.TreeNode) -> dict[str, Any]:
    out = node.as_dict()
    out["id"] = node.external_id
    return out


@router.get("/admin/{slug}/fission-tree/children.json")
def tree_children(
    slug: str,
    node: str = Query("", max_length=200),
    limit: int = Query(200, ge=1, le=2000),
    offset: int = Query(0, ge=0),
    ctx: StaffContext = STAFF,
) -> Response:
    """Children of a node (or the forest's roots) for lazy expansion, largest first, a page
    (``offset``, ``limit``) at a time: a forest of hundreds of roots shows its largest trees
    first and the rest on demand."""
    program = ctx.program(slug)
    member = members.get_member(ctx.session, program.id, node) if node else None
    nodes, total = tree.children_of(ctx.session, program, member, limit=limit, offset=offset)
    return JSONResponse({"nodes": [_node_json(n) for n in nodes], "total": total, "offset": offset})


@router.get("/admin/{slug}/fission-tree/search.json")
def tree_search(
    slug: str, q: str = Query("", max_length=200), ctx: StaffContext = STAFF
) -> Response:
    """Members matching ``q`` with their chain of referrers from the root (to expand to):
    ``path`` (external ids) and ``nodes`` (each one's node, so the view can show a member
    whatever page of its parent's children it is on)."""
    program = ctx.program(slug)
    found, _ = (
        members.search_members(ctx.session, program.id, query=q, limit=10) if q else ([], None)
    )
    results = []
    for m in found:
        path = tree.path_to(ctx.session, program, m)
        results.append(
            {
                "external_id": m.external_id,
                "name": m.name,
                "path": [n.external_id for n in path],
                "nodes": [_node_json(n) for n in path],
                "descendants": path[-1].descendants if path else 0,
            }
        )
    return JSONResponse({"results": results})


@router.get("/admin/{slug}/fission-tree/subtree.json")
def tree_subtree(
    slug: str,
    root: str = Query("", max_length=200),
    depth: int = Query(2, ge=0, le=tree.MAX_DEPTH),
    ctx: StaffContext = STAFF,
) -> Response:
    program = ctx.program(slug)
    member = members.get_member(ctx.session, program.id, root) if root else None
    sub = tree.subtree(ctx.session, program, member, depth=depth, max_nodes=3000)
    return JSONResponse(
        {
            "nodes": [_node_json(n) for n in sub.nodes],
            "generation_sizes": sub.generation_sizes,
            "truncated": sub.truncated,
        }
    )
