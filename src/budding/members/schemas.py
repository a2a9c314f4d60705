"""Input and output shapes of members and events."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from email_validator import EmailNotValidError, validate_email
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from budding.core.db import json_dumps
from budding.core.i18n import LOCALE_SCHEMA, normalise_locale

MAX_PROPERTIES_BYTES = 16 * 1024
MAX_ATTRIBUTES_BYTES = 16 * 1024
MAX_BATCH = 1000
TYPE_RE = re.compile(r"^[a-z][a-z0-9_.]{0,63}$")
EXTERNAL_ID_RE = re.compile(r"^[^\x00-\x1f\x7f]{1,200}$")
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
# What check_external_id accepts, stated for the schema (its refusal keeps its words).
EXTERNAL_ID_SCHEMA: dict[str, Any] = {
    "maxLength": 200,
    "pattern": r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$",
}

BUILTIN_EVENT_TYPES: tuple[str, ...] = (
    "signup",
    "visit",
    "post",
    "comment",
    "reply",
    "mention",
    "like",
    "share",
    "click",
    "purchase",
    "refund",
    "survey_response",
    "invite_sent",
    "login",
    "churn",
)


def normalise_email(value: str) -> str:
    """Validated and normalised (lower-case) address; ValueError names the reason."""
    try:
        return validate_email(value.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None


def _json_size(value: Any) -> int:
    # json_dumps, not orjson alone: orjson refuses integers beyond 64 bits (a TypeError,
    # which pydantic does not turn into a field error: it was a 500).
    return len(json_dumps(value).encode())


def check_external_id(v: str) -> str:
    if not EXTERNAL_ID_RE.match(v) or not v.strip():
        raise ValueError("must be 1-200 characters without control characters")
    return v


class MemberIn(BaseModel):
    """Upsert by ``external_id``; fields left out are left unchanged."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    external_id: str = Field(json_schema_extra=EXTERNAL_ID_SCHEMA)
    email: str | None = None
    name: str | None = Field(default=None, max_length=200)
    locale: str | None = Field(default=None, json_schema_extra=LOCALE_SCHEMA)
    attributes: dict[str, Any] | None = None
    marketing_consent: bool | None = None

    _external_id = field_validator("external_id")(check_external_id)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        # names go into share messages and e-mails: a line break could forge a line
        if v is not None and CONTROL_RE.search(v):
            raise ValueError("must not contain control characters (line breaks, tabs …)")
        return v

    @field_validator("email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        return None if v is None or v == "" else normalise_email(v)

    @field_validator("locale")
    @classmethod
    def _locale(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        loc = normalise_locale(v)
        if loc is None:
            raise ValueError("supported locales are en, ko, es, id, zh-Hans")
        return loc

    @field_validator("attributes")
    @classmethod
    def _attributes(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is not None and _json_size(v) > MAX_ATTRIBUTES_BYTES:
            raise ValueError(f"must be at most {MAX_ATTRIBUTES_BYTES} bytes as JSON")
        return v


class MemberOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    external_id: str
    email: str | None
    name: str
    locale: str | None
    attributes: dict[str, Any]
    marketing_consent: bool
    created_at: datetime
    updated_at: datetime


class MemberPage(BaseModel):
    members: list[MemberOut]
    next_cursor: str | None


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=200)
    type: str
    member: str
    target: str | None = None
    occurred_at: AwareDatetime
    properties: dict[str, Any] = Field(default_factory=dict)

    _member = field_validator("member")(check_external_id)

    @field_validator("target")
    @classmethod
    def _target(cls, v: str | None) -> str | None:
        return None if v is None else check_external_id(v)

    @field_validator("type")
    @classmethod
    def _type(cls, v: str) -> str:
        if not TYPE_RE.match(v):
            raise ValueError(
                "must be lower-case letters, digits, '_' or '.', starting with a letter"
            )
        return v

    @field_validator("properties")
    @classmethod
    def _properties(cls, v: dict[str, Any]) -> dict[str, Any]:
        if _json_size(v) > MAX_PROPERTIES_BYTES:
            raise ValueError(f"must be at most {MAX_PROPERTIES_BYTES} bytes as JSON")
        return v


class EventOut(BaseModel):
    id: str
    type: str
    member: str
    target: str | None
    occurred_at: datetime
    received_at: datetime
    properties: dict[str, Any]


class RejectedEvent(BaseModel):
    index: int
    id: str | None = None
    errors: dict[str, str]


class IngestResult(BaseModel):
    accepted: int
    duplicates: int
    rejected: list[RejectedEvent]


class EventPage(BaseModel):
    events: list[EventOut]
    next_cursor: str | None
