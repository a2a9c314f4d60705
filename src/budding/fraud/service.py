"""Fraud checks on referred signups, and the review queue. Never commits.

``assess_signup`` runs every check the program has on (see ``fraud.checks``),
records the assessment (the review queue is made of the flagged and held
ones) and returns the strongest action: ``allow``, ``flag`` (let in, shown
for review), ``hold`` (let in, but the referral and its rewards wait for a
review) or ``block`` (refuse the signup). The caller acts on it; when the
member and referral are created, ``attach`` links them to the assessment so
that later checks (rings, self-referral) and the review outcome reach them.

Review outcomes go through the other capabilities' service functions:
``referrals.service.set_referral_status`` and ``rewards.service`` (release the
held rewards on approval; reverse every reward of the referral on rejection).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import ModuleType
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from budding.core.db import dialect_insert, is_postgres, utcnow
from budding.core.errors import Conflict, NotFound, from_pydantic
from budding.core.errors import field as field_error
from budding.core.security import keyed_hash
from budding.fraud.checks import SEVERITY, canonical_email, is_disposable, strongest
from budding.fraud.models import FraudAssessment, FraudSignal
from budding.fraud.schemas import FraudSettings, FraudSettingsPatch
from budding.members import service as members
from budding.programs.models import Program
from budding.programs.service import update_program_settings

log = logging.getLogger("budding.fraud")

HOUR = timedelta(hours=1)
LOCK_NAMESPACE = 0x46524155  # "FRAU": pg_advisory_xact_lock(namespace, key)
MAX_HASH = 64
CHECK_REASONS = {
    "velocity_referrer": "referral burst",
    "velocity_ip": "signup burst from one IP address",
    "ring": "referral ring",
}


@dataclass(frozen=True)
class Assessment:
    """What the checks decided: ``action`` and the names of the checks that fired."""

    action: str  # allow|flag|hold|block
    reasons: list[str]
    details: dict[str, str] = field(default_factory=dict)
    id: int | None = None
    # The stored row, kept referenced so that ``attach`` finds it in the session (whose
    # identity map holds rows only while something does) instead of reading it again.
    row: FraudAssessment | None = field(default=None, repr=False, compare=False)

    @property
    def allowed(self) -> bool:
        return self.action != "block"


# --- settings ------------------------------------------------------------------------


def fraud_settings(program: Program) -> FraudSettings:
    raw = (program.settings or {}).get("fraud", {})
    try:
        return FraudSettings.model_validate(raw)
    except ValidationError:
        log.warning("program %s has invalid fraud settings; using the defaults", program.slug)
        return FraudSettings()


def update_settings(
    session: Session, program: Program, data: dict[str, Any] | FraudSettingsPatch
) -> FraudSettings:
    """Change the settings given (``checks`` merges per check); the result is validated whole."""
    try:
        patch = (
            data
            if isinstance(data, FraudSettingsPatch)
            else FraudSettingsPatch.model_validate(data)
        )
    except ValidationError as exc:
        raise from_pydantic(exc) from None
    current = fraud_settings(program).model_dump()
    given = patch.model_dump(exclude_unset=True, exclude_none=True)
    if "checks" in given:
        given["checks"] = {**current["checks"], **given["checks"]}
    merged = {**current, **given}
    try:
        settings = FraudSettings.model_validate(merged)
    except ValidationError as exc:
        raise from_pydantic(exc) from None
    update_program_settings(session, program, "fraud", settings.model_dump())
    return settings


# --- identifiers ---------------------------------------------------------------------


NETWORK_PURPOSE = "referral-network"


# IPs and devices are hashed by the referrals capability (its clicks and redemptions
# carry them), so one seen there and one seen here compare equal by construction.
def hash_ip(ip: str) -> str:
    from budding.referrals.service import hash_ip as referrals_hash_ip

    return referrals_hash_ip(ip.strip())


def hash_device(device: str) -> str:
    from budding.referrals.service import hash_device as referrals_hash_device

    return referrals_hash_device(device.strip())


def hash_network(ip: str) -> str:
    """A keyed hash of the network an address belongs to (IPv4 /24, IPv6 /48): pass it as
    ``properties["network_hash"]`` so rings on rotating addresses are seen."""
    import ipaddress

    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return keyed_hash(ip.strip(), NETWORK_PURPOSE)
    prefix = 24 if address.version == 4 else 48
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    return keyed_hash(str(network), NETWORK_PURPOSE)


def email_key(address: str) -> str:
    """A keyed hash of the canonical address (raises ValueError for a bad address)."""
    return keyed_hash(canonical_email(address), "fraud-email")


def payment_key(fingerprint: str) -> str:
    return keyed_hash(str(fingerprint), "fraud-payment")


def _clip(value: object) -> str:
    text = str(value or "").strip()
    if len(text) > MAX_HASH:  # longer than a hash: hash it so it fits
        text = hashlib.sha256(text.encode()).hexdigest()[:MAX_HASH]
    return text


def record_signals(
    session: Session,
    program: Program,
    member_id: int,
    *,
    email: str | None = None,
    ip_hash: str | None = None,
    device_hash: str | None = None,
    network_hash: str | None = None,
    payment_fingerprint: str | None = None,
) -> None:
    """Remember identifiers a member used (idempotent), for later self-referral checks."""
    values: list[tuple[str, str]] = []
    if email:
        with contextlib.suppress(ValueError):
            values.append(("email", email_key(email)))
    for kind, raw in (("ip", ip_hash), ("device", device_hash), ("network", network_hash)):
        if raw:
            values.append((kind, _clip(raw)))
    if payment_fingerprint:
        values.append(("payment", payment_key(payment_fingerprint)))
    _insert_signals(session, program, member_id, values)


def _insert_signals(
    session: Session, program: Program, member_id: int, values: list[tuple[str, str]]
) -> None:
    values = [(k, v) for k, v in dict.fromkeys(values) if v]
    if not values:
        return
    now = utcnow()
    # One statement with the rows as parameters (executemany; batched into one INSERT):
    # compiled once, where ``.values([...])`` made a statement per row count and cost twice
    # the CPU time.
    session.execute(
        dialect_insert(session, FraudSignal).on_conflict_do_nothing(
            index_elements=["program_id", "member_id", "kind", "value"]
        ),
        [
            {
                "program_id": program.id,
                "member_id": member_id,
                "kind": k,
                "value": v,
                "first_seen": now,
            }
            for k, v in values
        ],
    )


def _signals_of(session: Session, program: Program, member_id: int) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    rows = session.execute(
        select(FraudSignal.kind, FraudSignal.value).where(
            FraudSignal.program_id == program.id, FraudSignal.member_id == member_id
        )
    )
    for kind, value in rows:
        out.setdefault(kind, set()).add(value)
    return out


def _lock(session: Session, key: str) -> None:
    """Per-key turns on PostgreSQL (velocity counts stay exact under concurrency)."""
    if is_postgres(session):
        number = int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big", signed=True)
        session.execute(select(func.pg_advisory_xact_lock(LOCK_NAMESPACE, number)))


# --- the assessment ------------------------------------------------------------------


def assess_signup(
    session: Session,
    program: Program,
    *,
    referrer_id: int | None,
    email: str,
    ip_hash: str | None,
    device_hash: str | None,
    properties: dict[str, Any],
    member_id: int | None = None,
    referral_id: int | None = None,
    at: datetime | None = None,
) -> Assessment:
    """Check one signup and record the assessment; returns the action and the reasons.

    ``properties`` may carry ``payment_fingerprint`` (a card or wallet
    fingerprint from the payment provider) and ``network_hash`` (e.g. a hash
    of the IP's /24 or ASN; the IP hash stands in when absent). ``member_id``
    and ``referral_id`` may be given now or later with ``attach``. ``at`` is
    the signup's time (now by default). A flagged or held signup enters the
    review queue and emits ``fraud.flagged``.
    """
    settings = fraud_settings(program)
    at = at or utcnow()
    props = properties or {}
    try:
        canonical = canonical_email(email)
    except ValueError as exc:
        raise field_error("email", str(exc)) from None
    e_key = keyed_hash(canonical, "fraud-email")
    domain = canonical.rpartition("@")[2]
    ip = _clip(ip_hash)
    device = _clip(device_hash)
    network = _clip(props.get("network_hash")) or ip
    fingerprint = props.get("payment_fingerprint")
    pay = payment_key(fingerprint) if fingerprint else ""

    fired: dict[str, str] = {}

    def on(check: str) -> bool:
        return settings.action(check) != "off"

    if on("disposable_email") and is_disposable(domain):
        fired["disposable_email"] = domain
    if referrer_id is not None:
        known = _signals_of(session, program, referrer_id)
        referrer = members.get_member_by_id(session, referrer_id)
        if referrer.email:
            with contextlib.suppress(ValueError):
                known.setdefault("email", set()).add(email_key(referrer.email))
        if on("self_email") and (e_key in known.get("email", ()) or member_id == referrer_id):
            fired["self_email"] = "the referee's mailbox is the referrer's"
        if on("self_device") and device and device in known.get("device", ()):
            fired["self_device"] = "the referrer used this device"
        if on("self_ip") and ip and ip in known.get("ip", ()):
            fired["self_ip"] = "the referrer used this IP address"
        if on("self_payment") and pay and pay in known.get("payment", ()):
            fired["self_payment"] = "the referrer used this payment method"
        if on("velocity_referrer"):
            _lock(session, f"{program.id}:referrer:{referrer_id}")
            recent = _count_recent(session, program, FraudAssessment.referrer_id == referrer_id, at)
            if recent + 1 > settings.velocity_referrer_per_hour:
                fired["velocity_referrer"] = f"{recent + 1} signups referred within an hour"
        if on("ring") and network:
            ring = _ring(session, program, settings, referrer_id, network, at)
            if ring is not None:
                fired["ring"] = ring
    if on("velocity_ip") and ip:
        _lock(session, f"{program.id}:ip:{ip}")
        recent = _count_recent(session, program, FraudAssessment.ip_hash == ip, at)
        if recent + 1 > settings.velocity_ip_per_hour:
            fired["velocity_ip"] = f"{recent + 1} signups from this IP address within an hour"

    reasons = [c for c in fired]
    action = strongest([settings.action(c) for c in reasons])
    row = FraudAssessment(
        program_id=program.id,
        referrer_id=referrer_id,
        member_id=member_id,
        referral_id=referral_id,
        email_key=e_key,
        email_domain=domain[:255],
        ip_hash=ip,
        device_hash=device,
        network_hash=network,
        payment_key=pay,
        action=action,
        reasons=reasons,
        details=fired,
        review_status="open" if action in ("flag", "hold") else "none",
        created_at=at,
    )
    session.add(row)
    session.flush()
    if member_id is not None:
        _signals_from(session, program, row)
    if "ring" in fired:
        _flag_ring(session, program, settings, row)
    if "velocity_referrer" in fired:
        earlier = _recent(session, program, FraudAssessment.referrer_id == referrer_id, row)
        _flag_earlier(
            session, program, settings, "velocity_referrer", earlier, fired["velocity_referrer"]
        )
    if "velocity_ip" in fired:
        earlier = _recent(session, program, FraudAssessment.ip_hash == ip, row)
        _flag_earlier(session, program, settings, "velocity_ip", earlier, fired["velocity_ip"])
    if action != "allow":
        _emit_flagged(session, program, row)
    return Assessment(action=action, reasons=reasons, details=dict(fired), id=row.id, row=row)


def _count_recent(session: Session, program: Program, condition: Any, at: datetime) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(FraudAssessment)
            .where(
                FraudAssessment.program_id == program.id,
                condition,
                FraudAssessment.created_at > at - HOUR,
                FraudAssessment.created_at <= at,
            )
        )
        or 0
    )


def _cluster(
    session: Session, program: Program, settings: FraudSettings, network: str, at: datetime
) -> list[FraudAssessment]:
    window = timedelta(hours=settings.ring_window_hours)
    return list(
        session.scalars(
            select(FraudAssessment)
            .where(
                FraudAssessment.program_id == program.id,
                FraudAssessment.network_hash == network,
                FraudAssessment.created_at >= at - window,
                FraudAssessment.created_at <= at,
            )
            .order_by(FraudAssessment.id)
            .limit(10_000)
        )
    )


def _ring(
    session: Session,
    program: Program,
    settings: FraudSettings,
    referrer_id: int,
    network: str,
    at: datetime,
) -> str | None:
    """A ring: the referrer was itself created from this network within the window, and the
    network produced at least ``ring_min_size`` accounts (this one included) in it."""
    cluster = _cluster(session, program, settings, network, at)
    members_in = {a.member_id for a in cluster if a.member_id is not None}
    if referrer_id not in members_in:
        return None
    size = len(cluster) + 1
    if size < settings.ring_min_size:
        return None
    return (
        f"{size} accounts from one network within {settings.ring_window_hours} h refer each other"
    )


def _flag_ring(
    session: Session, program: Program, settings: FraudSettings, row: FraudAssessment
) -> None:
    """A ring found now also marks the ring's earlier referred signups (they refer each other)."""
    cluster = _cluster(session, program, settings, row.network_hash, row.created_at)
    members_in = {a.member_id for a in cluster if a.member_id is not None}
    earlier = [
        a
        for a in cluster
        if a.id != row.id and a.referrer_id is not None and a.referrer_id in members_in
    ]
    _flag_earlier(session, program, settings, "ring", earlier, row.details.get("ring", ""))


def _recent(
    session: Session, program: Program, condition: Any, row: FraudAssessment
) -> list[FraudAssessment]:
    return list(
        session.scalars(
            select(FraudAssessment)
            .where(
                FraudAssessment.program_id == program.id,
                condition,
                FraudAssessment.id != row.id,
                FraudAssessment.created_at > row.created_at - HOUR,
                FraudAssessment.created_at <= row.created_at,
            )
            .order_by(FraudAssessment.id)
            .limit(10_000)
        )
    )


def _flag_earlier(
    session: Session,
    program: Program,
    settings: FraudSettings,
    check: str,
    earlier: list[FraudAssessment],
    evidence: str,
) -> None:
    """Add ``check`` to earlier assessments of the same burst or ring, found only now.

    Those signups were let in already: a ``block`` policy holds them instead,
    and a hold puts their referral (and its rewards not yet issued) on hold.
    """
    policy = settings.action(check)
    if policy == "block":
        policy = "hold"
    for row in earlier:
        if check in (row.reasons or []):
            continue
        row.reasons = [*(row.reasons or []), check]
        row.details = {**(row.details or {}), check: evidence}
        before = row.action
        if row.action != "block" and SEVERITY[policy] > SEVERITY[row.action]:
            row.action = policy
        if row.review_status == "none" and row.action in ("flag", "hold"):
            row.review_status = "open"
        if row.action == "hold" and before != "hold" and row.referral_id is not None:
            _hold_referral(session, program, row.referral_id, CHECK_REASONS[check], [check])
        if row.action != before:
            _emit_flagged(session, program, row)
    session.flush()


def _signals_from(session: Session, program: Program, row: FraudAssessment) -> None:
    if row.member_id is None:
        return
    values = [
        ("email", row.email_key),
        ("ip", row.ip_hash),
        ("device", row.device_hash),
        ("network", row.network_hash),
        ("payment", row.payment_key),
    ]
    _insert_signals(session, program, row.member_id, values)


def attach(
    session: Session,
    program: Program,
    assessment_id: int,
    *,
    member_id: int | None = None,
    referral_id: int | None = None,
) -> FraudAssessment:
    """Link an assessment to the member and referral the signup created."""
    row = get_assessment(session, program, assessment_id)
    if member_id is not None:
        row.member_id = member_id
    if referral_id is not None:
        row.referral_id = referral_id
    session.flush()
    _signals_from(session, program, row)
    return row


def check_payment(
    session: Session,
    program: Program,
    member_id: int,
    payment_fingerprint: str,
    *,
    at: datetime | None = None,
) -> FraudAssessment | None:
    """Self-referral by card, seen when a referred member pays: the card is one their
    referrer used. Most cards are only known at the first purchase, after the signup
    was checked, so this runs on every event that carries ``payment_fingerprint``.

    Records an assessment (once per referral) in the review queue; with the policy
    ``hold`` (or ``block``: the member exists already, so it holds) the referral and
    its rewards not yet issued wait for the review. Returns the new assessment, or None.
    """
    settings = fraud_settings(program)
    policy = settings.action("self_payment")
    if policy == "off":
        return None
    referrals = _optional("budding.referrals.service")
    if referrals is None or not hasattr(referrals, "referral_of"):
        return None
    fact = referrals.referral_of(session, program, member_id)
    if fact is None or fact.status == "rejected":
        return None
    pay = payment_key(payment_fingerprint)
    if pay not in _signals_of(session, program, fact.referrer_id).get("payment", set()):
        return None
    seen = session.scalar(
        select(FraudAssessment.id)
        .where(
            FraudAssessment.program_id == program.id,
            FraudAssessment.referral_id == fact.id,
            FraudAssessment.payment_key == pay,
        )
        .limit(1)
    )
    if seen is not None:
        return None
    action = "hold" if policy == "block" else policy
    evidence = "the referred member paid with a card the referrer used"
    row = FraudAssessment(
        program_id=program.id,
        referrer_id=fact.referrer_id,
        member_id=member_id,
        referral_id=fact.id,
        payment_key=pay,
        action=action,
        reasons=["self_payment"],
        details={"self_payment": evidence},
        review_status="open",
        created_at=at or utcnow(),
    )
    session.add(row)
    session.flush()
    if action == "hold":
        _hold_referral(
            session, program, fact.id, "self-referral: same payment method", ["self_payment"]
        )
    _emit_flagged(session, program, row)
    return row


def link_referrals(session: Session, program: Program, referrals: list[Any]) -> int:
    """Link assessments made before their referral existed (imports, the demo) to it.

    ``referrals`` are the referrals capability's ``ReferralFact`` objects (``id``,
    ``referrer_id``, ``referee_id``). A held assessment still under review holds
    its referral and the rewards not yet issued. Returns how many were linked.
    """
    linked = 0
    for fact in referrals:
        rows = session.scalars(
            select(FraudAssessment).where(
                FraudAssessment.program_id == program.id,
                FraudAssessment.member_id == fact.referee_id,
                FraudAssessment.referrer_id == fact.referrer_id,
                FraudAssessment.referral_id.is_(None),
            )
        ).all()
        for row in rows:
            row.referral_id = fact.id
            linked += 1
            if row.action == "hold" and row.review_status == "open":
                reasons = list(row.reasons or [])
                _hold_referral(session, program, fact.id, ", ".join(reasons), reasons)
    session.flush()
    return linked


# --- peers ---------------------------------------------------------------------------


def _optional(module_name: str) -> ModuleType | None:
    import importlib

    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            return None
        raise


def _emit_flagged(session: Session, program: Program, row: FraudAssessment) -> None:
    webhooks = _optional("budding.webhooks.service")
    if webhooks is None or not hasattr(webhooks, "emit"):
        return
    webhooks.emit(
        session, program, "fraud.flagged", {"assessment": assessment_out(session, row, json=True)}
    )


def _set_referral_status(
    session: Session, referral_id: int, status: str, reason: str, checks: Iterable[str] = ()
) -> None:
    referrals = _optional("budding.referrals.service")
    if referrals is None or not hasattr(referrals, "set_referral_status"):
        log.warning("referrals capability absent: referral %s stays as it is", referral_id)
        return
    try:
        referrals.set_referral_status(
            session, referral_id, status, reason, fraud_reasons=list(checks)
        )
    except NotFound:
        log.warning("referral %s is gone; its review outcome changes no referral", referral_id)


def _hold_referral(
    session: Session, program: Program, referral_id: int, reason: str, checks: Iterable[str]
) -> None:
    from budding.rewards import service as rewards

    _set_referral_status(session, referral_id, "held", reason, checks)
    rewards.hold_referral(session, program, referral_id, reason=reason, actor="fraud")


def referral_on_hold(session: Session, program: Program, referral_id: int) -> bool:
    """Whether a held assessment of this referral still waits for its review."""
    found = session.scalar(
        select(FraudAssessment.id)
        .where(
            FraudAssessment.program_id == program.id,
            FraudAssessment.referral_id == referral_id,
            FraudAssessment.action == "hold",
            FraudAssessment.review_status == "open",
        )
        .limit(1)
    )
    return found is not None


# --- the review queue ----------------------------------------------------------------


def get_assessment(session: Session, program: Program, assessment_id: int) -> FraudAssessment:
    row = session.get(FraudAssessment, assessment_id)
    if row is None or row.program_id != program.id:
        raise NotFound(
            f"no fraud assessment {assessment_id}", fields={"assessment_id": "unknown assessment"}
        )
    return row


def list_assessments(
    session: Session,
    program: Program,
    *,
    review_status: str | None = "open",
    action: str | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[FraudAssessment]:
    """Assessments, newest first: by default the open review queue."""
    from budding.fraud.models import ACTIONS, REVIEW_STATUSES

    if review_status is not None and review_status not in REVIEW_STATUSES:
        raise field_error("status", f"must be one of {', '.join(REVIEW_STATUSES)}")
    if action is not None and action not in ACTIONS:
        raise field_error("action", f"must be one of {', '.join(ACTIONS)}")
    if not 1 <= limit <= 1001:
        raise field_error("limit", "must be between 1 and 1000")
    stmt = select(FraudAssessment).where(FraudAssessment.program_id == program.id)
    if review_status is not None:
        stmt = stmt.where(FraudAssessment.review_status == review_status)
    if action is not None:
        stmt = stmt.where(FraudAssessment.action == action)
    if before_id is not None:
        stmt = stmt.where(FraudAssessment.id < before_id)
    return list(session.scalars(stmt.order_by(FraudAssessment.id.desc()).limit(limit)))


def queue_size(session: Session, program: Program) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(FraudAssessment)
            .where(
                FraudAssessment.program_id == program.id, FraudAssessment.review_status == "open"
            )
        )
        or 0
    )


def _decide(
    session: Session, program: Program, assessment_id: int, outcome: str, actor: str, note: str
) -> tuple[FraudAssessment, bool]:
    row = get_assessment(session, program, assessment_id)
    if row.review_status == outcome:
        return row, False
    done = session.execute(
        update(FraudAssessment)
        .where(FraudAssessment.id == row.id, FraudAssessment.review_status.in_(("open", "none")))
        .values(
            review_status=outcome,
            reviewed_at=utcnow(),
            reviewed_by=actor[:320],
            review_note=note.strip()[:500],
        )
        .returning(FraudAssessment.id)
        .execution_options(synchronize_session=False)
    ).first()
    session.refresh(row)
    if done is None:
        if row.review_status == outcome:
            return row, False
        raise Conflict(
            f"assessment {assessment_id} was already {row.review_status}",
            fields={"status": row.review_status},
        )
    return row, True


def approve(
    session: Session, program: Program, assessment_id: int, *, actor: str = "", note: str = ""
) -> FraudAssessment:
    """The signup is genuine: the referral is approved and its held rewards go on."""
    from budding.rewards import service as rewards

    row, changed = _decide(session, program, assessment_id, "approved", actor, note)
    if changed and row.referral_id is not None:
        _set_referral_status(session, row.referral_id, "approved", note or "approved on review")
        rewards.release_referral(
            session, program, row.referral_id, actor=actor, note=note or "fraud review passed"
        )
    return row


def reject(
    session: Session, program: Program, assessment_id: int, *, actor: str = "", note: str = ""
) -> FraudAssessment:
    """The signup is fraud: the referral is rejected and every reward it earned is reversed."""
    from budding.rewards import service as rewards

    row, changed = _decide(session, program, assessment_id, "rejected", actor, note)
    if changed and row.referral_id is not None:
        reason = "fraud: " + ", ".join(row.reasons or []) + (f" ({note})" if note else "")
        _set_referral_status(session, row.referral_id, "rejected", reason[:500])
        rewards.reverse_rewards(session, program, referral_id=row.referral_id, reason=reason)
    return row


def assessments_of_member(session: Session, member_id: int) -> list[FraudAssessment]:
    return list(
        session.scalars(
            select(FraudAssessment)
            .where(FraudAssessment.member_id == member_id)
            .order_by(FraudAssessment.id)
        )
    )


def assessment_out(session: Session, row: FraudAssessment, *, json: bool = False) -> dict[str, Any]:
    people = members.get_members_by_ids(
        session, [i for i in (row.referrer_id, row.member_id) if i is not None]
    )
    data: dict[str, Any] = {
        "id": row.id,
        "action": row.action,
        "reasons": list(row.reasons or []),
        "details": dict(row.details or {}),
        "referrer": people[row.referrer_id].external_id if row.referrer_id in people else None,
        "member": people[row.member_id].external_id if row.member_id in people else None,
        "referral_id": row.referral_id,
        "email_domain": row.email_domain,
        "review_status": row.review_status,
        "reviewed_at": row.reviewed_at,
        "reviewed_by": row.reviewed_by,
        "review_note": row.review_note,
        "created_at": row.created_at,
    }
    if json:
        data = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in data.items()}
    return data
