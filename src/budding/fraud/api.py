"""REST routes for the fraud review queue and settings. Thin: parse, call the service, shape."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query

from budding.core.auth import API, API_WRITE, ApiContext
from budding.core.errors import errors_doc
from budding.core.routing import RowId
from budding.fraud import service
from budding.fraud.schemas import (
    AssessmentOut,
    AssessmentPage,
    FraudSettings,
    FraudSettingsPatch,
    ReviewIn,
)
from budding.members import service as members

router = APIRouter(tags=["fraud"])
ACTOR = "api"


@router.get("/fraud/assessments", response_model=AssessmentPage)
def list_assessments(
    ctx: ApiContext = API,
    status: Literal["open", "approved", "rejected", "none", "all"] = Query(
        "open", description="review status; open is the review queue"
    ),
    action: Literal["allow", "flag", "hold", "block"] | None = None,
    cursor: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> Any:
    before_id = None
    if cursor:
        before_id = members.decode_id_cursor(cursor)
    rows = service.list_assessments(
        ctx.session,
        ctx.program,
        review_status=None if status == "all" else status,
        action=action,
        before_id=before_id,
        limit=limit + 1,
    )
    next_cursor = members.encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return {
        "assessments": [service.assessment_out(ctx.session, r) for r in rows[:limit]],
        "next_cursor": next_cursor,
    }


@router.get(
    "/fraud/assessments/{assessment_id}", response_model=AssessmentOut, responses=errors_doc(404)
)
def get_assessment(assessment_id: RowId, ctx: ApiContext = API) -> Any:
    row = service.get_assessment(ctx.session, ctx.program, assessment_id)
    return service.assessment_out(ctx.session, row)


# 409: the assessment was already decided the other way
REVIEWED = errors_doc(404, 409)


@router.post(
    "/fraud/assessments/{assessment_id}/approve", response_model=AssessmentOut, responses=REVIEWED
)
def approve(assessment_id: RowId, body: ReviewIn | None = None, ctx: ApiContext = API_WRITE) -> Any:
    """Genuine: the referral is approved and its held rewards are issued (or left to vest)."""
    row = service.approve(
        ctx.session, ctx.program, assessment_id, actor=ACTOR, note=body.note if body else ""
    )
    return service.assessment_out(ctx.session, row)


@router.post(
    "/fraud/assessments/{assessment_id}/reject", response_model=AssessmentOut, responses=REVIEWED
)
def reject(assessment_id: RowId, body: ReviewIn | None = None, ctx: ApiContext = API_WRITE) -> Any:
    """Fraud: the referral is rejected and every reward it earned is reversed."""
    row = service.reject(
        ctx.session, ctx.program, assessment_id, actor=ACTOR, note=body.note if body else ""
    )
    return service.assessment_out(ctx.session, row)


@router.get("/fraud/settings", response_model=FraudSettings)
def get_settings(ctx: ApiContext = API) -> Any:
    return service.fraud_settings(ctx.program)


@router.patch("/fraud/settings", response_model=FraudSettings)
def update_settings(body: FraudSettingsPatch, ctx: ApiContext = API_WRITE) -> Any:
    """Change some settings; ``checks`` changes only the checks named."""
    return service.update_settings(ctx.session, ctx.program, body)
