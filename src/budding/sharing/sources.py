"""What sharing reads from other capabilities, through their service functions only.

Referral codes, links and the fission tree belong to ``referrals``; rewards to
``rewards``; points to ``honors``. Each call is made through the other capability's
service module. When a capability is not installed (a trimmed deployment, or while it is
being written), :func:`missing` names it and the share kit degrades: no rewards panel,
no waitlist position. Referrals are required for links: without them a share kit cannot
be built and :class:`ReferralsUnavailable` says so.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from types import ModuleType
from typing import Any

import orjson
from sqlalchemy.orm import Session

from budding.core.errors import BuddingError
from budding.members.models import Member
from budding.programs.models import Program


class ReferralsUnavailable(BuddingError):
    status, code = 503, "referrals_unavailable"


def _module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            return None
        raise


def _function(module_name: str, function: str) -> Any | None:
    module = _module(module_name)
    return getattr(module, function, None) if module is not None else None


REQUIRED = {
    "budding.referrals.service": (
        "referral_code_for",
        "referral_url",
        "invite_summary",
        "referred_members",
        "waitlist_position",
        "referral_edges",
        "click_counts",
    ),
    "budding.rewards.service": ("rewards_of",),
    "budding.honors.ledger": ("balance",),
}


def missing() -> list[str]:
    """``module.function`` names sharing would call that are not (yet) installed."""
    return [
        f"{module}.{fn}"
        for module, functions in REQUIRED.items()
        for fn in functions
        if _function(module, fn) is None
    ]


def _referrals(function: str) -> Any:
    fn = _function("budding.referrals.service", function)
    if fn is None:
        raise ReferralsUnavailable(
            f"the referrals capability is not installed (budding.referrals.service.{function})"
        )
    return fn


# --- referrals -----------------------------------------------------------------------


def referral_code(session: Session, program: Program, member: Member) -> str:
    return str(_referrals("referral_code_for")(session, program, member))


def referral_link(program: Program, code: str, channel: str | None = None) -> str:
    return str(_referrals("referral_url")(program, code, channel=channel))


def referral_mode(program: Program) -> str | None:
    """``invite_only``, ``waitlist`` or ``open`` (None without the referrals capability)."""
    fn = _function("budding.referrals.service", "referral_settings")
    return str(fn(program).mode) if fn else None


def conversion_of(session: Session, program: Program, event: Any) -> Any | None:
    """The referral that ``event`` (a qualifying conversion) converted, if it did."""
    found = conversions_of(session, program, [event])
    return found[0][1] if found else None


def conversions_of(
    session: Session, program: Program, events: Sequence[Any]
) -> list[tuple[Any, Any]]:
    """``(event, referral)`` for each of ``events`` that converted a referral, in order.

    The settings are read once, only events of the program's conversion type are looked
    up, and their referrals in one query (``referrals_of``)."""
    settings = _function("budding.referrals.service", "referral_settings")
    referrals_of = _function("budding.referrals.service", "referrals_of")
    if settings is None or referrals_of is None:
        return []
    conversion_type = _conversion_type(program, settings)
    candidates = [e for e in events if e.type == conversion_type]
    if not candidates:
        return []
    facts = referrals_of(session, program, sorted({e.member_id for e in candidates}))
    found = [(e, facts.get(e.member_id)) for e in candidates]
    return [
        (event, fact)
        for event, fact in found
        if fact is not None and fact.conversion_event_id == event.event_id
    ]


# Conversion event types by the program's stored settings (as JSON): reading the settings
# (a pydantic model, validated each time) was a tenth of a single-event request's time.
_CONVERSION_TYPES: dict[tuple[int, bytes], str] = {}


def _conversion_type(program: Program, settings: Any) -> str:
    try:
        key = (program.id, orjson.dumps(program.settings, option=orjson.OPT_SORT_KEYS))
    except TypeError:  # not JSON as stored: no memo
        return str(settings(program).conversion_event)
    found = _CONVERSION_TYPES.get(key)
    if found is None:
        found = str(settings(program).conversion_event)
        if len(_CONVERSION_TYPES) >= 1024:
            _CONVERSION_TYPES.clear()
        _CONVERSION_TYPES[key] = found
    return found


def invite_summary(session: Session, program: Program, member: Member) -> Any | None:
    fn = _function("budding.referrals.service", "invite_summary")
    return fn(session, program, member) if fn else None


def issue_invite(session: Session, program: Program, member: Member) -> Any | None:
    """One invite code from the member's quota (raises the referrals capability's
    ``QuotaExceeded`` when none is left); None without the referrals capability."""
    fn = _function("budding.referrals.service", "issue_invites")
    return fn(session, program, member, 1)[0] if fn else None


def referred_members(session: Session, program: Program, member: Member) -> list[Any]:
    fn = _function("budding.referrals.service", "referred_members")
    return list(fn(session, program, member)) if fn else []


def waitlist_position(session: Session, program: Program, email: str | None) -> Any | None:
    fn = _function("budding.referrals.service", "waitlist_position")
    if fn is None or not email:
        return None
    try:
        return fn(session, program, email)
    except BuddingError:  # not on the waitlist
        return None


@dataclass(frozen=True)
class Edge:
    """One referral as sharing uses it (a copy of ``referrals``' ``ReferralEdge``)."""

    referrer_id: int
    referee_id: int
    signed_up_at: datetime
    converted_at: datetime | None
    channel: str | None
    generation: int


def referral_edges(session: Session, program: Program) -> list[Edge]:
    """Every counted referral (held and rejected ones are left out)."""
    out: list[Edge] = []
    for e in _referrals("referral_edges")(session, program):
        if getattr(e, "status", "active") not in ("active", "approved"):
            continue
        out.append(
            Edge(
                referrer_id=e.referrer_id,
                referee_id=e.referee_id,
                signed_up_at=e.signed_up_at,
                converted_at=e.converted_at,
                channel=e.channel,
                generation=e.generation,
            )
        )
    return out


def click_counts(
    session: Session, program: Program, since: datetime | None, until: datetime | None
) -> dict[str | None, int] | None:
    """Clicks on ``/r/{code}`` links per channel from the referrals click log, or None."""
    fn = _function("budding.referrals.service", "click_counts")
    return dict(fn(session, program, since=since, until=until)) if fn else None


# --- rewards and points ----------------------------------------------------------------


def rewards_of(session: Session, program: Program, member: Member) -> list[Any]:
    fn = _function("budding.rewards.service", "rewards_of")
    return list(fn(session, program, member.id)) if fn else []


def points_balance(session: Session, program: Program, member: Member) -> int | None:
    fn = _function("budding.honors.ledger", "balance")
    return int(fn(session, program, member.id)) if fn else None
