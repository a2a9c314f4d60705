"""Admin pages: endpoints (add, test, remove; the secret shown once) and the delivery log
(filtered with htmx, with a redeliver button and each delivery's attempts)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from budding.core.auth import STAFF, StaffContext
from budding.core.db import utcnow
from budding.core.errors import ValidationFailed, field_messages
from budding.core.i18n import N_, gettext
from budding.core.routing import IntRowId
from budding.programs.models import Program
from budding.webhooks import service
from budding.webhooks.models import DELIVERY_STATUSES

router = APIRouter(include_in_schema=False)
ADMIN_NAV = [(80, N_("Webhooks"), "/webhooks")]

STATUS_LABELS = {
    "pending": N_("Pending delivery"),
    "delivered": N_("Delivered"),
    "failed": N_("Failed"),
}


def _page(
    request: Request,
    ctx: StaffContext,
    program: Program,
    name: str,
    status_code: int = 200,
    **context: Any,
) -> Response:
    return ctx.render(
        request,
        name,
        program=program,
        status_code=status_code,
        status_labels=STATUS_LABELS,
        soon=utcnow() + timedelta(seconds=60),
        **context,
    )


def _endpoints_page(
    request: Request,
    ctx: StaffContext,
    program: Program,
    status_code: int = 200,
    **context: Any,
) -> Response:
    context.setdefault("form", {"url": "", "description": "", "event_types": []})
    return _page(
        request,
        ctx,
        program,
        "webhooks/endpoints.html",
        status_code=status_code,
        endpoints=service.list_endpoints(ctx.session, program.id),
        event_types=service.known_event_types(),
        **context,
    )


@router.get("/admin/{slug}/webhooks")
def endpoints(request: Request, slug: str, ctx: StaffContext = STAFF) -> Response:
    return _endpoints_page(request, ctx, ctx.program(slug))


class EndpointForm:
    """The fields of the add and edit forms (a dependency: FastAPI reads them as form
    fields), given back to the page as they were typed when they are refused."""

    def __init__(
        self,
        url: Annotated[str, Form()] = "",
        description: Annotated[str, Form()] = "",
        event_types: Annotated[list[str] | None, Form()] = None,
    ) -> None:
        self.fields: dict[str, Any] = {
            "url": url,
            "description": description,
            "event_types": event_types or [],
        }


@router.post("/admin/{slug}/webhooks")
def add_endpoint(
    request: Request,
    slug: str,
    form: EndpointForm = Depends(),
    ctx: StaffContext = STAFF,
) -> Response:
    ctx.require_manage()
    program = ctx.program(slug)
    try:
        endpoint, secret = service.create_endpoint(ctx.session, program, **form.fields)
    except ValidationFailed as exc:
        return _endpoints_page(
            request, ctx, program, status_code=422, form=form.fields, errors=field_messages(exc)
        )
    return _endpoints_page(
        request,
        ctx,
        program,
        status_code=201,
        created=endpoint,
        secret=secret,
        flash=gettext("Webhook added. Copy its signing secret now: it is not shown again."),
    )


@router.post("/admin/{slug}/webhooks/{webhook_id}/edit")
def edit_endpoint(
    request: Request,
    slug: str,
    webhook_id: IntRowId,
    form: EndpointForm = Depends(),
    ctx: StaffContext = STAFF,
) -> Response:
    ctx.require_manage()
    program = ctx.program(slug)
    try:
        service.update_endpoint(ctx.session, program.id, webhook_id, **form.fields)
    except ValidationFailed as exc:
        edit = {"id": webhook_id, **form.fields}
        return _endpoints_page(
            request, ctx, program, status_code=422, edit=edit, edit_errors=field_messages(exc)
        )
    return RedirectResponse(f"/admin/{program.slug}/webhooks", status_code=303)


@router.post("/admin/{slug}/webhooks/{webhook_id}/secret")
def rotate_secret(
    request: Request,
    slug: str,
    webhook_id: IntRowId,
    keep_previous_hours: int = Form(0),
    ctx: StaffContext = STAFF,
) -> Response:
    ctx.require_manage()
    program = ctx.program(slug)
    endpoint, secret = service.rotate_secret(
        ctx.session, program.id, webhook_id, keep_previous=timedelta(hours=keep_previous_hours)
    )
    return _endpoints_page(
        request,
        ctx,
        program,
        created=endpoint,
        secret=secret,
        flash=gettext(
            "New signing secret. Copy it now: it is not shown again. Deliveries are signed "
            "with it, and with the old one until the time shown beside the webhook."
        )
        if keep_previous_hours
        else gettext(
            "New signing secret. Copy it now: it is not shown again, and deliveries are "
            "signed with it from now on."
        ),
    )


@router.post("/admin/{slug}/webhooks/{webhook_id}/remove")
def remove_endpoint(slug: str, webhook_id: IntRowId, ctx: StaffContext = STAFF) -> Response:
    ctx.require_manage()
    program = ctx.program(slug)
    service.remove_endpoint(ctx.session, program.id, webhook_id)
    return RedirectResponse(f"/admin/{program.slug}/webhooks", status_code=303)


@router.post("/admin/{slug}/webhooks/{webhook_id}/test")
def send_test(slug: str, webhook_id: IntRowId, ctx: StaffContext = STAFF) -> Response:
    ctx.require_write()
    program = ctx.program(slug)
    delivery = service.send_test(ctx.session, program, webhook_id)
    return RedirectResponse(
        f"/admin/{program.slug}/webhooks/deliveries/{delivery.uid}", status_code=303
    )


@router.get("/admin/{slug}/webhooks/deliveries")
def deliveries(
    request: Request,
    slug: str,
    status: str = Query("", max_length=16),
    webhook: int | None = None,
    cursor: str | None = Query(None, max_length=20),
    ctx: StaffContext = STAFF,
) -> Response:
    program = ctx.program(slug)
    chosen = status if status in DELIVERY_STATUSES else ""
    rows, next_cursor = service.list_deliveries(
        ctx.session,
        program.id,
        status=chosen or None,
        endpoint_id=webhook,
        cursor=cursor,
        limit=50,
    )
    partial = bool(request.headers.get("hx-request"))
    return _page(
        request,
        ctx,
        program,
        "webhooks/_deliveries.html" if partial else "webhooks/deliveries.html",
        deliveries=rows,
        next_cursor=next_cursor,
        status=chosen,
        webhook=webhook,
        statuses=DELIVERY_STATUSES,
        endpoints={
            e.id: e for e in service.list_endpoints(ctx.session, program.id, include_removed=True)
        },
    )


@router.get("/admin/{slug}/webhooks/deliveries/{delivery_id}")
def delivery(request: Request, slug: str, delivery_id: str, ctx: StaffContext = STAFF) -> Response:
    program = ctx.program(slug)
    found = service.get_delivery(ctx.session, program.id, delivery_id)
    return _page(
        request,
        ctx,
        program,
        "webhooks/delivery.html",
        delivery=found,
        attempts=service.attempts_of(ctx.session, found),
        endpoints={
            e.id: e for e in service.list_endpoints(ctx.session, program.id, include_removed=True)
        },
    )


@router.get("/admin/{slug}/webhooks/deliveries/{delivery_id}/row")
def delivery_row(
    request: Request, slug: str, delivery_id: str, ctx: StaffContext = STAFF
) -> Response:
    """One row of the log; a row whose attempt is imminent polls this until it is done."""
    program = ctx.program(slug)
    found = service.get_delivery(ctx.session, program.id, delivery_id)
    return _row(request, ctx, program, found)


def _row(request: Request, ctx: StaffContext, program: Program, found: Any) -> Response:
    return _page(
        request,
        ctx,
        program,
        "webhooks/_delivery_row.html",
        d=found,
        endpoints={
            e.id: e for e in service.list_endpoints(ctx.session, program.id, include_removed=True)
        },
    )


@router.post("/admin/{slug}/webhooks/deliveries/{delivery_id}/redeliver")
def redeliver(request: Request, slug: str, delivery_id: str, ctx: StaffContext = STAFF) -> Response:
    ctx.require_write()
    program = ctx.program(slug)
    found = service.redeliver(ctx.session, program.id, delivery_id)
    if request.headers.get("hx-request"):
        return _row(request, ctx, program, found)
    return RedirectResponse(
        f"/admin/{program.slug}/webhooks/deliveries/{found.uid}", status_code=303
    )
