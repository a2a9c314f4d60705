"""REST routes of the influence capability. Thin: parse, call the service, shape the answer."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from budding.core import jobs
from budding.core.auth import API, API_WRITE, ApiContext
from budding.core.errors import ErrorOut, NotFound, errors_doc
from budding.core.routing import RowId
from budding.influence import service
from budding.influence.schemas import (
    LeadersOut,
    Measure,
    RankingPendingOut,
    SeedsIn,
    SeedsOut,
    SimulationIn,
    SimulationStarted,
)
from budding.jobs.schemas import JobOut

router = APIRouter(tags=["influence"])


@router.get(
    "/influence/leaders",
    response_model=LeadersOut,
    responses={
        202: {
            "model": RankingPendingOut,
            "description": "Nothing ranked yet: a job computes the first ranking of this "
            "large program (see `Location`); ask again when it has succeeded",
        },
        503: {
            "model": ErrorOut,
            "description": "The job computing the first ranking failed (`error.code` "
            "`ranking_failed`, `error.job_id`); `Retry-After` says when a request "
            "enqueues it again",
        },
    },
)
def leaders(
    ctx: ApiContext = API,
    top: int = Query(20, ge=1, le=1000),
    group: str | None = Query(None, max_length=100, description="Member attribute to group by"),
    by: Measure = "reach",
) -> Any:
    """Opinion leaders with every measure; with ``group``, the top leaders within each group."""
    try:
        return service.leaders(ctx.session, ctx.program, top=top, group=group, by=by)
    except service.RankingPending as pending:
        if pending.failed:
            raise pending.error() from None
        job = pending.job
        url = f"/api/v1/jobs/{job.id}"
        body = RankingPendingOut(
            state="computing", job_id=job.id, status=job.status, progress=job.progress,
            message=job.message, status_url=url,
        )  # fmt: skip
        return JSONResponse(body.model_dump(), status_code=202, headers={"Location": url})


@router.post("/influence/seeds", response_model=SeedsOut)
def seeds(body: SeedsIn, ctx: ApiContext = API) -> Any:
    """The k members whose word of mouth travels furthest (IMM), in order."""
    return service.choose_seeds(ctx.session, ctx.program, body)


@router.post("/influence/simulations", response_model=SimulationStarted, status_code=202)
def start_simulation(body: SimulationIn, ctx: ApiContext = API_WRITE) -> Any:
    """Start a campaign simulation as a background job; poll ``status_url``."""
    record = service.start_simulation(ctx.session, ctx.program, body)
    return {
        "job_id": record.id,
        "status": record.status,
        "status_url": f"/api/v1/influence/simulations/{record.id}",
        "payload": record.payload,
    }


@router.get("/influence/simulations/{job_id}", response_model=JobOut, responses=errors_doc(404))
def simulation(job_id: RowId, ctx: ApiContext = API) -> Any:
    """A simulation's status, progress and, once it succeeded, its result."""
    record = jobs.get_job(ctx.session, job_id, program_id=ctx.program.id)
    if record.kind != "influence.simulate":
        raise NotFound(f"no simulation {job_id}")
    return record
