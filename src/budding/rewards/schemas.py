"""API input and output shapes of reward rules, rewards and coupon pools."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

from budding.core.errors import ReasonError
from budding.core.i18n import N_

Side = Literal["referrer", "referee"]
Trigger = Literal["signup", "conversion", "milestone"]
Kind = Literal["points", "coupon", "invites", "custom"]
Stage = Literal["signup", "conversion"]
Status = Literal["pending", "held", "issued", "rejected", "reversed"]

MAX_PAYLOAD_BYTES = 4096
MAX_AMOUNT = 1_000_000


class RuleIn(BaseModel):
    """A reward rule. ``amount`` is points (kind ``points``) or invites (kind ``invites``);
    ``pool`` names the coupon pool (kind ``coupon``); ``payload`` is sent with a custom
    reward's ``reward.issued`` webhook. Rules that combine fields wrongly (a milestone rule
    without ``milestone``, a coupon without ``pool``…) are refused by the service, naming
    the field."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200)
    side: Side
    trigger: Trigger
    milestone: int | None = Field(
        None, ge=1, le=100_000, description="successful referrals that earn a milestone reward"
    )
    milestone_on: Stage = Field(
        "conversion", description="what makes a referral successful for a milestone"
    )
    kind: Kind
    amount: int = Field(0, ge=0, le=MAX_AMOUNT)
    pool: str | None = Field(None, max_length=100, description="coupon pool name")
    payload: dict[str, Any] = Field(default_factory=dict)
    vesting_days: int = Field(
        0, ge=0, le=3650, description="days the referee must stay active before it vests"
    )
    active: bool = True

    @field_validator("payload")
    @classmethod
    def _payload(cls, v: dict[str, Any]) -> dict[str, Any]:
        try:
            encoded = orjson.dumps(v)
        except orjson.JSONEncodeError:
            # It goes into the reward's webhook as is (orjson): an integer beyond 64 bits
            # (a TypeError, which pydantic does not turn into a field error) was a 500.
            raise ValueError("must be JSON with integers within 64 bits") from None
        if len(encoded) > MAX_PAYLOAD_BYTES:
            raise ValueError(f"must be at most {MAX_PAYLOAD_BYTES} bytes as JSON")
        return v


class RulePatch(BaseModel):
    """Partial update of a rule: only the fields given change (then the whole rule is checked)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(None, min_length=1, max_length=200)
    side: Side | None = None
    trigger: Trigger | None = None
    milestone: int | None = Field(None, ge=1, le=100_000)
    milestone_on: Stage | None = None
    kind: Kind | None = None
    amount: int | None = Field(None, ge=0, le=MAX_AMOUNT)
    pool: str | None = Field(None, max_length=100)
    payload: dict[str, Any] | None = None
    vesting_days: int | None = Field(None, ge=0, le=3650)
    active: bool | None = None


class RuleOut(BaseModel):
    id: int
    name: str
    side: str
    trigger: str
    milestone: int | None
    milestone_on: str
    kind: str
    amount: int
    pool: str | None
    payload: dict[str, Any]
    vesting_days: int
    active: bool
    created_at: datetime
    updated_at: datetime


class RewardOut(BaseModel):
    id: int
    rule_id: int
    rule: str
    member: str
    side: str
    trigger: str
    trigger_key: str
    referral_id: int | None
    kind: str
    amount: int
    coupon_code: str | None
    payload: dict[str, Any]
    status: str
    reason: str
    occurred_at: datetime
    vests_at: datetime | None
    created_at: datetime
    issued_at: datetime | None
    reversed_at: datetime | None


class RewardPage(BaseModel):
    rewards: list[RewardOut]
    next_cursor: str | None


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field("", max_length=500)


POOL_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class PoolIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=100, json_schema_extra={"pattern": POOL_NAME})
    description: str = Field("", max_length=500)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        # a reason a person can act on, where pydantic's pattern error quotes the regex
        if not re.fullmatch(POOL_NAME, v):
            raise ReasonError(
                N_("use letters, digits, '_', '.' and '-', starting with a letter or digit")
            )
        return v


class PoolOut(BaseModel):
    id: int
    name: str
    description: str
    available: int
    claimed: int
    voided: int
    created_at: datetime


class UploadOut(BaseModel):
    pool: str
    added: int
    duplicates: int
    rejected: dict[int, str] = Field(description="line number → reason")
    available: int
