"""``GET /api/v1/jobs`` and ``GET /api/v1/jobs/{id}``: status, progress and result."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query

from budding.core import jobs
from budding.core.auth import API, ApiContext
from budding.core.errors import errors_doc
from budding.core.routing import RowId
from budding.jobs.schemas import JobOut, JobPage

router = APIRouter(tags=["jobs"])


@router.get("/jobs", response_model=JobPage)
def list_jobs(
    ctx: ApiContext = API,
    status: Literal["queued", "running", "succeeded", "failed"] | None = None,
    kind: str | None = Query(None, max_length=100),
    limit: int = Query(50, ge=1, le=500),
) -> Any:
    """The program's recent jobs, newest first."""
    return {
        "jobs": jobs.list_jobs(ctx.session, ctx.program.id, status=status, kind=kind, limit=limit)
    }


@router.get("/jobs/{job_id}", response_model=JobOut, responses=errors_doc(404))
def get_job(job_id: RowId, ctx: ApiContext = API) -> Any:
    """One job of the program: poll it to follow a long job's progress."""
    return jobs.get_job(ctx.session, job_id, program_id=ctx.program.id)
