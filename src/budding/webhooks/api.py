"""``/api/v1/webhooks``: endpoints, event types, the delivery log, redelivery. Thin."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from fastapi import APIRouter, Query, Response

from budding.core.auth import API, API_WRITE, ApiContext
from budding.core.db import MAX_INT_ROW_ID
from budding.core.errors import errors_doc
from budding.core.routing import IntRowId
from budding.webhooks import service
from budding.webhooks.schemas import (
    AttemptOut,
    DeliveryDetail,
    DeliveryOut,
    DeliveryPage,
    EndpointCreated,
    EndpointIn,
    EndpointList,
    EndpointOut,
    EndpointPatch,
    EventTypeOut,
    SecretRotation,
)

router = APIRouter(tags=["webhooks"])


# 409: the program has the most endpoints it may
@router.post(
    "/webhooks", response_model=EndpointCreated, status_code=201, responses=errors_doc(409)
)
def create_webhook(body: EndpointIn, ctx: ApiContext = API_WRITE) -> Any:
    """Add an endpoint. The answer carries its signing ``secret``, shown only this once."""
    endpoint, secret = service.create_endpoint(
        ctx.session,
        ctx.program,
        url=body.url,
        event_types=body.event_types,
        description=body.description,
    )
    return EndpointCreated(**EndpointOut.model_validate(endpoint).model_dump(), secret=secret)


@router.get("/webhooks", response_model=EndpointList)
def list_webhooks(ctx: ApiContext = API) -> Any:
    return {"webhooks": service.list_endpoints(ctx.session, ctx.program.id)}


@router.get("/webhooks/event-types", response_model=list[EventTypeOut])
def event_types(ctx: ApiContext = API) -> Any:
    """Event types an endpoint can subscribe to."""
    return [EventTypeOut(name=n, description=d) for n, d in service.known_event_types().items()]


@router.get("/webhooks/deliveries", response_model=DeliveryPage)
def list_deliveries(
    ctx: ApiContext = API,
    status: Literal["pending", "delivered", "failed"] | None = None,
    webhook_id: int | None = Query(None, ge=1, le=MAX_INT_ROW_ID),
    event_type: str | None = Query(None, max_length=64),
    cursor: str | None = Query(None, max_length=20),
    limit: int = Query(50, ge=1, le=500),
) -> Any:
    """The delivery log, newest first."""
    rows, next_cursor = service.list_deliveries(
        ctx.session,
        ctx.program.id,
        status=status,
        endpoint_id=webhook_id,
        event_type=event_type,
        cursor=cursor,
        limit=limit,
    )
    return {"deliveries": rows, "next_cursor": next_cursor}


@router.get(
    "/webhooks/deliveries/{delivery_id}", response_model=DeliveryDetail, responses=errors_doc(404)
)
def get_delivery(delivery_id: str, ctx: ApiContext = API) -> Any:
    """One delivery with its body and every attempt."""
    delivery = service.get_delivery(ctx.session, ctx.program.id, delivery_id)
    attempts = service.attempts_of(ctx.session, delivery)
    return DeliveryDetail(
        **DeliveryOut.model_validate(delivery).model_dump(),
        body=delivery.body,
        attempt_log=[AttemptOut.model_validate(a) for a in attempts],
    )


# 410: the delivery's endpoint was removed
@router.post(
    "/webhooks/deliveries/{delivery_id}/redeliver",
    response_model=DeliveryOut,
    status_code=202,
    responses=errors_doc(404, 410),
)
def redeliver(delivery_id: str, ctx: ApiContext = API_WRITE) -> Any:
    """Send a delivery again (same ``Budding-Delivery`` id and body)."""
    return service.redeliver(ctx.session, ctx.program.id, delivery_id)


@router.get("/webhooks/{webhook_id}", response_model=EndpointOut, responses=errors_doc(404))
def get_webhook(webhook_id: IntRowId, ctx: ApiContext = API) -> Any:
    return service.get_endpoint(ctx.session, ctx.program.id, webhook_id)


@router.patch("/webhooks/{webhook_id}", response_model=EndpointOut, responses=errors_doc(404))
def update_webhook(webhook_id: IntRowId, body: EndpointPatch, ctx: ApiContext = API_WRITE) -> Any:
    """Change an endpoint's ``url``, ``event_types`` or ``description`` (fields left out
    stay). Pending retries go to the new URL."""
    return service.update_endpoint(
        ctx.session,
        ctx.program.id,
        webhook_id,
        url=body.url,
        event_types=body.event_types,
        description=body.description,
    )


@router.post(
    "/webhooks/{webhook_id}/secret", response_model=EndpointCreated, responses=errors_doc(404)
)
def rotate_secret(
    webhook_id: IntRowId, body: SecretRotation | None = None, ctx: ApiContext = API_WRITE
) -> Any:
    """Replace the endpoint's signing secret; the answer carries the new one, shown only
    this once. Every attempt from now on is signed with it, and also with the old one
    for ``keep_previous_hours`` (default 0: the old one stops at once)."""
    hours = body.keep_previous_hours if body is not None else 0
    endpoint, secret = service.rotate_secret(
        ctx.session, ctx.program.id, webhook_id, keep_previous=timedelta(hours=hours)
    )
    return EndpointCreated(**EndpointOut.model_validate(endpoint).model_dump(), secret=secret)


@router.delete("/webhooks/{webhook_id}", status_code=204, responses=errors_doc(404))
def remove_webhook(webhook_id: IntRowId, ctx: ApiContext = API_WRITE) -> Response:
    """Stop sending to an endpoint; its delivery log stays."""
    service.remove_endpoint(ctx.session, ctx.program.id, webhook_id)
    return Response(status_code=204)


@router.post(
    "/webhooks/{webhook_id}/test",
    response_model=DeliveryOut,
    status_code=202,
    responses=errors_doc(404),
)
def send_test(webhook_id: IntRowId, ctx: ApiContext = API_WRITE) -> Any:
    """Send a ``webhook.test`` event to this endpoint."""
    return service.send_test(ctx.session, ctx.program, webhook_id)
