"""Settings, API input and output shapes of the share kit, the funnel and virality."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from budding.core.errors import ReasonError
from budding.core.i18n import LOCALE_SCHEMA, N_, normalise_locale
from budding.core.routing import not_null
from budding.members.schemas import normalise_email
from budding.sharing.channels import CHANNEL_KEYS

TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
STEP_TYPES: tuple[str, ...] = ("share_opened", "channel_chosen", "share_sent")
SURFACES: tuple[str, ...] = ("portal", "widget", "api", "demo")


def _locale(v: str | None) -> str | None:
    if v is None or v == "":
        return None
    loc = normalise_locale(v)
    if loc is None:
        raise ReasonError(N_("supported locales are en, ko, es, id, zh-Hans"))
    return loc


ORIGIN_RE = re.compile(r"^(\*|https?://[A-Za-z0-9.-]+(:\d{1,5})?)$")
# Each setting's rules, shared by the settings and their partial update, whose schema then
# states them. What a validator checks (in its own words) is stated with json_schema_extra.
Channels = Annotated[
    list[str],
    Field(
        json_schema_extra={"minItems": 1, "items": {"type": "string", "enum": list(CHANNEL_KEYS)}}
    ),
]
DailyLimit = Annotated[int, Field(ge=0, le=100)]
KakaoKey = Annotated[str, Field(max_length=100)]
SdkUrl = Annotated[str, Field(max_length=300, json_schema_extra={"pattern": "^(https://.*)?$"})]
Origins = Annotated[
    list[str], Field(json_schema_extra={"items": {"type": "string", "pattern": ORIGIN_RE.pattern}})
]
TokenSeconds = Annotated[int, Field(ge=60, le=86400)]


class SharingSettings(BaseModel):
    """A program's sharing settings, stored in ``program.settings["sharing"]``."""

    model_config = ConfigDict(extra="forbid")

    channels: Channels = Field(
        default_factory=lambda: list(CHANNEL_KEYS),
        description="channels offered in the share kit, in any order",
    )
    tell_a_friend_daily_limit: DailyLimit = Field(
        default=5, description="tell-a-friend e-mails one member may send per UTC day"
    )
    kakao_js_key: KakaoKey | None = Field(
        default=None,
        description="Kakao JavaScript key: KakaoTalk shares through the SDK",
    )
    kakao_sdk_url: SdkUrl | None = Field(
        default=None, description="https URL of the Kakao JavaScript SDK to load"
    )
    widget_origins: Origins = Field(
        default_factory=lambda: ["*"],
        description="origins allowed to frame the widget (CSP frame-ancestors); '*' for any",
    )
    widget_token_ttl_seconds: TokenSeconds = Field(
        default=3600, description="default lifetime of a widget member token"
    )

    @field_validator("channels")
    @classmethod
    def _channels(cls, v: list[str]) -> list[str]:
        unknown = [c for c in v if c not in CHANNEL_KEYS]
        if unknown:
            raise ReasonError(
                N_("unknown channel %(channel)s; known: %(known)s"),
                channel=repr(unknown[0]),
                known=", ".join(CHANNEL_KEYS),
            )
        if not v:
            raise ReasonError(N_("offer at least one channel"))
        return list(dict.fromkeys(v))

    @field_validator("kakao_sdk_url")
    @classmethod
    def _sdk_url(cls, v: str | None) -> str | None:
        if v and not v.startswith("https://"):
            raise ReasonError(N_("must be an https:// URL"))
        return v or None

    @field_validator("widget_origins")
    @classmethod
    def _origins(cls, v: list[str]) -> list[str]:
        for origin in v:
            if not ORIGIN_RE.match(origin):
                raise ReasonError(
                    N_("%(origin)s is not an origin such as https://shop.example.com"),
                    origin=repr(origin),
                )
        return v


class SharingSettingsPatch(BaseModel):
    """Partial update: a None is "not given", and a null sent is refused (by SharingSettings)
    where the setting takes none. The rules are the settings' own; those its validators
    check, in their words, are stated for the schema."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra=not_null(
            "channels", "tell_a_friend_daily_limit", "widget_origins", "widget_token_ttl_seconds"
        ),
    )

    channels: Channels | None = None
    tell_a_friend_daily_limit: DailyLimit | None = None
    kakao_js_key: KakaoKey | None = None
    kakao_sdk_url: SdkUrl | None = None
    widget_origins: Origins | None = None
    widget_token_ttl_seconds: TokenSeconds | None = None


# --- the share kit ---------------------------------------------------------------------


class ChannelShareOut(BaseModel):
    channel: str
    label: str
    method: str = Field(description="url, copy, qr, native (Web Share API), sdk or send")
    share_url: str | None = Field(description="open this to share; null: see method")
    link: str = Field(description="the referral link carried by this channel")
    subject: str | None
    message: str
    steps: int = Field(description="designed launch cost: actions from opening to sent")
    needs: str


class QrOut(BaseModel):
    png: str
    svg: str


class SignatureOut(BaseModel):
    text: str
    html: str


class ShareKitOut(BaseModel):
    member: str
    locale: str
    code: str
    link: str
    qr: QrOut
    signature: SignatureOut
    channels: list[ChannelShareOut]
    kakao: dict[str, object] | None = Field(
        default=None, description="Kakao SDK settings and text template when a key is configured"
    )


# --- funnel steps ------------------------------------------------------------------------


class StepIn(BaseModel):
    """One share-funnel step of one member."""

    model_config = ConfigDict(extra="forbid")

    # Patterns and names the validators below check, in their words, stated for the schema.
    id: str = Field(
        description="idempotency key of the step (8-64 of A-Z a-z 0-9 _ -)",
        json_schema_extra={"pattern": TOKEN_RE.pattern},
    )
    type: Literal["share_opened", "channel_chosen", "share_sent"]
    share_id: str = Field(
        description="the share session: one opening of the kit",
        json_schema_extra={"pattern": TOKEN_RE.pattern},
    )
    channel: str | None = Field(default=None, json_schema_extra={"enum": [*CHANNEL_KEYS, None]})
    occurred_at: AwareDatetime | None = Field(default=None, description="default: when received")

    @field_validator("id", "share_id")
    @classmethod
    def _token(cls, v: str) -> str:
        if not TOKEN_RE.match(v):
            raise ValueError("must be 8-64 characters of A-Z, a-z, 0-9, '_' or '-'")
        return v

    @field_validator("channel")
    @classmethod
    def _channel(cls, v: str | None) -> str | None:
        if v is not None and v not in CHANNEL_KEYS:
            raise ValueError(f"unknown channel; known: {', '.join(CHANNEL_KEYS)}")
        return v


class StepsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: list[StepIn] = Field(min_length=1, max_length=50)


class StepsOut(BaseModel):
    accepted: int
    duplicates: int


class TellAFriendIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    to: str = Field(
        description="the friend's e-mail address", json_schema_extra={"format": "email"}
    )
    note: str = Field(default="", max_length=300, description="a personal line (plain text)")
    locale: str | None = Field(
        default=None,
        description="language of the e-mail (default: member's)",
        json_schema_extra=LOCALE_SCHEMA,
    )
    share_id: str | None = Field(default=None, json_schema_extra={"pattern": TOKEN_RE.pattern})

    @field_validator("to")
    @classmethod
    def _to(cls, v: str) -> str:
        return normalise_email(v)

    _loc = field_validator("locale")(_locale)

    @field_validator("share_id")
    @classmethod
    def _share(cls, v: str | None) -> str | None:
        if v is not None and not TOKEN_RE.match(v):
            raise ValueError("must be 8-64 characters of A-Z, a-z, 0-9, '_' or '-'")
        return v


class TellAFriendOut(BaseModel):
    status: str
    sent_today: int
    remaining_today: int


class WidgetTokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ttl_seconds: int | None = Field(default=None, ge=60, le=86400)
    locale: str | None = Field(default=None, json_schema_extra=LOCALE_SCHEMA)

    _loc = field_validator("locale")(_locale)


class WidgetTokenOut(BaseModel):
    token: str
    expires_at: datetime
    iframe_url: str
    iframe_tag: str
    script_tag: str


class TemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str = Field(default="", max_length=400)
    body: str = Field(max_length=4000)


class TemplateOut(BaseModel):
    key: str
    kind: str
    locale: str
    subject: str
    body: str
    overridden: bool
    updated_at: datetime | None = None
    updated_by: str = ""


# --- launch cost ---------------------------------------------------------------------


class ChannelFunnel(BaseModel):
    channel: str
    label: str
    designed_steps: int
    chosen: int = Field(description="share sessions in which the channel was picked")
    sessions_sent: int = Field(description="share sessions with at least one share sent on it")
    sent: int = Field(description="shares sent (share_sent events)")
    share_rate: float | None = Field(description="sessions_sent / share sessions opened")
    median_seconds: float | None = Field(description="median seconds from opening to sent")
    median_steps: float | None = Field(description="median recorded steps from opening to sent")
    timed: int = Field(description="sends with a matching opening (the medians' sample)")
    clicks: int
    click_through: float | None = Field(description="clicks / shares sent")
    signups: int
    signup_rate: float | None = Field(description="signups / clicks")
    conversions: int
    conversion_rate: float | None = Field(description="conversions / signups")


class FunnelReport(BaseModel):
    since: datetime | None
    until: datetime | None
    opened: int = Field(description="share sessions opened")
    sessions_sent: int
    share_rate: float | None
    median_seconds: float | None
    channels: list[ChannelFunnel]
    cheapest: str | None = Field(description="channel with the lowest median seconds to send")
    clicks_source: str = Field(
        description="where clicks were counted: referrals (the /r/ click log), events, both, none"
    )


class FunnelDelta(BaseModel):
    channel: str
    share_rate: float | None
    median_seconds: float | None
    click_through: float | None
    signup_rate: float | None
    conversion_rate: float | None


class FunnelComparison(BaseModel):
    before: FunnelReport
    after: FunnelReport
    deltas: list[FunnelDelta] = Field(description="after minus before, per channel and 'all'")


# --- virality --------------------------------------------------------------------------


class KRow(BaseModel):
    key: str = Field(description="cohort start date, channel or generation")
    members: int = Field(description="members in the group (the denominator)")
    invitations: int = Field(description="shares sent by them")
    referrals: int = Field(description="referees who signed up (by the until date)")
    conversions: int = Field(description="of those, referees who converted")
    invitations_per_member: float | None
    conversion: float | None = Field(description="referrals / invitations")
    k: float | None = Field(description="referrals / members")


class ProjectionPoint(BaseModel):
    day: float
    users: float


class ViralityReport(BaseModel):
    since: datetime | None
    until: datetime | None
    cohort: str
    members: int
    seeds: int = Field(description="members of generation 0 (not referred): N0")
    referrals: int
    invitations: int
    k: float | None
    k_converted: float | None = Field(description="converted referees per member")
    cycle_time_days: float | None = Field(description="median days, referrer's to referee's signup")
    k_mature: float | None = Field(
        description="K of members who joined at least two cycle times before the end"
    )
    maturity_days: float | None = Field(description="two cycle times")
    projection_k: float | None = Field(description="the K of the projection: k_mature, else k")
    by_cohort: list[KRow]
    by_channel: list[KRow]
    by_generation: list[KRow]
    generation_sizes: dict[int, int]
    ceiling: float | None = Field(description="N0 / (1 - projection_k) when it is < 1, else null")
    projection: list[ProjectionPoint]
    actual: list[ProjectionPoint] = Field(description="members reached so far, by day")
