"""REST routes for members and events. Thin: parse, call the service, shape the answer."""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import anyio.to_thread
import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue, ValidationError
from pydantic.config import JsonDict
from sqlalchemy.orm import Session
from starlette.routing import Route

from budding.core.auth import (
    API,
    API_WRITE,
    BEARER,
    DB,
    ApiContext,
    api_context,
    bearer_token,
    db_session,
)
from budding.core.errors import MalformedJson, errors_doc, field, from_pydantic
from budding.core.metrics import EVENTS
from budding.core.routing import OrjsonRoute
from budding.members import events as event_service
from budding.members import service
from budding.members.schemas import (
    TYPE_RE,
    EventPage,
    IngestResult,
    MemberIn,
    MemberOut,
    MemberPage,
)

router = APIRouter(tags=["members"], route_class=OrjsonRoute)


@router.post(
    "/members",
    response_model=MemberOut,
    status_code=201,
    responses={
        200: {
            "model": MemberOut,
            "description": "Updated: a member with this `external_id` existed",
        },
        **errors_doc(409),  # another member has this e-mail
    },
)
def upsert_member(body: MemberIn, response: Response, ctx: ApiContext = API_WRITE) -> Any:
    """Create a member, or update the one with this ``external_id`` (then 200)."""
    member, created = service.upsert_member(ctx.session, ctx.program, body)
    if not created:
        response.status_code = 200
    return member


@router.get("/members", response_model=MemberPage)
def list_members(
    ctx: ApiContext = API,
    query: str = Query("", max_length=200),
    cursor: str | None = None,
    limit: int = Query(50, ge=1, le=500),
) -> Any:
    members, next_cursor = service.search_members(
        ctx.session, ctx.program.id, query=query, cursor=cursor, limit=limit
    )
    return {"members": members, "next_cursor": next_cursor}


@router.get("/members/{external_id}", response_model=MemberOut, responses=errors_doc(404))
def get_member(external_id: str, ctx: ApiContext = API) -> Any:
    return service.get_member(ctx.session, ctx.program.id, external_id)


@router.get("/members/{external_id}/export", responses=errors_doc(404))
def export_member(external_id: str, ctx: ApiContext = API) -> dict[str, Any]:
    """Everything Budding stores about this member, from every capability."""
    member = service.get_member(ctx.session, ctx.program.id, external_id)
    return service.member_export(ctx.session, ctx.program, member)


@router.delete("/members/{external_id}", status_code=204, responses=errors_doc(404))
def erase_member(external_id: str, ctx: ApiContext = API_WRITE) -> Response:
    """Erase personal data; events stay, anonymised."""
    member = service.get_member(ctx.session, ctx.program.id, external_id)
    service.erase_member(ctx.session, ctx.program, member)
    return Response(status_code=204)


class EventBatch(BaseModel):
    events: list[Any] = Field(
        min_length=1, description="1 to 1,000 events; each validated on its own"
    )


# Batches up to this size are validated in the event loop: a thread-pool hop costs more.
INLINE_EVENTS = 20


async def prepared_batch(body: EventBatch) -> event_service.PreparedBatch:
    """The batch validated before the request's transaction opens (a dependency listed
    before the API key's, so it runs first): on SQLite the write lock is then held only
    to store it, and another worker process validates its batch meanwhile."""
    if len(body.events) <= INLINE_EVENTS:
        return event_service.prepare_events(body.events)
    return await anyio.to_thread.run_sync(event_service.prepare_events, body.events)


PREPARED = Depends(prepared_batch)


# 403: the route checks the key itself (a read-only one may not write)
@router.post("/events", response_model=IngestResult, responses=errors_doc(403))
def ingest_events(
    request: Request,
    _: None = BEARER,
    batch: event_service.PreparedBatch = PREPARED,
    session: Session = DB,
) -> Any:
    """Store a batch of events. Bad events are listed by index; the others are stored.
    A retried batch stores nothing twice (``id`` is the idempotency key)."""
    return _store_batch(request, session, batch)


def _store_batch(
    request: Request, session: Session, batch: event_service.PreparedBatch
) -> Response:
    # The key is checked, the batch stored and the transaction committed in this one
    # thread: as API_WRITE and the unit of work's own commit, each a thread-pool hop
    # of its own, they held SQLite's write lock across two waits for the event loop.
    ctx = api_context(request, session)
    ctx.require_write()
    result = event_service.store_events(session, ctx.program, batch)
    session.commit()
    EVENTS.labels("accepted").inc(result.accepted)
    EVENTS.labels("duplicate").inc(result.duplicates)
    EVENTS.labels("rejected").inc(len(result.rejected))
    # Serialised here: a returned model is validated again in another thread-pool
    # hop (sync route), which costs more than the answer is worth on the hot path.
    return Response(result.model_dump_json(), media_type="application/json")


_request_session = asynccontextmanager(db_session)


async def _ingest_events_first(request: Request) -> Response:
    """``POST /api/v1/events`` as the web app's first route: the steps of
    :func:`ingest_events` and its dependencies, in their order (key present, body
    parsed and validated, batch prepared, then the session's gate), with the same
    answers, but without FastAPI's dependency solving and route matching (a third of
    a single-event request's server CPU under a profiler, less without one; on
    PostgreSQL one server process was saturated at 200 requests/s)."""
    bearer_token(request)
    raw = await request.body()
    if not raw:
        raise field("body", "Field required")
    try:
        body = EventBatch.model_validate(orjson.loads(raw), from_attributes=True)
    except orjson.JSONDecodeError as exc:
        raise MalformedJson(exc.msg) from None
    except ValidationError as exc:
        raise from_pydantic(exc) from None
    batch = await prepared_batch(body)
    async with _request_session() as session:
        return await anyio.to_thread.run_sync(_store_batch, request, session, batch)


_FIRST = Route("/api/v1/events", _ingest_events_first, methods=["POST"], include_in_schema=False)
FIRST_ROUTES = [_FIRST]


@router.get("/events", response_model=EventPage, responses=errors_doc(404))  # unknown member
def list_events(
    ctx: ApiContext = API,
    member: str | None = None,
    type: str | None = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    cursor: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> Any:
    events, next_cursor = event_service.query_events(
        ctx.session,
        ctx.program,
        member=member,
        type=type,
        since=since,
        until=until,
        cursor=cursor,
        limit=limit,
    )
    return {"events": events, "next_cursor": next_cursor}


def _custom_type_name(schema: JsonDict) -> None:
    # What register_event_type accepts, in its words when refused, stated for the schema:
    # a name of the pattern that is not a standard type (known when the schema is made).
    props = schema.get("properties")
    name = props.get("name") if isinstance(props, dict) else None
    if isinstance(name, dict):
        name["pattern"] = TYPE_RE.pattern
        standard: list[JsonValue] = [*sorted(event_service.standard_event_types())]
        name["not"] = {"enum": standard}


class EventTypeIn(BaseModel):
    model_config = ConfigDict(json_schema_extra=_custom_type_name)

    name: str
    description: str = Field("", max_length=500)


class EventTypeOut(BaseModel):
    name: str
    description: str
    created_at: datetime | None = None
    builtin: bool = False


@router.post("/event-types", response_model=EventTypeOut, status_code=201)
def register_event_type(body: EventTypeIn, ctx: ApiContext = API_WRITE) -> Any:
    row = event_service.register_event_type(ctx.session, ctx.program, body.name, body.description)
    return EventTypeOut(name=row.name, description=row.description, created_at=row.created_at)


@router.get("/event-types", response_model=list[EventTypeOut])
def list_event_types(ctx: ApiContext = API) -> Any:
    names = event_service.event_types(ctx.session, ctx.program.id)
    standard = event_service.standard_event_types()
    declared = event_service.declared_event_types()
    return [
        EventTypeOut(name=n, description=declared.get(n, ""), builtin=n in standard)
        for n in sorted(names)
    ]
