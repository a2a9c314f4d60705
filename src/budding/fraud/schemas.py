"""Fraud settings and API shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, field_validator

from budding.core.errors import ReasonError
from budding.core.i18n import N_
from budding.fraud.checks import CHECKS, DEFAULT_POLICY

Action = Literal["off", "flag", "hold", "block"]
# Each setting's rules, shared by the settings and their partial update, whose schema then
# states them; the check names are checked by a validator, in its own words.
CheckActions = Annotated[
    dict[str, Action], Field(json_schema_extra={"propertyNames": {"enum": list(CHECKS)}})
]
PerHour = Annotated[int, Field(ge=1, le=100_000)]
RingWindowHours = Annotated[int, Field(ge=1, le=24 * 90)]
RingMinSize = Annotated[int, Field(ge=2, le=1000)]


class FraudSettings(BaseModel):
    """A program's fraud settings, stored in ``program.settings["fraud"]``."""

    model_config = ConfigDict(extra="forbid")

    checks: CheckActions = Field(
        default_factory=lambda: cast(dict[str, Action], dict(DEFAULT_POLICY)),
        description="per check: off, flag, hold (for review) or block",
    )
    velocity_referrer_per_hour: PerHour = Field(
        default=10, description="signups one referrer may bring within an hour"
    )
    velocity_ip_per_hour: PerHour = Field(
        default=5, description="signups one IP address may make within an hour"
    )
    ring_window_hours: RingWindowHours = Field(
        default=24, description="how close in time a ring's accounts are created"
    )
    ring_min_size: RingMinSize = Field(
        default=4, description="accounts from one network that make a ring"
    )

    @field_validator("checks")
    @classmethod
    def _checks(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(v) - set(CHECKS))
        if unknown:
            raise ReasonError(
                N_("unknown checks %(unknown)s; known: %(known)s"),
                unknown=", ".join(unknown),
                known=", ".join(CHECKS),
            )
        return {**DEFAULT_POLICY, **v}

    def action(self, check: str) -> str:
        return self.checks.get(check, DEFAULT_POLICY[check])


class FraudSettingsPatch(BaseModel):
    """Partial update (a null is "not given"), within the settings' own rules."""

    model_config = ConfigDict(extra="forbid")

    checks: CheckActions | None = None
    velocity_referrer_per_hour: PerHour | None = None
    velocity_ip_per_hour: PerHour | None = None
    ring_window_hours: RingWindowHours | None = None
    ring_min_size: RingMinSize | None = None


class AssessmentOut(BaseModel):
    id: int
    action: str
    reasons: list[str]
    details: dict[str, Any]
    referrer: str | None
    member: str | None
    referral_id: int | None
    email_domain: str
    review_status: str
    reviewed_at: datetime | None
    reviewed_by: str
    review_note: str
    created_at: datetime


class AssessmentPage(BaseModel):
    assessments: list[AssessmentOut]
    next_cursor: str | None


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field("", max_length=500)
