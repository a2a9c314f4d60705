"""Admin pages: the program's recent jobs, one job's progress (an htmx partial that
other capabilities' pages can embed), and retrying a failed job."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from budding.core import jobs
from budding.core.auth import STAFF, StaffContext
from budding.core.i18n import N_
from budding.core.routing import RowId
from budding.jobs.models import STATUSES, JobRecord
from budding.programs.models import Program

router = APIRouter(include_in_schema=False)
ADMIN_NAV = [(90, N_("Jobs"), "/jobs")]

STATUS_LABELS = {
    "queued": N_("Queued"),
    "running": N_("Running"),
    "succeeded": N_("Succeeded"),
    "failed": N_("Failed"),
}


def _page(
    request: Request, ctx: StaffContext, program: Program, name: str, **context: Any
) -> Response:
    return ctx.render(request, name, program=program, status_labels=STATUS_LABELS, **context)


def _active(records: list[JobRecord]) -> bool:
    return any(r.status in (jobs.QUEUED, jobs.RUNNING) for r in records)


@router.get("/admin/{slug}/jobs")
def job_list(
    request: Request,
    slug: str,
    status: str = Query("", max_length=16),
    ctx: StaffContext = STAFF,
) -> Response:
    program = ctx.program(slug)
    chosen = status if status in STATUSES else None
    records = jobs.list_jobs(ctx.session, program.id, status=chosen, limit=100)
    name = "jobs/_table.html" if request.headers.get("hx-request") else "jobs/list.html"
    return _page(
        request,
        ctx,
        program,
        name,
        jobs=records,
        status=chosen or "",
        statuses=STATUSES,
        active=_active(records),
    )


@router.get("/admin/{slug}/jobs/{job_id}")
def job_detail(request: Request, slug: str, job_id: RowId, ctx: StaffContext = STAFF) -> Response:
    program = ctx.program(slug)
    record = jobs.get_job(ctx.session, job_id, program_id=program.id)
    return _page(request, ctx, program, "jobs/detail.html", job=record)


@router.get("/admin/{slug}/jobs/{job_id}/status")
def job_status(request: Request, slug: str, job_id: RowId, ctx: StaffContext = STAFF) -> Response:
    """The progress partial: ``<div hx-get="/admin/{slug}/jobs/{id}/status"
    hx-trigger="load" hx-swap="outerHTML"></div>`` shows a job and follows it."""
    program = ctx.program(slug)
    record = jobs.get_job(ctx.session, job_id, program_id=program.id)
    return _page(request, ctx, program, "jobs/_status.html", job=record)


@router.post("/admin/{slug}/jobs/{job_id}/retry")
def job_retry(slug: str, job_id: RowId, ctx: StaffContext = STAFF) -> Response:
    ctx.require_write()
    program = ctx.program(slug)
    jobs.retry_job(ctx.session, job_id, program_id=program.id)
    return RedirectResponse(f"/admin/{program.slug}/jobs/{job_id}", status_code=303)
