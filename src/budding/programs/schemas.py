from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from budding.core.errors import ReasonError
from budding.core.i18n import N_, normalise_locale

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
# Admin pages live at /admin/<slug>; these names are taken by the dashboard's own pages.
RESERVED_SLUGS = frozenset({"login", "logout", "users", "programs"})


class ProgramCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: str = Field(description="lowercase letters, digits and dashes; used in URLs")
    name: str = Field(min_length=1, max_length=200)
    default_locale: str = "en"
    landing_url: str = Field(default="", max_length=2000)
    settings: dict[str, Any] = Field(default_factory=dict)

    @field_validator("slug")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not SLUG_RE.match(v):
            raise ReasonError(N_("use 1-64 lowercase letters, digits and dashes"))
        if v in RESERVED_SLUGS:
            raise ReasonError(
                N_("%(slug)s is reserved for the dashboard's own pages"), slug=repr(v)
            )
        return v

    @field_validator("default_locale")
    @classmethod
    def _locale(cls, v: str) -> str:
        loc = normalise_locale(v)
        if loc is None:
            raise ReasonError(N_("supported locales are en, ko, es, id, zh-Hans"))
        return loc

    @field_validator("landing_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if v and not re.match(r"^https?://", v):
            raise ReasonError(N_("must start with http:// or https://"))
        return v


class ProgramRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    slug: str
    name: str
    default_locale: str
    landing_url: str
    settings: dict[str, Any]
    created_at: datetime
