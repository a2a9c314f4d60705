"""Influence's part of a member's data export and erasure: the program's kept ranking
(``influence_rankings``, see :mod:`budding.influence.cache`) lists every member's
external id with their measures (names are read from the members at each view, never
kept).

Export: the member's row in the kept ranking, when one is kept. Erasure: the program's
kept rankings are deleted; the next view computes one without the member.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from budding.influence import cache
from budding.members.models import Member


def export(session: Session, member: Member) -> dict[str, Any]:
    for payload in cache.kept(session, member.program_id):
        ids = payload.get("ids", [])
        if member.external_id in ids:
            i = ids.index(member.external_id)
            measures = payload.get("measures", {})
            return {"ranking": {"id": member.external_id} | {k: v[i] for k, v in measures.items()}}
    return {}


def erase(session: Session, member: Member) -> None:
    cache.clear(session, member.program_id)
