"""Delivery jobs: one signed POST per attempt, every attempt logged.

A delivery is retried 7 times after the first attempt, waiting about 1, 3, 9, 27
minutes, 1.4, 4 and 12 hours (±20 % jitter): about 18 hours in all, then it fails.
Attempts at one delivery, whichever job makes them, are made one at a time
(``service.claim_attempt``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx

import budding
from budding.core.config import get_settings
from budding.core.db import unit_of_work, utcnow
from budding.core.jobs import JobContext, job
from budding.webhooks import service
from budding.webhooks.signing import signature_header
from budding.webhooks.targets import UnresolvedHost, UnsafeTarget, check_target

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
EXCERPT_BYTES = 1024
# Seconds from the start of an attempt after which the rest of the answer is not read.
READ_SECONDS = 20.0
# Seconds between looks at a delivery while another attempt at it is in flight.
CLAIM_POLL = 0.2
USER_AGENT = f"Budding-Webhooks/{budding.__version__}"


class DeliveryFailed(Exception):
    """The receiver did not answer 2xx; the job retries."""


@dataclass(frozen=True)
class HttpOutcome:
    status_code: int | None
    excerpt: str
    error: str | None
    duration_ms: int


def post(url: str, body: str, headers: dict[str, str]) -> HttpOutcome:
    """POST ``body``; read at most ``EXCERPT_BYTES`` of the answer, for at most
    ``READ_SECONDS`` (a receiver dripping its answer cannot stretch an attempt past its
    claim, ``service.ATTEMPT_LEASE``). Redirects are not followed (a 3xx is a failure:
    the endpoint's URL should be updated).

    The URL is checked first (``budding.webhooks.targets``: DNS may have changed since
    the endpoint was added) and the request goes to the address that was checked."""
    started = time.monotonic()
    status_code: int | None = None
    excerpt = ""
    error: str | None = None
    try:
        target = check_target(url)
    except (UnsafeTarget, UnresolvedHost) as exc:
        return HttpOutcome(None, "", f"refused: the URL {exc}"[:500], 0)
    request_url = httpx.URL(url)
    extensions: dict[str, Any] = {}
    if target.address is not None:  # pin the checked address; keep the name for Host and TLS
        headers = {**headers, "Host": request_url.netloc.decode("ascii")}
        request_url = request_url.copy_with(host=target.address)
        if request_url.scheme == "https":
            extensions["sni_hostname"] = target.host
    try:
        with (
            httpx.Client(timeout=TIMEOUT, follow_redirects=False) as client,
            client.stream(
                "POST",
                request_url,
                content=body.encode(),
                headers=headers,
                extensions=extensions,
            ) as response,
        ):
            status_code = response.status_code
            raw = b""
            for chunk in response.iter_bytes():
                raw += chunk
                if len(raw) >= EXCERPT_BYTES or time.monotonic() - started > READ_SECONDS:
                    break
            excerpt = raw[:EXCERPT_BYTES].decode("utf-8", errors="replace")
    except httpx.TimeoutException as exc:
        error = f"timed out ({type(exc).__name__})"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    return HttpOutcome(status_code, excerpt, error, int((time.monotonic() - started) * 1000))


def _claim(ctx: JobContext, delivery_id: int) -> service.AttemptClaim | str:
    """Claim the delivery's next attempt, waiting while another attempt at it is in
    flight (a redelivery beside its retries): one request at a time per delivery."""
    deadline = time.monotonic() + service.ATTEMPT_LEASE.total_seconds() + CLAIM_POLL
    while True:
        try:
            with unit_of_work() as session:
                return service.claim_attempt(session, delivery_id, job_id=ctx.job_id, kind=ctx.kind)
        except service.AttemptInFlight as exc:
            if time.monotonic() >= deadline:  # other attempts kept it a whole lease
                raise DeliveryFailed(str(exc)) from None
        time.sleep(CLAIM_POLL)


def _attempt(ctx: JobContext, delivery_id: int) -> dict[str, Any]:
    claim = _claim(ctx, delivery_id)
    if isinstance(claim, str):
        return {"skipped": claim}
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Budding-Event": claim.event_type,
        "Budding-Delivery": claim.uid,
        "Budding-Timestamp": str(timestamp),
        "Budding-Attempt": str(claim.number),
        "Budding-Signature": signature_header(claim.secrets, timestamp, claim.body),
    }
    started_at = utcnow()
    try:
        outcome = post(claim.url, claim.body, headers)
    except BaseException:
        with unit_of_work() as session:
            service.release_attempt(session, delivery_id, claim)
        raise
    with unit_of_work() as session:
        attempt = service.record_attempt(
            session,
            delivery_id,
            job_id=ctx.job_id,
            claim=claim,
            started_at=started_at,
            duration_ms=outcome.duration_ms,
            status_code=outcome.status_code,
            response_excerpt=outcome.excerpt,
            error=outcome.error,
            next_attempt_at=ctx.retry_at,
        )
        ok = attempt.ok
    if not ok:
        raise DeliveryFailed(outcome.error or f"the receiver answered HTTP {outcome.status_code}")
    return {"status_code": outcome.status_code, "duration_ms": outcome.duration_ms}


def _failed(ctx: JobContext, error: str) -> None:
    with unit_of_work() as session:
        service.mark_failed(session, int(ctx.payload["delivery_id"]), ctx.job_id, error)


@job(
    retries=7,
    retry_delay=60,
    backoff=3,
    jitter=0.2,
    max_delay=12 * 3600,
    lease=120,
    on_failure=_failed,
)
def deliver(ctx: JobContext, delivery_id: int) -> dict[str, Any]:
    """Deliver an emitted event to one endpoint, retrying for about 18 hours. It owns the
    delivery until a redelivery of it, once finished, takes it over."""
    return _attempt(ctx, delivery_id)


@job(lease=120, on_failure=_failed)
def redeliver(ctx: JobContext, delivery_id: int) -> dict[str, Any]:
    """One attempt at once, asked for from the dashboard, the API or the CLI. Beside the
    retries of a pending delivery it is an extra attempt, which fails nothing; see
    ``service.redeliver``."""
    return _attempt(ctx, delivery_id)


@job(every=3600, lease=600)
def prune_deliveries(ctx: JobContext) -> dict[str, Any]:
    """Delete deliveries (bodies, answers) older than ``BUDDING_WEBHOOK_RETENTION_DAYS``
    (0 keeps them forever); enqueued every hour by the workers (``core.jobs.enqueue_periodic``)."""
    days = get_settings().webhook_retention_days
    if days <= 0:  # 0: keep deliveries forever
        return {"deleted": 0, "retention_days": days}
    with unit_of_work() as session:
        deleted = service.prune_deliveries(session, older_than=utcnow() - timedelta(days=days))
    return {"deleted": deleted, "retention_days": days}
