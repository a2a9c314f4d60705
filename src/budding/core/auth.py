"""Request dependencies: the unit of work, API-key and staff-session authentication, CSRF."""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
from fastapi import Depends, Request, Response
from sqlalchemy.orm import Session

from budding.accounts import service as accounts
from budding.accounts.models import ROLE_LABELS, StaffSession, StaffUser
from budding.core.config import get_settings
from budding.core.db import get_engine, keeps_writes, session_factory
from budding.core.errors import NotFound, PermissionDenied, Unauthorized
from budding.core.security import constant_time_equal, sign, unsign
from budding.programs import service as programs
from budding.programs.models import Program

SESSION_COOKIE = "budding_session"
MEMBER_COOKIE = "budding_member"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


# Per event loop (each TestClient runs its own): how many requests may hold a
# database session at once. See ``db_session``.
_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)
THREAD_POOL_SIZE = 40  # Starlette's default for sync routes and dependencies


def _gate() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    gate = _gates.get(loop)
    if gate is None:
        engine = get_engine()
        if engine.dialect.name == "sqlite":
            # Every transaction starts with BEGIN IMMEDIATE: one writer. Server
            # processes (``--workers 2``) each admit one and queue on the writer lock
            # (core/db.py), so one process stores while the other validates.
            size = 1
        else:
            pool_size = getattr(engine.pool, "size", None)
            wanted = get_settings().db_concurrency or max(4, 2 * (os.cpu_count() or 1))
            size = min(wanted, pool_size() if callable(pool_size) else 10, THREAD_POOL_SIZE // 2)
        gate = _gates[loop] = asyncio.Semaphore(size)
    return gate


def _finish(session: Session, commit: bool) -> None:
    try:
        if commit:
            session.commit()
        else:
            session.rollback()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


async def db_session() -> AsyncIterator[Session]:
    """The request's unit of work. Use as ``Depends(db_session, scope="function")`` so the
    commit happens before the response is sent: a failed commit is a 500, never a lost write.

    Requests take a place at a gate first, waiting in the event loop: at most
    ``BUDDING_DB_CONCURRENCY`` (PostgreSQL; twice the cores by default, and no more than
    the connection pool holds or half the thread pool) or one (SQLite, one writer; per
    process, the processes then queue on the database's writer lock) hold a session at
    once. (Twenty at once on two cores made single-event POSTs at 200/s wait on each
    other for the GIL and for connections opened in bursts: p50 30 ms, p99 0.4 s.)
    Work that needs no database (validating a batch of events) belongs in a dependency
    listed before the session's, so that it happens before the gate. Without it,
    requests waiting for a connection, for SQLite's write lock or for a row
    another request inserted filled every pool thread, while the requests they
    waited for needed a thread to finish: 50 concurrent batches deadlocked
    until timeouts broke it.
    """
    gate = _gate()
    async with gate:
        session = session_factory()()  # no I/O until the first query
        try:
            yield session
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_finish, session, keeps_writes(exc))
            raise
        if not session.in_transaction():
            # Committed by the route already (the hot paths do): closing only hands the
            # connection back to the pool, with no I/O, so no thread-pool hop for it.
            session.close()
            return
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(_finish, session, True)


DB = Depends(db_session, scope="function")


@dataclass
class ApiContext:
    session: Session
    program: Program
    role: str

    def require_write(self) -> None:
        if not accounts.can_write(self.role):
            raise PermissionDenied("this API key is read-only", code="read_only_key")


def bearer_token(request: Request) -> str:
    """The request's ``Authorization: Bearer`` token (not yet checked), or ``Unauthorized``."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send 'Authorization: Bearer <API key>'", code="missing_api_key")
    return token.strip()


async def require_bearer(request: Request) -> None:
    """A dependency for routes that check their key themselves, in the thread that uses
    the session (``api_context(request, session)``): a request without a key is refused
    before its body is validated, as with ``API``."""
    bearer_token(request)


BEARER = Depends(require_bearer)


def api_context(request: Request, session: Session = DB) -> ApiContext:
    key = accounts.authenticate_api_key(session, bearer_token(request))
    accounts.touch_api_key(session, key)
    program = programs.get_program_by_id(session, key.program_id)
    return ApiContext(session=session, program=program, role=key.role)


API = Depends(api_context)


async def writer_context(ctx: ApiContext = API) -> ApiContext:
    # async: a role check needs no thread-pool hop.
    ctx.require_write()
    return ctx


API_WRITE = Depends(writer_context)


# --- staff pages -------------------------------------------------------------------------


class LoginRequired(Exception):
    """Raised by page dependencies; the web app turns it into a redirect to the login page
    (``login_path``: the staff login, or a member portal's sign-in page)."""

    def __init__(self, next_url: str, login_path: str = "/admin/login") -> None:
        self.next_url = next_url
        self.login_path = login_path


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
    def role_label(self) -> str:
        """The role's display name (a msgid: translate it with ``_``)."""
        return ROLE_LABELS.get(self.user.role, self.user.role)

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

    def render(
        self,
        request: Request,
        name: str,
        *,
        program: Program | None = None,
        status_code: int = 200,
        **context: Any,
    ) -> Response:
        """An admin page (a template extending ``core/admin_base.html``), never cached."""
        from budding.core.templating import render

        response: Response = render(
            request,
            name,
            status_code=status_code,
            ctx=self,
            program=program,
            programs=programs.list_programs(self.session),
            **context,
        )
        response.headers["Cache-Control"] = "no-store"
        return response


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


def require_program(session: Session, slug: str) -> Program:
    try:
        return programs.get_program(session, slug)
    except NotFound:
        raise NotFound("no such program") from None
