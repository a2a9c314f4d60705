"""API shapes of webhook endpoints, deliveries and attempts."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from budding.webhooks.service import MAX_SECRET_OVERLAP


class EndpointIn(BaseModel):
    url: str = Field(description="http(s) URL that receives POSTed events", max_length=2000)
    event_types: list[str] = Field(
        description='Event types to receive (see GET /webhooks/event-types); ["*"] for all',
        min_length=1,
        max_length=50,
    )
    description: str = Field("", max_length=200)


class EndpointPatch(BaseModel):
    """The fields to change; those left out stay as they are."""

    url: str | None = Field(None, max_length=2000)
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
