"""REST routes for invites, the waitlist, referrals and the fission tree. Thin: parse,
call the service, shape the answer. Errors are the service's typed errors."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from budding.core.auth import API, API_WRITE, ApiContext
from budding.core.db import MAX_INT_ROW_ID, MAX_ROW_ID
from budding.core.errors import NotFound, errors_doc
from budding.core.routing import IntRowId
from budding.members import service as members
from budding.members.schemas import MemberOut
from budding.referrals import attribution, invites, tree, waitlist
from budding.referrals.config import referral_settings, update_referral_settings
from budding.referrals.links import referral_code_for, referral_url
from budding.referrals.schemas import (
    InviteCodeInfo,
    IssueInvitesIn,
    RedeemIn,
    ReferralFact,
    ReferralSettings,
    ReferralSettingsPatch,
    ReleaseIn,
    RevokeIn,
    WaitlistJoinIn,
)

router = APIRouter(tags=["referrals"])


# --- output shapes ---------------------------------------------------------------------


class InviteCodeOut(BaseModel):
    code: str
    display: str = Field(description="the code in groups of four, for people")
    url: str = Field(description="where a friend redeems it in the browser")
    status: str = Field(description="available, used, expired or revoked")
    uses: int
    used: int
    created_at: datetime
    expires_at: datetime | None
    redeemed_by: list[str] = Field(description="external ids of the members it brought in")
    issuer: str | None = Field(
        None, description="external id of the member who issued it; null for the team's codes"
    )


class InviteSummaryOut(BaseModel):
    member: str
    quota: int
    issued: int
    redeemed: int
    left: int
    codes: list[InviteCodeOut]


class IssuedOut(BaseModel):
    codes: list[InviteCodeOut]
    quota: int
    left: int


class ReferralOut(BaseModel):
    id: int
    referrer: str | None
    referee: str | None
    source: str
    channel: str | None
    generation: int
    status: str
    status_reason: str
    fraud_reasons: list[str]
    signed_up_at: datetime
    converted_at: datetime | None
    conversion_event_id: str | None


class RedemptionOut(BaseModel):
    member: MemberOut
    referrer: MemberOut | None
    referral: ReferralOut | None
    invite: InviteCodeOut


class WaitlistOut(BaseModel):
    email: str
    position: int | None = Field(description="1-based place in the queue; null once released")
    total: int = Field(description="people waiting")
    status: str = Field(description="waiting, released, joined or removed")
    confirmed: bool
    referral_code: str
    referral_url: str
    confirmed_referrals: int
    places_gained: int
    joined_at: datetime
    released_at: datetime | None
    invite_code: str | None
    status_url: str | None = None


class WaitlistChangeOut(BaseModel):
    at: datetime
    old_position: int | None
    new_position: int | None
    reason: str
    detail: str


class WaitlistDetailOut(WaitlistOut):
    history: list[WaitlistChangeOut]


class ReleasedOut(BaseModel):
    email: str
    position: int
    invite_code: str
    invite_url: str


class ReleaseOut(BaseModel):
    released: list[ReleasedOut]


class ReferredOut(BaseModel):
    external_id: str
    name: str
    joined_at: datetime
    converted_at: datetime | None
    channel: str | None
    status: str


class MemberReferralsOut(BaseModel):
    member: str
    referral_code: str
    referral_url: str
    referrer: str | None
    generation: int
    children: int
    descendants: int
    generation_sizes: dict[int, int]
    referred: list[ReferredOut]


class TreeNodeOut(BaseModel):
    external_id: str
    name: str
    parent: str | None
    generation: int
    depth: int = Field(description="levels below the requested root")
    children: int
    descendants: int
    joined_at: datetime | None
    converted_at: datetime | None
    channel: str | None


class TreeOut(BaseModel):
    root: str | None
    depth: int
    nodes: list[TreeNodeOut]
    generation_sizes: dict[int, int]
    truncated: bool


class StaffInvitesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = Field(default=1, ge=1, le=10_000)
    uses: int | None = Field(default=None, ge=1, le=100_000)
    expires_days: int | None = Field(default=None, ge=1, le=3650)
    note: str = Field(default="", max_length=200)


def _invite_out(info: InviteCodeInfo) -> InviteCodeOut:
    return InviteCodeOut(**asdict(info))


def _referral_out(ctx: ApiContext, fact: ReferralFact | None) -> ReferralOut | None:
    if fact is None:
        return None
    people = members.get_members_by_ids(ctx.session, [fact.referrer_id, fact.referee_id])
    a, b = people.get(fact.referrer_id), people.get(fact.referee_id)
    return ReferralOut(
        id=fact.id,
        referrer=a.external_id if a else None,
        referee=b.external_id if b else None,
        source=fact.source,
        channel=fact.channel,
        generation=fact.generation,
        status=fact.status,
        status_reason=fact.status_reason,
        fraud_reasons=fact.fraud_reasons,
        signed_up_at=fact.signed_up_at,
        converted_at=fact.converted_at,
        conversion_event_id=fact.conversion_event_id,
    )


# --- settings --------------------------------------------------------------------------


@router.get("/referrals/settings", response_model=ReferralSettings)
def get_settings_(ctx: ApiContext = API) -> Any:
    """The program's referral settings (mode, quota, code uses and expiry, attribution
    window and model, qualifying conversion, waitlist skip-ahead)."""
    return referral_settings(ctx.program)


@router.patch("/referrals/settings", response_model=ReferralSettings)
def patch_settings(body: ReferralSettingsPatch, ctx: ApiContext = API_WRITE) -> Any:
    """Change some settings; a bad value is refused naming its field, nothing is saved."""
    return update_referral_settings(ctx.session, ctx.program, body.model_dump(exclude_unset=True))


# --- invites -----------------------------------------------------------------------------


@router.post(
    "/members/{external_id}/invites",
    response_model=IssuedOut,
    status_code=201,
    responses=errors_doc(404, 409),
)
def issue_member_invites(
    external_id: str, body: IssueInvitesIn, ctx: ApiContext = API_WRITE
) -> Any:
    """Issue invite codes from the member's quota; 409 ``quota_exceeded`` with
    ``remaining`` when it would be exceeded."""
    member = members.get_member(ctx.session, ctx.program.id, external_id)
    codes = invites.issue_invites(ctx.session, ctx.program, member, body.count)
    summary = invites.invite_summary(ctx.session, ctx.program, member)
    return IssuedOut(codes=[_invite_out(c) for c in codes], quota=summary.quota, left=summary.left)


@router.get(
    "/members/{external_id}/invites", response_model=InviteSummaryOut, responses=errors_doc(404)
)
def member_invites(external_id: str, ctx: ApiContext = API) -> Any:
    """The member's quota, issued, redeemed and left, and every code with its status."""
    member = members.get_member(ctx.session, ctx.program.id, external_id)
    s = invites.invite_summary(ctx.session, ctx.program, member)
    return InviteSummaryOut(
        member=member.external_id,
        quota=s.quota,
        issued=s.issued,
        redeemed=s.redeemed,
        left=s.left,
        codes=[_invite_out(c) for c in s.codes],
    )


@router.post("/invites", response_model=IssuedOut, status_code=201)
def issue_staff_invites(body: StaffInvitesIn, ctx: ApiContext = API_WRITE) -> Any:
    """Codes from the team (no member's quota; their redeemers start a tree of their own)."""
    codes = invites.issue_staff_invites(
        ctx.session,
        ctx.program,
        body.count,
        uses=body.uses,
        expires_days=body.expires_days,
        note=body.note,
    )
    return IssuedOut(codes=[_invite_out(c) for c in codes], quota=0, left=0)


# 404: an unknown ``member``
@router.get("/invites", response_model=list[InviteCodeOut], responses=errors_doc(404))
def list_invites(
    ctx: ApiContext = API,
    member: str | None = None,
    # The service refuses another status in its words; the enum states it for the schema.
    status: str | None = Query(
        None,
        description="available, used, expired or revoked",
        json_schema_extra={"enum": list(invites.STATUSES)},
    ),
    limit: int = Query(100, ge=1, le=1000),
) -> Any:
    who = members.get_member(ctx.session, ctx.program.id, member) if member else None
    rows = invites.list_invites(ctx.session, ctx.program, member=who, status=status, limit=limit)
    return [_invite_out(info) for info in rows]


@router.get("/invites/{code}", response_model=InviteCodeOut, responses=errors_doc(404))
def get_invite(code: str, ctx: ApiContext = API) -> Any:
    """An invite's status. Reading never consumes a use."""
    return _invite_out(invites.peek_invite(ctx.session, ctx.program, code))


@router.post(
    "/invites/{code}/redeem",
    response_model=RedemptionOut,
    status_code=201,
    responses=errors_doc(404, 409, 410),
)
def redeem(code: str, body: RedeemIn, ctx: ApiContext = API_WRITE) -> Any:
    """Use the code to create a member, attributed to the code's issuer. 404 unknown code;
    410 used up, expired or revoked; 409 already a member; 403 refused by the fraud checks."""
    done = invites.redeem_invite(ctx.session, ctx.program, code, body)
    return RedemptionOut(
        member=MemberOut.model_validate(done.member),
        referrer=MemberOut.model_validate(done.referrer) if done.referrer else None,
        referral=_referral_out(ctx, done.referral),
        invite=_invite_out(done.invite),
    )


@router.post("/invites/{code}/revoke", response_model=InviteCodeOut, responses=errors_doc(404))
def revoke(code: str, ctx: ApiContext = API_WRITE, body: RevokeIn | None = None) -> Any:
    """Revoke a code (idempotent). An unused revoked code gives its invite back."""
    reason = body.reason if body else ""
    return _invite_out(invites.revoke_invite(ctx.session, ctx.program, code, reason))


# --- waitlist ----------------------------------------------------------------------------


def _waitlist_out(ctx: ApiContext, entry: Any, *, with_link: bool = True) -> dict[str, Any]:
    info = waitlist.entry_info(ctx.session, ctx.program, entry)
    out = asdict(info)
    out["status_url"] = waitlist.status_url(ctx.program, entry) if with_link else None
    return out


@router.post(
    "/waitlist",
    response_model=WaitlistOut,
    status_code=201,
    responses={
        200: {"model": WaitlistOut, "description": "The e-mail was on the waitlist already"},
        # 409: the program takes no waitlist signups, or the e-mail is a member's
        **errors_doc(409),
    },
)
def join_waitlist(body: WaitlistJoinIn, request: Request, ctx: ApiContext = API_WRITE) -> Any:
    """Put an e-mail on the waitlist (201; 200 when it was already on it) and send the
    confirmation e-mail. ``status_url`` is the person's private page."""
    result = waitlist.join_waitlist(
        ctx.session,
        ctx.program,
        body.email,
        referral_code=body.referral_code,
        click_token=body.click_id,
        locale=body.locale,
        ip=body.ip,
    )
    from fastapi.responses import JSONResponse

    out = WaitlistOut(**_waitlist_out(ctx, result.entry))
    return JSONResponse(out.model_dump(mode="json"), status_code=201 if result.created else 200)


@router.get("/waitlist", response_model=list[WaitlistOut])
def list_waitlist(
    ctx: ApiContext = API,
    status: str = Query(
        "waiting",
        description="waiting, released, joined or removed",
        json_schema_extra={"enum": list(waitlist.STATUSES)},
    ),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_ROW_ID),
) -> Any:
    rows = waitlist.list_entries(
        ctx.session, ctx.program, status=status, limit=limit, offset=offset
    )
    return [_waitlist_out(ctx, e, with_link=False) for e, _ in rows]


@router.post("/waitlist/release", response_model=ReleaseOut)
def release(body: ReleaseIn, ctx: ApiContext = API_WRITE) -> Any:
    """Release the first ``count`` entries: each gets a single-use invite by e-mail."""
    done = waitlist.release(ctx.session, ctx.program, body.count)
    return ReleaseOut(released=[ReleasedOut(**asdict(r)) for r in done])


WaitlistEmail = Annotated[str, Path(json_schema_extra={"format": "email"})]


@router.get("/waitlist/{email}", response_model=WaitlistDetailOut, responses=errors_doc(404))
def waitlist_entry(email: WaitlistEmail, ctx: ApiContext = API) -> Any:
    """Position, referral link and the history of position changes with their reasons."""
    entry = waitlist.get_entry(ctx.session, ctx.program, email)
    changes = [
        WaitlistChangeOut(
            at=c.changed_at,
            old_position=c.old_position,
            new_position=c.new_position,
            reason=c.reason,
            detail=c.detail,
        )
        for c in waitlist.history(ctx.session, ctx.program, entry)
    ]
    return WaitlistDetailOut(**_waitlist_out(ctx, entry), history=changes)


@router.post("/waitlist/{email}/confirm", response_model=WaitlistOut, responses=errors_doc(404))
def confirm_waitlist(email: WaitlistEmail, ctx: ApiContext = API_WRITE) -> Any:
    """Confirm an e-mail your own system verified (instead of Budding's confirmation mail)."""
    entry = waitlist.get_entry(ctx.session, ctx.program, email)
    waitlist.confirm(ctx.session, ctx.program, entry)
    return _waitlist_out(ctx, entry)


# --- referrals and the tree ------------------------------------------------------------------


@router.get(
    "/members/{external_id}/referrals", response_model=MemberReferralsOut, responses=errors_doc(404)
)
def member_referrals(external_id: str, ctx: ApiContext = API) -> Any:
    """The member's referral link, referrer, generation, descendants and friends who joined."""
    member = members.get_member(ctx.session, ctx.program.id, external_id)
    code = referral_code_for(ctx.session, ctx.program, member)
    summary = tree.member_tree_summary(ctx.session, ctx.program, member)
    friends = attribution.referred_members(ctx.session, ctx.program, member)
    return MemberReferralsOut(
        member=member.external_id,
        referral_code=code,
        referral_url=referral_url(ctx.program, code),
        referrer=summary["parent"],
        generation=summary["generation"],
        children=summary["children"],
        descendants=summary["descendants"],
        generation_sizes=summary["generation_sizes"],
        referred=[
            ReferredOut(
                external_id=f.external_id,
                name=f.name,
                joined_at=f.joined_at,
                converted_at=f.converted_at,
                channel=f.channel,
                status=f.status,
            )
            for f in friends
        ],
    )


@router.get("/fission-tree", response_model=TreeOut, responses=errors_doc(404))  # unknown root
def fission_tree(
    ctx: ApiContext = API,
    root: str | None = Query(None, description="external id; the whole forest when left out"),
    depth: int = Query(3, ge=0, le=tree.MAX_DEPTH),
    max_nodes: int = Query(5000, ge=1, le=tree.MAX_NODES),
) -> Any:
    """Who brought whom below ``root``, breadth first to ``depth`` levels, with each node's
    parent, generation, children and descendants, and generation sizes."""
    member = None
    if root:
        member = members.get_member_or_none(ctx.session, ctx.program.id, root)
        if member is None or member.erased_at is not None:
            raise NotFound(f"no member {root!r}", fields={"root": "unknown member"})
    sub = tree.subtree(ctx.session, ctx.program, member, depth=depth, max_nodes=max_nodes)
    return TreeOut(
        root=sub.root,
        depth=sub.depth,
        nodes=[TreeNodeOut(**n.as_dict()) for n in sub.nodes],
        generation_sizes=sub.generation_sizes,
        truncated=sub.truncated,
    )


@router.get("/referrals", response_model=list[ReferralOut])
def list_referrals(
    ctx: ApiContext = API,
    status: str | None = Query(
        None,
        description="active, held, approved or rejected",
        json_schema_extra={"enum": list(attribution.STATUSES)},
    ),
    limit: int = Query(100, ge=1, le=1000),
    before: int | None = Query(
        None, ge=1, le=MAX_INT_ROW_ID, description="referral id to page before"
    ),
) -> Any:
    facts = attribution.list_referrals(
        ctx.session, ctx.program, status=status, limit=limit, before_id=before
    )
    return [_referral_out(ctx, f) for f in facts]


@router.get("/referrals/{referral_id}", response_model=ReferralOut, responses=errors_doc(404))
def get_referral(referral_id: IntRowId, ctx: ApiContext = API) -> Any:
    fact = attribution.get_referral(ctx.session, referral_id)
    if fact.program_id != ctx.program.id:
        from budding.referrals.errors import ReferralNotFound

        raise ReferralNotFound(f"no referral {referral_id}", fields={"referral_id": "unknown"})
    return _referral_out(ctx, fact)
