"""The fission tree: who brought whom, generations, descendants and generation sizes.

The program's counting referrals (not held, not rejected) form a forest: each
member has at most one parent, loops are refused when a referral is stored.
Functions here load the forest's edges once (``Forest.load``: one query over
``(referrer, referee)`` pairs, O(E) memory) and answer from it; a subtree of a
10,000-member program takes a few milliseconds.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from budding.core.errors import field as field_error
from budding.members import service as members
from budding.members.models import Member
from budding.programs.models import Program
from budding.referrals.attribution import COUNTING
from budding.referrals.models import Referral

MAX_DEPTH = 50
MAX_NODES = 20_000


@dataclass
class Forest:
    """Parent and children maps of a program's counting referrals."""

    parent: dict[int, int] = field(default_factory=dict)
    children: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    joined: dict[int, datetime] = field(default_factory=dict)
    converted: dict[int, datetime | None] = field(default_factory=dict)
    channel: dict[int, str | None] = field(default_factory=dict)
    _sizes: dict[int, int] | None = None

    @classmethod
    def load(cls, session: Session, program: Program) -> Forest:
        forest = cls()
        rows = session.execute(
            select(
                Referral.referrer_member_id,
                Referral.referee_member_id,
                Referral.signed_up_at,
                Referral.converted_at,
                Referral.channel,
            )
            .where(
                Referral.program_id == program.id,
                or_(*(Referral.status == s for s in COUNTING)),
            )
            .order_by(Referral.signed_up_at, Referral.id)
        )
        for a, b, joined, converted, channel in rows:
            forest.parent[b] = a
            forest.children[a].append(b)
            forest.joined[b] = joined
            forest.converted[b] = converted
            forest.channel[b] = channel
        return forest

    def roots(self) -> list[int]:
        """Members who brought someone in and were brought in by nobody."""
        return [m for m in self.children if m not in self.parent]

    def generation(self, member_id: int) -> int:
        g = 0
        seen: set[int] = set()
        while member_id in self.parent and member_id not in seen:
            seen.add(member_id)
            member_id = self.parent[member_id]
            g += 1
        return g

    def descendants(self, member_id: int) -> int:
        """How many members this one brought in, directly or down the tree."""
        return self.sizes().get(member_id, 0)

    def sizes(self) -> dict[int, int]:
        """Descendant counts of every member with children (iterative post-order)."""
        if self._sizes is not None:
            return self._sizes
        sizes: dict[int, int] = {}
        for root in list(self.children):
            if root in sizes:
                continue
            stack: list[tuple[int, bool]] = [(root, False)]
            while stack:
                node, done = stack.pop()
                if done:
                    sizes[node] = sum(1 + sizes.get(c, 0) for c in self.children.get(node, ()))
                    continue
                if node in sizes:
                    continue
                stack.append((node, True))
                stack.extend((c, False) for c in self.children.get(node, ()) if c not in sizes)
        self._sizes = sizes
        return sizes

    def generation_sizes(self, root: int | None = None) -> dict[int, int]:
        """Members per generation below ``root`` (1 = brought in by root), or of the whole
        forest (1 = brought in by someone nobody referred)."""
        out: dict[int, int] = defaultdict(int)
        frontier = [root] if root is not None else self.roots()
        depth = 0
        seen: set[int] = set(frontier)
        while frontier:
            depth += 1
            nxt = []
            for node in frontier:
                for c in self.children.get(node, ()):
                    if c not in seen:
                        seen.add(c)
                        nxt.append(c)
            if nxt:
                out[depth] = len(nxt)
            frontier = nxt
        return dict(out)

    def path_to(self, member_id: int) -> list[int]:
        """The chain from the member's root down to the member."""
        chain = [member_id]
        seen = {member_id}
        while chain[-1] in self.parent and self.parent[chain[-1]] not in seen:
            chain.append(self.parent[chain[-1]])
            seen.add(chain[-1])
        return list(reversed(chain))


@dataclass(frozen=True)
class TreeNode:
    member_id: int
    external_id: str
    name: str
    parent: str | None
    generation: int
    depth: int
    children: int
    descendants: int
    joined_at: datetime | None
    converted_at: datetime | None
    channel: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "external_id": self.external_id,
            "name": self.name,
            "parent": self.parent,
            "generation": self.generation,
            "depth": self.depth,
            "children": self.children,
            "descendants": self.descendants,
            "joined_at": self.joined_at.isoformat() if self.joined_at else None,
            "converted_at": self.converted_at.isoformat() if self.converted_at else None,
            "channel": self.channel,
        }


@dataclass(frozen=True)
class Subtree:
    root: str | None
    depth: int
    nodes: list[TreeNode]
    generation_sizes: dict[int, int]
    truncated: bool


def _nodes(session: Session, forest: Forest, order: list[tuple[int, int]]) -> list[TreeNode]:
    people = members.get_members_by_ids(
        session, [m for m, _ in order] + [forest.parent[m] for m, _ in order if m in forest.parent]
    )
    out = []
    for member_id, depth in order:
        person = people.get(member_id)
        parent_id = forest.parent.get(member_id)
        parent = people.get(parent_id) if parent_id is not None else None
        out.append(
            TreeNode(
                member_id=member_id,
                external_id=person.external_id if person else str(member_id),
                name=person.name if person else "",
                parent=parent.external_id if parent else None,
                generation=forest.generation(member_id),
                depth=depth,
                children=len(forest.children.get(member_id, ())),
                descendants=forest.descendants(member_id),
                joined_at=forest.joined.get(member_id) or (person.created_at if person else None),
                converted_at=forest.converted.get(member_id),
                channel=forest.channel.get(member_id),
            )
        )
    return out


def subtree(
    session: Session,
    program: Program,
    root: Member | None = None,
    *,
    depth: int = 3,
    max_nodes: int = 5_000,
    forest: Forest | None = None,
) -> Subtree:
    """The tree below ``root`` (or the whole forest from its roots) down to ``depth``
    levels, breadth first, at most ``max_nodes`` nodes (``truncated`` says if cut)."""
    if not 0 <= depth <= MAX_DEPTH:
        raise field_error("depth", f"must be between 0 and {MAX_DEPTH}")
    if not 1 <= max_nodes <= MAX_NODES:
        raise field_error("max_nodes", f"must be between 1 and {MAX_NODES}")
    forest = forest or Forest.load(session, program)
    start = [root.id] if root is not None else forest.roots()
    order: list[tuple[int, int]] = []
    frontier = [(m, 0) for m in start]
    truncated = False
    seen: set[int] = set()
    while frontier:
        nxt: list[tuple[int, int]] = []
        for node, d in frontier:
            if node in seen:
                continue
            if len(order) >= max_nodes:
                truncated = True
                break
            seen.add(node)
            order.append((node, d))
            if d < depth:
                nxt.extend((c, d + 1) for c in forest.children.get(node, ()))
        if truncated:
            break
        frontier = nxt
    return Subtree(
        root=root.external_id if root is not None else None,
        depth=depth,
        nodes=_nodes(session, forest, order),
        generation_sizes=forest.generation_sizes(root.id if root is not None else None),
        truncated=truncated,
    )


def children_of(
    session: Session,
    program: Program,
    member: Member | None,
    *,
    limit: int = 500,
    offset: int = 0,
    forest: Forest | None = None,
) -> tuple[list[TreeNode], int]:
    """Direct children of a member (or the forest's roots), largest subtree first, ties by
    id; the page ``[offset, offset + limit)`` of them for lazy expansion. Returns the nodes
    and how many there are in all."""
    forest = forest or Forest.load(session, program)
    if member is None:
        ids = sorted(forest.roots(), key=lambda m: (-forest.descendants(m), m))
        depth = 0
    else:
        ids = sorted(forest.children.get(member.id, ()), key=lambda m: (-forest.descendants(m), m))
        depth = 1
    page = ids[offset : offset + limit]
    return _nodes(session, forest, [(m, depth) for m in page]), len(ids)


def path_to(session: Session, program: Program, member: Member) -> list[TreeNode]:
    """The chain of referrers from the member's root down to the member (search)."""
    forest = Forest.load(session, program)
    chain = forest.path_to(member.id)
    return _nodes(session, forest, [(m, i) for i, m in enumerate(chain)])


def generation_sizes(session: Session, program: Program) -> dict[int, int]:
    """Members per generation: 0 = members nobody referred, 1 = brought in by them, …"""
    rows = session.execute(
        select(Referral.generation, func.count())
        .where(Referral.program_id == program.id, or_(*(Referral.status == s for s in COUNTING)))
        .group_by(Referral.generation)
    ).all()
    out: dict[int, int] = defaultdict(int)
    for g, n in rows:
        out[int(g)] += int(n)
    out[0] = max(members.count_members(session, program.id) - sum(out.values()), 0)
    return dict(sorted(out.items()))


def member_tree_summary(session: Session, program: Program, member: Member) -> dict[str, Any]:
    """Parent, generation, descendants and generation sizes below one member."""
    forest = Forest.load(session, program)
    parent_id = forest.parent.get(member.id)
    parent = members.get_members_by_ids(session, [parent_id]).get(parent_id) if parent_id else None
    return {
        "parent": parent.external_id if parent else None,
        "generation": forest.generation(member.id),
        "children": len(forest.children.get(member.id, ())),
        "descendants": forest.descendants(member.id),
        "generation_sizes": forest.generation_sizes(member.id),
    }
