"""Reward rules: create, update, archive, list. Never commits.

A rule says who is paid (the referrer or the referee), when (at signup, at a
qualifying conversion, or once at the N-th successful referral), what (points,
a coupon from a pool, extra invites, or a custom reward delivered by webhook)
and whether it vests (pending until the referee stays active N days).
Rules are archived, never deleted: the rewards they paid keep citing them.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from budding.core.db import utcnow
from budding.core.errors import NotFound, field, from_pydantic
from budding.core.i18n import N_
from budding.programs.models import Program
from budding.rewards import coupons
from budding.rewards.models import RewardRule
from budding.rewards.schemas import RuleIn, RulePatch

MAX_RULES = 200


def _check(session: Session, program: Program, spec: RuleIn) -> int | None:
    """Cross-field checks, each naming its field; returns the coupon pool's id."""
    if spec.trigger == "milestone":
        if spec.milestone is None:
            raise field("milestone", N_("is required when trigger is milestone"))
        if spec.side != "referrer":
            raise field("side", N_("milestone rewards go to the referrer"))
    elif spec.milestone is not None:
        raise field("milestone", N_("only milestone rules take a milestone"))
    if spec.kind in ("points", "invites") and spec.amount < 1:
        raise field("amount", N_("must be at least 1 for %(kind)s rewards"), kind=spec.kind)
    if spec.kind == "coupon":
        if not spec.pool:
            raise field("pool", N_("is required for coupon rewards"))
        return coupons.get_pool(session, program, spec.pool).id
    if spec.pool:
        raise field("pool", N_("only coupon rewards take a pool"))
    return None


def parse_rule(data: dict[str, Any] | RuleIn) -> RuleIn:
    if isinstance(data, RuleIn):
        return data
    try:
        return RuleIn.model_validate(data)
    except ValidationError as exc:
        raise from_pydantic(exc) from None


def create_rule(session: Session, program: Program, data: dict[str, Any] | RuleIn) -> RewardRule:
    spec = parse_rule(data)
    pool_id = _check(session, program, spec)
    if len(list_rules(session, program)) >= MAX_RULES:
        raise field("rules", N_("a program has at most %(limit)s active rules"), limit=MAX_RULES)
    now = utcnow()
    rule = RewardRule(
        program_id=program.id,
        name=spec.name,
        side=spec.side,
        trigger=spec.trigger,
        milestone=spec.milestone,
        milestone_on=spec.milestone_on,
        kind=spec.kind,
        amount=spec.amount if spec.kind in ("points", "invites") else 0,
        pool_id=pool_id,
        payload=spec.payload,
        vesting_days=spec.vesting_days,
        active=spec.active,
        created_at=now,
        updated_at=now,
    )
    session.add(rule)
    session.flush()
    return rule


def get_rule(session: Session, program: Program, rule_id: int) -> RewardRule:
    rule = session.get(RewardRule, rule_id)
    if rule is None or rule.program_id != program.id or rule.archived_at is not None:
        raise NotFound(f"no reward rule {rule_id}", fields={"rule_id": "unknown rule"})
    return rule


def pool_name(session: Session, program: Program, rule: RewardRule) -> str | None:
    if rule.pool_id is None:
        return None
    return coupons.get_pool_by_id(session, program, rule.pool_id).name


def rule_as_input(session: Session, program: Program, rule: RewardRule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "side": rule.side,
        "trigger": rule.trigger,
        "milestone": rule.milestone,
        "milestone_on": rule.milestone_on,
        "kind": rule.kind,
        "amount": rule.amount,
        "pool": pool_name(session, program, rule),
        "payload": rule.payload,
        "vesting_days": rule.vesting_days,
        "active": rule.active,
    }


def update_rule(
    session: Session, program: Program, rule_id: int, data: dict[str, Any] | RulePatch
) -> RewardRule:
    """Change the fields given; the rule as a whole is checked again. Rewards already
    created keep what they were created with."""
    rule = get_rule(session, program, rule_id)
    try:
        patch = data if isinstance(data, RulePatch) else RulePatch.model_validate(data)
    except ValidationError as exc:
        raise from_pydantic(exc) from None
    merged = rule_as_input(session, program, rule)
    merged.update(patch.model_dump(exclude_unset=True))
    if merged.get("trigger") != "milestone" and "milestone" not in patch.model_fields_set:
        merged["milestone"] = None
    if merged.get("kind") != "coupon" and "pool" not in patch.model_fields_set:
        merged["pool"] = None
    spec = parse_rule(merged)
    pool_id = _check(session, program, spec)
    rule.name = spec.name
    rule.side = spec.side
    rule.trigger = spec.trigger
    rule.milestone = spec.milestone
    rule.milestone_on = spec.milestone_on
    rule.kind = spec.kind
    rule.amount = spec.amount if spec.kind in ("points", "invites") else 0
    rule.pool_id = pool_id
    rule.payload = spec.payload
    rule.vesting_days = spec.vesting_days
    rule.active = spec.active
    rule.updated_at = utcnow()
    session.flush()
    return rule


def archive_rule(session: Session, program: Program, rule_id: int) -> RewardRule:
    """Stop a rule for good (it disappears from lists; its rewards stay)."""
    rule = get_rule(session, program, rule_id)
    rule.active = False
    rule.archived_at = utcnow()
    rule.updated_at = rule.archived_at
    session.flush()
    return rule


def list_rules(
    session: Session, program: Program, *, active_only: bool = False
) -> list[RewardRule]:
    stmt = select(RewardRule).where(
        RewardRule.program_id == program.id, RewardRule.archived_at.is_(None)
    )
    if active_only:
        stmt = stmt.where(RewardRule.active.is_(True))
    return list(session.scalars(stmt.order_by(RewardRule.id)))


def rules_by_id(session: Session, ids: set[int]) -> dict[int, RewardRule]:
    if not ids:
        return {}
    return {r.id: r for r in session.scalars(select(RewardRule).where(RewardRule.id.in_(ids)))}


def rule_out(session: Session, program: Program, rule: RewardRule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.name,
        "side": rule.side,
        "trigger": rule.trigger,
        "milestone": rule.milestone,
        "milestone_on": rule.milestone_on,
        "kind": rule.kind,
        "amount": rule.amount,
        "pool": pool_name(session, program, rule),
        "payload": rule.payload,
        "vesting_days": rule.vesting_days,
        "active": rule.active,
        "created_at": rule.created_at,
        "updated_at": rule.updated_at,
    }
