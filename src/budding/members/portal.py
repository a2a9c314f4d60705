"""The member portal (``/p/{slug}/…``): sign-in by magic link, profile, language.

Other capabilities' member pages use the same context:

    from budding.members.portal import MEMBER, PortalContext

    @router.get("/p/{slug}/invites")
    def invites(pctx: PortalContext = MEMBER) -> Response:
        return pctx.render("referrals/portal/invites.html", invites=...)

``PORTAL`` gives the context whether or not a member is signed in; ``MEMBER``
sends a visitor who is not signed in to the sign-in page first. Both check the
member CSRF token on POST (forms carry ``<input type="hidden" name="csrf_token"
value="{{ csrf_token }}">``; ``pctx.render`` passes ``csrf_token``, ``program``
and ``member`` to every template) and pick the page's language: the member's
setting (or, before sign-in, the language chosen on the page), then
Accept-Language, then the program's default.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, BackgroundTasks, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from budding.core import i18n
from budding.core.auth import (
    CSRF_FIELD,
    CSRF_HEADER,
    DB,
    MEMBER_COOKIE,
    LoginRequired,
    require_program,
)
from budding.core.config import get_settings
from budding.core.errors import NotFound, PermissionDenied, ValidationFailed, field
from budding.core.i18n import LOCALE_COOKIE, N_, gettext
from budding.core.mail import Mail, MailError, mailbox, send_mail
from budding.core.security import (
    constant_time_equal,
    keyed_hash,
    new_token,
    safe_local_path,
    sign,
    unsign,
)
from budding.core.templating import environment, render
from budding.members import service
from budding.members.models import Member
from budding.members.schemas import normalise_email
from budding.programs.models import Program

log = logging.getLogger("budding.members")
router = APIRouter(include_in_schema=False)

MEMBER_SESSION_DAYS = 30  # the signed member cookie's lifetime (core.auth checks the same)
MEMBER_SESSION_SALT = "member-session"  # core.auth's salt: its helpers read these cookies too
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

DONE_MESSAGES = {"saved": N_("Your profile was saved.")}

# The profile form's field errors, in the member's language: the kind of error pydantic
# found (``ValidationFailed.kinds``) picks the message and its context fills the limit
# (``max_length``); any other kind takes the field's "*" message. pydantic's own words are
# English ("String should have at most 200 characters"): members never see them.
PROFILE_ERRORS: dict[str, dict[str, str]] = {
    "name": {
        "string_too_long": N_("Your name can be at most %(max_length)s characters long."),
        "value_error": N_("Your name cannot contain line breaks or tabs."),
        "*": N_("Check your name."),
    },
    "locale": {"*": N_("Choose a language from the list.")},
}


@dataclass
class PortalContext:
    request: Request
    session: Session
    program: Program
    member: Member | None
    locale: str
    csrf_token: str  # empty when no member is signed in

    @property
    def base_path(self) -> str:
        return f"/p/{self.program.slug}"

    def translate(self, msgid: str, **variables: Any) -> str:
        """``msgid`` in the member's language (a field's error message, for one)."""
        with i18n.use_locale(self.locale):
            return gettext(msgid, **variables)

    def render(self, name: str, *, status_code: int = 200, **context: Any) -> Response:
        """A portal page in the member's language. ``flash`` is a msgid, translated here."""
        with i18n.use_locale(self.locale):
            flash = context.get("flash")
            if flash:
                context["flash"] = gettext(flash)
            response: Response = render(
                self.request,
                name,
                status_code=status_code,
                program=self.program,
                member=self.member,
                csrf_token=self.csrf_token,
                **context,
            )
        response.headers["Cache-Control"] = "no-store"
        response.headers["Vary"] = "Cookie, Accept-Language"
        return response


def member_csrf_token(member_cookie: str) -> str:
    """The CSRF token of a member session: a keyed hash of its signed cookie, so it needs no
    storage and changes with every sign-in."""
    return keyed_hash(member_cookie, "member-csrf")


def member_session_cookie(program_id: int, member: Member) -> str:
    """The signed cookie of a new portal session of ``member``.

    It carries the member's session version: signing out (or erasure) increments the
    version stored on the member, so every cookie issued before, copies included, stops
    working at once. A cookie without a version (``core.auth.member_cookie_value``) counts
    as version 0: valid only until the member's first sign-out."""
    # "n": a nonce, so that two sign-ins in the same second get different cookies (and
    # different CSRF tokens).
    claims = {"p": program_id, "m": member.id, "v": member.session_version, "n": new_token(8)}
    return sign(claims, MEMBER_SESSION_SALT)


def _session_claims(request: Request, program: Program) -> tuple[int, int] | None:
    """``(member id, session version)`` of the request's member cookie for ``program``."""
    raw = request.cookies.get(MEMBER_COOKIE)
    if not raw:
        return None
    data = unsign(raw, MEMBER_SESSION_SALT, max_age=MEMBER_SESSION_DAYS * 86400)
    if not isinstance(data, dict) or data.get("p") != program.id:
        return None
    member_id, version = data.get("m"), data.get("v", 0)
    if not isinstance(member_id, int) or not isinstance(version, int):
        return None
    return member_id, version


def _load(request: Request, slug: str, session: Session) -> PortalContext:
    program = require_program(session, slug)
    member: Member | None = None
    claims = _session_claims(request, program)
    if claims is not None:
        member_id, version = claims
        try:
            found = service.get_member_by_id(session, member_id)
        except NotFound:
            found = None
        if (
            found is not None
            and found.program_id == program.id
            and found.erased_at is None
            and found.session_version == version  # not signed out since
        ):
            member = found
    chosen = member.locale if member is not None and member.locale else None
    chosen = chosen or request.cookies.get(LOCALE_COOKIE)
    locale = i18n.negotiate(chosen, request.headers.get("accept-language"), program.default_locale)
    raw_cookie = request.cookies.get(MEMBER_COOKIE, "")
    csrf = member_csrf_token(raw_cookie) if member is not None else ""
    return PortalContext(request, session, program, member, locale, csrf)


async def portal_context(request: Request, slug: str, session: Session = DB) -> PortalContext:
    pctx = await run_in_threadpool(_load, request, slug, session)
    if request.method not in SAFE_METHODS and pctx.member is not None:
        presented = request.headers.get(CSRF_HEADER)
        if presented is None:
            value = (await request.form()).get(CSRF_FIELD)
            presented = value if isinstance(value, str) else None
        if not presented or not constant_time_equal(presented, pctx.csrf_token):
            raise PermissionDenied("the form expired; reload the page and try again", code="csrf")
    return pctx


PORTAL = Depends(portal_context)


def member_context(pctx: PortalContext = PORTAL) -> PortalContext:
    if pctx.member is None:
        raise LoginRequired(pctx.request.url.path, login_path=f"{pctx.base_path}/sign-in")
    return pctx


MEMBER = Depends(member_context)


def _next_in_portal(pctx: PortalContext, value: str | None) -> str:
    """A ``next=`` target inside this program's portal, else the profile."""
    default = f"{pctx.base_path}/profile"
    target = safe_local_path(value, default)
    return target if target.startswith(pctx.base_path + "/") else default


def _member_cookie_options(pctx: PortalContext) -> dict[str, Any]:
    # Scoped to the program's portal: signing in to one program leaves another's session be.
    return {
        "path": pctx.base_path,
        "httponly": True,
        "samesite": "lax",
        "secure": get_settings().secure_cookies,
    }


# --- magic-link e-mail --------------------------------------------------------------------


def magic_link_mail(program: Program, member: Member, url: str, locale: str) -> Mail:
    """The sign-in e-mail, in ``locale``: plain text and the same words as HTML."""
    minutes = get_settings().magic_link_minutes
    with i18n.use_locale(locale):
        subject = gettext("Your sign-in link for %(program)s", program=program.name)
        greeting = (
            gettext("Hello %(name)s,", name=member.name) if member.name else gettext("Hello,")
        )
        text = "\n\n".join(
            [
                greeting,
                gettext(
                    "Open this link to sign in to %(program)s. It works once, "
                    "within %(minutes)s minutes:",
                    program=program.name,
                    minutes=minutes,
                ),
                url,
                gettext("If you did not ask to sign in, you can ignore this e-mail."),
            ]
        )
        html = (
            environment()
            .get_template("members/email/magic_link.html")
            .render(
                program=program,
                member=member,
                url=url,
                minutes=minutes,
                subject=subject,
                lang=locale.replace("_", "-"),
            )
        )
    return Mail(to=mailbox(member.email or "", member.name), subject=subject, text=text, html=html)


def deliver(mail: Mail, what: str) -> None:
    """Send after the response (the link is committed by then); a failure is logged for the
    operator, never shown: the page must not tell who is a member.

    A request background task rather than a durable job on purpose: a job's payload would
    keep a live sign-in token in the jobs table, and a lost e-mail costs the member one more
    press of the button within a link's 15-minute life."""
    try:
        send_mail(mail)
    except MailError as exc:
        log.error("could not send %s: %s", what, exc.message)


# --- routes -------------------------------------------------------------------------------


@router.get("/p/{slug}")
def portal_home(pctx: PortalContext = PORTAL) -> Response:
    target = "/profile" if pctx.member is not None else "/sign-in"
    return RedirectResponse(pctx.base_path + target, status_code=303)


@router.get("/p/{slug}/sign-in")
def sign_in_form(next: str = "", pctx: PortalContext = PORTAL) -> Response:
    if pctx.member is not None:
        return RedirectResponse(_next_in_portal(pctx, next), status_code=303)
    return pctx.render(
        "members/portal/sign_in.html", email="", errors={}, next_url=_next_in_portal(pctx, next)
    )


@router.post("/p/{slug}/sign-in")
def sign_in(
    background: BackgroundTasks,
    email: str = Form("", max_length=320),
    next: str = Form("", max_length=2000),
    pctx: PortalContext = PORTAL,
) -> Response:
    next_url = _next_in_portal(pctx, next)
    try:
        address = normalise_email(email)
    except ValueError:
        return pctx.render(
            "members/portal/sign_in.html",
            status_code=422,
            email=email,
            next_url=next_url,
            errors={"email": pctx.translate(N_("Enter a valid e-mail address."))},
        )
    issued = service.issue_magic_link(pctx.session, pctx.program, address)
    if issued is not None:
        url = f"{get_settings().base_url}{pctx.base_path}/auth/{issued.token}"
        if next_url != f"{pctx.base_path}/profile":
            url += "?next=" + quote(next_url, safe="/")
        mail = magic_link_mail(
            pctx.program, issued.member, url, issued.member.locale or pctx.locale
        )
        background.add_task(deliver, mail, f"a sign-in link to member {issued.member.id}")
    # The same answer whether or not a member has this address.
    return pctx.render(
        "members/portal/check_inbox.html",
        email=address,
        link_minutes=get_settings().magic_link_minutes,
    )


def _link_page(pctx: PortalContext, token: str, next_url: str, valid: bool) -> Response:
    response = pctx.render(
        "members/portal/confirm.html",
        status_code=200 if valid else 410,
        valid=valid,
        token=token,
        next_url=next_url,
    )
    response.headers["Referrer-Policy"] = "no-referrer"  # the token is in this page's URL
    return response


@router.get("/p/{slug}/auth/{token}")
def confirm_link(token: str, next: str = "", pctx: PortalContext = PORTAL) -> Response:
    """Shows a button; never consumes the link (mail scanners open links before people do)."""
    valid = service.peek_magic_link(pctx.session, pctx.program, token)
    return _link_page(pctx, token, _next_in_portal(pctx, next), valid)


@router.post("/p/{slug}/auth/{token}")
def redeem_link(
    token: str, next: str = Form("", max_length=2000), pctx: PortalContext = PORTAL
) -> Response:
    member = service.redeem_magic_link(pctx.session, pctx.program, token)
    if member is None:
        return _link_page(pctx, token, _next_in_portal(pctx, next), valid=False)
    response = RedirectResponse(_next_in_portal(pctx, next), status_code=303)
    response.headers["Referrer-Policy"] = "no-referrer"
    response.set_cookie(
        MEMBER_COOKIE,
        member_session_cookie(pctx.program.id, member),
        max_age=MEMBER_SESSION_DAYS * 86400,
        **_member_cookie_options(pctx),
    )
    return response


@router.get("/p/{slug}/profile")
def profile(done: str | None = None, pctx: PortalContext = MEMBER) -> Response:
    return pctx.render(
        "members/portal/profile.html", errors={}, form=None, flash=DONE_MESSAGES.get(done or "")
    )


def profile_field_errors(exc: ValidationFailed, pctx: PortalContext) -> dict[str, str]:
    """The profile form's messages for ``exc``, per field of the form, in the member's
    language."""
    errors: dict[str, str] = {}
    for name in exc.fields:
        messages = PROFILE_ERRORS.get(name)
        if messages is None:
            continue  # not a field of the form: the flash still says it was not saved
        kind, context = exc.kinds.get(name, ("", {}))
        if kind in messages:
            limits = {k: v for k, v in context.items() if isinstance(v, int | str)}
            errors[name] = pctx.translate(messages[kind], **limits)
        else:
            errors[name] = pctx.translate(messages["*"])
    return errors


@router.post("/p/{slug}/profile")
def save_profile(
    # No length cap here: the member schema's limit names a too-long name under its field,
    # in the member's language (a cap here would answer a bare 422 page); the request's
    # size limit bounds it.
    name: str = Form(""),
    locale: str = Form("", max_length=16),
    pctx: PortalContext = MEMBER,
) -> Response:
    member = pctx.member
    assert member is not None  # MEMBER guarantees it
    try:
        with pctx.session.begin_nested():
            service.upsert_member(
                pctx.session,
                pctx.program,
                {"external_id": member.external_id, "name": name, "locale": locale or None},
            )
    except ValidationFailed as exc:
        return pctx.render(
            "members/portal/profile.html",
            status_code=422,
            errors=profile_field_errors(exc, pctx),
            form={"name": name, "locale": locale},
            flash=N_("Your profile was not saved. Check the fields below."),
            flash_kind="error",
        )
    return RedirectResponse(f"{pctx.base_path}/profile?done=saved", status_code=303)


@router.post("/p/{slug}/language")
def switch_language(
    locale: str = Form(..., max_length=16),
    next: str = Form("", max_length=2000),
    pctx: PortalContext = PORTAL,
) -> Response:
    """Remember the language: on the member when signed in, else in a cookie."""
    chosen = i18n.normalise_locale(locale)
    if chosen is None:
        raise field("locale", N_("supported locales are en, ko, es, id, zh-Hans"))
    response = RedirectResponse(_next_in_portal(pctx, next), status_code=303)
    if pctx.member is not None:
        service.set_member_locale(pctx.session, pctx.member, chosen)
    response.set_cookie(
        LOCALE_COOKIE,
        chosen,
        max_age=365 * 86400,
        path="/p",
        httponly=True,
        samesite="lax",
        secure=get_settings().secure_cookies,
    )
    return response


@router.post("/p/{slug}/sign-out")
def sign_out(pctx: PortalContext = MEMBER) -> Response:
    """Ends every portal session of the member (on all devices), not just this cookie:
    a copied cookie must not outlive signing out."""
    assert pctx.member is not None  # MEMBER guarantees it
    service.end_member_sessions(pctx.session, pctx.member)
    response = RedirectResponse(f"{pctx.base_path}/sign-in", status_code=303)
    response.delete_cookie(MEMBER_COOKIE, **_member_cookie_options(pctx))
    return response
