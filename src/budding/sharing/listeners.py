"""React to newly accepted events, in the same transaction: project the share-funnel
events into ``share_steps``, and log a referral's qualifying conversion as a
``conversion`` funnel event of the referrer (with the referral's channel)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from budding.members import service as members
from budding.programs.models import Program
from budding.sharing import sources
from budding.sharing.projection import project


def on_events(session: Session, program: Program, events: list[Any]) -> None:
    project(session, program.id, events)
    conversions = sources.conversions_of(
        session, program, [e for e in events if e.type != "conversion"]
    )
    if not conversions:
        return
    from budding.sharing.service import record_funnel_event

    people = members.get_members_by_ids(
        session, [i for _, fact in conversions for i in (fact.referrer_id, fact.referee_id)]
    )
    for event, fact in conversions:
        referrer, referee = people.get(fact.referrer_id), people.get(fact.referee_id)
        if referrer is None or referee is None or referrer.erased_at is not None:
            continue
        record_funnel_event(
            session,
            program,
            referrer,
            "conversion",
            event_id=f"conversion.{event.event_id}"[:200],
            channel=fact.channel,
            occurred_at=event.occurred_at,
            target=referee,
            properties={"referral_id": fact.id},
        )
