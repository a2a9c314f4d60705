"""The append-only history of each reward (Saleor's ``events.py`` habit): every state change
is a new row, so the reward's story can be told and audited, never overwritten."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from budding.core.db import utcnow
from budding.rewards.models import Reward, RewardEvent


def record(session: Session, reward: Reward, type: str, note: str = "", actor: str = "") -> None:
    session.add(
        RewardEvent(
            program_id=reward.program_id,
            reward_id=reward.id,
            type=type,
            note=note[:500],
            actor=actor[:320],
            created_at=utcnow(),
        )
    )


def history(session: Session, reward_id: int) -> list[RewardEvent]:
    return list(
        session.scalars(
            select(RewardEvent).where(RewardEvent.reward_id == reward_id).order_by(RewardEvent.id)
        )
    )
