"""The web application: API under /api/v1, pages, static files, errors in one place."""

from __future__ import annotations

import gc
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import budding
from budding.core import i18n
from budding.core.auth import LoginRequired, api_context, require_bearer, writer_context
from budding.core.config import get_settings
from budding.core.db import get_engine
from budding.core.errors import BuddingError, MalformedJson, errors_doc, pydantic_reason
from budding.core.metrics import LATENCY, REQUESTS, exposition
from budding.core.plugins import capability_modules
from budding.core.routing import HEAD_SCOPE_KEY
from budding.core.templating import render

log = logging.getLogger("budding")
STATIC_DIR = Path(__file__).parent / "static"


def _wants_json(request: Request) -> bool:
    path = request.url.path
    return (
        path.startswith("/api/")
        or path.endswith(".json")  # the dashboard's data routes, read by its scripts
        or "application/json" in request.headers.get("accept", "")
    )


def request_locale(headers: Headers) -> str:
    """The language of a request before a route picks the member's: the portal's language
    switch (its cookie), then the browser's Accept-Language."""
    chosen = cookie_parser(headers.get("cookie", "")).get(i18n.LOCALE_COOKIE)
    return i18n.negotiate(chosen, headers.get("accept-language"), None)


def _error_body(code: str, message: str, fields: dict[str, str] | None = None) -> dict[str, Any]:
    """The API's error shape: ``code`` for programs, ``message`` for people, ``fields``
    (each bad field's reason) for both."""
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _error_response(
    request: Request,
    status: int,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
    message_locale: str = "en",
) -> Response:
    """JSON for programs, the error page for browsers. ``message_locale``: the language of
    ``body``'s message (the system's English, unless it was translated for the reader)."""
    if _wants_json(request):
        return JSONResponse(body, status_code=status, headers=headers)
    return render(
        request,
        "core/error.html",
        status_code=status,
        error=body["error"],
        status=status,
        message_locale=message_locale,
    )


# On every answer, pages, JSON, the guard's own refusals and the 500 alike (a route may
# set its own, stricter value: a page whose URL holds a token sends no referrer).
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
)


def add_security_headers(headers: MutableHeaders) -> None:
    for name, value in SECURITY_HEADERS:
        headers.setdefault(name, value)


def _answer_in_request_language(request: Request, status: int, code: str, msgid: str) -> Response:
    """An error answered outside the routes (the guard's refusals, the 500): its message in
    the request's language (see ``request_locale``), as JSON or as the error page."""
    with i18n.use_locale(request_locale(request.headers)):
        body = _error_body(code, i18n.gettext(msgid))
        try:
            return _error_response(request, status, body, message_locale=i18n.get_locale())
        except Exception:  # the page itself failed to render (the 500 may be why): plain JSON
            log.exception("the error page failed to render")
            return JSONResponse(body, status_code=status)


NUL_REASON = "must not contain the NUL character (U+0000)"


def nul_input(path: str, query: bytes, body: bytes, content_type: str) -> str | None:
    """The first input holding the NUL character, which PostgreSQL cannot store in text
    or JSON (SQLite can: refusing it everywhere keeps the two alike): ``"path"``, a
    query parameter's or form field's name, or a JSON body's dotted path
    (``events.0.properties.note``). None where there is none. Cheap for the rest: a
    byte search before any parsing."""
    if "\x00" in path:
        return "path"
    form = body if content_type.startswith("application/x-www-form-urlencoded") else b""
    for encoded in (query, form):
        if b"%00" in encoded:
            for name, value in parse_qsl(encoded.decode("utf-8", "replace"), True):
                if "\x00" in name or "\x00" in value:
                    return name or "query"
    if content_type.startswith("multipart/"):
        at = body.find(b"\x00")
        if at < 0:
            return None
        # the part holding it (a file's or a field's): the last name given before it
        names = re.findall(rb'\bname="([^"]*)"', body[:at])
        return names[-1].decode("utf-8", "replace") if names else "body"
    if not form and b"\\u0000" in body:  # a JSON escape, or the text "\\u0000" (not NUL)
        try:
            return _nul_in_json(orjson.loads(body), ())
        except orjson.JSONDecodeError:
            return None  # the route answers malformed_json
    return None


def _nul_in_json(value: Any, at: tuple[str, ...]) -> str | None:
    if isinstance(value, str):
        return ".".join(at) or "body" if "\x00" in value else None
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, item in items:
        here = (*at, str(key))
        if "\x00" in str(key):
            return ".".join(here)
        found = _nul_in_json(item, here)
        if found:
            return found
    return None


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    """The request's body, read whole, and a ``receive`` that hands it to the app again."""
    chunks: list[bytes] = []
    pending: list[Message] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client left: the app hears it after
            pending.append(message)
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    pending.insert(0, {"type": "http.request", "body": body, "more_body": False})

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return body, replay


class RequestGuard:
    """Every request's first stop: refuse oversize bodies before reading them and
    cross-site form posts (SameSite cookies are the first line, this the second);
    refuse the NUL character in any input (``nul_input``); set the locale from
    Accept-Language; record metrics; add security headers.

    A plain ASGI middleware: Starlette's ``BaseHTTPMiddleware`` (``@app.middleware``)
    runs each request in an extra task with memory streams, which cost more CPU
    than a small API request itself.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _refusal(self, scope: Scope, headers: Headers) -> Response | None:
        """The answer to a request refused before it reaches a route, if it is refused:
        JSON for programs, the error page for a browser, in the request's language."""
        path: str = scope["path"]
        length = headers.get("content-length")
        if length and length.isdigit() and int(length) > self.max_bytes:
            if path.startswith("/api/"):  # a program: the system's own words
                body = _error_body("payload_too_large", f"request body over {self.max_bytes} bytes")
                return JSONResponse(body, status_code=413)
            # most often a member's browser: why, in their language
            msgid = i18n.N_(
                "What you sent is too large, so it was not accepted. Shorten it and try again."
            )
            return _answer_in_request_language(Request(scope), 413, "payload_too_large", msgid)
        if scope["method"] not in ("GET", "HEAD", "OPTIONS") and not path.startswith("/api/"):
            origin = headers.get("origin")
            if origin and origin != "null" and urlsplit(origin).netloc != headers.get("host"):
                msgid = i18n.N_(
                    "This form was sent from another site, so it was not accepted. "
                    "Open the page on this site and try again."
                )
                return _answer_in_request_language(Request(scope), 403, "cross_origin", msgid)
        return None

    async def _nul_refusal(
        self, scope: Scope, headers: Headers, receive: Receive
    ) -> tuple[Response | None, Receive]:
        """The answer to an input holding NUL (a 422 naming it, for programs; the error
        page, for a browser), and the ``receive`` the app reads the body from."""
        body = b""
        content_type = headers.get("content-type", "")
        if scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            body, receive = await _buffered(receive)  # at most max_bytes: checked before
        name = nul_input(scope["path"], scope.get("query_string", b""), body, content_type)
        if name is None:
            return None, receive
        if scope["path"].startswith("/api/"):
            fields = {name: NUL_REASON}
            error = _error_body("validation_failed", f"{name}: {NUL_REASON}", fields)
            return JSONResponse(error, status_code=422), receive
        msgid = i18n.N_(
            "What you sent holds a character that cannot be stored (NUL), so it was not "
            "accepted. Remove it and try again."
        )
        return _answer_in_request_language(Request(scope), 422, "validation_failed", msgid), receive

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        method: str = scope["method"]
        # FastAPI's routes answer GET only; HEAD (monitors, link checkers) is that GET
        # without its body, headers and Content-Length included (RFC 9110 §9.3.2)
        head = method == "HEAD"
        if head:
            scope = {**scope, "method": "GET", HEAD_SCOPE_KEY: True}

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                add_security_headers(MutableHeaders(scope=message))
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        headers = Headers(scope=scope)
        started = time.perf_counter()
        # a refused request is answered here, and counted like any other (route "unmatched")
        answer: ASGIApp | None = self._refusal(scope, headers)
        if answer is None:
            answer, receive = await self._nul_refusal(scope, headers, receive)
        answer = answer or self.app
        # Error pages and anything else rendered before a route picks the member's language
        # follow the portal's language switch, then the browser.
        token = i18n.set_locale(request_locale(headers))
        try:
            await answer(scope, receive, send_with_headers)
        finally:
            i18n._current.reset(token)
            name = getattr(scope.get("route"), "path", "unmatched")
            LATENCY.labels(method, name).observe(time.perf_counter() - started)
            REQUESTS.labels(method, name, str(status)).inc()


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    """``dependant`` and every dependency below it."""
    yield dependant
    for dep in dependant.dependencies:
        yield from _dependants(dep)


def api_errors(route: APIRoute) -> dict[int | str, dict[str, Any]]:
    """The error answers a route can give whatever its service does, for the OpenAPI
    document: 401 where it needs a key, 403 where a key must be allowed to write, 400
    where it reads a body, and on every route 413 and 422 (``RequestGuard`` refuses too
    large a Content-Length, and the NUL character in the path, query or body, on any /api/
    request before a route is chosen: a GET's too, a query parameter the route does not
    read too; this 422 replaces FastAPI's own, whose ``{"detail": [...]}`` the API never
    answers) and 500 (the unexpected error). A route adds those of its service itself:
    ``responses=errors_doc(404, 409)``."""
    calls = {d.call for d in _dependants(route.dependant)}
    takes_body = route.body_field is not None or "requestBody" in (route.openapi_extra or {})
    statuses: list[int] = [413, 422, 500]
    if calls & {api_context, require_bearer}:
        statuses.append(401)
    if writer_context in calls:
        statuses.append(403)
    if takes_body:
        statuses.append(400)
    return errors_doc(*sorted(statuses))


def include_api(app: FastAPI, router: APIRouter) -> None:
    """``router``'s routes under /api/v1, each documenting the errors it can answer
    (``api_errors``): FastAPI's ``include_router`` takes one ``responses`` for a whole
    router, and a route's own ``responses`` win over it."""
    for route in router.routes:
        responses = api_errors(route) if isinstance(route, APIRoute) else None
        app.include_router(APIRouter(routes=[route]), prefix="/api/v1", responses=responses)


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

    app.add_middleware(RequestGuard, max_bytes=settings.max_request_bytes)

    @app.exception_handler(BuddingError)
    async def _domain_error(request: Request, exc: BuddingError) -> Response:
        headers = {"Retry-After": str(exc.retry_after)} if hasattr(exc, "retry_after") else None
        return _error_response(request, exc.status, exc.to_dict(), headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        fields: dict[str, str] = {}
        for e in exc.errors():
            if e.get("type") == "json_invalid":
                error = MalformedJson(str(e.get("ctx", {}).get("error", "")))
                return _error_response(request, error.status, error.to_dict())
            loc = [str(p) for p in e.get("loc", ())]
            if loc and loc[0] in ("body", "query", "path", "header", "cookie"):
                loc = loc[1:]
            fields.setdefault(".".join(loc) or "body", pydantic_reason(e))
        name, reason = next(iter(fields.items())) if fields else ("body", "invalid")
        body = _error_body("validation_failed", f"{name}: {reason}", fields)
        return _error_response(request, 422, body)

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired) -> Response:
        if _wants_json(request):
            return JSONResponse(_error_body("unauthorized", "sign in first"), status_code=401)
        target = exc.login_path + "?next=" + quote(exc.next_url)
        if request.headers.get("hx-request"):
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error_response(request, exc.status_code, _error_body(code, str(exc.detail)))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        # Starlette calls this handler outside every middleware, RequestGuard too: the
        # request's language is negotiated again here (its context variable is reset), and
        # the security headers are added here.
        msgid = i18n.N_("Something went wrong on our side. Please try again later.")
        response = _answer_in_request_language(request, 500, "internal_error", msgid)
        add_security_headers(response.headers)
        return response

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
        include_api(app, module.router)
    for _name, module in capability_modules("pages"):
        app.include_router(module.router)
    # Hot routes (/r/{code}, POST /api/v1/events) are matched before all others: Starlette
    # tries routes in order, and each included route it passes costs microseconds.
    for kind in ("api", "pages"):
        for _name, module in capability_modules(kind):
            for route in getattr(module, "FIRST_ROUTES", ()):
                app.router.routes.insert(0, route)
    return app


def server_app() -> FastAPI:
    """The app as ``budding serve`` runs it (``uvicorn --factory``): ``create_app()``, then
    the objects made by importing and building it are moved out of the garbage
    collector's reach (``gc.freeze``). They are hundreds of thousands (SQLAlchemy,
    pydantic, templates) and live as long as the process, yet every full collection
    walked them all again: under steady ingestion full collections took ~150 ms each,
    a quarter of the CPU time and the slowest requests' latency. Tests use
    ``create_app`` and keep the default collector.
    """
    app = create_app()
    gc.collect()
    gc.freeze()
    return app
