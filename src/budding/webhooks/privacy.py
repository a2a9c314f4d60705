"""Webhooks' part of a member's erasure: deliveries that carry the member's data.

A delivery's body is the exact JSON sent to a receiver, so it may hold a member's
external id, e-mail or name. On erasure, every delivery of the member's program whose
body mentions the member's external id or e-mail is redacted (``service.
redact_deliveries_mentioning``). This needs the member's identity, so it runs before
the members capability's eraser removes it (``budding.core.plugins``: members' eraser
declares ``ORDER`` to run last). Old deliveries are also deleted after
``BUDDING_WEBHOOK_RETENTION_DAYS`` (``tasks.prune_deliveries``).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from budding.members.models import Member
from budding.webhooks import service


def erase(session: Session, member: Member) -> None:
    service.redact_deliveries_mentioning(
        session, member.program_id, [member.external_id, member.email or ""]
    )
