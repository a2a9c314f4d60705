"""The web application: API under /api/v1, pages, static files, errors in one place."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException

import budding
from budding.core import i18n
from budding.core.auth import LoginRequired
from budding.core.config import get_settings
from budding.core.db import get_engine
from budding.core.errors import BuddingError
from budding.core.metrics import LATENCY, REQUESTS, exposition
from budding.core.plugins import capability_modules
from budding.core.templating import render

log = logging.getLogger("budding")
STATIC_DIR = Path(__file__).parent / "static"


def _wants_json(request: Request) -> bool:
    path = request.url.path
    return path.startswith("/api/") or "application/json" in request.headers.get("accept", "")


def _error_response(
    request: Request, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Response:
    if _wants_json(request):
        return JSONResponse(body, status_code=status, headers=headers)
    return render(
        request, "core/error.html", status_code=status, error=body["error"], status=status
    )


def create_app() -> FastAPI:
    settings = get_settings()
    app = FastAPI(
        title="Budding",
        version=budding.__version__,
        description="Word-of-mouth engine API. Authenticate with `Authorization: Bearer <API key>`.",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )

    @app.middleware("http")
    async def _request_guard(request: Request, call_next: Any) -> Response:
        # Body size: refuse before reading. Origin: a cross-site form post is refused
        # (SameSite cookies are the first line, this the second).
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > settings.max_request_bytes:
            body = {
                "error": {
                    "code": "payload_too_large",
                    "message": f"request body over {settings.max_request_bytes} bytes",
                    "fields": {},
                }
            }
            return JSONResponse(body, status_code=413)
        if request.method not in ("GET", "HEAD", "OPTIONS") and not request.url.path.startswith(
            "/api/"
        ):
            origin = request.headers.get("origin")
            if (
                origin
                and origin != "null"
                and urlsplit(origin).netloc != request.headers.get("host")
            ):
                body = {
                    "error": {
                        "code": "cross_origin",
                        "message": "cross-site form posts are refused",
                        "fields": {},
                    }
                }
                return JSONResponse(body, status_code=403)
        token = i18n.set_locale(i18n.negotiate(None, request.headers.get("accept-language"), None))
        started = time.perf_counter()
        try:
            response: Response = await call_next(request)
        finally:
            i18n._current.reset(token)
        route = request.scope.get("route")
        name = getattr(route, "path", "unmatched")
        LATENCY.labels(request.method, name).observe(time.perf_counter() - started)
        REQUESTS.labels(request.method, name, str(response.status_code)).inc()
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    @app.exception_handler(BuddingError)
    async def _domain_error(request: Request, exc: BuddingError) -> Response:
        headers = {"Retry-After": str(exc.retry_after)} if hasattr(exc, "retry_after") else None
        return _error_response(request, exc.status, exc.to_dict(), headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        fields: dict[str, str] = {}
        malformed = False
        for e in exc.errors():
            loc = [str(p) for p in e.get("loc", ())]
            if loc and loc[0] in ("body", "query", "path", "header", "cookie"):
                loc = loc[1:]
            if e.get("type") == "json_invalid":
                malformed = True
                fields["body"] = "is not valid JSON: " + str(e.get("ctx", {}).get("error", ""))
                continue
            fields.setdefault(".".join(loc) or "body", e.get("msg", "invalid"))
        if malformed:
            body = {
                "error": {
                    "code": "malformed_json",
                    "message": "the request body is not valid JSON",
                    "fields": fields,
                }
            }
            return _error_response(request, 400, body)
        name, reason = next(iter(fields.items())) if fields else ("body", "invalid")
        body = {
            "error": {"code": "validation_failed", "message": f"{name}: {reason}", "fields": fields}
        }
        return _error_response(request, 422, body)

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired) -> Response:
        if _wants_json(request):
            body = {"error": {"code": "unauthorized", "message": "sign in first", "fields": {}}}
            return JSONResponse(body, status_code=401)
        target = exc.login_path + "?next=" + quote(exc.next_url)
        if request.headers.get("hx-request"):
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        body = {"error": {"code": code, "message": str(exc.detail), "fields": {}}}
        return _error_response(request, exc.status_code, body)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        body = {
            "error": {
                "code": "internal_error",
                "message": "something went wrong on our side",
                "fields": {},
            }
        }
        return JSONResponse(body, status_code=500)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> Response:
        try:
            with get_engine().connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # the point is to report any failure
            return JSONResponse(
                {"status": "error", "database": str(exc.__class__.__name__)}, status_code=503
            )
        return JSONResponse({"status": "ok", "database": "ok"})

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        body, content_type = exposition()
        return PlainTextResponse(body, media_type=content_type)

    @app.get("/", include_in_schema=False)
    def index() -> Response:
        return RedirectResponse("/admin", status_code=303)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for _name, module in capability_modules("api"):
        app.include_router(module.router, prefix="/api/v1")
    for _name, module in capability_modules("pages"):
        app.include_router(module.router)
    return app
