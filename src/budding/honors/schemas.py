"""API shapes of the points ledger."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class PointsEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    points: int
    reason: str
    key: str
    reverses_id: int | None
    created_at: datetime


class PointsOut(BaseModel):
    member: str
    balance: int
    entries: list[PointsEntryOut]
    next_cursor: str | None
