"""Settings, API input/output shapes and the plain results other capabilities read."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from budding.core.errors import ReasonError
from budding.core.i18n import LOCALE_SCHEMA, N_, normalise_locale
from budding.core.routing import not_null
from budding.members.schemas import (
    EXTERNAL_ID_SCHEMA,
    TYPE_RE,
    check_external_id,
    normalise_email,
)

CHANNEL_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")
_CONDITION_RE = re.compile(
    r"^\s*(?P<prop>[A-Za-z_][A-Za-z0-9_.]{0,63})\s*(?P<op>>=|<=|==|!=|=|>|<)\s*(?P<value>.+?)\s*$"
)
OPERATORS = (">=", "<=", "==", "!=", ">", "<")

# What parse_condition accepts (or a blank, no condition), for the schema: a refusal keeps
# its words. Quoted values hold no line break (``.`` of _CONDITION_RE matches none).
_NUMBER = r"[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?"
CONDITION_PATTERN = (
    r"^\s*$|^\s*[A-Za-z_][A-Za-z0-9_.]{0,63}\s*((==|!=|=)\s*"
    r"""("[^"\n]*"|'[^'\n]*'|[A-Za-z0-9_.-]+)|(>=|<=|>|<)\s*""" + _NUMBER + r")\s*$"
)


# --- the qualifying conversion -------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """A property test such as ``amount >= 20`` or ``plan == "pro"``."""

    prop: str
    op: str
    value: float | str | bool

    def matches(self, properties: dict[str, Any]) -> bool:
        actual: Any = properties
        for part in self.prop.split("."):
            if not isinstance(actual, dict) or part not in actual:
                return False
            actual = actual[part]
        expected = self.value
        if isinstance(expected, bool):
            if not isinstance(actual, bool):
                return False
        elif isinstance(expected, float):
            if isinstance(actual, bool):
                return False
            if isinstance(actual, str):
                try:
                    actual = float(actual)
                except ValueError:
                    return False
            if not isinstance(actual, int | float):
                return False
        elif not isinstance(actual, str):
            actual = str(actual)
        try:
            return bool(
                {
                    ">=": lambda a, b: a >= b,
                    "<=": lambda a, b: a <= b,
                    "==": lambda a, b: a == b,
                    "!=": lambda a, b: a != b,
                    ">": lambda a, b: a > b,
                    "<": lambda a, b: a < b,
                }[self.op](actual, expected)
            )
        except TypeError:
            return False

    def __str__(self) -> str:
        value = self.value
        shown = (
            ("true" if value else "false")
            if isinstance(value, bool)
            else (f'"{value}"' if isinstance(value, str) else _number(value))
        )
        return f"{self.prop} {self.op} {shown}"


def _number(value: float) -> str:
    """``value`` written exactly (the shortest text that reads back as it), without a
    trailing ".0": 123456789, 0.1, 1e+300."""
    shown = repr(value)
    return shown[:-2] if shown.endswith(".0") else shown


def parse_condition(text: str) -> Condition:
    """Parse ``property op value``; ValueError says what is wrong."""
    m = _CONDITION_RE.match(text)
    if not m:
        raise ReasonError(
            N_(
                "write 'property operator value', e.g. 'amount >= 20' "
                "(operators: >=, <=, ==, !=, >, <)"
            )
        )
    op = "==" if m["op"] == "=" else m["op"]
    raw = m["value"]
    value: float | str | bool
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        value = raw[1:-1]
    elif raw.lower() in ("true", "false"):
        value = raw.lower() == "true"
    else:
        # A number as the schema states it (no "inf" or "nan", which float() would take),
        # and one a float holds: 1e999 would be stored, and compared, as inf.
        if re.fullmatch(_NUMBER, raw):
            value = float(raw)
            if not math.isfinite(value):
                raise ReasonError(N_("%(value)s is too large a number"), value=repr(raw))
        elif re.match(r"^[A-Za-z0-9_.-]+$", raw):
            value = raw
        else:
            raise ReasonError(
                N_("%(value)s is not a number, true/false or a quoted text"), value=repr(raw)
            )
    if op in (">=", "<=", ">", "<") and not isinstance(value, float):
        raise ReasonError(
            N_("%(op)s compares numbers; %(value)s is not a number"), op=op, value=repr(raw)
        )
    return Condition(prop=m["prop"], op=op, value=value)


# --- program settings ----------------------------------------------------------------

Mode = Literal["open", "invite_only", "waitlist"]
# Each setting's rules, shared by the settings and their partial update, whose schema then
# states them. What a validator checks (in its own words) is stated with json_schema_extra.
InviteQuota = Annotated[int, Field(ge=0, le=10_000)]
CodeUses = Annotated[int, Field(ge=1, le=100_000)]
CodeExpiryDays = Annotated[int, Field(ge=1, le=3650)]
AttributionWindowDays = Annotated[int, Field(ge=1, le=365)]
EventTypeName = Annotated[str, Field(json_schema_extra={"pattern": TYPE_RE.pattern})]
ConditionText = Annotated[
    str, Field(max_length=200, json_schema_extra={"pattern": CONDITION_PATTERN})
]
SkipPlaces = Annotated[int, Field(ge=0, le=100_000)]
Places = Annotated[int, Field(ge=0, le=1_000_000)]
Model = Literal["last_touch", "first_touch"]


class ReferralSettings(BaseModel):
    """A program's referral settings, stored in ``program.settings["referrals"]``."""

    model_config = ConfigDict(extra="forbid")

    mode: Mode = Field(
        default="open",
        description="invite_only: registration needs an invite code; waitlist: people queue "
        "and are released in batches; open: anyone may join, referral links attribute.",
    )
    invite_quota: InviteQuota = Field(default=3, description="invite codes per member")
    code_uses: CodeUses = Field(default=1, description="redemptions per invite code")
    code_expiry_days: CodeExpiryDays | None = Field(
        default=None, description="days an invite code stays valid (none: no expiry)"
    )
    attribution_window_days: AttributionWindowDays = Field(
        default=30,
        description="days from a click to a signup, and from a signup to a "
        "qualifying conversion, that still count",
    )
    attribution_model: Model = Field(default="last_touch", description="last_touch or first_touch")
    conversion_event: EventTypeName = Field(
        default="purchase", description="event type of a qualifying conversion"
    )
    conversion_condition: ConditionText | None = Field(
        default=None, description="optional property test, e.g. 'amount >= 20'"
    )
    waitlist_skip_places: SkipPlaces = Field(
        default=5,
        description="places a waitlist entry moves up per confirmed referral",
    )
    waitlist_skip_cap: Places = Field(
        default=50, description="most places one entry can move up in total"
    )
    waitlist_protected_top: Places = Field(
        default=10, description="nobody skips into the first N places"
    )
    waitlist_require_confirmation: bool = Field(
        default=True, description="release only entries whose e-mail is confirmed"
    )

    @field_validator("conversion_event")
    @classmethod
    def _event(cls, v: str) -> str:
        if not TYPE_RE.match(v):
            raise ReasonError(N_("must be an event type: lower-case letters, digits, '_' or '.'"))
        return v

    @field_validator("conversion_condition")
    @classmethod
    def _condition(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        return str(parse_condition(v))

    def condition(self) -> Condition | None:
        return parse_condition(self.conversion_condition) if self.conversion_condition else None


class ReferralSettingsPatch(BaseModel):
    """Partial update: only the fields given change. The bounds are the settings' own, so
    the schema states them; a None is "not given", and a null sent is refused (by
    ReferralSettings) where the setting takes none."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra=not_null(
            "mode",
            "invite_quota",
            "code_uses",
            "attribution_window_days",
            "attribution_model",
            "conversion_event",
            "waitlist_skip_places",
            "waitlist_skip_cap",
            "waitlist_protected_top",
            "waitlist_require_confirmation",
        ),
    )

    mode: Mode | None = None
    invite_quota: InviteQuota | None = None
    code_uses: CodeUses | None = None
    code_expiry_days: CodeExpiryDays | None = None
    attribution_window_days: AttributionWindowDays | None = None
    attribution_model: Model | None = None
    conversion_event: EventTypeName | None = None
    conversion_condition: ConditionText | None = None
    waitlist_skip_places: SkipPlaces | None = None
    waitlist_skip_cap: Places | None = None
    waitlist_protected_top: Places | None = None
    waitlist_require_confirmation: bool | None = None


# --- results other capabilities read ---------------------------------------------------


@dataclass(frozen=True)
class InviteCodeInfo:
    code: str
    display: str
    url: str
    status: str  # available|used|expired|revoked
    uses: int
    used: int
    created_at: datetime
    expires_at: datetime | None
    redeemed_by: list[str] = field(default_factory=list)  # external ids
    issuer: str | None = None  # the issuing member's external id; None for team codes


@dataclass(frozen=True)
class InviteSummary:
    quota: int
    issued: int
    redeemed: int
    left: int
    codes: list[InviteCodeInfo]


@dataclass(frozen=True)
class ReferredMember:
    member_id: int
    external_id: str
    name: str
    joined_at: datetime
    converted_at: datetime | None
    channel: str | None
    status: str
    referral_id: int


@dataclass(frozen=True)
class WaitlistEntryInfo:
    email: str
    position: int | None  # None once released or joined
    total: int
    status: str
    confirmed: bool
    referral_code: str
    referral_url: str
    confirmed_referrals: int
    places_gained: int
    joined_at: datetime
    released_at: datetime | None
    invite_code: str | None = None


# The interface name the other capabilities use.
WaitlistEntry = WaitlistEntryInfo


@dataclass(frozen=True)
class ReferralEdge:
    referrer_id: int
    referee_id: int
    signed_up_at: datetime
    converted_at: datetime | None
    channel: str | None
    generation: int
    status: str = "active"


@dataclass(frozen=True)
class ReferralFact:
    id: int
    program_id: int
    referrer_id: int
    referee_id: int
    source: str
    channel: str | None
    generation: int
    status: str
    status_reason: str
    fraud_reasons: list[str]
    signed_up_at: datetime
    converted_at: datetime | None
    conversion_event_id: str | None
    invite_code: str | None
    click_id: int | None

    @property
    def counts(self) -> bool:
        """Whether it counts for rewards and metrics (not held or rejected)."""
        return self.status in ("active", "approved")


# --- API shapes ------------------------------------------------------------------------


class IssueInvitesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = Field(default=1, ge=1, le=100)


def check_locale(v: str | None) -> str | None:
    if v is None or v == "":
        return None
    loc = normalise_locale(v)
    if loc is None:
        raise ReasonError(N_("supported locales are en, ko, es, id, zh-Hans"))
    return loc


class RedeemIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    external_id: str = Field(json_schema_extra=EXTERNAL_ID_SCHEMA)
    email: str = Field(json_schema_extra={"format": "email"})
    name: str | None = Field(default=None, max_length=200)
    locale: str | None = Field(default=None, json_schema_extra=LOCALE_SCHEMA)
    ip: str | None = Field(default=None, max_length=64, description="the person's IP address")
    device: str | None = Field(default=None, max_length=200, description="a device fingerprint")
    click_id: str | None = Field(
        default=None, max_length=40, description="the bud_click of the invite link they followed"
    )
    properties: dict[str, Any] = Field(default_factory=dict)

    _external_id = field_validator("external_id")(check_external_id)
    _locale = field_validator("locale")(check_locale)

    @field_validator("email")
    @classmethod
    def _email(cls, v: str) -> str:
        return normalise_email(v)


class WaitlistJoinIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: str = Field(json_schema_extra={"format": "email"})
    referral_code: str | None = Field(default=None, max_length=40)
    click_id: str | None = Field(default=None, max_length=40)
    locale: str | None = Field(default=None, json_schema_extra=LOCALE_SCHEMA)
    ip: str | None = Field(default=None, max_length=64)

    _locale = field_validator("locale")(check_locale)

    @field_validator("email")
    @classmethod
    def _email(cls, v: str) -> str:
        return normalise_email(v)


class ReleaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = Field(ge=1, le=10_000)


class RevokeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=200)


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["held", "approved", "rejected"]
    reason: str = Field(default="", max_length=500)


def check_channel(value: str | None) -> str | None:
    """A channel name (``whatsapp``, ``kakaotalk``, ``email``…), or None if unusable."""
    if value is None:
        return None
    v = value.strip().lower()
    return v if CHANNEL_RE.match(v) else None
