"""The demo community as plain data, handed to every capability's ``demo.contribute``.

``budding demo`` first stores members and events through the members service,
then builds a :class:`Community` describing who they are, who brought whom and
what they bought and shared, and calls ``contribute(session, program,
community, rng)`` in each ``budding.<capability>.demo`` module. A capability
adds its own records (invites, referrals, rewards, shares, …) consistent with
that story, without reading other capabilities' tables. See docs/demo.md.

Members are identified by their *index* ``i`` (0 … ``size - 1``, in signup
order); every per-member sequence below is indexed by it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

import numpy as np

from budding.programs.models import Program


@dataclass(frozen=True)
class Purchase:
    """One ``purchase`` event (and its ``refund``, when there was one)."""

    member: int
    at: datetime
    amount: float
    currency: str
    order_id: str
    event_id: str
    refunded_at: datetime | None = None
    refund_event_id: str | None = None


@dataclass(frozen=True)
class Share:
    """One ``share`` event and the ``click`` events it brought."""

    member: int
    at: datetime
    channel: str
    event_id: str
    target: int | None = None  # a share sent to one person
    clicks: tuple[int, ...] = ()  # members who clicked the shared link


@dataclass
class Community:
    """Who the demo members are and what happened between them.

    ``parent`` is the referral forest: ``parent[i]`` is the index of the member
    who brought member ``i`` (``-1`` for the roots, who came from marketing),
    grown by a Galton–Watson branching process, so ``parent[i] < i`` and
    ``signup_at[parent[i]] < signup_at[i]``. ``generation[i]`` is the depth
    (0 for roots). ``rng`` is a generator the builder is done with; a
    capability should draw from the ``rng`` argument of ``contribute``
    instead, which is its own stream and keeps its data unchanged when
    another capability is added.
    """

    program: Program
    seed: int
    start: datetime
    end: datetime
    external_ids: list[str]
    member_ids: list[int]
    names: list[str]
    emails: list[str | None]
    locales: list[str]
    signup_at: list[datetime]
    parent: np.ndarray  # int64, -1 for roots
    generation: np.ndarray  # int64
    channel: list[str]  # share channel of the invite, or the marketing channel of a root
    invited_at: list[datetime | None]  # when the parent sent the invite (None for roots)
    activity: np.ndarray  # float64 relative activity, mean about 1, heavy-tailed
    marketing_consent: np.ndarray  # bool
    churned_at: list[datetime | None]  # when the member was marked as gone quiet
    purchases: list[Purchase] = field(default_factory=list)
    shares: list[Share] = field(default_factory=list)
    rng: np.random.Generator = field(default_factory=np.random.default_rng)

    @property
    def size(self) -> int:
        return len(self.external_ids)

    @cached_property
    def index_by_external_id(self) -> dict[str, int]:
        return {x: i for i, x in enumerate(self.external_ids)}

    def index_of(self, external_id: str) -> int:
        return self.index_by_external_id[external_id]

    def roots(self) -> list[int]:
        """Members who came from marketing, not from another member."""
        return [int(i) for i in np.flatnonzero(self.parent < 0)]

    @cached_property
    def _children(self) -> list[list[int]]:
        kids: list[list[int]] = [[] for _ in range(self.size)]
        for child, parent in enumerate(self.parent.tolist()):
            if parent >= 0:
                kids[parent].append(child)
        return kids

    def children(self, i: int) -> list[int]:
        """Members ``i`` brought, in signup order."""
        return self._children[i]

    def referrals(self) -> Iterator[tuple[int, int]]:
        """Every ``(referrer, referred)`` pair, in the referred member's signup order."""
        for child, parent in enumerate(self.parent.tolist()):
            if parent >= 0:
                yield parent, child

    @cached_property
    def _first_purchases(self) -> dict[int, datetime]:
        first: dict[int, datetime] = {}
        for p in self.purchases:
            if p.member not in first or p.at < first[p.member]:
                first[p.member] = p.at
        return first

    def first_purchase_at(self, i: int) -> datetime | None:
        """When member ``i`` first bought something (a qualifying conversion), or None."""
        return self._first_purchases.get(i)
