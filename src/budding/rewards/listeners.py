"""Refunds take rewards back, in the transaction that accepts the refund event.

A ``refund`` event names the purchase it undoes by ``properties.refund_of``
(the purchase event's id, which is the conversion's trigger key) or by
``properties.order_id`` (matched against the ``order_id`` of the member's
earlier events). Either way ``reverse_rewards`` writes the compensating
entries; a refund delivered twice reverses nothing the second time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from budding.members import events as member_events
from budding.members import service as members
from budding.members.models import Event
from budding.programs.models import Program
from budding.rewards import service

REFUND_TYPES = ("refund",)
MAX_SCAN_PAGES = 20  # 20,000 of the member's events at most when matching an order id


def on_events(session: Session, program: Program, events: Sequence[Event]) -> None:
    for event in events:
        if event.type not in REFUND_TYPES:
            continue
        props = event.properties or {}
        keys: set[str] = set()
        refund_of = props.get("refund_of")
        if isinstance(refund_of, str) and refund_of:
            keys.add(service.conversion_key(refund_of))
        order_id = props.get("order_id")
        if order_id not in (None, "") and isinstance(order_id, str | int):
            keys.update(_events_with_order(session, program, event, order_id))
        reason = f"refund {event.event_id}"
        for key in sorted(keys):
            service.reverse_rewards(session, program, trigger_key=key, reason=reason)


def _events_with_order(
    session: Session, program: Program, refund: Event, order_id: Any
) -> set[str]:
    """Conversion keys of the member's other events that carry the same ``order_id``."""
    member = members.get_member_by_id(session, refund.member_id)
    if member.erased_at is not None:
        return set()
    found: set[str] = set()
    cursor = None
    for _ in range(MAX_SCAN_PAGES):
        page, cursor = member_events.query_events(
            session,
            program,
            member=member.external_id,
            cursor=cursor,
            limit=1000,
        )
        for ev in page:
            if ev.type in REFUND_TYPES or ev.id == refund.event_id:
                continue
            if str((ev.properties or {}).get("order_id", "")) == str(order_id):
                found.add(service.conversion_key(ev.id))
        if cursor is None:
            break
    return found
