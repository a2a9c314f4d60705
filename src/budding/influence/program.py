"""A program's own member graph: referrals and person-to-person interactions.

Built only through other capabilities' service functions (members, referrals).

* **Nodes**: every member of the program who is not erased (isolated members
  included, so they can be targets or candidates), by ``external_id``.
* **Referral edges**: referrer → referee (the referrer brought the referee in),
  counted referrals only (held or rejected ones are left out).
* **Interaction edges**: an event whose ``target`` is another member (reply,
  mention, a share sent to a person) is an edge actor → target: the actor's
  words reached the target.
* **Weights**: each referral or interaction adds 2^(−age / half-life) to its
  edge (``half_life_days``, default 90), so recent and repeated contact weighs
  more; duplicate edges are merged by summing.  Probabilities default to
  ``"weighted"``: p(u→v) = w(u, v) / max(1, Σ w(·, v)).
* **Consent and activity**: ``consented`` is the members with marketing consent;
  ``active`` those with an event in the last ``active_days`` (default 30).
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from budding.influence.graph import Graph

__all__ = ["ProgramGraph", "program_graph"]

PAGE = 500


@dataclass
class ProgramGraph:
    """The graph of one program with what the influence service needs about members."""

    graph: Graph
    attributes: dict[str, dict[str, Any]]
    consented: set[str]
    active: set[str]
    names: dict[str, str] = field(default_factory=dict)
    referrals: int = 0
    interactions: int = 0

    def members_where(self, name: str, value: str) -> list[str]:
        """External ids of members whose attribute ``name`` equals ``value`` (as text)."""
        return [m for m, attrs in self.attributes.items() if _text(attrs.get(name)) == value]

    def attribute_values(self, name: str) -> list[str]:
        """The distinct values (as text) members have for attribute ``name``, sorted."""
        return sorted({_text(a.get(name)) for a in self.attributes.values()} - {""})

    def attribute_names(self) -> list[str]:
        """The attributes members have with a plain value (text, number, yes/no), sorted."""
        names: set[str] = set()
        for values in self.attributes.values():
            names.update(k for k, v in values.items() if isinstance(v, str | int | float | bool))
        return sorted(names)

    def groups(self, name: str) -> dict[Hashable, Hashable]:
        """Member → value of attribute ``name``, for members that have it."""
        out: dict[Hashable, Hashable] = {}
        for member, attrs in self.attributes.items():
            value = attrs.get(name)
            if value is not None and value != "":
                out[member] = _text(value)
        return out


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _utc(ts: datetime) -> datetime:
    from datetime import UTC

    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def program_graph(
    session: Session,
    program: Any,
    *,
    half_life_days: float = 90.0,
    active_days: int = 30,
    now: datetime | None = None,
) -> ProgramGraph:
    """Build the program's member graph from referrals and interaction events.

    See the module docstring for nodes, edges and weights.  Reads members 500
    at a time, then the events that have a target in one streaming query
    (``members.service.interaction_edges``), so memory stays O(members +
    distinct edges) and events without a target are never read.
    """
    from datetime import UTC

    from budding.members import service as members
    from budding.referrals import service as referrals

    if half_life_days <= 0:
        raise ValueError("half_life_days must be positive")
    now = now or datetime.now(UTC)
    ids: list[str] = []
    by_pk: dict[int, str] = {}
    attributes: dict[str, dict[str, Any]] = {}
    names: dict[str, str] = {}
    consented: set[str] = set()
    cursor: str | None = None
    while True:
        page, cursor = members.search_members(session, program.id, cursor=cursor, limit=PAGE)
        for m in page:
            ids.append(m.external_id)
            by_pk[m.id] = m.external_id
            attributes[m.external_id] = dict(m.attributes or {})
            names[m.external_id] = m.name or ""
            if m.marketing_consent:
                consented.add(m.external_id)
        if cursor is None:
            break
    ids.reverse()  # oldest member first
    decay = math.log(2) / (half_life_days * 86400.0)
    weights: dict[tuple[str, str], float] = {}

    def add(a: str, b: str, at: datetime) -> None:
        if a == b:
            return
        age = max(0.0, (now - _utc(at)).total_seconds())
        weights[(a, b)] = weights.get((a, b), 0.0) + math.exp(-decay * age)

    n_ref = 0
    for edge in referrals.referral_edges(session, program):
        a, b = by_pk.get(edge.referrer_id), by_pk.get(edge.referee_id)
        if a is not None and b is not None:
            add(a, b, edge.signed_up_at)
            n_ref += 1
    since_active = now - timedelta(days=active_days)
    active_ids = members.active_member_ids(session, program.id, since_active)
    active = {by_pk[i] for i in active_ids if i in by_pk}  # erased members are not nodes
    n_int = 0
    # Only events with a target, in one streaming query (oldest first, as before).
    for member_id, target_id, occurred_at in members.interaction_edges(session, program.id):
        a, b = by_pk.get(member_id), by_pk.get(target_id)
        if a is not None and b is not None:
            add(a, b, occurred_at)
            n_int += 1
    src = [a for a, _ in weights]
    dst = [b for _, b in weights]
    graph = Graph.from_edges(
        src, dst, weight=np.asarray(list(weights.values()), dtype=np.float32), ids=ids
    )
    return ProgramGraph(
        graph=graph,
        attributes=attributes,
        consented=consented,
        active=active,
        names=names,
        referrals=n_ref,
        interactions=n_int,
    )
