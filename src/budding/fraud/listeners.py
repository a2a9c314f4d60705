"""Identifiers members use, remembered from their events for later self-referral checks.

Events may carry ``ip`` (or ``ip_hash``), ``device`` / ``device_id`` (or
``device_hash``), ``network_hash`` and, on purchases, ``payment_fingerprint`` in their
properties; each is stored as a keyed hash, a signal of the event's member, so a later
referee on the same device, IP or card is caught. Raw values are hashed here
exactly as the referrals capability hashes clicks and redemptions.

A payment fingerprint on a referred member's event is also checked against their
referrer's cards (``service.check_payment``): a friend paying with the referrer's card
is a self-referral found at the purchase, and the referral waits for a review.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from budding.fraud import service
from budding.members.models import Event
from budding.programs.models import Program


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def on_events(session: Session, program: Program, events: Sequence[Event]) -> None:
    for event in events:
        props = event.properties or {}
        raw_ip = _text(props.get("ip"))
        raw_device = _text(props.get("device")) or _text(props.get("device_id"))
        ip = _text(props.get("ip_hash")) or (service.hash_ip(raw_ip) if raw_ip else None)
        device = _text(props.get("device_hash")) or (
            service.hash_device(raw_device) if raw_device else None
        )
        network = _text(props.get("network_hash")) or (
            service.hash_network(raw_ip) if raw_ip else None
        )
        payment = _text(props.get("payment_fingerprint"))
        if payment:  # checked before it becomes the member's own signal
            service.check_payment(session, program, event.member_id, payment, at=event.occurred_at)
        if ip or device or network or payment:
            service.record_signals(
                session,
                program,
                event.member_id,
                ip_hash=ip,
                device_hash=device,
                network_hash=network,
                payment_fingerprint=payment,
            )
