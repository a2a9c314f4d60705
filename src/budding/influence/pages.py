"""Admin pages: "Opinion leaders" (the table and a leader's neighbourhood) and
"Campaign planner" (choose k, audience and launch cost; compare plans; reach curves)."""

from __future__ import annotations

from html import escape
from typing import Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from budding.core import jobs
from budding.core.auth import STAFF, StaffContext
from budding.core.errors import BuddingError, NotFound, field_messages, from_pydantic
from budding.core.i18n import N_, gettext
from budding.core.routing import RowId
from budding.core.templating import render
from budding.influence import service
from budding.influence.ranking import MEASURES
from budding.influence.schemas import SimulationIn
from budding.jobs.pages import STATUS_LABELS  # the Jobs pages' words for a job's status
from budding.members import service as members

router = APIRouter(include_in_schema=False)

ADMIN_NAV = [
    (30, N_("Opinion leaders"), "/influence"),
    (31, N_("Campaign planner"), "/influence/planner"),
]

MEASURE_LABELS = {
    "reach": N_("Expected reach"),
    "pagerank": N_("PageRank"),
    "betweenness": N_("Betweenness"),
    "coreness": N_("Coreness"),
    "in_degree": N_("Hears from"),
    "out_degree": N_("Talks to"),
}
STRATEGY_LABELS = {
    "imm": N_("Best seeds (IMM)"),
    "followers": N_("Most connections"),
    "pagerank": N_("Highest PageRank"),
}
COLORS = ["#2f7d4f", "#d08a1e", "#3a6ea5", "#a23b72", "#6b8e23", "#66707a", "#b5523b", "#5a4fcf"]
KIND = "influence.simulate"


@router.get("/admin/{slug}/influence")
def leaders_page(
    request: Request,
    slug: str,
    group: str = Query("", max_length=100),
    by: str = Query("reach", max_length=20),
    top: int = Query(20, ge=1, le=200),
    ctx: StaffContext = STAFF,
) -> Response:
    program = ctx.program(slug)
    if by not in MEASURES:
        by = "reach"
    polled = request.headers.get("hx-request") == "true"  # the pending panel's poll
    try:
        ranked = service.program_ranking(ctx.session, program)
    except service.RankingPending as pending:  # a job computes the first ranking
        return ctx.render(
            request,
            "influence/_ranking_pending.html" if polled else "influence/leaders.html",
            program=program,
            job=pending.job,
            retry_at=pending.retry_at,
            poll_url=f"{request.url.path}?{request.url.query}".rstrip("?"),
            status_labels=STATUS_LABELS,
        )
    if polled:  # ranked now: the whole page again, with the table
        return Response(headers={"HX-Refresh": "true"})
    try:
        result = service.leaders(
            ctx.session, program, top=top, group=group or None, by=by, ranked=ranked
        )
    except BuddingError:  # an attribute no member has (any more): say so on the page
        result = {"by": by, "group": group, "leaders": [], "groups": {}}
    return ctx.render(
        request,
        "influence/leaders.html",
        program=program,
        result=result,
        attributes=members.attribute_names(ctx.session, program.id),
        group=group,
        by=by,
        top=top,
        measures=MEASURES,
        measure_labels=MEASURE_LABELS,
        members=ranked.members,
        connections=ranked.connections,
        referrals=ranked.referrals,
        interactions=ranked.interactions,
        ranked_at=ranked.computed_at,
        current=ranked.current,
        refresh_job=ranked.refresh_job,
        retry_at=ranked.retry_at,
    )


@router.post("/admin/{slug}/influence/ranking/{job_id}/retry")
def ranking_retry(slug: str, job_id: RowId, ctx: StaffContext = STAFF) -> Response:
    ctx.require_write()
    program = ctx.program(slug)
    service.retry_ranking(ctx.session, program, job_id)
    return RedirectResponse(f"/admin/{program.slug}/influence", status_code=303)


@router.get("/admin/{slug}/influence/members/{external_id:path}")
def neighbourhood_page(
    request: Request, slug: str, external_id: str, ctx: StaffContext = STAFF
) -> Response:
    program = ctx.program(slug)
    try:
        hood = service.neighbourhood(ctx.session, program, external_id)
    except BuddingError:
        raise NotFound(f"no member {external_id!r}") from None
    label = MEASURE_LABELS["out_degree"]  # (a name, not a msgid, inside gettext's call)
    talks_to = escape(gettext(label))
    nodes = [
        {
            "id": n["id"],
            "name": n["name"] or n["id"],
            "value": n["out_degree"],
            # the hover names its number (ECharts fills in {b}, the name, escaped)
            "tooltip": {"formatter": f"{{b}}<br>{talks_to}: {n['out_degree']}"},
            "symbolSize": 36 if n["id"] == hood["center"] else 10 + min(20, n["out_degree"]),
            "itemStyle": {"color": COLORS[0] if n["id"] == hood["center"] else COLORS[2]},
        }
        for n in hood["nodes"]
    ]
    links = [
        {
            "source": link["source"],
            "target": link["target"],
            "value": link["weight"],
            "lineStyle": {"width": 1 + min(5.0, link["weight"])},
        }
        for link in hood["links"]
    ]
    option = {
        "tooltip": {},
        "series": [
            {
                "type": "graph",
                "layout": "force",
                "roam": True,
                "draggable": True,
                "label": {"show": len(nodes) <= 30, "position": "right"},
                "edgeSymbol": ["none", "arrow"],
                "edgeSymbolSize": 6,
                "force": {"repulsion": 120, "edgeLength": 80},
                "data": nodes,
                "links": links,
            }
        ],
    }
    return ctx.render(
        request,
        "influence/neighbourhood.html",
        program=program,
        member=external_id,
        member_name=next(n["name"] for n in hood["nodes"] if n["id"] == hood["center"]),
        hood=hood,
        chart={"option": option, "series": []},
    )


def _planner(
    request: Request,
    ctx: StaffContext,
    program: Any,
    *,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    recent = jobs.list_jobs(ctx.session, program.id, kind=KIND, limit=10)
    defaults = {
        "k": 20,
        "strategies": ["imm", "followers"],
        "launch_costs": "1, 3",
        "reward": 0,
        "runs": 2000,
        "target": "",
        "consented_only": False,
        "active_only": False,
        "funnel": "",
    }
    return ctx.render(
        request,
        "influence/planner.html",
        status_code=status_code,
        program=program,
        form=form or defaults,
        errors=errors or {},
        # a cheap query each, not the graph (the planner only lists them)
        attributes=members.attribute_names(ctx.session, program.id),
        members=members.count_members(ctx.session, program.id),
        strategies=STRATEGY_LABELS,
        recent=recent,
        status_labels=STATUS_LABELS,
    )


@router.get("/admin/{slug}/influence/planner")
def planner_page(request: Request, slug: str, ctx: StaffContext = STAFF) -> Response:
    return _planner(request, ctx, ctx.program(slug))


def _numbers(text: str, name: str) -> list[float]:
    try:
        values = [float(x) for x in text.replace(";", ",").split(",") if x.strip()]
    except ValueError:
        raise BuddingError(
            name, fields={name: gettext("Enter numbers separated by commas.")}
        ) from None
    return values


@router.post("/admin/{slug}/influence/planner")
def planner_submit(
    request: Request,
    slug: str,
    k: str = Form("", max_length=10),
    strategies: list[str] = Form([]),
    launch_costs: str = Form("1", max_length=200),
    reward: float = Form(0.0),
    runs: int = Form(2000),
    target: str = Form("", max_length=200),
    consented_only: bool = Form(False),
    active_only: bool = Form(False),
    funnel: str = Form("", max_length=200),
    ctx: StaffContext = STAFF,
) -> Response:
    ctx.require_write()
    program = ctx.program(slug)
    form = {
        "k": k, "strategies": strategies, "launch_costs": launch_costs, "reward": reward,
        "runs": runs, "target": target, "consented_only": consented_only,
        "active_only": active_only, "funnel": funnel,
    }  # fmt: skip
    errors: dict[str, str] = {}
    costs: list[float] = []
    rates: list[float] | None = None
    seeds = int(k) if k.strip().isdigit() else 0
    if not 1 <= seeds <= 1000:
        errors["k"] = gettext("Enter a whole number from 1 to 1,000.")
    try:
        costs = _numbers(launch_costs, "launch_costs") or [1.0]
    except BuddingError as exc:
        errors.update(field_messages(exc))
    try:
        rates = _numbers(funnel, "funnel") or None
    except BuddingError as exc:
        errors.update(field_messages(exc))
    if not strategies:
        errors["strategies"] = gettext("Choose at least one way to pick seeds.")
    if errors:
        return _planner(request, ctx, program, form=form, errors=errors, status_code=422)
    cost_label = gettext("launch cost")
    plans = [
        {
            "name": f"{gettext(STRATEGY_LABELS.get(s, s))} · {cost_label} {c:g}",
            "strategy": s,
            "k": seeds,
            "launch_cost": c,
            "reward": reward,
        }
        for s in strategies
        for c in costs
    ]
    try:
        request_in = SimulationIn.model_validate(
            {
                "plans": plans,
                "runs": runs,
                "target": target.strip() or None,
                "consented_only": consented_only,
                "active_only": active_only,
                "funnel": rates,
            }
        )
        # start_simulation validates everything before its one write (the job row).
        record = service.start_simulation(ctx.session, program, request_in)
    except ValidationError as exc:
        fields = field_messages(from_pydantic(exc))
        return _planner(request, ctx, program, form=form, errors=_flat(fields), status_code=422)
    except BuddingError as exc:
        return _planner(
            request, ctx, program, form=form, errors=_flat(field_messages(exc)), status_code=422
        )
    return RedirectResponse(f"/admin/{slug}/influence/planner/{record.id}", status_code=303)


# A plan's fields (``plans.0.k``) are the form's fields they came from.
_PLAN_FIELDS = {"k": "k", "launch_cost": "launch_costs", "reward": "reward"}


def _flat(fields: dict[str, str]) -> dict[str, str]:
    """Validation errors keyed by the planner form's fields."""
    out: dict[str, str] = {}
    for key, reason in fields.items():
        parts = key.split(".")
        if parts[0] == "plans":
            top = _PLAN_FIELDS.get(parts[2], "strategies") if len(parts) > 2 else "strategies"
        else:
            top = parts[0]
        out.setdefault(top, reason)
    return out


def _curves(result: dict[str, Any]) -> dict[str, Any]:
    """ECharts option: mean reach per step with a 95 % band for each plan."""
    series: list[dict[str, Any]] = []
    steps = max(len(p["reach_per_step"]) for p in result["plans"])
    for i, plan in enumerate(result["plans"]):
        color = COLORS[i % len(COLORS)]
        lo = [round(a, 2) for a, _ in plan["reach_per_step_ci95"]]
        width = [round(b - a, 2) for a, b in plan["reach_per_step_ci95"]]
        stack = f"band{i}"
        series.append(
            {"name": plan["name"], "type": "line", "data": lo, "stack": stack, "symbol": "none",
             "itemStyle": {"color": color},  # the legend takes the first series' colour
             "lineStyle": {"opacity": 0}, "tooltip": {"show": False}, "legendHoverLink": False}
        )  # fmt: skip
        series.append(
            {"name": plan["name"], "type": "line", "data": width, "stack": stack,
             "symbol": "none", "itemStyle": {"color": color}, "lineStyle": {"opacity": 0},
             "areaStyle": {"color": color, "opacity": 0.18}, "tooltip": {"show": False}}
        )  # fmt: skip
        series.append(
            {"name": plan["name"], "type": "line", "symbol": "circle", "symbolSize": 5,
             "data": [round(x, 2) for x in plan["reach_per_step"]], "itemStyle": {"color": color},
             "lineStyle": {"color": color, "width": 2}}
        )  # fmt: skip
    return {
        "option": {
            "tooltip": {"trigger": "axis"},
            # one scrolling row: wrapped over several rows it covers the plot on a phone
            "legend": {"type": "scroll", "data": [p["name"] for p in result["plans"]]},
            "grid": {"left": 56, "right": 16, "top": 48, "bottom": 40},
            "xAxis": {"type": "category", "data": list(range(steps)), "name": gettext("Step")},
            "yAxis": {"type": "value", "name": gettext("Members reached")},
            "series": series,
        },
        "series": [],
    }


@router.get("/admin/{slug}/influence/planner/{job_id}")
def planner_result(
    request: Request, slug: str, job_id: RowId, ctx: StaffContext = STAFF
) -> Response:
    program = ctx.program(slug)
    record = jobs.get_job(ctx.session, job_id, program_id=program.id)
    if record.kind != KIND:
        raise NotFound(f"no simulation {job_id}")
    finished = record.status in ("succeeded", "failed")
    if request.headers.get("hx-request") == "true":
        response: Response = render(
            request, "influence/_progress.html", program=program, job=record,
            finished=finished, status_labels=STATUS_LABELS,
        )  # fmt: skip
        if finished:
            response.headers["HX-Refresh"] = "true"
        return response
    result = record.result if record.status == "succeeded" else None
    return ctx.render(
        request,
        "influence/result.html",
        program=program,
        job=record,
        finished=finished,
        result=result,
        chart=_curves(result) if result and result.get("plans") else None,
        status_labels=STATUS_LABELS,
    )
