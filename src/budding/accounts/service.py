"""Staff accounts, login sessions with lockout, and API keys. Never commits."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from budding.accounts.models import ROLES, ApiKey, LoginAttempt, StaffSession, StaffUser
from budding.core.config import get_settings
from budding.core.db import utcnow
from budding.core.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    RateLimited,
    Reason,
    Unauthorized,
    field,
)
from budding.core.i18n import N_
from budding.core.security import (
    constant_time_equal,
    hash_password,
    keyed_hash,
    new_token,
    token_hash,
    verify_password,
)

WRITE_ROLES = frozenset({"owner", "admin", "moderator"})
MANAGE_ROLES = frozenset({"owner", "admin"})
API_KEY_ROLES = ("admin", "analyst")
MIN_PASSWORD = 10
# An IP may fail this many times per lockout window, whatever the e-mail.
IP_MAX_FAILURES = 30


def can_write(role: str) -> bool:
    return role in WRITE_ROLES


def can_manage(role: str) -> bool:
    return role in MANAGE_ROLES


def _normalise_staff_email(email: str) -> str:
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise field("email", str(exc)) from None


def _check_may_assign(by: StaffUser | None, role: str) -> None:
    """Staff managed from the dashboard: owners and admins manage, only owners touch owners."""
    if by is None:  # the command line: whoever runs it owns the installation
        return
    if not can_manage(by.role):
        raise PermissionDenied("only owners and admins can do this", code="admin_only")
    if role == "owner" and by.role != "owner":
        raise PermissionDenied("only owners can manage owners", code="owner_only")


def create_user(
    session: Session,
    *,
    email: str,
    password: str,
    role: str,
    name: str = "",
    by: StaffUser | None = None,
) -> StaffUser:
    """A staff user; ``by`` is the staff user creating it from the dashboard (None: the CLI)."""
    address = _normalise_staff_email(email)
    if role not in ROLES:
        raise field("role", N_("must be one of %(choices)s"), choices=", ".join(ROLES))
    _check_may_assign(by, role)
    if len(name) > 200:
        raise field("name", N_("must be at most %(limit)s characters"), limit=200)
    if len(password) < MIN_PASSWORD:
        raise field("password", N_("must be at least %(limit)s characters"), limit=MIN_PASSWORD)
    if session.scalar(select(StaffUser.id).where(StaffUser.email == address)) is not None:
        raise Conflict(
            "a staff user with this e-mail exists", fields={"email": Reason(N_("already taken"))}
        )
    user = StaffUser(email=address, name=name, role=role, password_hash=hash_password(password))
    session.add(user)
    session.flush()
    return user


def list_users(session: Session) -> list[StaffUser]:
    return list(session.scalars(select(StaffUser).order_by(StaffUser.email)))


def set_user_active(
    session: Session, user_id: int, active: bool, *, by: StaffUser | None = None
) -> StaffUser:
    """(De)activate a staff user; deactivation ends their sessions at once. From the
    dashboard (``by`` given) nobody deactivates themselves and only owners touch owners."""
    user = session.get(StaffUser, user_id)
    if user is None:
        raise NotFound("no such staff user")
    _check_may_assign(by, user.role)
    if by is not None and by.id == user.id and not active:
        raise PermissionDenied("you cannot deactivate yourself", code="self_deactivation")
    user.is_active = active
    if not active:
        session.execute(delete(StaffSession).where(StaffSession.user_id == user.id))
    session.flush()
    return user


@dataclass(frozen=True)
class LoginResult:
    user: StaffUser
    token: str
    csrf_token: str


def login(session: Session, *, email: str, password: str, ip: str) -> LoginResult | None:
    """Check a password, enforcing the per-e-mail lockout and the per-IP rate limit.

    Returns None on wrong credentials rather than raising, so that the unit of
    work commits the recorded failure (every process must see it to enforce
    the lockout). Raises ``RateLimited`` while locked out.
    """
    settings = get_settings()
    now = utcnow()
    window_start = now - timedelta(minutes=settings.login_lockout_minutes)
    address = email.strip().lower()
    ip_hash = keyed_hash(ip, "login-ip")
    failures = session.scalar(
        select(func.count())
        .select_from(LoginAttempt)
        .where(
            LoginAttempt.email == address,
            LoginAttempt.success.is_(False),
            LoginAttempt.at >= window_start,
        )
    )
    ip_failures = session.scalar(
        select(func.count())
        .select_from(LoginAttempt)
        .where(
            LoginAttempt.ip_hash == ip_hash,
            LoginAttempt.success.is_(False),
            LoginAttempt.at >= window_start,
        )
    )
    if (failures or 0) >= settings.login_max_failures or (ip_failures or 0) >= IP_MAX_FAILURES:
        raise RateLimited(
            "too many failed logins; try again later",
            retry_after=settings.login_lockout_minutes * 60,
        )
    user = session.scalar(select(StaffUser).where(StaffUser.email == address))
    ok = user is not None and user.is_active and verify_password(user.password_hash, password)
    session.add(LoginAttempt(email=address, ip_hash=ip_hash, success=ok, at=now))
    if not ok or user is None:
        session.flush()
        return None
    user.last_login_at = now
    token, csrf = new_token(), new_token(24)
    session.add(
        StaffSession(
            token_hash=token_hash(token),
            user_id=user.id,
            csrf_token=csrf,
            expires_at=now + timedelta(days=settings.session_days),
        )
    )
    session.flush()
    return LoginResult(user=user, token=token, csrf_token=csrf)


def session_user(session: Session, token: str) -> tuple[StaffUser, StaffSession] | None:
    row = session.execute(
        select(StaffUser, StaffSession)
        .join(StaffSession, StaffSession.user_id == StaffUser.id)
        .where(StaffSession.token_hash == token_hash(token))
    ).first()
    if row is None:
        return None
    user, staff_session = row
    if staff_session.expires_at <= utcnow() or not user.is_active:
        return None
    return user, staff_session


def logout(session: Session, token: str) -> None:
    session.execute(delete(StaffSession).where(StaffSession.token_hash == token_hash(token)))


def end_session(session: Session, staff_session: StaffSession) -> None:
    """Sign out of one session (the cookie's token is no longer accepted)."""
    session.execute(delete(StaffSession).where(StaffSession.id == staff_session.id))


# --- API keys -----------------------------------------------------------------------

KEY_PREFIX = "bud_"


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    secret: str  # shown once; only its hash is stored


def create_api_key(
    session: Session, *, program_id: int, name: str, role: str = "admin"
) -> IssuedKey:
    if role not in API_KEY_ROLES:
        raise field("role", N_("must be one of %(choices)s"), choices=", ".join(API_KEY_ROLES))
    if not name.strip():
        raise field("name", N_("must not be empty"))
    prefix = secrets.token_hex(6)
    secret = new_token(30)
    key = ApiKey(
        program_id=program_id,
        name=name.strip()[:200],
        prefix=prefix,
        secret_hash=token_hash(secret),
        role=role,
    )
    session.add(key)
    session.flush()
    return IssuedKey(key=key, secret=f"{KEY_PREFIX}{prefix}_{secret}")


def list_api_keys(session: Session, program_id: int) -> list[ApiKey]:
    return list(
        session.scalars(
            select(ApiKey).where(ApiKey.program_id == program_id).order_by(ApiKey.created_at)
        )
    )


def revoke_api_key(session: Session, *, program_id: int, prefix: str) -> ApiKey:
    key = session.scalar(
        select(ApiKey).where(ApiKey.program_id == program_id, ApiKey.prefix == prefix)
    )
    if key is None:
        raise NotFound(f"no API key {prefix!r} in this program", fields={"prefix": "unknown"})
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    session.flush()
    return key


def authenticate_api_key(session: Session, presented: str) -> ApiKey:
    """The live key for a presented ``bud_<prefix>_<secret>``, or ``Unauthorized``."""
    if not presented.startswith(KEY_PREFIX) or presented.count("_") < 2:
        raise Unauthorized("malformed API key", code="bad_api_key")
    prefix, _, secret = presented[len(KEY_PREFIX) :].partition("_")
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if (
        key is None
        or key.revoked_at is not None
        or not constant_time_equal(key.secret_hash, token_hash(secret))
    ):
        raise Unauthorized("unknown or revoked API key", code="bad_api_key")
    return key


def touch_api_key(session: Session, key: ApiKey, now: datetime | None = None) -> None:
    """Record last use, at most once a minute, so hot keys do not serialise on one row.

    When concurrent requests all find the time stale, one records it and the
    others skip the row it has locked (``SKIP LOCKED``) instead of waiting for
    that request to commit: a request blocked here would hold a worker thread
    that the lock's holder may need, and with every thread blocked they
    deadlocked (PostgreSQL; SQLite serialises transactions anyway).
    """
    now = now or utcnow()
    if key.last_used_at is None or now - key.last_used_at > timedelta(minutes=1):
        free = session.scalar(
            select(ApiKey.id).where(ApiKey.id == key.id).with_for_update(skip_locked=True)
        )
        if free is not None:
            session.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
