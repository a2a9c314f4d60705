"""Members' pages: the program overview, the member list and member detail in the admin
dashboard; the member portal (sign-in, profile, language) lives in ``portal``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from budding.core.auth import STAFF, StaffContext
from budding.core.i18n import N_, gettext
from budding.core.templating import render
from budding.members import events, portal, service

router = APIRouter(include_in_schema=False)
router.include_router(portal.router)

ADMIN_NAV = [(0, N_("Overview"), ""), (10, N_("Members"), "/members")]
PORTAL_NAV = [(10, N_("Profile"), "/profile")]

CHART_DAYS = 90
ACTIVE_DAYS = 30
PAGE_SIZE = 50
TIMELINE_SIZE = 200


@router.get("/admin/{slug}")
def overview(request: Request, slug: str, ctx: StaffContext = STAFF) -> Response:
    program = ctx.program(slug)
    per_day = events.events_per_day(ctx.session, program.id, days=CHART_DAYS)
    chart = {
        "type": "line",
        "x": [day for day, _ in per_day],
        "series": [{"name": gettext("Events"), "data": [n for _, n in per_day], "areaStyle": {}}],
    }
    return ctx.render(
        request,
        "members/overview.html",
        program=program,
        members_total=service.count_members(ctx.session, program.id),
        members_active=events.active_members(ctx.session, program.id, days=ACTIVE_DAYS),
        events_today=per_day[-1][1] if per_day else 0,
        events_period=sum(n for _, n in per_day),
        chart=chart,
        chart_days=CHART_DAYS,
        active_days=ACTIVE_DAYS,
        latest=events.latest_events(ctx.session, program.id, limit=20),
    )


@router.get("/admin/{slug}/members")
def member_list(
    request: Request,
    slug: str,
    q: str = Query("", max_length=200),
    cursor: str | None = Query(None, max_length=200),
    ctx: StaffContext = STAFF,
) -> Response:
    program = ctx.program(slug)
    found, next_cursor = service.search_members(
        ctx.session, program.id, query=q, cursor=cursor, limit=PAGE_SIZE
    )
    results: dict[str, Any] = {"members": found, "next_cursor": next_cursor, "q": q}
    is_htmx = request.headers.get("hx-request") == "true"
    if is_htmx and not request.headers.get("hx-history-restore-request"):
        # Live search swaps only the results; the browser's history gets the full page.
        response: Response = render(request, "members/_results.html", program=program, **results)
        response.headers["Cache-Control"] = "no-store"
        response.headers["Vary"] = "HX-Request"
        return response
    response = ctx.render(request, "members/list.html", program=program, **results)
    response.headers["Vary"] = "HX-Request"
    return response


@router.get("/admin/{slug}/members/{external_id:path}")
def member_detail(
    request: Request, slug: str, external_id: str, ctx: StaffContext = STAFF
) -> Response:
    program = ctx.program(slug)
    member = service.get_member(ctx.session, program.id, external_id)
    timeline = events.member_timeline(ctx.session, member, limit=TIMELINE_SIZE)
    targets = service.get_members_by_ids(
        ctx.session, (e.target_member_id for e in timeline if e.target_member_id is not None)
    )
    return ctx.render(
        request,
        "members/detail.html",
        program=program,
        member=member,
        timeline=timeline,
        timeline_size=TIMELINE_SIZE,
        targets={i: m.external_id for i, m in targets.items()},
    )
