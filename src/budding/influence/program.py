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
    ``referrals.service.referral_weights``: numpy arrays, no Python
    object per pair), so memory stays O(members + distinct edges) and events
    without a target are never read.
    """
    from datetime import UTC

    from budding.members import service as members
    from budding.referrals import service as referrals

    if half_life_days <= 0:
        raise ValueError("half_life_days must be positive")
    now = now or datetime.now(UTC)
    rows = members.graph_members(session, program.id)
    # node i is the i-th live member by primary key (graph_members is in id order): ids
    # map to nodes by binary search, no dict look-up per edge
    pks = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
    ids = [row[1] for row in rows]
    attributes = {row[1]: dict(row[3] or {}) for row in rows}
    names = {row[1]: row[2] or "" for row in rows}
    consented = {row[1] for row in rows if row[4]}
    n = len(ids)

    def nodes(member_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Node index of each id, and whether it is one (erased members are not nodes)."""
        at = np.minimum(np.searchsorted(pks, member_ids), max(0, n - 1))
        return at, pks[at] == member_ids if n else np.zeros(len(member_ids), dtype=bool)

    parts = []
    counted = []
    for pairs in (  # referrals first: a pair in both sums its weights in this order
        referrals.referral_weights(session, program, now=now, half_life_days=half_life_days),
        members.interaction_weights(session, program.id, now=now, half_life_days=half_life_days),
    ):
        (a, a_live), (b, b_live) = nodes(pairs["a"]), nodes(pairs["b"])
        live = a_live & b_live
        counted.append(int(pairs["count"][live].sum()))  # self-loops count, as events
        edge = live & (a != b)
        parts.append((a[edge], b[edge], pairs["weight"][edge]))
    active_ids = members.active_member_ids(session, program.id, now - timedelta(days=active_days))
    at, live = nodes(np.fromiter(active_ids, dtype=np.int64, count=len(active_ids)))
    active = {ids[i] for i in at[live].tolist()}
    # A pair both referred and interacting: sum its two weights in float64, as one edge.
    s = np.concatenate([p[0] for p in parts])
    d = np.concatenate([p[1] for p in parts])
    keys, inverse = np.unique(s * max(1, n) + d, return_inverse=True)
    summed = np.bincount(inverse, weights=np.concatenate([p[2] for p in parts]))
    graph = Graph.from_dense(
        keys // max(1, n), keys % max(1, n), n, summed.astype(np.float32), _id_array(ids)
    )
    return ProgramGraph(
        graph=graph,
        attributes=attributes,
        consented=consented,
        active=active,
        names=names,
        referrals=counted[0],
        interactions=counted[1],
    )
