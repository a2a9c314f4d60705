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

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from budding.influence.graph import Graph, _id_array

__all__ = ["ProgramGraph", "listing", "program_graph"]


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


def listing(values: Iterable[str], limit: int = 50) -> str:
    """Up to ``limit`` distinct non-empty values, sorted and joined, for an error message
    that says what there is ("Seoul" vs "서울"); "none" when there is nothing."""
    distinct = sorted({v for v in values if v})
    more = ", …" if len(distinct) > limit else ""
    return ", ".join(distinct[:limit]) + more or "none"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def program_graph(
    session: Session,
    program: Any,
    *,
    half_life_days: float = 90.0,
    active_days: int = 30,
    now: datetime | None = None,
) -> ProgramGraph:
    """Build the program's member graph from referrals and interaction events.

    See the module docstring for nodes, edges and weights.  Reads only the
    members' needed columns, and the edges already summed per pair by the
    database (``members.service.interaction_weights``,
    ``referrals.service.referral_weights``), so memory stays O(members +
    distinct edges) and events without a target are never read.
    """
    from datetime import UTC

    from budding.members import service as members
    from budding.referrals import service as referrals

    if half_life_days <= 0:
        raise ValueError("half_life_days must be positive")
    now = now or datetime.now(UTC)
    ids: list[str] = []
    by_pk: dict[int, int] = {}
    attributes: dict[str, dict[str, Any]] = {}
    names: dict[str, str] = {}
    consented: set[str] = set()
    for pk, external_id, name, attrs, consent in members.graph_members(session, program.id):
        by_pk[pk] = len(ids)
        ids.append(external_id)
        attributes[external_id] = dict(attrs or {})
        names[external_id] = name or ""
        if consent:
            consented.add(external_id)
    src: list[int] = []
    dst: list[int] = []
    weight: list[float] = []

    def add(rows: list[tuple[int, int, float, int]]) -> int:
        """Adds the rows between live members; returns how many referrals/events they sum."""
        counted = 0
        for a_pk, b_pk, w, count in rows:
            a, b = by_pk.get(a_pk), by_pk.get(b_pk)
            if a is None or b is None:  # erased members are not nodes
                continue
            counted += count
            if a != b:
                src.append(a)
                dst.append(b)
                weight.append(w)
        return counted

    n_ref = add(
        referrals.referral_weights(session, program, now=now, half_life_days=half_life_days)
    )
    n_int = add(
        members.interaction_weights(session, program.id, now=now, half_life_days=half_life_days)
    )
    since_active = now - timedelta(days=active_days)
    active_ids = members.active_member_ids(session, program.id, since_active)
    active = {ids[by_pk[i]] for i in active_ids if i in by_pk}
    # A pair both referred and interacting: sum its two weights in float64, as one edge.
    s = np.asarray(src, dtype=np.int64)
    d = np.asarray(dst, dtype=np.int64)
    keys, inverse = np.unique(s * max(1, len(ids)) + d, return_inverse=True)
    summed = np.bincount(inverse, weights=np.asarray(weight, dtype=np.float64))
    n = len(ids)
    graph = Graph.from_dense(
        keys // max(1, n), keys % max(1, n), n, summed.astype(np.float32), _id_array(ids)
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
