"""Webhook endpoints, ``emit`` (the one function other capabilities call), the delivery
log and redelivery. Never commits: deliveries are written in the caller's transaction
and sent by jobs after it commits (see ``budding.webhooks.tasks``)."""

from __future__ import annotations

import importlib
import re
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import orjson
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from budding.core import jobs
from budding.core.db import capability_names, utcnow
from budding.core.erasure import replaced_strings
from budding.core.errors import Conflict, Gone, NotFound, Reason, ValidationFailed, field
from budding.core.i18n import N_
from budding.programs.models import Program
from budding.webhooks.models import (
    DELIVERED,
    DELIVERY_STATUSES,
    FAILED,
    PENDING,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from budding.webhooks.targets import UnresolvedHost, UnsafeTarget, check_target

# The events Budding emits; descriptions are admin-facing (translated where shown).
EVENT_TYPES: dict[str, str] = {
    "referral.converted": N_("A referred member completed the qualifying conversion"),
    "reward.issued": N_("A reward was issued to a member"),
    "reward.reversed": N_("A reward was reversed (refund or fraud)"),
    "waitlist.released": N_("People on the waitlist were released and invited"),
    "fraud.flagged": N_("A fraud check flagged a member or a referral"),
}
# Sent to one endpoint on request ("Send a test event"), whatever it subscribes to.
TEST_EVENT = "webhook.test"
ALL_EVENTS = "*"
MAX_ENDPOINTS = 20
# How long a replaced signing secret may keep signing beside the new one, at most.
MAX_SECRET_OVERLAP = timedelta(days=7)
MAX_BODY_BYTES = 256 * 1024
# The delivery jobs (``budding.webhooks.tasks``).
DELIVER, REDELIVER = "webhooks.deliver", "webhooks.redeliver"
# How long an attempt holds its delivery (its request takes at most about 30 seconds:
# ``tasks.TIMEOUT``, ``tasks.READ_SECONDS``) before another may presume its worker died
# and go ahead.
ATTEMPT_LEASE = timedelta(seconds=60)
EVENT_TYPE_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")


class UnknownEventType(ValueError):
    """``emit`` was called with an event type nobody declared (a programming error)."""


class TooManyEndpoints(Conflict):
    code = "too_many_webhooks"


class EndpointRemoved(Gone):
    code = "webhook_removed"


class AttemptInFlight(Exception):
    """Another attempt at this delivery is in flight: wait for its answer, then claim
    again (``claim_attempt``)."""


@cache
def known_event_types() -> dict[str, str]:
    """Built-in event types plus those declared by capabilities as ``WEBHOOK_EVENTS`` in
    their package ``__init__`` (name -> description)."""
    found = dict(EVENT_TYPES)
    for name in capability_names():
        declared = getattr(importlib.import_module(f"budding.{name}"), "WEBHOOK_EVENTS", None)
        for event_type, description in (declared or {}).items():
            if not EVENT_TYPE_RE.match(event_type):
                raise ValueError(f"budding.{name}.WEBHOOK_EVENTS: bad event type {event_type!r}")
            found.setdefault(event_type, description)
    return dict(sorted(found.items()))


# --- endpoints -------------------------------------------------------------------------


def check_url(url: str) -> str:
    """A clean endpoint URL, or ``ValidationFailed`` naming the ``url`` field: http(s)
    only, and (see ``budding.webhooks.targets``) not an internal address."""
    value = url.strip()
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - a port past 65535 or not a number raises ValueError
    except ValueError:
        raise field(
            "url", N_("must be an http:// or https:// URL with a host (and port)")
        ) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise field("url", N_("must be an http:// or https:// URL with a host"))
    if len(value) > 2000:
        raise field("url", N_("must be at most %(limit)s characters"), limit=2000)
    if any(c.isspace() for c in value):
        raise field("url", N_("must not contain spaces"))
    try:
        check_target(value)
    except UnsafeTarget as exc:
        raise field("url", exc.reason) from None
    except UnresolvedHost:
        pass  # may be set up later; every delivery checks again and fails while it is not
    return value


def check_event_types(event_types: list[str]) -> list[str]:
    chosen = sorted({t.strip() for t in event_types if t.strip()})
    if not chosen:
        raise field("event_types", N_("choose at least one event type, or '*' for all"))
    if ALL_EVENTS in chosen:
        return [ALL_EVENTS]
    known = known_event_types()
    unknown = [t for t in chosen if t not in known]
    if unknown:
        raise field(
            "event_types",
            N_("unknown: %(unknown)s (known: %(known)s, or '*' for all)"),
            unknown=", ".join(unknown),
            known=", ".join(known),
        )
    return chosen


def _checked_fields(
    url: str | None, event_types: list[str] | None, description: str | None
) -> tuple[str | None, list[str] | None, str | None]:
    """The given fields, cleaned; ``ValidationFailed`` naming every bad one."""
    problems: dict[str, str | Reason] = {}
    clean_url, clean_types = url, event_types
    if url is not None:
        try:
            clean_url = check_url(url)
        except ValidationFailed as exc:
            problems.update({**exc.fields, **exc.reasons})
    if event_types is not None:
        try:
            clean_types = check_event_types(event_types)
        except ValidationFailed as exc:
            problems.update({**exc.fields, **exc.reasons})
    if description is not None and len(description) > 200:
        problems["description"] = Reason(N_("must be at most %(limit)s characters"), limit=200)
    if problems:
        name, reason = next(iter(problems.items()))
        raise ValidationFailed(f"{name}: {reason}", fields=problems)
    return clean_url, clean_types, None if description is None else description.strip()


def _new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def create_endpoint(
    session: Session,
    program: Program,
    *,
    url: str,
    event_types: list[str],
    description: str = "",
) -> tuple[WebhookEndpoint, str]:
    """Add an endpoint; returns it and its signing secret (shown to the user once)."""
    clean_url, clean_types, clean_description = _checked_fields(url, event_types, description)
    if len(list_endpoints(session, program.id)) >= MAX_ENDPOINTS:
        raise TooManyEndpoints(
            f"a program has at most {MAX_ENDPOINTS} webhook endpoints; remove one first"
        )
    secret = _new_secret()
    endpoint = WebhookEndpoint(
        program_id=program.id,
        url=clean_url,
        description=clean_description,
        secret=secret,
        event_types=clean_types,
        created_at=utcnow(),
    )
    session.add(endpoint)
    session.flush()
    return endpoint, secret


def update_endpoint(
    session: Session,
    program_id: int,
    endpoint_id: int,
    *,
    url: str | None = None,
    event_types: list[str] | None = None,
    description: str | None = None,
) -> WebhookEndpoint:
    """Change an endpoint's URL, event types or description (None: leave it). Checked
    like a new endpoint's, all or nothing. Deliveries still pending (retries) go to the
    new URL; events already emitted keep the types they were sent for."""
    endpoint = get_endpoint(session, program_id, endpoint_id)
    clean_url, clean_types, clean_description = _checked_fields(url, event_types, description)
    if clean_url is not None:
        endpoint.url = clean_url
    if clean_types is not None:
        endpoint.event_types = clean_types
    if clean_description is not None:
        endpoint.description = clean_description
    session.flush()
    return endpoint


def rotate_secret(
    session: Session,
    program_id: int,
    endpoint_id: int,
    *,
    keep_previous: timedelta = timedelta(0),
) -> tuple[WebhookEndpoint, str]:
    """Give an endpoint a new signing secret (shown once). Every attempt from now on,
    retries of earlier events included, is signed with it.

    With ``keep_previous`` (at most :data:`MAX_SECRET_OVERLAP`), the replaced secret
    signs too until then: each attempt carries one ``v1=`` signature per secret, so a
    receiver still checking the old one accepts it while it switches. Without it
    (after a leak) the old secret stops at once. Only the secret being replaced is
    kept: rotating again during an overlap ends the older one's.
    """
    if not timedelta(0) <= keep_previous <= MAX_SECRET_OVERLAP:
        hours = int(MAX_SECRET_OVERLAP.total_seconds() // 3600)
        raise field("keep_previous", f"must be between 0 and {hours} hours")
    endpoint = get_endpoint(session, program_id, endpoint_id)
    if keep_previous:
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = utcnow() + keep_previous
    else:
        endpoint.previous_secret = None
        endpoint.previous_secret_expires_at = None
    endpoint.secret = _new_secret()
    session.flush()
    return endpoint, endpoint.secret


def list_endpoints(
    session: Session, program_id: int, *, include_removed: bool = False
) -> list[WebhookEndpoint]:
    query = select(WebhookEndpoint).where(WebhookEndpoint.program_id == program_id)
    if not include_removed:
        query = query.where(WebhookEndpoint.removed_at.is_(None))
    return list(session.scalars(query.order_by(WebhookEndpoint.id)))


def get_endpoint(session: Session, program_id: int, endpoint_id: int) -> WebhookEndpoint:
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.program_id != program_id or endpoint.removed_at is not None:
        raise NotFound(f"no webhook {endpoint_id}", fields={"webhook_id": "unknown webhook"})
    return endpoint


def remove_endpoint(session: Session, program_id: int, endpoint_id: int) -> WebhookEndpoint:
    """Stop sending to an endpoint. Its delivery log stays; pending deliveries fail."""
    endpoint = get_endpoint(session, program_id, endpoint_id)
    now = utcnow()
    endpoint.removed_at = now
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.status == PENDING)
        .values(status=FAILED, last_error="the endpoint was removed", next_attempt_at=None)
        .execution_options(synchronize_session=False)
    )
    session.flush()
    return endpoint


# --- emitting --------------------------------------------------------------------------


def emit(session: Session, program: Program, event_type: str, payload: dict[str, Any]) -> None:
    """Send ``event_type`` with ``payload`` to every endpoint of ``program`` subscribed to it.

    Writes one delivery per endpoint and enqueues its delivery job, all in the
    caller's transaction: nothing is sent unless that transaction commits, and a
    committed event is delivered even if this process dies right after. The body
    sent is ``{"id", "type", "created_at", "program", "data": payload}``.
    """
    if event_type not in known_event_types():
        raise UnknownEventType(
            f"unknown webhook event type {event_type!r}: declare it in WEBHOOK_EVENTS"
        )
    endpoints = [e for e in list_endpoints(session, program.id) if e.subscribes_to(event_type)]
    if endpoints:
        _queue_event(session, program, event_type, payload, endpoints)


def send_test(session: Session, program: Program, endpoint_id: int) -> WebhookDelivery:
    """Send a ``webhook.test`` event to one endpoint, whatever it subscribes to."""
    endpoint = get_endpoint(session, program.id, endpoint_id)
    payload = {"message": "a test event from Budding", "webhook_id": endpoint.id}
    return _queue_event(session, program, TEST_EVENT, payload, [endpoint])[0]


def _queue_event(
    session: Session,
    program: Program,
    event_type: str,
    payload: dict[str, Any],
    endpoints: list[WebhookEndpoint],
) -> list[WebhookDelivery]:
    now = utcnow()
    event_id = "evt_" + uuid.uuid4().hex
    envelope = {
        "id": event_id,
        "type": event_type,
        "created_at": now.isoformat(),
        "program": program.slug,
        "data": payload,
    }
    try:
        body = orjson.dumps(envelope, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError as exc:
        raise TypeError(f"webhook payload of {event_type!r} is not JSON: {exc}") from None
    if len(body) > MAX_BODY_BYTES:
        raise ValueError(f"webhook payload of {event_type!r} is over {MAX_BODY_BYTES} bytes")
    deliveries = []
    for endpoint in endpoints:
        delivery = WebhookDelivery(
            program_id=program.id,
            endpoint_id=endpoint.id,
            uid="dlv_" + uuid.uuid4().hex,
            event_id=event_id,
            event_type=event_type,
            body=body,
            status=PENDING,
            attempts=0,
            created_at=now,
            next_attempt_at=now,
        )
        session.add(delivery)
        session.flush()
        record = jobs.enqueue(session, DELIVER, {"delivery_id": delivery.id}, program_id=program.id)
        delivery.job_id = record.id
        deliveries.append(delivery)
    session.flush()
    return deliveries


# --- the delivery log ------------------------------------------------------------------


def list_deliveries(
    session: Session,
    program_id: int,
    *,
    status: str | None = None,
    endpoint_id: int | None = None,
    event_type: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[WebhookDelivery], str | None]:
    """Deliveries newest first, and the cursor of the next page (None at the end)."""
    query = select(WebhookDelivery).where(WebhookDelivery.program_id == program_id)
    if status:
        if status not in DELIVERY_STATUSES:
            raise field("status", f"must be one of {', '.join(DELIVERY_STATUSES)}")
        query = query.where(WebhookDelivery.status == status)
    if endpoint_id is not None:
        query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
    if event_type:
        query = query.where(WebhookDelivery.event_type == event_type)
    if cursor:
        if not cursor.isdigit():
            raise field("cursor", "is not a cursor from a previous page")
        query = query.where(WebhookDelivery.id < int(cursor))
    rows = list(session.scalars(query.order_by(WebhookDelivery.id.desc()).limit(limit + 1)))
    next_cursor = str(rows[limit - 1].id) if len(rows) > limit else None
    return rows[:limit], next_cursor


def get_delivery(
    session: Session, program_id: int, uid: str, *, for_update: bool = False
) -> WebhookDelivery:
    query = select(WebhookDelivery).where(
        WebhookDelivery.uid == uid, WebhookDelivery.program_id == program_id
    )
    delivery = session.scalar(query.with_for_update() if for_update else query)
    if delivery is None:
        raise NotFound(f"no delivery {uid!r}", fields={"delivery_id": "unknown delivery"})
    return delivery


def attempts_of(session: Session, delivery: WebhookDelivery) -> list[WebhookAttempt]:
    return list(
        session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery.id)
            .order_by(WebhookAttempt.id)
        )
    )


def redeliver(session: Session, program_id: int, uid: str) -> WebhookDelivery:
    """Send a delivery again now, with the same ``Budding-Delivery`` id and body: one
    attempt, made by a ``webhooks.redeliver`` job. A delivery has one retry schedule
    (its ``webhooks.deliver`` job), never two:

    - still being retried (pending, its job queued or running): the redelivery is one
      extra attempt beside the schedule, which goes on as it was whatever the answer;
      only the delivery's own job fails it, after its last attempt. Asking again
      before that attempt was made queues nothing more;
    - delivered or failed: the redelivery job owns it; it is pending until the
      attempt, then delivered, or failed again;
    - a redelivery of it already asked for and not made yet: nothing more is queued.

    Attempts at one delivery are made one at a time (``claim_attempt``): one that
    finds it delivered when its turn comes sends nothing.
    """
    delivery = get_delivery(session, program_id, uid, for_update=True)
    endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
    if endpoint is None or endpoint.removed_at is not None:
        raise EndpointRemoved("the endpoint of this delivery was removed")
    owner = session.get(jobs.JobRecord, delivery.job_id) if delivery.job_id else None
    live = owner is not None and owner.status in (jobs.QUEUED, jobs.RUNNING)
    if delivery.status == PENDING and owner is not None and live:
        if owner.kind == DELIVER:
            jobs.enqueue(
                session,
                REDELIVER,
                {"delivery_id": delivery.id},
                program_id=program_id,
                # one per attempt count: asking twice before it was made queues one
                dedupe_key=f"{REDELIVER}:{delivery.id}:{delivery.attempts}",
            )
        return delivery
    record = jobs.enqueue(session, REDELIVER, {"delivery_id": delivery.id}, program_id=program_id)
    delivery.status = PENDING
    delivery.next_attempt_at = utcnow()
    delivery.job_id = record.id
    session.flush()
    return delivery


# --- used by the delivery jobs -----------------------------------------------------------


@dataclass(frozen=True)
class AttemptClaim:
    """One attempt at a delivery, claimed by ``claim_attempt``: what it sends."""

    url: str
    body: str
    secrets: list[str]
    uid: str
    event_type: str
    number: int  # the Budding-Attempt header
    until: datetime  # the claim's lease (it also tells this claim from a later one)


def claim_attempt(
    session: Session, delivery_id: int, *, job_id: int, kind: str
) -> AttemptClaim | str:
    """Claim the next attempt at a delivery for job ``job_id`` (of ``kind``), or say why
    there is nothing to send.

    Attempts are made only while the delivery is pending: by a ``webhooks.deliver`` job
    only while it owns the delivery (``WebhookDelivery.job_id``), by a
    ``webhooks.redeliver`` job whether it owns it or makes an extra attempt beside the
    retries of the job that does (and takes it over if that job failed it meanwhile:
    the redelivery was asked for while the delivery was pending). Claims are exclusive: while another attempt is in
    flight (until its lease ends), this raises ``AttemptInFlight``; the caller waits
    and claims again, and finds the delivery delivered if that attempt succeeded.
    The claim is ended by ``record_attempt`` (or ``release_attempt``).
    """
    now = utcnow()
    delivery = session.execute(
        select(WebhookDelivery).where(WebhookDelivery.id == delivery_id).with_for_update()
    ).scalar_one_or_none()
    if delivery is None:
        return "the delivery was deleted"
    owner = delivery.job_id == job_id
    if delivery.status == FAILED and kind == REDELIVER and not owner:
        # an extra attempt asked for while the schedule still ran, which has failed since:
        # the redelivery was asked for and is still made, now as the delivery's owner
        delivery.status = PENDING
        delivery.job_id = job_id
        owner = True
    if delivery.status != PENDING:
        return f"already {delivery.status}"
    if kind == DELIVER and not owner:
        return f"job {delivery.job_id} owns the delivery now"
    endpoint = session.get_one(WebhookEndpoint, delivery.endpoint_id)
    if endpoint.removed_at is not None:
        if owner:
            _fail(delivery, "the endpoint was removed")
        return "the endpoint was removed"
    if delivery.sending_until is not None and delivery.sending_until > now:
        raise AttemptInFlight(f"an attempt at delivery {delivery.uid} is in flight")
    until = now + ATTEMPT_LEASE
    delivery.sending_until = until
    session.flush()
    return AttemptClaim(
        url=endpoint.url,
        body=delivery.body,
        secrets=endpoint.signing_secrets(now),
        uid=delivery.uid,
        event_type=delivery.event_type,
        number=delivery.attempts + 1,
        until=until,
    )


def release_attempt(session: Session, delivery_id: int, claim: AttemptClaim) -> None:
    """End a claim whose attempt was not made (it raised before its answer)."""
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.sending_until == claim.until)
        .values(sending_until=None)
        .execution_options(synchronize_session=False)
    )


def record_attempt(
    session: Session,
    delivery_id: int,
    *,
    job_id: int,
    claim: AttemptClaim,
    started_at: datetime,
    duration_ms: int,
    status_code: int | None,
    response_excerpt: str,
    error: str | None,
    next_attempt_at: datetime | None,
) -> WebhookAttempt:
    """Log one HTTP attempt, end its claim and update the delivery: delivered on a 2xx
    answer. A failed attempt of the job that owns the delivery schedules its retry at
    ``next_attempt_at``, or fails it when there is none (its last attempt); a failed
    extra attempt (a redelivery beside the retries) leaves the delivery as it was."""
    ok = status_code is not None and 200 <= status_code < 300
    delivery = session.execute(
        select(WebhookDelivery).where(WebhookDelivery.id == delivery_id).with_for_update()
    ).scalar_one()
    delivery.attempts += 1
    if delivery.sending_until == claim.until:
        delivery.sending_until = None
    delivery.last_status_code = status_code
    delivery.last_error = error or (None if ok else f"HTTP {status_code}")
    delivery.last_attempt_at = started_at
    if ok:
        delivery.status = DELIVERED
        delivery.delivered_at = utcnow()
        delivery.next_attempt_at = None
    elif delivery.status == PENDING and delivery.job_id == job_id:
        if next_attempt_at is None:
            _fail(delivery, delivery.last_error or "failed")
        else:
            delivery.next_attempt_at = next_attempt_at
    attempt = WebhookAttempt(
        program_id=delivery.program_id,
        delivery_id=delivery.id,
        number=delivery.attempts,
        started_at=started_at,
        duration_ms=duration_ms,
        status_code=status_code,
        response_excerpt=response_excerpt,
        error=error[:500] if error else None,
        ok=ok,
    )
    session.add(attempt)
    session.flush()
    return attempt


def _fail(delivery: WebhookDelivery, error: str) -> None:
    delivery.status = FAILED
    delivery.next_attempt_at = None
    delivery.last_error = error[:500]


def mark_failed(session: Session, delivery_id: int, job_id: int, error: str) -> None:
    """The job that owns a delivery failed for good (its worker died on its last
    attempt, say): the delivery fails. A no-op once it is delivered or failed, and
    when another job owns it (an extra redelivery failing ends nothing)."""
    session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.status == PENDING,
            WebhookDelivery.job_id == job_id,
        )
        .values(status=FAILED, next_attempt_at=None, last_error=error[:500])
        .execution_options(synchronize_session=False)
    )


# --- retention and erasure ---------------------------------------------------------------

REDACTED = "the member's data was erased"


def prune_deliveries(session: Session, *, older_than: datetime) -> int:
    """Delete finished deliveries (delivered or failed) created before ``older_than``, with
    their attempts: the bodies sent and the receivers' answers are not kept forever.
    Pending deliveries stay until they finish. Returns how many were deleted."""
    old = select(WebhookDelivery.id).where(
        WebhookDelivery.created_at < older_than, WebhookDelivery.status != PENDING
    )
    session.execute(
        delete(WebhookAttempt)
        .where(WebhookAttempt.delivery_id.in_(old))
        .execution_options(synchronize_session=False)
    )
    result = session.execute(
        delete(WebhookDelivery)
        .where(WebhookDelivery.id.in_(old.scalar_subquery()))
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def deliveries_mentioning(
    session: Session, program_id: int, values: list[str]
) -> list[WebhookDelivery]:
    """The program's deliveries whose body carries any of ``values`` (a member's external
    id or e-mail, as a JSON string), oldest first: the deliveries about the member."""
    needles = [orjson.dumps(v).decode() for v in values if v]
    if not needles:
        return []
    return list(
        session.scalars(
            select(WebhookDelivery)
            .where(
                WebhookDelivery.program_id == program_id,
                or_(*(WebhookDelivery.body.contains(n, autoescape=True) for n in needles)),
            )
            .order_by(WebhookDelivery.id)
        )
    )


def replace_strings_in_deliveries(
    session: Session, program_id: int, replacements: Mapping[str, str]
) -> int:
    """In the program's deliveries, every JSON string value of the body that is a key of
    ``replacements`` (an erased member's event id: a ``conversion_event_id``, a reward's
    ``trigger_key``), or that ends with one after a space (a reward's reason, ``"refund
    <event id>"``), gets its value (the event's new id); nothing else of the body changes,
    nor does anything else of the delivery. The candidates are found by the old values
    followed by a closing quote, 500 at a time. Returns how many changed."""
    olds = sorted(replacements)
    changed: dict[int, str] = {}
    for start in range(0, len(olds), 500):
        ends = [orjson.dumps(old).decode()[1:] for old in olds[start : start + 500]]
        rows = session.execute(
            select(WebhookDelivery.id, WebhookDelivery.body).where(
                WebhookDelivery.program_id == program_id,
                or_(*(WebhookDelivery.body.contains(q, autoescape=True) for q in ends)),
            )
        )
        for delivery_id, body in rows:
            try:
                data = orjson.loads(changed.get(delivery_id, body))
            except orjson.JSONDecodeError:
                continue
            new = replaced_strings(data, replacements, tail_after=" ")
            if new != data:
                changed[delivery_id] = orjson.dumps(new, option=orjson.OPT_NON_STR_KEYS).decode()
    for delivery_id, body in changed.items():
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id)
            .values(body=body)
            .execution_options(synchronize_session=False)
        )
    return len(changed)


def redact_deliveries_mentioning(session: Session, program_id: int, values: list[str]) -> int:
    """Redact the program's deliveries whose body carries any of ``values`` (a member's
    external id or e-mail, as a JSON string): the body keeps its envelope (id, type,
    created_at, program) and loses ``data``; the receivers' answers to it are cleared;
    a pending one is not sent. Returns how many were redacted."""
    found = deliveries_mentioning(session, program_id, values)
    for delivery in found:
        try:
            envelope = orjson.loads(delivery.body)
        except orjson.JSONDecodeError:
            envelope = {}
        kept = {k: envelope[k] for k in ("id", "type", "created_at", "program") if k in envelope}
        delivery.body = orjson.dumps({**kept, "data": {"redacted": REDACTED}}).decode()
        if delivery.status == PENDING:
            delivery.status = FAILED
            delivery.next_attempt_at = None
            delivery.last_error = REDACTED
    if found:
        session.execute(
            update(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_([d.id for d in found]))
            .values(response_excerpt="")
            .execution_options(synchronize_session=False)
        )
    session.flush()
    return len(found)
