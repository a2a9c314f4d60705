"""Rewards in a member's data export. Erasure keeps them: a reward holds amounts, codes
and rule names, and the program's books must stay true. A reason or history note that
names the member or quotes their e-mail (a reviewer's note copied into the referrer's
reward history) has those words blanked, on anyone's reward. An event id that names the
member gets, in every copy of it (trigger and dedupe keys, progress, notes), the new id
the event gets, so a refund or a retry naming the new id still finds its reward."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from budding.core.erasure import Identity, replace_exact, replace_tail, scrub_mentions
from budding.members import service as members
from budding.members.models import Member
from budding.programs.service import get_program_by_id
from budding.rewards import service
from budding.rewards.models import Reward, RewardEvent, RewardProgress


def export(session: Session, member: Member) -> dict[str, Any]:
    program = get_program_by_id(session, member.program_id)
    rows = service.rewards_of(session, program, member.id)
    return {
        "rewards": [
            {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items()}
            for r in service.rewards_out(session, program, rows)
        ]
    }


def erase(session: Session, member: Member) -> None:
    _replace_event_ids(session, member)  # first: an id may hold the e-mail scrubbed below
    scrub_mentions(
        session,
        member.program_id,
        Identity.of(email=member.email, name=member.name),
        Reward.reason,
        Reward.payload,
        RewardEvent.note,
        RewardProgress.revoked_reason,
    )


def _replace_event_ids(session: Session, member: Member) -> None:
    """Copies of the event ids that name the member get the event's new id
    (``members.service.event_id_replacements``), where they are one: a conversion's
    trigger key (``service.conversion_key``: the converting event's id), on the
    conversion's rewards and on the milestones it paid, and its dedupe key (the trigger
    key; a milestone's is ``member:<id>:<n>``); the conversion's milestone progress; and
    the notes and reasons that end with an event id (``"rule 'Thanks', conversion <id>"``,
    ``"refund <id>"``). Signup keys (``referral:<id>:signup``) hold no event id."""
    replacements = members.event_id_replacements(session, member)
    if not replacements:
        return
    program_id = member.program_id
    replace_exact(
        session,
        Reward.trigger_key,
        replacements,
        Reward.program_id == program_id,
        Reward.trigger != "signup",
    )
    replace_exact(
        session,
        Reward.dedupe_key,
        replacements,
        Reward.program_id == program_id,
        Reward.trigger == "conversion",
    )
    replace_exact(
        session,
        RewardProgress.trigger_key,
        replacements,
        RewardProgress.program_id == program_id,
        RewardProgress.stage == "conversion",
    )
    for column in (Reward.reason, RewardEvent.note, RewardProgress.revoked_reason):
        replace_tail(session, column, replacements, column.class_.program_id == program_id)
