"""REST routes of the share kit, the funnel and virality. Thin: parse, call, shape."""

from __future__ import annotations

from html import escape
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import AwareDatetime

from budding.core import i18n
from budding.core.auth import API, API_WRITE, ApiContext
from budding.core.config import get_settings
from budding.core.errors import errors_doc
from budding.sharing import funnel, qr, service, sources, virality
from budding.sharing.schemas import (
    FunnelComparison,
    FunnelReport,
    ShareKitOut,
    SharingSettings,
    SharingSettingsPatch,
    StepsIn,
    StepsOut,
    TellAFriendIn,
    TellAFriendOut,
    TemplateIn,
    TemplateOut,
    ViralityReport,
    WidgetTokenIn,
    WidgetTokenOut,
)

router = APIRouter(tags=["sharing"])


@router.get(
    "/members/{external_id}/share-kit", response_model=ShareKitOut, responses=errors_doc(404)
)
def share_kit(
    external_id: str,
    ctx: ApiContext = API,
    locale: str | None = Query(None, json_schema_extra=i18n.LOCALE_SCHEMA),
) -> Any:
    """The member's fission material: referral link, QR code URLs, an e-mail signature, and
    per channel a share URL and a prefilled message in ``locale`` (default: the member's)."""
    member = service.member_by_external_id(ctx.session, ctx.program, external_id)
    return service.share_kit(ctx.session, ctx.program, member, locale)


def _qr_response(body: bytes, media_type: str) -> Response:
    return Response(body, media_type=media_type, headers={"Cache-Control": "private, max-age=3600"})


@router.get(
    "/members/{external_id}/share-kit/qr.png", response_class=Response, responses=errors_doc(404)
)
def share_kit_qr_png(
    external_id: str, ctx: ApiContext = API, scale: int = Query(8, ge=1, le=40)
) -> Response:
    """The member's referral link as a QR code (PNG)."""
    member = service.member_by_external_id(ctx.session, ctx.program, external_id)
    link = sources.referral_link(
        ctx.program, sources.referral_code(ctx.session, ctx.program, member), "qr"
    )
    return _qr_response(qr.png(link, scale), "image/png")


@router.get(
    "/members/{external_id}/share-kit/qr.svg", response_class=Response, responses=errors_doc(404)
)
def share_kit_qr_svg(
    external_id: str, ctx: ApiContext = API, scale: int = Query(8, ge=1, le=40)
) -> Response:
    """The member's referral link as a QR code (SVG)."""
    member = service.member_by_external_id(ctx.session, ctx.program, external_id)
    link = sources.referral_link(
        ctx.program, sources.referral_code(ctx.session, ctx.program, member), "qr"
    )
    return _qr_response(qr.svg(link, scale, title=link), "image/svg+xml")


@router.post(
    "/members/{external_id}/share-events", response_model=StepsOut, responses=errors_doc(404)
)
def record_share_steps(external_id: str, body: StepsIn, ctx: ApiContext = API_WRITE) -> Any:
    """Record share-funnel steps taken in your own app (``share_opened``,
    ``channel_chosen``, ``share_sent``); each step's ``id`` is its idempotency key.
    Steps may arrive in any order: a send stamped before its session's opening, or whose
    share was never opened, is stored and counted as a send, but not timed."""
    member = service.member_by_external_id(ctx.session, ctx.program, external_id)
    return service.record_steps(ctx.session, ctx.program, member, body.steps, "api")


@router.post(
    "/members/{external_id}/tell-a-friend",
    response_model=TellAFriendOut,
    status_code=202,
    responses=errors_doc(404, 409, 429),
)
def tell_a_friend(external_id: str, body: TellAFriendIn, ctx: ApiContext = API_WRITE) -> Any:
    """Have Budding e-mail the member's invitation to a friend (queued; sent by a job).
    429 with ``Retry-After`` when the member's daily limit is used up; 409 when this friend
    was already told today."""
    member = service.member_by_external_id(ctx.session, ctx.program, external_id)
    _mail, sent, left = service.tell_a_friend(ctx.session, ctx.program, member, body)
    return TellAFriendOut(status="queued", sent_today=sent, remaining_today=left)


@router.post(
    "/members/{external_id}/widget-token", response_model=WidgetTokenOut, responses=errors_doc(404)
)
def widget_token(
    external_id: str, body: WidgetTokenIn | None = None, ctx: ApiContext = API_WRITE
) -> Any:
    """A signed, expiring token for the embeddable widget: call it from your backend for
    the signed-in member, and put the returned script or iframe tag on your page."""
    member = service.member_by_external_id(ctx.session, ctx.program, external_id)
    spec = body or WidgetTokenIn()
    token, expires = service.issue_widget_token(ctx.program, member, spec.ttl_seconds)
    base = get_settings().base_url
    query = f"token={token}" + (f"&locale={spec.locale}" if spec.locale else "")
    iframe_url = f"{base}/w/{ctx.program.slug}?{query}"
    # The frame's title (what a screen reader announces) in the language the frame will
    # show: the one asked for, else the member's. With neither, the frame follows its
    # visitor's browser: the script tag leaves the title to widget.js (served in the
    # visitor's language), the iframe tag takes the program's default.
    known = spec.locale or member.locale
    with i18n.use_locale(known or ctx.program.default_locale or i18n.DEFAULT_LOCALE):
        title = escape(i18n.gettext("Invite friends"))
    return WidgetTokenOut(
        token=token,
        expires_at=expires,
        iframe_url=iframe_url,
        iframe_tag=(
            f'<iframe src="{escape(iframe_url)}" title="{title}" loading="lazy" '
            'style="width:100%;max-width:420px;height:360px;border:0" '
            'referrerpolicy="no-referrer" allow="clipboard-write; web-share"></iframe>'
        ),
        script_tag=(
            f'<script src="{escape(base)}/w/widget.js" data-program="{escape(ctx.program.slug)}" '
            f'data-token="{escape(token)}"'
            + (f' data-locale="{escape(spec.locale)}"' if spec.locale else "")
            + (f' data-title="{title}"' if known else "")
            + " async></script>"
        ),
    )


# --- templates and settings ------------------------------------------------------------


@router.get("/share-templates", response_model=list[TemplateOut])
def list_templates(ctx: ApiContext = API) -> Any:
    """Effective share message templates: every message kind in every locale."""
    return service.list_templates(ctx.session, ctx.program)


# The service refuses another locale in its words (and takes tags such as ko-KR too); the
# enum states the supported ones for the schema.
TemplateLocale = Annotated[
    str,
    Path(
        description="en, ko, es, id or zh-Hans",
        json_schema_extra={"enum": list(i18n.LOCALE_TAGS)},
    ),
]


@router.get(
    "/share-templates/{key}/{locale}", response_model=TemplateOut, responses=errors_doc(404)
)
def get_template(key: str, locale: TemplateLocale, ctx: ApiContext = API) -> Any:
    return service.get_template(ctx.session, ctx.program, key, locale)


@router.put(
    "/share-templates/{key}/{locale}", response_model=TemplateOut, responses=errors_doc(404)
)
def put_template(
    key: str, locale: TemplateLocale, body: TemplateIn, ctx: ApiContext = API_WRITE
) -> Any:
    """Set the wording of a message kind (chat, post, email, tell_a_friend, signature) or
    of one channel, in one locale. Placeholders: {name}, {link}, {program}, {code}."""
    return service.set_template(
        ctx.session, ctx.program, key, locale, subject=body.subject, body=body.body, by="api"
    )


@router.delete(
    "/share-templates/{key}/{locale}", response_model=TemplateOut, responses=errors_doc(404)
)
def reset_template(key: str, locale: TemplateLocale, ctx: ApiContext = API_WRITE) -> Any:
    """Back to the default wording."""
    return service.reset_template(ctx.session, ctx.program, key, locale)


@router.get("/sharing/settings", response_model=SharingSettings)
def get_settings_(ctx: ApiContext = API) -> Any:
    return service.settings_of(ctx.program)


@router.patch("/sharing/settings", response_model=SharingSettings)
def patch_settings(body: SharingSettingsPatch, ctx: ApiContext = API_WRITE) -> Any:
    return service.update_settings(ctx.session, ctx.program, body)


# --- metrics ---------------------------------------------------------------------------


@router.get("/metrics/launch-cost", response_model=FunnelReport)
def launch_cost(
    ctx: ApiContext = API,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
) -> Any:
    """Per channel: launch cost (designed steps, median recorded steps and median seconds
    from opening the share kit to a sent share), share rate, click-through, signups and
    conversions, and the cheapest channel."""
    return funnel.launch_cost(ctx.session, ctx.program, since, until)


@router.get("/metrics/launch-cost/compare", response_model=FunnelComparison)
def launch_cost_compare(
    before_since: AwareDatetime,
    before_until: AwareDatetime,
    after_since: AwareDatetime,
    after_until: AwareDatetime,
    ctx: ApiContext = API,
) -> Any:
    """Before/after: the funnel of two date ranges and the change per channel."""
    return funnel.compare(
        ctx.session, ctx.program, (before_since, before_until), (after_since, after_until)
    )


@router.get("/metrics/virality", response_model=ViralityReport)
def virality_metrics(
    ctx: ApiContext = API,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    cohort: str = Query("week", pattern="^(day|week|month)$"),
    horizon_days: float = Query(180, ge=1, le=3650),
) -> Any:
    """K-factor by signup cohort, channel and generation; viral cycle time; generation
    sizes; the projection U(t) and the ceiling N0/(1-K) when K < 1."""
    return virality.virality_report(
        ctx.session, ctx.program, since, until, cohort=cohort, horizon_days=horizon_days
    )
