"""Coupon pools: uploaded codes, each handed out exactly once. Never commits.

A code is claimed by one conditional statement::

    UPDATE coupon_codes SET reward_id = :reward, claimed_at = :now
    WHERE id = (SELECT id FROM coupon_codes
                WHERE pool_id = :pool AND reward_id IS NULL AND voided_at IS NULL
                ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING id, code

On PostgreSQL concurrent claimers skip each other's locked rows instead of
queueing on the same one; on SQLite the unit of work holds the single write
lock (``BEGIN IMMEDIATE``), so claimers take turns. A unique constraint on
``reward_id`` backs it: one reward, one code.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy import and_, case, func, select, update
from sqlalchemy.orm import Session

from budding.core.db import dialect_insert, utcnow
from budding.core.errors import NotFound, Reason, from_pydantic
from budding.core.errors import field as field_error
from budding.core.i18n import N_
from budding.programs.models import Program
from budding.rewards.models import CouponCode, CouponPool
from budding.rewards.schemas import PoolIn

CODE_RE = re.compile(r"^[^\s\x00-\x1f\x7f]{1,100}$")
INSERT_BATCH = 1000
MAX_CODES_PER_UPLOAD = 1_000_000
# On PostgreSQL a claim may find every free code locked by claimers still in flight;
# it waits a little for them rather than reporting an empty pool.
CLAIM_RETRIES = 50
CLAIM_WAIT_SECONDS = 0.02


def create_pool(session: Session, program: Program, name: str, description: str = "") -> CouponPool:
    """A new pool, or the existing one with this name (idempotent)."""
    try:
        spec = PoolIn(name=name, description=description)
    except ValidationError as exc:
        raise from_pydantic(exc) from None
    session.execute(
        dialect_insert(session, CouponPool)
        .values(
            program_id=program.id,
            name=spec.name,
            description=spec.description,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["program_id", "name"])
    )
    return get_pool(session, program, spec.name)


def get_pool_or_none(session: Session, program: Program, name: str) -> CouponPool | None:
    return session.scalar(
        select(CouponPool).where(CouponPool.program_id == program.id, CouponPool.name == name)
    )


def get_pool(session: Session, program: Program, name: str) -> CouponPool:
    pool = get_pool_or_none(session, program, name)
    if pool is None:
        raise NotFound(f"no coupon pool {name!r}", fields={"pool": Reason(N_("unknown pool"))})
    return pool


def get_pool_by_id(session: Session, program: Program, pool_id: int) -> CouponPool:
    pool = session.get(CouponPool, pool_id)
    if pool is None or pool.program_id != program.id:
        raise NotFound("no such coupon pool", fields={"pool": Reason(N_("unknown pool"))})
    return pool


@dataclass(frozen=True)
class PoolStats:
    pool: CouponPool
    available: int
    claimed: int
    voided: int


def pool_stats(session: Session, program: Program) -> list[PoolStats]:
    """Every pool of the program with its counts of available, claimed and voided codes."""
    available = func.sum(
        case(
            (
                and_(
                    CouponCode.id.is_not(None),  # the outer join's row of an empty pool
                    CouponCode.reward_id.is_(None),
                    CouponCode.voided_at.is_(None),
                ),
                1,
            ),
            else_=0,
        )
    )
    claimed = func.sum(case((CouponCode.reward_id.is_not(None), 1), else_=0))
    voided = func.sum(case((CouponCode.voided_at.is_not(None), 1), else_=0))
    rows = session.execute(
        select(CouponPool, available, claimed, voided)
        .outerjoin(CouponCode, CouponCode.pool_id == CouponPool.id)
        .where(CouponPool.program_id == program.id)
        .group_by(CouponPool.id)
        .order_by(CouponPool.name)
    ).all()
    return [PoolStats(p, int(a or 0), int(c or 0), int(v or 0)) for p, a, c, v in rows]


def available_count(session: Session, pool_id: int) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(CouponCode)
            .where(
                CouponCode.pool_id == pool_id,
                CouponCode.reward_id.is_(None),
                CouponCode.voided_at.is_(None),
            )
        )
        or 0
    )


@dataclass
class UploadResult:
    pool: CouponPool
    added: int = 0
    duplicates: int = 0
    rejected: dict[int, str] = field(default_factory=dict)  # line number → reason


def parse_codes(text: str) -> tuple[list[tuple[int, str]], dict[int, str]]:
    """Codes from CSV text: the ``code`` column if the header has one, else the first column.

    Returns ``[(line, code)]`` and ``{line: reason}`` for the lines refused.
    """
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    column = 0
    start = 0
    if rows:
        header = [c.strip().lower() for c in rows[0]]
        if "code" in header:
            column, start = header.index("code"), 1
    codes: list[tuple[int, str]] = []
    rejected: dict[int, str] = {}
    for n, row in enumerate(rows[start:], start=start + 1):
        if not row or not any(c.strip() for c in row):
            continue
        value = row[column].strip() if column < len(row) else ""
        if not value:
            rejected[n] = N_("the code is empty")
        elif not CODE_RE.match(value):
            rejected[n] = N_("a code is 1-100 characters without spaces or control characters")
        else:
            codes.append((n, value))
    return codes, rejected


def upload_codes(
    session: Session,
    program: Program,
    pool_name: str,
    codes: Iterable[tuple[int, str]] | str,
    *,
    description: str = "",
) -> UploadResult:
    """Add codes to a pool (created when missing). Codes already in the pool are counted as
    duplicates and stored once, so an upload can be repeated safely."""
    rejected: dict[int, str] = {}
    if isinstance(codes, str):
        parsed, rejected = parse_codes(codes)
    else:
        parsed = list(codes)
    if len(parsed) > MAX_CODES_PER_UPLOAD:
        raise field_error(
            "file", N_("holds more than %(limit)s codes"), limit=f"{MAX_CODES_PER_UPLOAD:,}"
        )
    if not parsed and not rejected:
        raise field_error("file", N_("holds no codes"))
    if not parsed:  # every line refused: say why, and create no empty pool
        line, why = next(iter(rejected.items()))
        # the line's reason (``parse_codes``'s words) is translated with the sentence
        if len(rejected) > 1:
            raise field_error(
                "file",
                N_("holds no valid code: line %(line)s: %(why)s (and %(more)s more lines)"),
                line=line,
                why=Reason(why),
                more=f"{len(rejected) - 1:,}",
            )
        raise field_error(
            "file", N_("holds no valid code: line %(line)s: %(why)s"), line=line, why=Reason(why)
        )
    pool = create_pool(session, program, pool_name, description)
    result = UploadResult(pool=pool, rejected=rejected)
    seen: set[str] = set()
    unique: list[str] = []
    for _line, code in parsed:
        if code in seen:
            result.duplicates += 1
            continue
        seen.add(code)
        unique.append(code)
    now = utcnow()
    for i in range(0, len(unique), INSERT_BATCH):
        chunk = unique[i : i + INSERT_BATCH]
        inserted = session.scalars(
            dialect_insert(session, CouponCode)
            .values(
                [
                    {"program_id": program.id, "pool_id": pool.id, "code": c, "uploaded_at": now}
                    for c in chunk
                ]
            )
            .on_conflict_do_nothing(index_elements=["pool_id", "code"])
            .returning(CouponCode.id)
        ).all()
        result.added += len(inserted)
        result.duplicates += len(chunk) - len(inserted)
    return result


def claim_code(session: Session, pool_id: int, reward_id: int) -> CouponCode | None:
    """Hand one free code of the pool to the reward, or None when the pool is empty.

    A reward that already holds a code gets that code back (idempotent).
    """
    held = code_of_reward(session, reward_id)
    if held is not None:
        return held
    for attempt in range(CLAIM_RETRIES):
        free = (
            select(CouponCode.id)
            .where(
                CouponCode.pool_id == pool_id,
                CouponCode.reward_id.is_(None),
                CouponCode.voided_at.is_(None),
            )
            .order_by(CouponCode.id)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        row = session.execute(
            update(CouponCode)
            .where(CouponCode.id == free)
            .values(reward_id=reward_id, claimed_at=utcnow())
            .returning(CouponCode.id)
            .execution_options(synchronize_session=False)
        ).first()
        if row is not None:
            return session.get_one(CouponCode, row[0], populate_existing=True)
        if available_count(session, pool_id) == 0:
            return None
        if attempt + 1 < CLAIM_RETRIES:  # free codes exist, locked by claimers in flight
            time.sleep(CLAIM_WAIT_SECONDS)
    return None


def code_of_reward(session: Session, reward_id: int) -> CouponCode | None:
    return session.scalar(select(CouponCode).where(CouponCode.reward_id == reward_id))


def codes_of_rewards(session: Session, reward_ids: Iterable[int]) -> dict[int, str]:
    ids = list(reward_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(CouponCode.reward_id, CouponCode.code).where(CouponCode.reward_id.in_(ids))
    )
    return {int(r): c for r, c in rows if r is not None}


def void_code_of_reward(session: Session, reward_id: int) -> CouponCode | None:
    """Mark the reward's code void (it stays linked to the reward: never handed out again)."""
    session.execute(
        update(CouponCode)
        .where(CouponCode.reward_id == reward_id, CouponCode.voided_at.is_(None))
        .values(voided_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    code = code_of_reward(session, reward_id)
    if code is not None:
        session.refresh(code)
    return code


def pool_out(stats: PoolStats) -> dict[str, Any]:
    return {
        "id": stats.pool.id,
        "name": stats.pool.name,
        "description": stats.pool.description,
        "available": stats.available,
        "claimed": stats.claimed,
        "voided": stats.voided,
        "created_at": stats.pool.created_at,
    }
