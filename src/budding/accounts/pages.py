"""Staff pages: sign in and out, a program's API keys, staff users.

Routes only translate HTTP: they read the form, call ``accounts.service`` and
render. Writes check the role through ``StaffContext`` (analysts read only).
"""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from budding.accounts import service
from budding.accounts.models import ROLE_LABELS, ROLES
from budding.core.auth import DB, SESSION_COOKIE, STAFF, StaffContext, session_cookie_value
from budding.core.config import get_settings
from budding.core.errors import Conflict, RateLimited, ValidationFailed, field_messages
from budding.core.i18n import N_, gettext
from budding.core.routing import IntRowId
from budding.core.security import constant_time_equal, new_token, safe_local_path
from budding.core.templating import render

router = APIRouter(include_in_schema=False)
ADMIN_NAV = [(90, N_("API keys"), "/api-keys")]

# Login form CSRF: a random value in a cookie, repeated in the form (double submit). It stops
# a foreign site from signing a staff member's browser into the foreign site's account.
LOGIN_FORM_COOKIE = "budding_login_form"
LOGIN_PATH = "/admin/login"

# Messages after a redirect (Post/Redirect/Get), chosen by a fixed key, never by free text.
DONE_MESSAGES = {
    "key-revoked": N_("The API key was revoked."),
    "user-created": N_("The staff user was created."),
    "user-deactivated": N_("The staff user was deactivated and signed out."),
    "user-activated": N_("The staff user was reactivated."),
}


def _done_message(done: str | None) -> str | None:
    msgid = DONE_MESSAGES.get(done or "")
    return gettext(msgid) if msgid else None


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


# --- sign in and out ----------------------------------------------------------------------


def _login_page(
    request: Request,
    *,
    form_token: str,
    next_url: str,
    email: str = "",
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    response: Response = render(
        request,
        "accounts/login.html",
        status_code=status_code,
        form_token=form_token,
        next_url=next_url,
        email=email,
        error=error,
    )
    response.headers["Cache-Control"] = "no-store"
    response.set_cookie(
        LOGIN_FORM_COOKIE,
        form_token,
        max_age=86400,
        path=LOGIN_PATH,
        httponly=True,
        samesite="lax",
        secure=get_settings().secure_cookies,
    )
    return response


@router.get(LOGIN_PATH)
def login_form(request: Request, next: str = "") -> Response:
    token = request.cookies.get(LOGIN_FORM_COOKIE) or new_token(24)
    return _login_page(request, form_token=token, next_url=safe_local_path(next, "/admin"))


@router.post(LOGIN_PATH)
def login(
    request: Request,
    email: str = Form("", max_length=320),
    password: str = Form("", max_length=1000),
    next: str = Form("", max_length=2000),
    form_token: str = Form(""),
    session: Session = DB,
) -> Response:
    next_url = safe_local_path(next, "/admin")
    cookie_token = request.cookies.get(LOGIN_FORM_COOKIE, "")
    if not form_token or not cookie_token or not constant_time_equal(form_token, cookie_token):
        return _login_page(
            request,
            form_token=cookie_token or new_token(24),
            next_url=next_url,
            email=email,
            error=gettext("This form expired. Please sign in again."),
            status_code=403,
        )
    try:
        result = service.login(session, email=email, password=password, ip=_client_ip(request))
    except RateLimited as exc:
        response = _login_page(
            request,
            form_token=form_token,
            next_url=next_url,
            email=email,
            error=gettext(
                "Too many failed sign-ins. Try again in %(minutes)s minutes.",
                minutes=max(1, exc.retry_after // 60),
            ),
            status_code=429,
        )
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    if result is None:
        # One message whether the e-mail is unknown, the password wrong or the user inactive.
        return _login_page(
            request,
            form_token=form_token,
            next_url=next_url,
            email=email,
            error=gettext("Wrong e-mail or password."),
            status_code=401,
        )
    settings = get_settings()
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        session_cookie_value(result.token),
        max_age=settings.session_days * 86400,
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
    )
    response.delete_cookie(LOGIN_FORM_COOKIE, path=LOGIN_PATH)
    return response


@router.post("/admin/logout")
def logout(ctx: StaffContext = STAFF) -> Response:
    service.end_session(ctx.session, ctx.staff_session)
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, secure=get_settings().secure_cookies
    )
    return response


# --- staff users --------------------------------------------------------------------------


def _users_page(
    request: Request,
    ctx: StaffContext,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    flash: str | None = None,
    status_code: int = 200,
) -> Response:
    return ctx.render(
        request,
        "accounts/users.html",
        status_code=status_code,
        users=service.list_users(ctx.session),
        roles=ROLES if ctx.user.role == "owner" else tuple(r for r in ROLES if r != "owner"),
        role_labels=ROLE_LABELS,
        form=form or {"role": "analyst"},
        errors=errors or {},
        flash=flash,
        flash_kind="error" if errors else "ok",
    )


@router.get("/admin/users")
def users(request: Request, done: str | None = None, ctx: StaffContext = STAFF) -> Response:
    return _users_page(request, ctx, flash=_done_message(done))


@router.post("/admin/users")
def create_user(
    request: Request,
    email: str = Form("", max_length=320),
    name: str = Form("", max_length=200),
    role: str = Form("analyst", max_length=16),
    password: str = Form("", max_length=1000),
    ctx: StaffContext = STAFF,
) -> Response:
    ctx.require_manage()
    try:
        with ctx.session.begin_nested():
            service.create_user(
                ctx.session, email=email, password=password, role=role, name=name, by=ctx.user
            )
    except (ValidationFailed, Conflict) as exc:
        return _users_page(
            request,
            ctx,
            form={"email": email, "name": name, "role": role},
            errors=field_messages(exc) or {"email": exc.message},
            flash=gettext("The staff user was not created. Check the fields below."),
            status_code=exc.status,
        )
    return RedirectResponse("/admin/users?done=user-created", status_code=303)


@router.post("/admin/users/{user_id}/deactivate")
def deactivate_user(user_id: IntRowId, ctx: StaffContext = STAFF) -> Response:
    ctx.require_manage()
    service.set_user_active(ctx.session, user_id, False, by=ctx.user)
    return RedirectResponse("/admin/users?done=user-deactivated", status_code=303)


@router.post("/admin/users/{user_id}/activate")
def activate_user(user_id: IntRowId, ctx: StaffContext = STAFF) -> Response:
    ctx.require_manage()
    service.set_user_active(ctx.session, user_id, True, by=ctx.user)
    return RedirectResponse("/admin/users?done=user-activated", status_code=303)


# --- API keys -----------------------------------------------------------------------------


def _keys_page(
    request: Request,
    ctx: StaffContext,
    slug: str,
    *,
    issued: service.IssuedKey | None = None,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    flash: str | None = None,
    status_code: int = 200,
) -> Response:
    program = ctx.program(slug)
    return ctx.render(
        request,
        "accounts/api_keys.html",
        program=program,
        status_code=status_code,
        keys=service.list_api_keys(ctx.session, program.id),
        key_roles=service.API_KEY_ROLES,
        role_labels=ROLE_LABELS,
        issued=issued,
        form=form or {"role": "admin"},
        errors=errors or {},
        flash=flash,
        flash_kind="error" if errors else "ok",
    )


@router.get("/admin/{slug}/api-keys")
def api_keys(
    request: Request, slug: str, done: str | None = None, ctx: StaffContext = STAFF
) -> Response:
    return _keys_page(request, ctx, slug, flash=_done_message(done))


@router.post("/admin/{slug}/api-keys")
def create_api_key(
    request: Request,
    slug: str,
    name: str = Form("", max_length=200),
    role: str = Form("admin", max_length=16),
    ctx: StaffContext = STAFF,
) -> Response:
    ctx.require_manage()
    program = ctx.program(slug)
    try:
        with ctx.session.begin_nested():
            issued = service.create_api_key(
                ctx.session, program_id=program.id, name=name, role=role
            )
    except ValidationFailed as exc:
        return _keys_page(
            request,
            ctx,
            slug,
            form={"name": name, "role": role},
            errors=field_messages(exc),
            flash=gettext("The API key was not created. Check the fields below."),
            status_code=exc.status,
        )
    # The secret is in this one response only: it is never stored and never redirected to.
    return _keys_page(request, ctx, slug, issued=issued, status_code=201)


@router.post("/admin/{slug}/api-keys/{prefix}/revoke")
def revoke_api_key(slug: str, prefix: str, ctx: StaffContext = STAFF) -> Response:
    ctx.require_manage()
    program = ctx.program(slug)
    service.revoke_api_key(ctx.session, program_id=program.id, prefix=prefix)
    return RedirectResponse(f"/admin/{program.slug}/api-keys?done=key-revoked", status_code=303)
