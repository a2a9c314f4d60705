"""REST routes for the points ledger. Thin: parse, call the service, shape the answer."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from budding.core.auth import API, ApiContext
from budding.core.errors import errors_doc
from budding.honors import ledger
from budding.honors.schemas import PointsOut
from budding.members import service as members

router = APIRouter(tags=["honors"])


@router.get("/members/{external_id}/points", response_model=PointsOut, responses=errors_doc(404))
def member_points(
    external_id: str,
    ctx: ApiContext = API,
    cursor: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> Any:
    """The member's points balance and ledger entries, newest first."""
    member = members.get_member(ctx.session, ctx.program.id, external_id)
    before_id = None
    if cursor:
        before_id = members.decode_id_cursor(cursor)
    rows = ledger.entries(ctx.session, ctx.program, member.id, before_id=before_id, limit=limit + 1)
    next_cursor = members.encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return {
        "member": member.external_id,
        "balance": ledger.balance(ctx.session, ctx.program, member.id),
        "entries": rows[:limit],
        "next_cursor": next_cursor,
    }
