"""REST routes for rewards, reward rules and coupon pools. Thin: parse, call the service, shape."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from budding.core.auth import API, API_WRITE, ApiContext
from budding.core.errors import MalformedMultipart, errors_doc, field
from budding.core.routing import IntRowId, RowId
from budding.members import service as members
from budding.rewards import coupons, rules, service
from budding.rewards.schemas import (
    PoolIn,
    PoolOut,
    ReviewIn,
    RewardOut,
    RewardPage,
    RuleIn,
    RuleOut,
    RulePatch,
    Status,
    UploadOut,
)

router = APIRouter(tags=["rewards"])
ACTOR = "api"


def _before_id(cursor: str | None) -> int | None:
    if not cursor:
        return None
    return members.decode_id_cursor(cursor)


@router.get("/rewards", response_model=RewardPage, responses=errors_doc(404))  # unknown member
def list_rewards(
    ctx: ApiContext = API,
    member: str | None = Query(None, description="external id of the rewarded member"),
    status: Status | None = None,
    cursor: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> Any:
    """Rewards, newest first, optionally of one member and in one status."""
    member_id = members.get_member(ctx.session, ctx.program.id, member).id if member else None
    rows = service.list_rewards(
        ctx.session,
        ctx.program,
        member_id=member_id,
        status=status,
        before_id=_before_id(cursor),
        limit=limit + 1,
    )
    next_cursor = members.encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return {
        "rewards": service.rewards_out(ctx.session, ctx.program, rows[:limit]),
        "next_cursor": next_cursor,
    }


@router.get("/rewards/{reward_id}", response_model=RewardOut, responses=errors_doc(404))
def get_reward(reward_id: RowId, ctx: ApiContext = API) -> Any:
    reward = service.get_reward(ctx.session, ctx.program, reward_id)
    return service.rewards_out(ctx.session, ctx.program, [reward])[0]


@router.post(
    "/rewards/{reward_id}/approve", response_model=RewardOut, responses=errors_doc(404, 409)
)
def approve_reward(
    reward_id: RowId, body: ReviewIn | None = None, ctx: ApiContext = API_WRITE
) -> Any:
    """Issue a pending or held reward now. 409 when it was rejected or reversed, or its
    coupon pool is empty."""
    note = body.reason if body else ""
    reward = service.approve_reward(ctx.session, ctx.program, reward_id, actor=ACTOR, note=note)
    return service.rewards_out(ctx.session, ctx.program, [reward])[0]


# 409: a points reversal could not be written (retry)
@router.post(
    "/rewards/{reward_id}/reject", response_model=RewardOut, responses=errors_doc(404, 409)
)
def reject_reward(
    reward_id: RowId, body: ReviewIn | None = None, ctx: ApiContext = API_WRITE
) -> Any:
    """Refuse a pending or held reward; an issued one is reversed (compensating entries)."""
    reason = body.reason if body else ""
    reward = service.reject_reward(ctx.session, ctx.program, reward_id, actor=ACTOR, reason=reason)
    return service.rewards_out(ctx.session, ctx.program, [reward])[0]


# --- rules -----------------------------------------------------------------------------


@router.get("/reward-rules", response_model=list[RuleOut])
def list_rules(ctx: ApiContext = API) -> Any:
    return [
        rules.rule_out(ctx.session, ctx.program, r)
        for r in rules.list_rules(ctx.session, ctx.program)
    ]


# 404: an unknown coupon ``pool``
@router.post("/reward-rules", response_model=RuleOut, status_code=201, responses=errors_doc(404))
def create_rule(body: RuleIn, ctx: ApiContext = API_WRITE) -> Any:
    rule = rules.create_rule(ctx.session, ctx.program, body)
    return rules.rule_out(ctx.session, ctx.program, rule)


@router.get("/reward-rules/{rule_id}", response_model=RuleOut, responses=errors_doc(404))
def get_rule(rule_id: IntRowId, ctx: ApiContext = API) -> Any:
    return rules.rule_out(
        ctx.session, ctx.program, rules.get_rule(ctx.session, ctx.program, rule_id)
    )


@router.patch("/reward-rules/{rule_id}", response_model=RuleOut, responses=errors_doc(404))
def update_rule(rule_id: IntRowId, body: RulePatch, ctx: ApiContext = API_WRITE) -> Any:
    rule = rules.update_rule(ctx.session, ctx.program, rule_id, body)
    return rules.rule_out(ctx.session, ctx.program, rule)


@router.delete("/reward-rules/{rule_id}", status_code=204, responses=errors_doc(404))
def archive_rule(rule_id: IntRowId, ctx: ApiContext = API_WRITE) -> Response:
    """Archive the rule: it pays nothing more; rewards it paid stay."""
    rules.archive_rule(ctx.session, ctx.program, rule_id)
    return Response(status_code=204)


# --- coupon pools ----------------------------------------------------------------------


@router.get("/coupon-pools", response_model=list[PoolOut])
def list_pools(ctx: ApiContext = API) -> Any:
    return [coupons.pool_out(s) for s in coupons.pool_stats(ctx.session, ctx.program)]


@router.post("/coupon-pools", response_model=PoolOut, status_code=201)
def create_pool(body: PoolIn, ctx: ApiContext = API_WRITE) -> Any:
    pool = coupons.create_pool(ctx.session, ctx.program, body.name, body.description)
    stats = next(s for s in coupons.pool_stats(ctx.session, ctx.program) if s.pool.id == pool.id)
    return coupons.pool_out(stats)


@router.post(
    "/coupon-pools/{name}/codes",
    response_model=UploadOut,
    openapi_extra={
        "requestBody": {
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                },
            }
        }
    },
)
async def upload_codes(name: str, request: Request, ctx: ApiContext = API_WRITE) -> Any:
    """Upload codes as CSV (a ``code`` column, or one code per line), as the request body
    (``text/csv``) or a form's ``file``. The pool is created when missing; codes already
    in it are counted as duplicates. A form body that is not valid multipart/form-data:
    400 ``malformed_multipart``."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        try:
            form = await request.form()
        except HTTPException as exc:  # Starlette's answer to a body its parser refused
            raise MalformedMultipart(str(exc.detail)) from None
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise field("file", "attach the CSV file as 'file'")
        raw = await upload.read()
    else:
        raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise field("file", "is not UTF-8 text") from None
    return await run_in_threadpool(_upload, ctx, name, text)


def _upload(ctx: ApiContext, name: str, text: str) -> dict[str, Any]:
    result = coupons.upload_codes(ctx.session, ctx.program, name, text)
    return {
        "pool": result.pool.name,
        "added": result.added,
        "duplicates": result.duplicates,
        "rejected": result.rejected,
        "available": coupons.available_count(ctx.session, result.pool.id),
    }
