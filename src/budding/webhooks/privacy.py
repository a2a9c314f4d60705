"""Webhooks' part of a member's data export and erasure: deliveries that carry the
member's data.

Export: the deliveries about the member (found as erasure finds them): event type, time,
endpoint URL and status; not the body (the member's data is exported by the capability
that owns it) nor the endpoint's secret.

A delivery's body is the exact JSON sent to a receiver, so it may hold a member's
external id, e-mail or name. On erasure, every delivery of the member's program whose
body mentions the member's external id or e-mail is redacted (``service.
redact_deliveries_mentioning``). This needs the member's identity, so it runs before
the members capability's eraser removes it (``budding.core.plugins``: members' eraser
declares ``ORDER`` to run last). Old deliveries are also deleted after
``BUDDING_WEBHOOK_RETENTION_DAYS`` (``tasks.prune_deliveries``). Before that, an event
id in a body (a JSON string value) that names the member gets the new opaque id the event
gets (``members.service.event_id_replacements``), in every delivery of the program.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from budding.members import service as members
from budding.members.models import Member
from budding.webhooks import service
from budding.webhooks.models import WebhookEndpoint


def _identity(member: Member) -> list[str]:
    return [member.external_id, member.email or ""]


def export(session: Session, member: Member) -> dict[str, Any]:
    found = service.deliveries_mentioning(session, member.program_id, _identity(member))
    rows = session.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.url).where(
            WebhookEndpoint.id.in_({d.endpoint_id for d in found})
        )
    )
    urls = {endpoint_id: url for endpoint_id, url in rows}
    return {
        "webhook_deliveries": [
            {
                "event_type": d.event_type,
                "created_at": d.created_at.isoformat(),
                "endpoint_url": urls.get(d.endpoint_id),
                "status": d.status,
            }
            for d in found
        ]
    }


def erase(session: Session, member: Member) -> None:
    # First, while the bodies still hold them: event ids that name the member get the
    # event's new id (a referral's conversion_event_id, a reward's trigger_key).
    service.replace_strings_in_deliveries(
        session, member.program_id, members.event_id_replacements(session, member)
    )
    service.redact_deliveries_mentioning(session, member.program_id, _identity(member))
