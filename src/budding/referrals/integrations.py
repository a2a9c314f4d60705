"""Calls into other capabilities: rewards, fraud checks, webhooks, the job queue and mail.

Each call goes through the other capability's service functions. They are looked
up when called, so this capability still works (and its tests run) in an
installation without one of them: no reward is issued, every signup is
allowed, no webhook is written. Each missing capability is logged once.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from types import ModuleType
from typing import Any

from sqlalchemy.orm import Session

from budding.programs.models import Program

log = logging.getLogger("budding.referrals")
_warned: set[str] = set()


def optional_module(name: str) -> ModuleType | None:
    """The module, or None when it (or its package) is not installed."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            return None
        raise


def _function(module_name: str, function: str) -> Any | None:
    module = optional_module(module_name)
    fn = getattr(module, function, None) if module is not None else None
    if fn is None and f"{module_name}.{function}" not in _warned:
        _warned.add(f"{module_name}.{function}")
        log.warning("%s.%s is not available; skipping", module_name, function)
    return fn


# --- fraud -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Assessment:
    action: str = "allow"  # allow|flag|hold|block
    reasons: list[str] = field(default_factory=list)
    id: int | None = None  # the fraud capability's assessment, to attach the referral to
    # The fraud capability's own result, kept alive until the signup is attached to it.
    source: Any = field(default=None, repr=False, compare=False)


def assess_signup(
    session: Session,
    program: Program,
    *,
    referrer_id: int | None,
    email: str | None,
    ip_hash: str | None,
    device_hash: str | None,
    properties: dict[str, Any],
    member_id: int | None = None,
    at: datetime | None = None,
) -> Assessment:
    """The fraud capability's verdict on a signup; "allow" when it is not installed, or
    when the signup has no e-mail address to check (an event without one)."""
    fn = _function("budding.fraud.service", "assess_signup")
    if fn is None or not email:
        return Assessment()
    kwargs: dict[str, Any] = {}
    if member_id is not None:
        kwargs["member_id"] = member_id
    if at is not None:
        kwargs["at"] = at
    result = fn(
        session,
        program,
        referrer_id=referrer_id,
        email=email,
        ip_hash=ip_hash,
        device_hash=device_hash,
        properties=properties,
        **kwargs,
    )
    action = str(getattr(result, "action", "allow"))
    reasons = [str(r) for r in getattr(result, "reasons", [])]
    return Assessment(action=action, reasons=reasons, id=getattr(result, "id", None), source=result)


def network_hash(ip: str | None) -> str | None:
    """The fraud capability's keyed hash of the IP's network (IPv4 /24, IPv6 /48), passed to
    ``assess_signup`` as ``properties["network_hash"]`` so rings on rotating addresses of one
    network are seen; None without an IP or without the fraud capability."""
    if not ip:
        return None
    fn = _function("budding.fraud.service", "hash_network")
    return str(fn(ip)) if fn is not None else None


def with_network(properties: dict[str, Any], ip: str | None) -> dict[str, Any]:
    """``properties`` with ``network_hash`` of ``ip`` added, unless the caller gave one."""
    if properties.get("network_hash"):
        return properties
    network = network_hash(ip)
    return {**properties, "network_hash": network} if network else properties


def attach_assessment(
    session: Session,
    program: Program,
    assessment_id: int,
    *,
    member_id: int | None,
    referral_id: int | None,
) -> None:
    """Link a fraud assessment to the member and referral the signup created."""
    fn = _function("budding.fraud.service", "attach")
    if fn is not None:
        fn(session, program, assessment_id, member_id=member_id, referral_id=referral_id)


# --- rewards -----------------------------------------------------------------------------


def reward_referral(
    session: Session,
    program: Program,
    *,
    referral_id: int,
    referrer_id: int,
    referee_id: int,
    trigger: str,
    trigger_key: str,
    occurred_at: datetime,
) -> None:
    """Ask the rewards capability to issue what its rules say (idempotent per rule and key)."""
    fn = _function("budding.rewards.service", "reward_referral")
    if fn is None:
        return
    fn(
        session,
        program,
        referral_id=referral_id,
        referrer_id=referrer_id,
        referee_id=referee_id,
        trigger=trigger,
        trigger_key=trigger_key,
        occurred_at=occurred_at,
    )


# --- webhooks ----------------------------------------------------------------------------


def emit(session: Session, program: Program, event_type: str, payload: dict[str, Any]) -> None:
    """Write a webhook delivery in this transaction (nothing when webhooks are absent)."""
    fn = _function("budding.webhooks.service", "emit")
    if fn is not None:
        fn(session, program, event_type, payload)


# --- mail --------------------------------------------------------------------------------


def send_mail_after_commit(
    session: Session, program: Program, mail: Any, *, dedupe_key: str | None = None
) -> None:
    """Send ``mail`` (a ``core.mail.Mail``) once the unit of work commits, through the
    durable job queue (retried with backoff, visible in the dashboard). A rolled-back
    transaction sends nothing; a ``dedupe_key`` already used sends nothing again."""
    from budding.core import jobs

    jobs.enqueue(
        session,
        "referrals.send_email",
        {"to": mail.to, "subject": mail.subject, "text": mail.text, "html": mail.html},
        program_id=program.id,
        dedupe_key=dedupe_key,
    )
