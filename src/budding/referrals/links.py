"""Personal referral codes, referral URLs and link clicks.

``GET /r/{code}`` records a click and redirects to the program's landing page
with ``bud_click=<click id>`` added. The click (referrer, channel, hashed IP,
user agent, time) is stored server-side, so the referral survives page
changes and an external login: whatever carries the click id back (the
landing URL, a cookie, the customer's own session) is enough to attribute.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from budding.core.config import get_settings
from budding.core.db import dialect_insert, utcnow
from budding.core.security import keyed_hash
from budding.members.models import Member
from budding.programs.models import Program
from budding.referrals.codes import new_code, new_token, normalise_code
from budding.referrals.config import referral_settings
from budding.referrals.models import InviteCode, ReferralClick, ReferralCode
from budding.referrals.schemas import check_channel

CLICK_PARAM = "bud_click"
CLICK_COOKIE = "bud_click"
IP_PURPOSE = "referral-ip"
DEVICE_PURPOSE = "referral-device"


def referral_code_for(session: Session, program: Program, member: Member) -> str:
    """The member's personal, multi-use referral code, created on first use."""
    found = session.scalar(
        select(ReferralCode.code).where(
            ReferralCode.program_id == program.id, ReferralCode.member_id == member.id
        )
    )
    if found is not None:
        return found
    session.execute(
        dialect_insert(session, ReferralCode)
        .values(program_id=program.id, code=new_code(), member_id=member.id, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["program_id", "member_id"])
    )
    code = session.scalar(
        select(ReferralCode.code).where(
            ReferralCode.program_id == program.id, ReferralCode.member_id == member.id
        )
    )
    assert code is not None
    return code


def referral_url(program: Program, code: str, channel: str | None = None) -> str:
    """``BUDDING_BASE_URL/r/{code}``, with ``?ch=channel`` to count the channel."""
    url = f"{get_settings().base_url}/r/{quote(code)}"
    ch = check_channel(channel)
    return f"{url}?ch={quote(ch)}" if ch else url


def invite_url(program: Program, code: str) -> str:
    """Where a friend redeems an invite code in the browser."""
    return f"{get_settings().base_url}/p/{quote(program.slug)}/join/{quote(code)}"


def hash_ip(ip: str | None) -> str:
    return keyed_hash(ip, IP_PURPOSE) if ip else ""


def hash_device(device: str | None) -> str:
    return keyed_hash(device, DEVICE_PURPOSE) if device else ""


def with_query(url: str, **params: str) -> str:
    """``url`` with ``params`` added to (or replacing those in) its query string."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query.extend(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


# --- resolving a link ------------------------------------------------------------------


@dataclass(frozen=True)
class LinkTarget:
    """What a code in ``/r/{code}`` points at."""

    program_id: int
    program_slug: str
    code_id: int | None
    invite_id: int | None
    referrer_member_id: int | None
    landing_url: str
    # ``landing_url`` with ``bud_click=`` added, split where the click id goes (see
    # ``redirect_url``); filled in on creation.
    _click_url: tuple[str, str] = field(default=("", ""), compare=False, repr=False)

    def __post_init__(self) -> None:
        marker = "BUDCLICKMARKER0"
        url = with_query(self.landing_url, **{CLICK_PARAM: marker})
        head, found, tail = url.partition(marker)
        if found and marker not in tail:
            object.__setattr__(self, "_click_url", (head, tail))

    def redirect_url(self, token: str) -> str:
        """``landing_url`` with ``bud_click=<token>`` added (a click id needs no quoting)."""
        head, tail = self._click_url
        if head:
            return head + token + tail
        return with_query(self.landing_url, **{CLICK_PARAM: token})


def landing_url_for(program: Program) -> str:
    """The program's landing page; Budding's own join or waitlist page when it has none."""
    if program.landing_url:
        return program.landing_url
    base = get_settings().base_url
    mode = referral_settings(program).mode
    page = "waitlist" if mode == "waitlist" else "join"
    return f"{base}/p/{quote(program.slug)}/{page}"


def referral_target(program: Program, code_id: int, member_id: int | None) -> LinkTarget:
    """Where a member's referral code leads: the program's landing page."""
    return LinkTarget(
        program_id=program.id,
        program_slug=program.slug,
        code_id=code_id,
        invite_id=None,
        referrer_member_id=member_id,
        landing_url=landing_url_for(program),
    )


def invite_target(
    program: Program, invite_id: int, issuer: int | None, invite_code: str
) -> LinkTarget:
    """Where an invite code used as a link leads: its join page."""
    base = get_settings().base_url
    return LinkTarget(
        program_id=program.id,
        program_slug=program.slug,
        code_id=None,
        invite_id=invite_id,
        referrer_member_id=issuer,
        landing_url=f"{base}/p/{quote(program.slug)}/join/{invite_code}",
    )


def resolve_link(session: Session, code: str) -> LinkTarget | None:
    """The referral code (or, failing that, invite code) behind a link, or None."""
    norm = normalise_code(code)
    return None if norm is None else resolve_links(session, [norm]).get(norm)


def resolve_links(session: Session, codes: list[str]) -> dict[str, LinkTarget]:
    """The targets of those of ``codes`` (normalised) that exist: a referral code's, or
    failing that an invite code's. Two queries for all of them, reading only the
    program's columns a target needs."""
    found: dict[str, LinkTarget] = {}
    if not codes:
        return found
    programs: dict[int, Program] = {}

    def program(pid: int, slug: str, landing: str | None, settings: Any) -> Program:
        if pid not in programs:
            programs[pid] = Program(id=pid, slug=slug, landing_url=landing, settings=settings)
        return programs[pid]

    columns = (Program.id, Program.slug, Program.landing_url, Program.settings)
    rows = session.execute(
        select(ReferralCode.code, ReferralCode.id, ReferralCode.member_id, *columns)
        .join(Program, Program.id == ReferralCode.program_id)
        .where(ReferralCode.code.in_(codes))
    )
    for code, code_id, member_id, *prog in rows:
        found[code] = referral_target(program(*prog), code_id, member_id)
    rest = [c for c in codes if c not in found]
    if rest:
        rows = session.execute(
            select(InviteCode.code, InviteCode.id, InviteCode.issuer_member_id, *columns)
            .join(Program, Program.id == InviteCode.program_id)
            .where(InviteCode.code.in_(rest))
        )
        for code, invite_id, issuer, *prog in rows:
            found[code] = invite_target(program(*prog), invite_id, issuer, code)
    return found


class LinkCache:
    """A small per-process cache of resolved links (a few seconds old at most).

    Only a cache: every process resolves from the database on a miss, and a
    changed landing URL shows within ``ttl`` seconds.
    """

    def __init__(self, ttl: float = 10.0, size: int = 50_000) -> None:
        self.ttl = ttl
        self.size = size
        self._data: OrderedDict[str, tuple[float, LinkTarget]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, code: str) -> LinkTarget | None:
        now = time.monotonic()
        with self._lock:
            hit = self._data.get(code)
            if hit is None or hit[0] < now:
                return None
            return hit[1]

    def put(self, code: str, target: LinkTarget) -> None:
        with self._lock:
            self._data[code] = (time.monotonic() + self.ttl, target)
            self._data.move_to_end(code)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


link_cache = LinkCache()


def click_row(
    target: LinkTarget,
    *,
    channel: str | None,
    ip: str | None,
    user_agent: str | None,
    visitor: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The values of one click (with a fresh click id in ``token``), ready to insert."""
    token = new_token()
    return {
        "program_id": target.program_id,
        "token": token,
        "visitor": visitor or token,
        "code_id": target.code_id,
        "invite_id": target.invite_id,
        "referrer_member_id": target.referrer_member_id,
        "channel": check_channel(channel),
        "ip_hash": hash_ip(ip),
        "user_agent": (user_agent or "")[:400],
        "clicked_at": now or utcnow(),
    }


def visitor_of(session: Session, program_id: int, previous_token: str | None) -> str | None:
    """The visitor id of the click whose id a browser still carries, if it is this program's."""
    if not previous_token or len(previous_token) > 40:
        return None
    return session.scalar(
        select(ReferralClick.visitor).where(
            ReferralClick.token == previous_token, ReferralClick.program_id == program_id
        )
    )


def store_clicks(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert click rows (one statement)."""
    if rows:
        session.execute(insert(ReferralClick), rows)


def record_click(
    session: Session,
    code: str,
    *,
    channel: str | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
    previous_token: str | None = None,
) -> tuple[LinkTarget, str] | None:
    """Record one click on ``/r/{code}``; returns the target and the new click id, or None
    for an unknown code. (The web route batches clicks; this is the plain service call.)"""
    target = resolve_link(session, code)
    if target is None:
        return None
    visitor = visitor_of(session, target.program_id, previous_token)
    row = click_row(target, channel=channel, ip=ip, user_agent=user_agent, visitor=visitor)
    store_clicks(session, [row])
    return target, row["token"]


def get_click(session: Session, program: Program, token: str) -> ReferralClick | None:
    if not token or len(token) > 40:
        return None
    return session.scalar(
        select(ReferralClick).where(
            ReferralClick.token == token.strip().upper(), ReferralClick.program_id == program.id
        )
    )


def click_counts(
    session: Session,
    program: Program,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str | None, int]:
    """Clicks per channel (None: no channel given) in ``[since, until)``."""
    from sqlalchemy import func

    stmt = select(ReferralClick.channel, func.count()).where(ReferralClick.program_id == program.id)
    if since is not None:
        stmt = stmt.where(ReferralClick.clicked_at >= since)
    if until is not None:
        stmt = stmt.where(ReferralClick.clicked_at < until)
    return {ch: int(n) for ch, n in session.execute(stmt.group_by(ReferralClick.channel))}


def count_clicks(session: Session, program: Program) -> int:
    from sqlalchemy import func

    return int(
        session.scalar(
            select(func.count())
            .select_from(ReferralClick)
            .where(ReferralClick.program_id == program.id)
        )
        or 0
    )
