"""API shapes of webhook endpoints, deliveries and attempts."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import AliasChoices, BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from budding.webhooks.service import ALL_EVENTS, MAX_SECRET_OVERLAP, known_event_types

# What check_url and check_event_types accept, stated for the schema: they refuse the
# rest in their own words (and an internal address, which no pattern can tell).
URL_PATTERN = (
    r"^https?://([^\s/?#@]+@)?[A-Za-z0-9.-]+"
    r"(:([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?"
    r"([/?#]\S*)?$"
)


def _event_type_enum(schema: JsonDict) -> None:
    # Computed when the schema is, not at import: capabilities declare their own types.
    props = schema.get("properties")
    prop = props.get("event_types") if isinstance(props, dict) else None
    if isinstance(prop, dict):
        prop["items"] = {"type": "string", "enum": [ALL_EVENTS, *known_event_types()]}


class EndpointIn(BaseModel):
    model_config = ConfigDict(json_schema_extra=_event_type_enum)

    url: str = Field(
        description="http(s) URL that receives POSTed events",
        max_length=2000,
        json_schema_extra={"pattern": URL_PATTERN},
    )
    event_types: list[str] = Field(
        description='Event types to receive (see GET /webhooks/event-types); ["*"] for all',
        min_length=1,
        max_length=50,
    )
    description: str = Field("", max_length=200)


class EndpointPatch(BaseModel):
    """The fields to change; those left out stay as they are."""

    model_config = ConfigDict(json_schema_extra=_event_type_enum)

    url: str | None = Field(None, max_length=2000, json_schema_extra={"pattern": URL_PATTERN})
    event_types: list[str] | None = Field(None, min_length=1, max_length=50)
    description: str | None = Field(None, max_length=200)


class SecretRotation(BaseModel):
    keep_previous_hours: int = Field(
        0,
        ge=0,
        le=MAX_SECRET_OVERLAP // timedelta(hours=1),
        description="Hours the replaced secret keeps signing beside the new one, so the "
        "receiver can switch without missing a delivery (0: it stops at once, e.g. after "
        "a leak; at most 168, a week)",
    )


class EndpointOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    url: str
    description: str
    event_types: list[str]
    created_at: datetime
    previous_secret_signs_until: datetime | None = Field(
        None, description="While a replaced secret still signs too: until when (never the secret)"
    )


class EndpointCreated(EndpointOut):
    secret: str = Field(description="The signing secret. Shown only now: store it.")


class EndpointList(BaseModel):
    webhooks: list[EndpointOut]


class EventTypeOut(BaseModel):
    name: str
    description: str


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    number: int
    started_at: datetime
    duration_ms: int
    status_code: int | None
    ok: bool
    error: str | None
    response_excerpt: str


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(
        validation_alias=AliasChoices("uid", "id"), description="The Budding-Delivery header"
    )
    endpoint_id: int
    event_id: str
    event_type: str
    status: str = Field(description="pending, delivered or failed")
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    job_id: int | None


class DeliveryDetail(DeliveryOut):
    body: str = Field(description="The exact JSON body sent")
    attempt_log: list[AttemptOut]


class DeliveryPage(BaseModel):
    deliveries: list[DeliveryOut]
    next_cursor: str | None
