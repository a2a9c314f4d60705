"""The dashboard's front page: the programs, and a form to create one (owners and admins)."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from budding.core.auth import STAFF, StaffContext
from budding.core.errors import Conflict, ValidationFailed, field_messages
from budding.core.i18n import gettext
from budding.programs import service

router = APIRouter(include_in_schema=False)


def _programs_page(
    request: Request,
    ctx: StaffContext,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return ctx.render(
        request,
        "programs/list.html",
        status_code=status_code,
        form=form or {"default_locale": "en"},
        errors=errors or {},
        flash=gettext("The program was not created. Check the fields below.") if errors else None,
        flash_kind="error",
    )


@router.get("/admin")
def programs(request: Request, all: bool = False, ctx: StaffContext = STAFF) -> Response:
    """The program list; with a single program, that program's overview (``?all=1`` to stay)."""
    found = service.list_programs(ctx.session)
    if len(found) == 1 and not all:
        return RedirectResponse(f"/admin/{found[0].slug}", status_code=303)
    return _programs_page(request, ctx)


@router.post("/admin")
def create_program(
    request: Request,
    slug: str = Form("", max_length=64),
    name: str = Form("", max_length=200),
    default_locale: str = Form("en", max_length=16),
    landing_url: str = Form("", max_length=2000),
    ctx: StaffContext = STAFF,
) -> Response:
    ctx.require_manage()
    try:
        with ctx.session.begin_nested():
            program = service.create_program(
                ctx.session,
                slug=slug.strip(),
                name=name.strip(),
                default_locale=default_locale,
                landing_url=landing_url.strip(),
            )
    except (ValidationFailed, Conflict) as exc:
        form = {
            "slug": slug,
            "name": name,
            "default_locale": default_locale,
            "landing_url": landing_url,
        }
        return _programs_page(
            request,
            ctx,
            form=form,
            errors=field_messages(exc) or {"slug": exc.message},
            status_code=exc.status,
        )
    return RedirectResponse(f"/admin/{program.slug}", status_code=303)
