"""Issuing, vesting, reviewing and reversing rewards. Never commits.

The interface other capabilities call:

- ``reward_referral`` — on each attributed signup or qualifying conversion;
- ``reverse_rewards`` — on a refund or a fraud rejection;
- ``release_referral`` / ``hold_referral`` — when a referral's review ends or starts;
- ``rewards_of`` — a member's rewards, for the portal.

Exactly once: every reward is one row, unique by ``(rule_id, dedupe_key)``,
written with ``INSERT … ON CONFLICT DO NOTHING`` — whatever the retries and
concurrency, one insert wins and only the winner delivers. Every state change
is a conditional ``UPDATE … WHERE status IN (…) RETURNING``, so a vesting job,
a reviewer and a refund racing on one reward deliver or compensate it once.
Delivery writes ledger entries that are themselves idempotent on the reward's
key (points, invite grants), so even a repeated delivery could not pay twice.

States: ``pending`` (vesting, or about to be issued), ``held`` (waits for a
review), ``issued``, ``rejected`` (refused before delivery), ``reversed``
(taken back: compensating entries written). Each change is recorded in the
reward's event log (``rewards.events``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import ModuleType
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from budding.core.db import dialect_insert, is_postgres, utcnow
from budding.core.errors import Conflict, NotFound, field
from budding.honors import ledger
from budding.members import service as members
from budding.members.models import Member
from budding.programs.models import Program
from budding.rewards import coupons, rules
from budding.rewards import events as history
from budding.rewards.models import (
    OPEN_STATUSES,
    STATUSES,
    Reward,
    RewardProgress,
    RewardRule,
)

log = logging.getLogger("budding.rewards")

TRIGGERS = ("signup", "conversion")
# pg_advisory_xact_lock(namespace, member id): milestone counting takes turns per referrer.
MILESTONE_LOCK_NAMESPACE = 0x52455744  # "REWD"
VEST_BATCH = 500
# Reasons are stored in English (they are data, like notes); pages show them as written.
HELD_FOR_REVIEW = "the referral is held for review"


class CouponPoolEmpty(Conflict):
    code = "coupon_pool_empty"


class RewardUndeliverable(Exception):
    """Delivery cannot happen now (empty coupon pool, missing capability): the reward is held."""


def conversion_key(event_id: str) -> str:
    """The trigger key of a qualifying conversion: the converting event's id.

    Refunds name the purchase they undo by this id (``properties.refund_of``),
    which is how ``listeners.on_events`` finds the rewards to reverse.
    """
    return event_id


# --- other capabilities, reached through their service functions -----------------------


def _optional(module_name: str) -> ModuleType | None:
    """A capability's service module, or None while that capability is not installed."""
    import importlib

    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            return None
        raise


def _emit(session: Session, program: Program, event_type: str, payload: dict[str, Any]) -> None:
    webhooks = _optional("budding.webhooks.service")
    if webhooks is None or not hasattr(webhooks, "emit"):
        log.debug("webhooks capability absent: %s not sent", event_type)
        return
    webhooks.emit(session, program, event_type, payload)


def _referral_status(session: Session, program: Program, referral_id: int | None) -> str:
    """``active``, ``held``, ``approved`` or ``rejected`` (active when unknown)."""
    if referral_id is None:
        return "active"
    status = "active"
    referrals = _optional("budding.referrals.service")
    if referrals is not None and hasattr(referrals, "get_referral"):
        try:
            fact = referrals.get_referral(session, referral_id)
        except NotFound:
            fact = None
        if fact is not None:
            status = str(getattr(fact, "status", "active"))
    if status in ("active", "approved"):
        from budding.fraud import service as fraud

        if fraud.referral_on_hold(session, program, referral_id):
            status = "held"
    return status


def _grant_invites(
    session: Session, program: Program, member_id: int, count: int, *, reason: str, key: str
) -> None:
    referrals = _optional("budding.referrals.service")
    if referrals is None or not hasattr(referrals, "grant_invites"):
        raise RewardUndeliverable("extra invites need the referrals capability")
    referrals.grant_invites(session, program, member_id, count, reason=reason, key=key)


# --- issuing -------------------------------------------------------------------------


def _check_trigger(trigger: str, trigger_key: str, occurred_at: datetime) -> None:
    if trigger not in TRIGGERS:
        raise field("trigger", "must be signup or conversion")
    if not trigger_key or len(trigger_key) > 200:
        raise field("trigger_key", "must be 1-200 characters")
    if occurred_at.tzinfo is None:
        raise field("occurred_at", "must carry a time zone")


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
) -> list[Reward]:
    """Apply the program's reward rules to one attributed signup or qualifying conversion.

    For each active rule of this trigger, the referrer (side ``referrer``) or the
    referee (side ``referee``; both: double-sided) earns one reward per
    ``trigger_key``; milestone rules pay the referrer once on reaching N
    successful referrals. A reward is issued at once, or ``pending`` when the
    rule vests, or ``held`` while the referral is held for review. Nothing is
    paid for a rejected referral.

    Returns the rewards this call created — empty when a retry (or a concurrent
    delivery of the same trigger) finds them created already.
    """
    _check_trigger(trigger, trigger_key, occurred_at)
    active = rules.list_rules(session, program, active_only=True)
    direct = [r for r in active if r.trigger == trigger]
    milestones = [r for r in active if r.trigger == "milestone" and r.milestone_on == trigger]
    gate = _referral_status(session, program, referral_id)
    if gate == "rejected":
        return []
    if milestones:
        _lock_referrer(session, referrer_id)
    _record_progress(session, program, referrer_id, referral_id, trigger, trigger_key, occurred_at)

    created: list[Reward] = []
    for rule in direct:
        member_id = referrer_id if rule.side == "referrer" else referee_id
        reward = _insert_reward(
            session,
            program,
            rule,
            member_id=member_id,
            referral_id=referral_id,
            referrer_id=referrer_id,
            referee_id=referee_id,
            trigger=trigger,
            trigger_key=trigger_key,
            dedupe_key=trigger_key,
            occurred_at=occurred_at,
        )
        if reward is not None:
            created.append(reward)
    if milestones:
        count = successful_referrals(session, program, referrer_id, stage=trigger)
        for rule in milestones:
            if rule.milestone is None or count < rule.milestone:
                continue
            reward = _insert_reward(
                session,
                program,
                rule,
                member_id=referrer_id,
                referral_id=referral_id,
                referrer_id=referrer_id,
                referee_id=referee_id,
                trigger="milestone",
                trigger_key=trigger_key,
                dedupe_key=_milestone_key(session, rule, referrer_id),
                occurred_at=occurred_at,
            )
            if reward is not None:
                created.append(reward)
    for reward in created:
        _start(session, program, reward, gate)
    return created


def _insert_reward(
    session: Session,
    program: Program,
    rule: RewardRule,
    *,
    member_id: int,
    referral_id: int | None,
    referrer_id: int,
    referee_id: int,
    trigger: str,
    trigger_key: str,
    dedupe_key: str,
    occurred_at: datetime,
) -> Reward | None:
    """The new reward, or None when this rule already paid this key (the unique constraint)."""
    now = utcnow()
    vests_at = occurred_at + timedelta(days=rule.vesting_days) if rule.vesting_days else None
    inserted = session.execute(
        dialect_insert(session, Reward)
        .values(
            program_id=program.id,
            rule_id=rule.id,
            member_id=member_id,
            referrer_id=referrer_id,
            referee_id=referee_id,
            referral_id=referral_id,
            side=rule.side,
            trigger=trigger,
            trigger_key=trigger_key,
            dedupe_key=dedupe_key,
            kind=rule.kind,
            amount=rule.amount,
            payload=rule.payload or {},
            status="pending",
            reason="",
            occurred_at=occurred_at,
            vests_at=vests_at,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["rule_id", "dedupe_key"])
        .returning(Reward.id)
    ).scalar()
    if inserted is None:
        return None
    reward = session.get_one(Reward, inserted)
    history.record(session, reward, "created", f"rule {rule.name!r}, {trigger} {trigger_key}")
    return reward


def _start(session: Session, program: Program, reward: Reward, gate: str) -> None:
    """A new reward's first step: held for review, left to vest, or issued now."""
    if gate == "held":
        _transition(session, reward, ("pending",), "held", reason=HELD_FOR_REVIEW)
        history.record(session, reward, "held", reward.reason)
        return
    if reward.vests_at is None:
        issue(session, program, reward, from_statuses=("pending",))
    elif reward.vests_at > utcnow():
        history.record(session, reward, "vesting", f"vests at {reward.vests_at.isoformat()}")
        _schedule_vesting(session, reward, "created")
    else:  # a late delivery whose vesting time has passed: vest now, if the referee stayed
        vest(session, reward)


def _lock(session: Session, reward: Reward) -> None:
    """Wait for any transaction changing the reward, then read it as it is now.

    PostgreSQL: ``SELECT … FOR UPDATE`` (SQLite's single writer needs no lock). Needed
    before choosing between transitions by the current state: under READ COMMITTED a
    conditional ``UPDATE … WHERE status = 'issued'`` skips, without waiting, a row that
    another transaction has issued but not yet committed, so a refund racing with an
    approval or the vesting job reversed nothing and the reward stayed paid.
    """
    session.refresh(reward, with_for_update=True)


def _transition(
    session: Session,
    reward: Reward,
    from_statuses: Sequence[str],
    to: str,
    *,
    reason: str | None = None,
    **values: Any,
) -> bool:
    """Move the reward to ``to`` if (and only if) it is in one of ``from_statuses`` now."""
    now = utcnow()
    changes: dict[str, Any] = {"status": to, "updated_at": now, **values}
    if reason is not None:
        changes["reason"] = reason[:500]
    done = session.execute(
        update(Reward)
        .where(Reward.id == reward.id, Reward.status.in_(list(from_statuses)))
        .values(**changes)
        .returning(Reward.id)
        .execution_options(synchronize_session=False)
    ).first()
    session.refresh(reward)
    return done is not None


def issue(
    session: Session,
    program: Program,
    reward: Reward,
    *,
    from_statuses: Sequence[str] = OPEN_STATUSES,
    actor: str = "",
    note: str = "",
) -> bool:
    """Deliver the reward once: points entry, coupon code, invite grant or custom webhook.

    Returns True when this call issued it. When delivery is impossible now (an
    empty coupon pool), the reward is held with the reason instead. No savepoint:
    a delivery that cannot happen writes nothing before it says so, and savepoints
    would also release the job queue's after-commit hook too early.
    """
    if not _transition(session, reward, from_statuses, "issued", reason="", issued_at=utcnow()):
        return False
    try:
        _deliver(session, program, reward)
    except RewardUndeliverable as exc:
        # Delivery wrote nothing (no code was free, no capability to grant with): the
        # reward goes back to waiting, held with the reason, in this same transaction.
        _transition(session, reward, ("issued",), "held", reason=str(exc), issued_at=None)
        history.record(session, reward, "held", str(exc), actor)
        return False
    history.record(session, reward, "issued", note, actor)
    _emit(session, program, "reward.issued", {"reward": reward_out(session, program, reward)})
    return True


def _deliver(session: Session, program: Program, reward: Reward) -> None:
    rule = session.get_one(RewardRule, reward.rule_id)
    reason = f"reward: {rule.name}"
    key = f"reward:{reward.id}"
    if reward.kind == "points":
        ledger.credit(session, program, reward.member_id, reward.amount, reason=reason, key=key)
    elif reward.kind == "invites":
        _grant_invites(session, program, reward.member_id, reward.amount, reason=reason, key=key)
    elif reward.kind == "coupon":
        if rule.pool_id is None:
            raise RewardUndeliverable("the rule has no coupon pool")
        if coupons.claim_code(session, rule.pool_id, reward.id) is None:
            pool = coupons.get_pool_by_id(session, program, rule.pool_id)
            raise RewardUndeliverable(
                f"coupon pool {pool.name!r} is empty; upload codes, then approve"
            )
    # custom rewards are delivered by the reward.issued webhook alone


# --- milestones ----------------------------------------------------------------------


def _lock_referrer(session: Session, referrer_id: int) -> None:
    """Counting a referrer's successful referrals takes turns (SQLite: the write lock does)."""
    if is_postgres(session):
        session.execute(select(func.pg_advisory_xact_lock(MILESTONE_LOCK_NAMESPACE, referrer_id)))


def _record_progress(
    session: Session,
    program: Program,
    referrer_id: int,
    referral_id: int,
    stage: str,
    trigger_key: str,
    occurred_at: datetime,
) -> None:
    session.execute(
        dialect_insert(session, RewardProgress)
        .values(
            program_id=program.id,
            referrer_id=referrer_id,
            referral_id=referral_id,
            stage=stage,
            trigger_key=trigger_key,
            occurred_at=occurred_at,
            revoked_reason="",
        )
        .on_conflict_do_nothing(index_elements=["program_id", "stage", "trigger_key"])
    )


def successful_referrals(
    session: Session, program: Program, referrer_id: int, *, stage: str = "conversion"
) -> int:
    """Distinct referrals of the referrer that reached ``stage`` and were not taken back."""
    return int(
        session.scalar(
            select(func.count(func.distinct(RewardProgress.referral_id))).where(
                RewardProgress.program_id == program.id,
                RewardProgress.referrer_id == referrer_id,
                RewardProgress.stage == stage,
                RewardProgress.revoked_at.is_(None),
            )
        )
        or 0
    )


def _milestone_key(session: Session, rule: RewardRule, member_id: int) -> str:
    """``member:<id>:<n>``, n = the member's milestone rewards of this rule taken back because
    the count fell below the milestone: a milestone is paid once, and once more only after
    the referrer lost it that way and earned it again (a reviewer's rejection is final)."""
    undone = session.scalar(
        select(func.count())
        .select_from(Reward)
        .where(
            Reward.rule_id == rule.id,
            Reward.member_id == member_id,
            Reward.below_milestone.is_(True),
        )
    )
    return f"member:{member_id}:{int(undone or 0)}"


def _recheck_milestones(
    session: Session, program: Program, referrer_ids: Iterable[int], reason: str
) -> list[Reward]:
    """Take back milestone rewards whose referrer no longer has enough successful referrals."""
    out: list[Reward] = []
    for referrer_id in sorted(set(referrer_ids)):
        _lock_referrer(session, referrer_id)
        paid = session.scalars(
            select(Reward)
            .where(
                Reward.program_id == program.id,
                Reward.member_id == referrer_id,
                Reward.trigger == "milestone",
                Reward.status.in_((*OPEN_STATUSES, "issued")),
            )
            .order_by(Reward.id)
        ).all()
        for reward in paid:
            rule = session.get_one(RewardRule, reward.rule_id)
            count = successful_referrals(session, program, referrer_id, stage=rule.milestone_on)
            if (
                rule.milestone is not None
                and count < rule.milestone
                and _reverse_one(session, program, reward, reason, below_milestone=True)
            ):
                out.append(reward)
    return out


# --- reversal ------------------------------------------------------------------------


def reverse_rewards(
    session: Session,
    program: Program,
    *,
    trigger_key: str | None = None,
    referral_id: int | None = None,
    reason: str,
) -> list[Reward]:
    """Take back the rewards of one trigger (a refund) or of one referral (fraud).

    Issued rewards get compensating entries: a points reversal in the ledger,
    the coupon code voided, a negative invite grant; a custom reward is
    announced by ``reward.reversed``. Rewards not yet issued are simply
    stopped. Milestones whose referrer falls below the count are taken back
    too. Idempotent: returns the rewards this call reversed (none on a repeat).
    """
    if trigger_key is None and referral_id is None:
        raise field("trigger_key", "give trigger_key or referral_id")
    reason = (reason or "").strip()[:500] or "reversed"
    now = utcnow()
    stmt = select(Reward).where(
        Reward.program_id == program.id,
        Reward.trigger != "milestone",
        Reward.status.in_((*OPEN_STATUSES, "issued")),
    )
    progress = update(RewardProgress).where(
        RewardProgress.program_id == program.id, RewardProgress.revoked_at.is_(None)
    )
    if trigger_key is not None:
        stmt = stmt.where(Reward.trigger_key == trigger_key)
        progress = progress.where(RewardProgress.trigger_key == trigger_key)
    if referral_id is not None:
        stmt = stmt.where(Reward.referral_id == referral_id)
        progress = progress.where(RewardProgress.referral_id == referral_id)
    out = [
        r
        for r in session.scalars(stmt.order_by(Reward.id)).all()
        if _reverse_one(session, program, r, reason)
    ]
    affected = session.scalars(
        progress.values(revoked_at=now, revoked_reason=reason)
        .returning(RewardProgress.referrer_id)
        .execution_options(synchronize_session=False)
    ).all()
    out.extend(_recheck_milestones(session, program, affected, reason))
    return out


def _reverse_one(
    session: Session,
    program: Program,
    reward: Reward,
    reason: str,
    actor: str = "",
    *,
    below_milestone: bool = False,
) -> bool:
    _lock(session, reward)
    now = utcnow()
    marks: dict[str, Any] = {"reversed_at": now, "below_milestone": below_milestone}
    if _transition(session, reward, ("issued",), "reversed", reason=reason, **marks):
        _compensate(session, program, reward, reason)
        history.record(session, reward, "reversed", reason, actor)
        _emit(
            session,
            program,
            "reward.reversed",
            {"reward": reward_out(session, program, reward), "reason": reason},
        )
        return True
    if _transition(session, reward, OPEN_STATUSES, "reversed", reason=reason, **marks):
        history.record(session, reward, "reversed", f"before delivery: {reason}", actor)
        return True
    return False


def _compensate(session: Session, program: Program, reward: Reward, reason: str) -> None:
    key = f"reward:{reward.id}"
    if reward.kind == "points":
        ledger.reverse(session, program, key, reason[:200])
    elif reward.kind == "coupon":
        coupons.void_code_of_reward(session, reward.id)
    elif reward.kind == "invites":
        referrals = _optional("budding.referrals.service")
        if referrals is None or not hasattr(referrals, "grant_invites"):
            raise Conflict(
                "extra invites cannot be revoked without the referrals capability",
                fields={"kind": "invites"},
            )
        referrals.grant_invites(
            session,
            program,
            reward.member_id,
            -reward.amount,
            reason=reason[:200],
            key=f"{key}:reversal",
        )


# --- review --------------------------------------------------------------------------


def get_reward(session: Session, program: Program, reward_id: int) -> Reward:
    reward = session.get(Reward, reward_id)
    if reward is None or reward.program_id != program.id:
        raise NotFound(f"no reward {reward_id}", fields={"reward_id": "unknown reward"})
    return reward


def approve_reward(
    session: Session, program: Program, reward_id: int, *, actor: str = "", note: str = ""
) -> Reward:
    """Issue a pending or held reward now (approval on review also ends vesting).

    Approving an issued reward changes nothing; a rejected or reversed one is a conflict.
    """
    reward = get_reward(session, program, reward_id)
    _lock(session, reward)
    if reward.status == "issued":
        return reward
    if reward.status not in OPEN_STATUSES:
        raise Conflict(
            f"reward {reward_id} is {reward.status}; it cannot be approved",
            fields={"status": reward.status},
        )
    if not issue(
        session, program, reward, from_statuses=OPEN_STATUSES, actor=actor, note=note or "approved"
    ):
        session.refresh(reward)
        if reward.status == "issued":
            return reward
        raise CouponPoolEmpty(
            reward.reason or "the reward could not be issued", fields={"pool": reward.reason}
        )
    return reward


def reject_reward(
    session: Session, program: Program, reward_id: int, *, actor: str = "", reason: str = ""
) -> Reward:
    """Refuse a pending or held reward, or take back an issued one (compensating entries).

    Rejecting a reward already rejected or reversed changes nothing.
    """
    reward = get_reward(session, program, reward_id)
    _lock(session, reward)
    reason = reason.strip() or "rejected on review"
    if reward.status in ("rejected", "reversed"):
        return reward
    if reward.status == "issued":
        _reverse_one(session, program, reward, reason, actor)
    elif _transition(session, reward, OPEN_STATUSES, "rejected", reason=reason):
        history.record(session, reward, "rejected", reason, actor)
    else:  # changed under us: report the state it is in now
        session.refresh(reward)
    return reward


def release_referral(
    session: Session, program: Program, referral_id: int, *, actor: str = "", note: str = ""
) -> list[Reward]:
    """A referral passed review: its held rewards go on (issued now, or left to vest)."""
    # The pending ones are locked too: a vesting job may be holding one right now (it
    # read the referral as under review); the lock waits for it and reads its outcome.
    rows = session.scalars(
        select(Reward)
        .where(
            Reward.program_id == program.id,
            Reward.referral_id == referral_id,
            Reward.status.in_(("held", "pending")),
        )
        .order_by(Reward.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    out: list[Reward] = []
    for reward in (r for r in rows if r.status == "held"):
        if reward.vests_at is not None and reward.vests_at > utcnow():
            if _transition(session, reward, ("held",), "pending", reason=""):
                history.record(session, reward, "released", note or "review passed; vesting", actor)
                _schedule_vesting(session, reward, f"released-{utcnow().timestamp():.0f}")
                out.append(reward)
        elif issue(
            session,
            program,
            reward,
            from_statuses=("held",),
            actor=actor,
            note=note or "review passed",
        ):
            out.append(reward)
    return out


def hold_referral(
    session: Session, program: Program, referral_id: int, *, reason: str, actor: str = ""
) -> list[Reward]:
    """A referral went under review: its rewards not yet issued wait for the outcome."""
    waiting = session.scalars(
        select(Reward)
        .where(
            Reward.program_id == program.id,
            Reward.referral_id == referral_id,
            Reward.status == "pending",
        )
        .order_by(Reward.id)
    ).all()
    out = []
    for reward in waiting:
        if _transition(session, reward, ("pending",), "held", reason=reason):
            history.record(session, reward, "held", reason, actor)
            out.append(reward)
    return out


# --- vesting -------------------------------------------------------------------------


@dataclass
class VestResult:
    vested: int = 0
    rejected: int = 0
    held: int = 0

    def add(self, outcome: str) -> None:
        if outcome == "vested":
            self.vested += 1
        elif outcome == "rejected":
            self.rejected += 1
        elif outcome == "held":
            self.held += 1


def vest_due(
    session: Session,
    program: Program | None = None,
    *,
    now: datetime | None = None,
    limit: int = VEST_BATCH,
) -> VestResult:
    """Vest every pending reward whose time has come (at most ``limit``); see ``vest``.

    Each pending reward also has its own scheduled job (``rewards.vest_reward``);
    this sweep (``budding rewards vest``, or the ``rewards.vest_due`` job) catches
    any whose job was lost.
    """
    now = now or utcnow()
    stmt = select(Reward).where(
        Reward.status == "pending", Reward.vests_at.is_not(None), Reward.vests_at <= now
    )
    if program is not None:
        stmt = stmt.where(Reward.program_id == program.id)
    result = VestResult()
    for reward in session.scalars(stmt.order_by(Reward.vests_at, Reward.id).limit(limit)).all():
        result.add(vest(session, reward, now=now))
    return result


def vest(session: Session, reward: Reward, *, now: datetime | None = None) -> str:
    """Issue one pending reward if its vesting time has come and the referee stayed active.

    The referee stayed active when they were not erased and sent no ``churn``
    event since the trigger; one who churned loses the reward (``rejected``).
    A referral now held or rejected holds or reverses it. Returns ``vested``,
    ``rejected``, ``held``, ``not_due`` or ``unchanged`` (not pending any more).
    """
    from budding.members import events as member_events
    from budding.programs.service import get_program_by_id

    now = now or utcnow()
    # Locked before the referral's status is read: a review deciding it at the same time
    # locks its rewards too (release_referral), so one of the two sees the other's outcome.
    _lock(session, reward)
    if reward.status != "pending":
        return "unchanged"
    if reward.vests_at is not None and reward.vests_at > now:
        return "not_due"
    program = get_program_by_id(session, reward.program_id)
    status = _referral_status(session, program, reward.referral_id)
    if status == "rejected":
        return (
            "rejected"
            if _reverse_one(session, program, reward, "the referral was rejected")
            else "unchanged"
        )
    if status == "held":
        if _transition(session, reward, ("pending",), "held", reason=HELD_FOR_REVIEW):
            history.record(session, reward, "held", reward.reason)
            return "held"
        return "unchanged"
    referee = _member_or_none(session, reward.referee_id)
    churned = referee is None or referee.erased_at is not None
    if not churned and referee is not None:
        found, _ = member_events.query_events(
            session,
            program,
            member=referee.external_id,
            type="churn",
            since=reward.occurred_at,
            until=now + timedelta(seconds=1),
            limit=1,
        )
        churned = bool(found)
    if churned:
        why = "the referee did not stay active until the reward vested"
        if _transition(session, reward, ("pending",), "rejected", reason=why):
            history.record(session, reward, "rejected", why, "vesting")
            return "rejected"
        return "unchanged"
    if issue(session, program, reward, from_statuses=("pending",), actor="vesting", note="vested"):
        return "vested"
    session.refresh(reward)
    return "held" if reward.status == "held" else "unchanged"


def vest_by_id(session: Session, reward_id: int, *, now: datetime | None = None) -> str:
    reward = session.get(Reward, reward_id)
    if reward is None:
        return "unchanged"
    return vest(session, reward, now=now)


def _schedule_vesting(session: Session, reward: Reward, tag: str) -> None:
    """A durable job that vests the reward when its time comes (``rewards.vest_reward``)."""
    if reward.vests_at is None:
        return
    from budding.core import jobs

    jobs.enqueue(
        session,
        "rewards.vest_reward",
        {"reward_id": reward.id},
        program_id=reward.program_id,
        run_at=reward.vests_at,
        dedupe_key=f"rewards.vest:{reward.id}:{tag}",
    )


def _member_or_none(session: Session, member_id: int | None) -> Member | None:
    if member_id is None:
        return None
    try:
        return members.get_member_by_id(session, member_id)
    except NotFound:
        return None


# --- queries -------------------------------------------------------------------------


def rewards_of(
    session: Session,
    program: Program,
    member_id: int,
    status: str | None = None,
    *,
    limit: int | None = None,
) -> list[Reward]:
    """A member's rewards, newest first (for the portal); all of them unless ``limit``."""
    if status is not None and status not in STATUSES:
        raise field("status", f"must be one of {', '.join(STATUSES)}")
    stmt = select(Reward).where(Reward.program_id == program.id, Reward.member_id == member_id)
    if status is not None:
        stmt = stmt.where(Reward.status == status)
    stmt = stmt.order_by(Reward.id.desc())
    return list(session.scalars(stmt if limit is None else stmt.limit(limit)))


def list_rewards(
    session: Session,
    program: Program,
    *,
    member_id: int | None = None,
    status: str | None = None,
    referral_id: int | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[Reward]:
    """Rewards, newest first; page with ``before_id`` (the last ``id`` of the previous page)."""
    if status is not None and status not in STATUSES:
        raise field("status", f"must be one of {', '.join(STATUSES)}")
    if not 1 <= limit <= 1001:
        raise field("limit", "must be between 1 and 1000")
    stmt = select(Reward).where(Reward.program_id == program.id)
    if member_id is not None:
        stmt = stmt.where(Reward.member_id == member_id)
    if status is not None:
        stmt = stmt.where(Reward.status == status)
    if referral_id is not None:
        stmt = stmt.where(Reward.referral_id == referral_id)
    if before_id is not None:
        stmt = stmt.where(Reward.id < before_id)
    return list(session.scalars(stmt.order_by(Reward.id.desc()).limit(limit)))


def count_by_status(session: Session, program: Program) -> dict[str, int]:
    rows = session.execute(
        select(Reward.status, func.count())
        .where(Reward.program_id == program.id)
        .group_by(Reward.status)
    )
    out = dict.fromkeys(STATUSES, 0)
    out.update({s: int(n) for s, n in rows})
    return out


def rewards_out(session: Session, program: Program, rows: Sequence[Reward]) -> list[dict[str, Any]]:
    """API/webhook shapes of several rewards, with member ids, rule names and coupon codes."""
    people = members.get_members_by_ids(session, {r.member_id for r in rows})
    rule_rows = rules.rules_by_id(session, {r.rule_id for r in rows})
    codes = coupons.codes_of_rewards(session, [r.id for r in rows if r.kind == "coupon"])
    out = []
    for r in rows:
        rule = rule_rows.get(r.rule_id)
        person = people.get(r.member_id)
        out.append(
            {
                "id": r.id,
                "rule_id": r.rule_id,
                "rule": rule.name if rule else "",
                "member": person.external_id if person else "",
                "side": r.side,
                "trigger": r.trigger,
                "trigger_key": r.trigger_key,
                "referral_id": r.referral_id,
                "kind": r.kind,
                "amount": r.amount,
                "coupon_code": codes.get(r.id),
                "payload": r.payload or {},
                "status": r.status,
                "reason": r.reason,
                "occurred_at": r.occurred_at,
                "vests_at": r.vests_at,
                "created_at": r.created_at,
                "issued_at": r.issued_at,
                "reversed_at": r.reversed_at,
            }
        )
    return out


def reward_out(session: Session, program: Program, reward: Reward) -> dict[str, Any]:
    """One reward as JSON-ready data (datetimes as ISO text), as webhooks carry it."""
    data = rewards_out(session, program, [reward])[0]
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in data.items()}
