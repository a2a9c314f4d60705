"""Fraud pages: the review queue with each signup's reasons (approve or reject), the log of
all assessments, and the per-check settings. Routes only translate HTTP."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from budding.core.auth import STAFF, StaffContext
from budding.core.errors import ValidationFailed, field_messages
from budding.core.i18n import N_, gettext
from budding.core.routing import RowId
from budding.fraud import service
from budding.fraud.checks import ACTION_LABELS, ACTIONS, CHECK_LABELS, CHECKS
from budding.fraud.models import REVIEW_STATUSES

router = APIRouter(include_in_schema=False)
ADMIN_NAV = [(45, N_("Fraud review"), "/fraud"), (46, N_("Fraud settings"), "/fraud/settings")]
PAGE_SIZE = 50

REVIEW_LABELS = {
    "none": N_("No review needed"),
    "open": N_("Waiting for review"),
    "approved": N_("Approved"),
    "rejected": N_("Rejected"),
}
DONE_MESSAGES = {
    "approved": N_("Approved: the referral counts and its held rewards are issued."),
    "rejected": N_("Rejected: the referral no longer counts and its rewards were reversed."),
    "saved": N_("The fraud settings were saved."),
}
SETTING_LABELS = {
    "velocity_referrer_per_hour": N_("Signups one referrer may bring per hour"),
    "velocity_ip_per_hour": N_("Signups one IP address may make per hour"),
    "ring_window_hours": N_("Ring window (hours)"),
    "ring_min_size": N_("Accounts from one network that make a ring"),
}


def _done(done: str | None) -> str | None:
    msgid = DONE_MESSAGES.get(done or "")
    return gettext(msgid) if msgid else None


@router.get("/admin/{slug}/fraud")
def queue(
    request: Request,
    slug: str,
    status: str = Query("open", max_length=16),
    before: int | None = Query(None, ge=1),
    done: str | None = None,
    ctx: StaffContext = STAFF,
) -> Response:
    program = ctx.program(slug)
    chosen = status if status in (*REVIEW_STATUSES, "all") else "open"
    rows = service.list_assessments(
        ctx.session,
        program,
        review_status=None if chosen == "all" else chosen,
        before_id=before,
        limit=PAGE_SIZE + 1,
    )
    more = rows[PAGE_SIZE - 1].id if len(rows) > PAGE_SIZE else None
    return ctx.render(
        request,
        "fraud/queue.html",
        program=program,
        rows=[service.assessment_out(ctx.session, r) for r in rows[:PAGE_SIZE]],
        status=chosen,
        statuses=(*REVIEW_STATUSES, "all"),
        review_labels=REVIEW_LABELS,
        check_labels=CHECK_LABELS,
        action_labels=ACTION_LABELS,
        waiting=service.queue_size(ctx.session, program),
        more=more,
        flash=_done(done),
    )


def _decided(slug: str, status: str, done: str) -> RedirectResponse:
    query = urlencode({"status": status, "done": done})
    return RedirectResponse(f"/admin/{slug}/fraud?{query}", status_code=303)


@router.post("/admin/{slug}/fraud/{assessment_id}/approve")
def approve(
    slug: str,
    assessment_id: RowId,
    note: str = Form("", max_length=500),
    back: str = Form("open", max_length=16),
    ctx: StaffContext = STAFF,
) -> Response:
    ctx.require_write()
    program = ctx.program(slug)
    service.approve(ctx.session, program, assessment_id, actor=ctx.user.email, note=note)
    return _decided(program.slug, back, "approved")


@router.post("/admin/{slug}/fraud/{assessment_id}/reject")
def reject(
    slug: str,
    assessment_id: RowId,
    note: str = Form("", max_length=500),
    back: str = Form("open", max_length=16),
    ctx: StaffContext = STAFF,
) -> Response:
    ctx.require_write()
    program = ctx.program(slug)
    service.reject(ctx.session, program, assessment_id, actor=ctx.user.email, note=note)
    return _decided(program.slug, back, "rejected")


def _settings_page(
    request: Request,
    ctx: StaffContext,
    slug: str,
    *,
    values: dict[str, object] | None = None,
    errors: dict[str, str] | None = None,
    flash: str | None = None,
    status_code: int = 200,
) -> Response:
    program = ctx.program(slug)
    current = service.fraud_settings(program).model_dump()
    return ctx.render(
        request,
        "fraud/settings.html",
        program=program,
        status_code=status_code,
        values=values or current,
        checks=CHECKS,
        actions=ACTIONS,
        check_labels=CHECK_LABELS,
        action_labels=ACTION_LABELS,
        setting_labels=SETTING_LABELS,
        errors=errors or {},
        flash=flash,
        flash_kind="error" if errors else "ok",
    )


@router.get("/admin/{slug}/fraud/settings")
def settings_page(
    request: Request, slug: str, done: str | None = None, ctx: StaffContext = STAFF
) -> Response:
    return _settings_page(request, ctx, slug, flash=_done(done))


@router.post("/admin/{slug}/fraud/settings")
async def save_settings(request: Request, slug: str, ctx: StaffContext = STAFF) -> Response:
    ctx.require_manage()
    form = await request.form()
    checks = {c: str(form.get(f"check_{c}", "")) for c in CHECKS}
    numbers: dict[str, object] = {}
    for name in SETTING_LABELS:
        raw = str(form.get(name, "")).strip()
        numbers[name] = int(raw) if raw.isdigit() else raw
    values: dict[str, object] = {"checks": checks, **numbers}

    def save() -> None:  # validated whole before anything is written
        service.update_settings(ctx.session, ctx.program(slug), values)

    try:
        await run_in_threadpool(save)
    except ValidationFailed as exc:
        errors, status = field_messages(exc), exc.status
        return await run_in_threadpool(
            lambda: _settings_page(
                request,
                ctx,
                slug,
                values=values,
                errors=errors,
                flash=gettext("The settings were not saved. Check the fields below."),
                status_code=status,
            )
        )
    return RedirectResponse(f"/admin/{slug}/fraud/settings?done=saved", status_code=303)
