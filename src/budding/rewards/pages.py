"""Reward pages: the rewards list with review actions, reward rules, coupon pools (admin);
the member's rewards and points (portal). Routes only translate HTTP."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from budding.core.auth import STAFF, StaffContext
from budding.core.errors import BuddingError, ValidationFailed, field_messages
from budding.core.i18n import N_, gettext
from budding.core.routing import IntRowId, RowId
from budding.honors import ledger
from budding.members import service as members
from budding.members.portal import MEMBER, PortalContext
from budding.rewards import coupons, rules, service
from budding.rewards.models import KINDS, SIDES, STAGES, STATUSES

router = APIRouter(include_in_schema=False)
ADMIN_NAV = [
    (40, N_("Rewards"), "/rewards"),
    (41, N_("Reward rules"), "/rewards/rules"),
    (42, N_("Coupon pools"), "/rewards/coupons"),
]
PORTAL_NAV = [(40, N_("Rewards"), "/rewards")]
PAGE_SIZE = 50

STATUS_LABELS: dict[str, Any] = {
    "pending": N_("Pending"),
    "held": N_("Held for review"),
    "issued": N_("Issued"),
    "rejected": N_("Rejected"),
    "reversed": N_("Reversed"),
}
KIND_LABELS: dict[str, Any] = {
    "points": N_("Points"),
    "coupon": N_("Coupon"),
    "invites": N_("Extra invites"),
    "custom": N_("Custom"),
}
SIDE_LABELS: dict[str, Any] = {"referrer": N_("Referrer"), "referee": N_("Referee (the friend)")}
TRIGGER_LABELS: dict[str, Any] = {
    "signup": N_("Signup"),
    "conversion": N_("Qualifying conversion"),
    "milestone": N_("Milestone"),
}
DONE_MESSAGES = {
    "approved": N_("The reward was approved."),
    "rejected": N_("The reward was rejected."),
    "rule-created": N_("The reward rule was created."),
    "rule-archived": N_("The reward rule was archived."),
    "rule-updated": N_("The reward rule was updated."),
}
# A refused review, by code in the address (never words: a link could put any on the page)
ERROR_MESSAGES = {
    "coupon_pool_empty": N_(
        "The reward's coupon pool is empty, so it was not issued and stays held. Upload "
        "codes, then approve it again."
    ),
}
LABELS: dict[str, Any] = {
    "status_labels": STATUS_LABELS,
    "kind_labels": KIND_LABELS,
    "side_labels": SIDE_LABELS,
    "trigger_labels": TRIGGER_LABELS,
}


def _done(done: str | None) -> str | None:
    msgid = DONE_MESSAGES.get(done or "")
    return gettext(msgid) if msgid else None


def _actor(ctx: StaffContext) -> str:
    return ctx.user.email


# --- rewards ----------------------------------------------------------------------------


@router.get("/admin/{slug}/rewards")
def rewards_page(
    request: Request,
    slug: str,
    status: str | None = Query(None, max_length=16),
    member: str = Query("", max_length=200),
    before: int | None = Query(None, ge=1),
    done: str | None = None,
    error: str | None = Query(None, max_length=32),
    ctx: StaffContext = STAFF,
) -> Response:
    program = ctx.program(slug)
    chosen = status if status in STATUSES else None
    member_id = None
    flash, flash_kind = _done(done), "ok"
    if member.strip():
        found = members.get_member_or_none(ctx.session, program.id, member.strip())
        if found is None:
            flash, flash_kind = gettext("No member with this ID."), "error"
            member_id = -1
        else:
            member_id = found.id
    if error in ERROR_MESSAGES:
        flash, flash_kind = gettext(ERROR_MESSAGES[error]), "error"
    rows = service.list_rewards(
        ctx.session,
        program,
        member_id=member_id,
        status=chosen,
        before_id=before,
        limit=PAGE_SIZE + 1,
    )
    more = rows[PAGE_SIZE - 1].id if len(rows) > PAGE_SIZE else None
    return ctx.render(
        request,
        "rewards/list.html",
        program=program,
        rewards=service.rewards_out(ctx.session, program, rows[:PAGE_SIZE]),
        counts=service.count_by_status(ctx.session, program),
        statuses=STATUSES,
        status=chosen,
        member=member,
        more=more,
        flash=flash,
        flash_kind=flash_kind,
        **LABELS,
    )


def _back(slug: str, status: str | None, done: str | None = None, error: str | None = None) -> str:
    from urllib.parse import urlencode

    query = {k: v for k, v in (("status", status), ("done", done), ("error", error)) if v}
    return f"/admin/{slug}/rewards" + (f"?{urlencode(query)}" if query else "")


@router.post("/admin/{slug}/rewards/{reward_id}/approve")
def approve(
    slug: str,
    reward_id: RowId,
    reason: str = Form("", max_length=500),
    back: str = Form("", max_length=16),
    ctx: StaffContext = STAFF,
) -> Response:
    ctx.require_write()
    program = ctx.program(slug)
    try:
        service.approve_reward(ctx.session, program, reward_id, actor=_actor(ctx), note=reason)
    except service.CouponPoolEmpty as exc:  # the reward stays held, with the reason
        return RedirectResponse(_back(program.slug, back or None, error=exc.code), status_code=303)
    return RedirectResponse(_back(program.slug, back or None, "approved"), status_code=303)


@router.post("/admin/{slug}/rewards/{reward_id}/reject")
def reject(
    slug: str,
    reward_id: RowId,
    reason: str = Form("", max_length=500),
    back: str = Form("", max_length=16),
    ctx: StaffContext = STAFF,
) -> Response:
    ctx.require_write()
    program = ctx.program(slug)
    service.reject_reward(ctx.session, program, reward_id, actor=_actor(ctx), reason=reason)
    return RedirectResponse(_back(program.slug, back or None, "rejected"), status_code=303)


# --- rules ------------------------------------------------------------------------------


def _rules_page(
    request: Request,
    ctx: StaffContext,
    slug: str,
    *,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    flash: str | None = None,
    status_code: int = 200,
) -> Response:
    program = ctx.program(slug)
    return ctx.render(
        request,
        "rewards/rules.html",
        program=program,
        status_code=status_code,
        rules=[
            rules.rule_out(ctx.session, program, r) for r in rules.list_rules(ctx.session, program)
        ],
        pools=[s.pool.name for s in coupons.pool_stats(ctx.session, program)],
        sides=SIDES,
        kinds=KINDS,
        stages=STAGES,
        triggers=("signup", "conversion", "milestone"),
        form=form
        or {
            "side": "referrer",
            "trigger": "conversion",
            "kind": "points",
            "milestone_on": "conversion",
        },
        errors=errors or {},
        flash=flash,
        flash_kind="error" if errors else "ok",
        **LABELS,
    )


@router.get("/admin/{slug}/rewards/rules")
def rules_page(
    request: Request, slug: str, done: str | None = None, ctx: StaffContext = STAFF
) -> Response:
    return _rules_page(request, ctx, slug, flash=_done(done))


def _int_or(value: str, default: int | None) -> int | str | None:
    value = value.strip()
    if not value:
        return default
    return int(value) if value.lstrip("-").isdigit() else value


@router.post("/admin/{slug}/rewards/rules")
def create_rule(
    request: Request,
    slug: str,
    name: str = Form("", max_length=200),
    side: str = Form("referrer", max_length=16),
    trigger: str = Form("conversion", max_length=16),
    kind: str = Form("points", max_length=16),
    amount: str = Form("", max_length=12),
    pool: str = Form("", max_length=100),
    milestone: str = Form("", max_length=12),
    milestone_on: str = Form("conversion", max_length=16),
    vesting_days: str = Form("", max_length=12),
    ctx: StaffContext = STAFF,
) -> Response:
    ctx.require_manage()
    program = ctx.program(slug)
    form = {
        "name": name,
        "side": side,
        "trigger": trigger,
        "kind": kind,
        "amount": amount,
        "pool": pool,
        "milestone": milestone,
        "milestone_on": milestone_on,
        "vesting_days": vesting_days,
    }
    data = {
        "name": name,
        "side": side,
        "trigger": trigger,
        "kind": kind,
        "amount": _int_or(amount, 0) if kind in ("points", "invites") else 0,
        "pool": (pool or None) if kind == "coupon" else None,
        "milestone": _int_or(milestone, None) if trigger == "milestone" else None,
        "milestone_on": milestone_on,
        "vesting_days": _int_or(vesting_days, 0),
    }
    try:  # a refused rule writes nothing: it is checked before it is added
        rules.create_rule(ctx.session, program, data)
    except BuddingError as exc:
        return _rules_page(
            request,
            ctx,
            slug,
            form=form,
            errors=field_messages(exc) or {"name": exc.message},
            flash=gettext("The rule was not created. Check the fields below."),
            status_code=exc.status,
        )
    return RedirectResponse(
        f"/admin/{program.slug}/rewards/rules?done=rule-created", status_code=303
    )


@router.post("/admin/{slug}/rewards/rules/{rule_id}/active")
def set_rule_active(
    slug: str, rule_id: IntRowId, active: str = Form("", max_length=5), ctx: StaffContext = STAFF
) -> Response:
    ctx.require_manage()
    program = ctx.program(slug)
    rules.update_rule(ctx.session, program, rule_id, {"active": active == "true"})
    return RedirectResponse(
        f"/admin/{program.slug}/rewards/rules?done=rule-updated", status_code=303
    )


@router.post("/admin/{slug}/rewards/rules/{rule_id}/archive")
def archive_rule(slug: str, rule_id: IntRowId, ctx: StaffContext = STAFF) -> Response:
    ctx.require_manage()
    program = ctx.program(slug)
    rules.archive_rule(ctx.session, program, rule_id)
    return RedirectResponse(
        f"/admin/{program.slug}/rewards/rules?done=rule-archived", status_code=303
    )


# --- coupon pools -----------------------------------------------------------------------


def _pools_page(
    request: Request,
    ctx: StaffContext,
    slug: str,
    *,
    result: coupons.UploadResult | None = None,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    flash: str | None = None,
    status_code: int = 200,
) -> Response:
    program = ctx.program(slug)
    return ctx.render(
        request,
        "rewards/coupons.html",
        program=program,
        status_code=status_code,
        pools=coupons.pool_stats(ctx.session, program),
        result=result,
        errors=errors or {},
        form=form or {},
        flash=flash,
        flash_kind="error" if errors else "ok",
    )


@router.get("/admin/{slug}/rewards/coupons")
def pools_page(request: Request, slug: str, ctx: StaffContext = STAFF) -> Response:
    return _pools_page(request, ctx, slug)


@router.post("/admin/{slug}/rewards/coupons")
def upload_codes(
    request: Request,
    slug: str,
    pool: str = Form("", max_length=100),
    description: str = Form("", max_length=500),
    file: UploadFile | None = File(None),
    ctx: StaffContext = STAFF,
) -> Response:
    ctx.require_manage()
    program = ctx.program(slug)
    form = {"pool": pool, "description": description}
    try:
        if file is None or not file.filename:
            raise ValidationFailed(
                "file: choose a CSV file", fields={"file": gettext("choose a CSV file")}
            )
        try:
            text = file.file.read().decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationFailed(
                "file: is not UTF-8 text", fields={"file": gettext("is not UTF-8 text")}
            ) from None
        result = coupons.upload_codes(ctx.session, program, pool, text, description=description)
    except BuddingError as exc:
        return _pools_page(
            request,
            ctx,
            slug,
            errors=field_messages(exc) or {"file": exc.message},
            form=form,
            flash=gettext("Nothing was uploaded. Check the fields below."),
            status_code=exc.status,
        )
    return _pools_page(
        request,
        ctx,
        slug,
        result=result,
        flash=gettext(
            "%(added)s codes added to %(pool)s (%(duplicates)s already there).",
            added=result.added,
            pool=result.pool.name,
            duplicates=result.duplicates,
        ),
    )


# --- member portal ----------------------------------------------------------------------


@router.get("/p/{slug}/rewards")
def my_rewards(pctx: PortalContext = MEMBER) -> Response:
    assert pctx.member is not None
    rows = service.rewards_of(pctx.session, pctx.program, pctx.member.id, limit=200)
    return pctx.render(
        "rewards/portal/rewards.html",
        rewards=service.rewards_out(pctx.session, pctx.program, rows),
        points=ledger.balance(pctx.session, pctx.program, pctx.member.id),
        entries=ledger.entries(pctx.session, pctx.program, pctx.member.id, limit=20),
        **LABELS,
    )
