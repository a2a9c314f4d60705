"""Request dependencies: the unit of work, API-key and staff-session authentication, CSRF."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from budding.accounts import service as accounts
from budding.accounts.models import StaffSession, StaffUser
from budding.core.config import get_settings
from budding.core.db import unit_of_work
from budding.core.errors import NotFound, PermissionDenied, Unauthorized
from budding.core.security import constant_time_equal, sign, unsign
from budding.programs import service as programs
from budding.programs.models import Program

SESSION_COOKIE = "budding_session"
MEMBER_COOKIE = "budding_member"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


def db_session() -> Iterator[Session]:
    """The request's unit of work. Use as ``Depends(db_session, scope="function")`` so the
    commit happens before the response is sent: a failed commit is a 500, never a lost write."""
    with unit_of_work() as session:
        yield session


DB = Depends(db_session, scope="function")


@dataclass
class ApiContext:
    session: Session
    program: Program
    role: str

    def require_write(self) -> None:
        if not accounts.can_write(self.role):
            raise PermissionDenied("this API key is read-only", code="read_only_key")


def api_context(request: Request, session: Session = DB) -> ApiContext:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send 'Authorization: Bearer <API key>'", code="missing_api_key")
    key = accounts.authenticate_api_key(session, token.strip())
    accounts.touch_api_key(session, key)
    program = programs.get_program_by_id(session, key.program_id)
    return ApiContext(session=session, program=program, role=key.role)


API = Depends(api_context)


def writer_context(ctx: ApiContext = API) -> ApiContext:
    ctx.require_write()
    return ctx


API_WRITE = Depends(writer_context)


# --- staff pages -------------------------------------------------------------------------


class LoginRequired(Exception):
    """Raised by page dependencies; the web app turns it into a redirect to the login page."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


@dataclass
class StaffContext:
    session: Session
    user: StaffUser
    staff_session: StaffSession

    @property
    def csrf_token(self) -> str:
        return self.staff_session.csrf_token

    @property
    def can_write(self) -> bool:
        return accounts.can_write(self.user.role)

    @property
    def can_manage(self) -> bool:
        return accounts.can_manage(self.user.role)

    def require_write(self) -> None:
        if not self.can_write:
            raise PermissionDenied("your role is read-only", code="read_only_role")

    def require_manage(self) -> None:
        if not self.can_manage:
            raise PermissionDenied("only owners and admins can do this", code="admin_only")

    def program(self, slug: str) -> Program:
        return programs.get_program(self.session, slug)


def session_cookie_value(token: str) -> str:
    return sign(token, "staff-session")


async def staff_context(request: Request, session: Session = DB) -> StaffContext:
    raw = request.cookies.get(SESSION_COOKIE)
    token = (
        unsign(raw, "staff-session", max_age=get_settings().session_days * 86400) if raw else None
    )
    found = accounts.session_user(session, token) if isinstance(token, str) else None
    if found is None:
        raise LoginRequired(str(request.url.path))
    user, staff_session = found
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        presented = request.headers.get(CSRF_HEADER)
        if presented is None:
            form = await request.form()
            value = form.get(CSRF_FIELD)
            presented = value if isinstance(value, str) else None
        if not presented or not constant_time_equal(presented, staff_session.csrf_token):
            raise PermissionDenied("the form expired; reload the page and try again", code="csrf")
    return StaffContext(session=session, user=user, staff_session=staff_session)


STAFF = Depends(staff_context)


# --- member portal -----------------------------------------------------------------------


def member_cookie_value(program_id: int, member_id: int) -> str:
    return sign({"p": program_id, "m": member_id}, "member-session")


def member_id_from_cookie(request: Request, program: Program) -> int | None:
    raw = request.cookies.get(MEMBER_COOKIE)
    if not raw:
        return None
    data = unsign(raw, "member-session", max_age=30 * 86400)
    if not isinstance(data, dict) or data.get("p") != program.id:
        return None
    member_id = data.get("m")
    return member_id if isinstance(member_id, int) else None


def require_program(session: Session, slug: str) -> Program:
    try:
        return programs.get_program(session, slug)
    except NotFound:
        raise NotFound("no such program") from None
