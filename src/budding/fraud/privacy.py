"""Fraud records in a member's data export and erasure.

Export: the assessments of the member's own signup (action, reasons, review).
Erasure: the member's stored identifiers (hashed e-mail, IP, device, network,
payment) are deleted, and blanked on their assessments; the action, reasons
and review outcome stay, so the program's fraud figures do not change. A reviewer's
note or the evidence of any assessment of the program that names the member or quotes
their e-mail has those words blanked (``core.erasure``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from budding.core.erasure import Identity, scrub_mentions
from budding.fraud.models import FraudAssessment, FraudSignal
from budding.fraud.service import assessments_of_member
from budding.members.models import Member


def export(session: Session, member: Member) -> dict[str, Any]:
    return {
        "fraud_assessments": [
            {
                "action": a.action,
                "reasons": list(a.reasons or []),
                "review_status": a.review_status,
                "email_domain": a.email_domain,
                "created_at": a.created_at.isoformat(),
            }
            for a in assessments_of_member(session, member.id)
        ]
    }


def erase(session: Session, member: Member) -> None:
    session.execute(delete(FraudSignal).where(FraudSignal.member_id == member.id))
    session.execute(
        update(FraudAssessment)
        .where(FraudAssessment.member_id == member.id)
        .values(
            email_key="",
            email_domain="",
            ip_hash="",
            device_hash="",
            network_hash="",
            payment_key="",
        )
        .execution_options(synchronize_session=False)
    )
    scrub_mentions(
        session,
        member.program_id,
        Identity.of(email=member.email, name=member.name),
        FraudAssessment.review_note,
        FraudAssessment.details,
    )
