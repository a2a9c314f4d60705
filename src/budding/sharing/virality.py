"""Virality: K-factor by cohort, channel and generation; viral cycle time; generation
sizes; the projection U(t) and its ceiling.

The population is the members who signed up in ``[since, until)`` (a referee's signup time
is the referral's; anyone else's is the member's creation). A *referral* counts when its
referrer is in the population and the referee signed up before ``until``; held and
rejected referrals are left out. An *invitation* is a share sent (``share_sent``) by a
member of the population before ``until`` — a message that left the share kit, or a
tell-a-friend e-mail.

- K-factor: ``K = i × c`` with ``i`` = invitations per member and ``c`` = referrals per
  invitation, which is ``referrals / members`` (it is computed that way, so a program
  that records no share steps still has a K). By channel the denominators stay the whole
  population, so the channels' K add up to the total K. By generation, ``K_g`` = referrals
  made by generation-g members / generation-g members (generation 0: not referred).
  ``k_converted`` counts only referees who converted before ``until``.
- Viral cycle time ``ct``: the median, over counted referrals, of the days from the
  referrer's signup to the referee's signup.
- Maturity: recent members have not had time to bring friends yet, which biases the
  population's K low (a finished, closed population always has K < 1: every referee is
  also a member). The projection therefore uses ``k_mature``: K over the members who
  signed up at least two cycle times before the end of the range (``until``, else the
  last signup), falling back to ``k`` when none is that old.
- Projection (Skok's viral growth model): ``N0`` seeds (generation 0) each bring ``K``
  (``k_mature``) new users per cycle, whose own referees come one cycle later:
  ``U(t) = N0 · (1 − K^(t/ct + 1)) / (1 − K)`` (``K ≠ 1``; ``N0 · (t/ct + 1)`` when
  ``K = 1``), which at ``t = n·ct`` equals ``N0 · (1 + K + … + K^n)``. When ``K < 1`` it
  tends to the ceiling ``N0 / (1 − K)``; when ``K ≥ 1`` it has none.

Recent cohorts are right-censored: their referees have had less time to sign up.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from budding.core.errors import field
from budding.members import service as members
from budding.programs.models import Program
from budding.sharing import sources
from budding.sharing.funnel import check_range
from budding.sharing.models import ShareStep
from budding.sharing.schemas import KRow, ProjectionPoint, ViralityReport

COHORTS = ("day", "week", "month")
MIN_CYCLE_DAYS = 1 / 24  # an hour: a cycle time of zero would make U(t) jump at once
PROJECTION_POINTS = 60


def cohort_key(at: datetime, cohort: str) -> str:
    day = at.astimezone(UTC).date()
    if cohort == "day":
        return day.isoformat()
    if cohort == "week":
        return (day - timedelta(days=day.weekday())).isoformat()
    return day.replace(day=1).isoformat()


def generations(parent: dict[int, int]) -> Callable[[int], int]:
    """Generation of a member: 0 when not referred, else the referrer's plus one."""
    memo: dict[int, int] = {}

    def gen(member_id: int) -> int:
        path: list[int] = []
        node = member_id
        seen: set[int] = set()
        while node not in memo and node in parent and node not in seen:
            seen.add(node)
            path.append(node)
            node = parent[node]
        base = memo.get(node, 0)
        for depth, m in enumerate(reversed(path), start=1):
            memo[m] = base + depth
        memo.setdefault(member_id, base)
        return memo[member_id]

    return gen


def projection(n0: int, k: float, cycle_days: float, horizon_days: float) -> list[ProjectionPoint]:
    """U(t) at evenly spaced days from 0 to ``horizon_days``."""
    ct = max(cycle_days, MIN_CYCLE_DAYS)
    points: list[ProjectionPoint] = []
    for i in range(PROJECTION_POINTS + 1):
        t = horizon_days * i / PROJECTION_POINTS
        cycles = t / ct
        if abs(k - 1.0) < 1e-12:
            users = n0 * (cycles + 1)
        else:
            users = n0 * (1 - k ** (cycles + 1)) / (1 - k)
        points.append(ProjectionPoint(day=round(t, 4), users=users))
    return points


def ceiling(n0: int, k: float | None) -> float | None:
    if k is None or k >= 1:
        return None
    return n0 / (1 - k)


def _row(key: str, size: int, invitations: int, referrals: int, conversions: int) -> KRow:
    return KRow(
        key=key,
        members=size,
        invitations=invitations,
        referrals=referrals,
        conversions=conversions,
        invitations_per_member=invitations / size if size else None,
        conversion=referrals / invitations if invitations else None,
        k=referrals / size if size else None,
    )


def compute(
    signups: dict[int, datetime],
    edges: list[sources.Edge],
    invitations: dict[tuple[int, str], int],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    cohort: str = "week",
    horizon_days: float = 180.0,
) -> ViralityReport:
    """The report from plain data: member signup times (non-referees), counted referral
    edges, and share counts per (member id, channel) before ``until``."""
    if cohort not in COHORTS:
        raise field("cohort", "must be day, week or month")
    if not 1 <= horizon_days <= 3650:
        raise field("horizon_days", "must be between 1 and 3650")
    signed: dict[int, datetime] = dict(signups)
    parent: dict[int, int] = {}
    for e in edges:
        signed[e.referee_id] = e.signed_up_at
        parent[e.referee_id] = e.referrer_id
    gen = generations(parent)

    def in_range(at: datetime) -> bool:
        return (since is None or at >= since) and (until is None or at < until)

    population = {m for m, at in signed.items() if in_range(at)}
    counted = [
        e
        for e in edges
        if e.referrer_id in population
        and (until is None or e.signed_up_at < until)
        and e.referrer_id in signed
    ]
    converted = [e for e in counted if e.converted_at and (until is None or e.converted_at < until)]

    inv_member: dict[int, int] = defaultdict(int)
    inv_channel: dict[str, int] = defaultdict(int)
    for (member_id, channel), n in invitations.items():
        if member_id in population:
            inv_member[member_id] += n
            inv_channel[channel] += n
    total_invitations = sum(inv_member.values())
    size = len(population)

    # by cohort
    cohort_members: dict[str, set[int]] = defaultdict(set)
    for m in population:
        cohort_members[cohort_key(signed[m], cohort)].add(m)
    by_cohort = []
    for key in sorted(cohort_members):
        group = cohort_members[key]
        by_cohort.append(
            _row(
                key,
                len(group),
                sum(inv_member[m] for m in group),
                sum(1 for e in counted if e.referrer_id in group),
                sum(1 for e in converted if e.referrer_id in group),
            )
        )

    # by channel (denominator: the whole population)
    ref_channel: dict[str, int] = defaultdict(int)
    conv_channel: dict[str, int] = defaultdict(int)
    for e in counted:
        ref_channel[e.channel or "unknown"] += 1
    for e in converted:
        conv_channel[e.channel or "unknown"] += 1
    by_channel = [
        _row(c, size, inv_channel.get(c, 0), ref_channel.get(c, 0), conv_channel.get(c, 0))
        for c in sorted(
            set(ref_channel) | set(inv_channel), key=lambda c: (-ref_channel.get(c, 0), c)
        )
    ]

    # by generation
    gen_members: dict[int, set[int]] = defaultdict(set)
    for m in population:
        gen_members[gen(m)].add(m)
    by_generation = []
    for g in sorted(gen_members):
        group = gen_members[g]
        by_generation.append(
            _row(
                str(g),
                len(group),
                sum(inv_member[m] for m in group),
                sum(1 for e in counted if e.referrer_id in group),
                sum(1 for e in converted if e.referrer_id in group),
            )
        )
    sizes = {g: len(gen_members[g]) for g in sorted(gen_members)}

    cycle_days = [
        (e.signed_up_at - signed[e.referrer_id]).total_seconds() / 86400
        for e in counted
        if e.signed_up_at >= signed[e.referrer_id]
    ]
    ct = float(statistics.median(cycle_days)) if cycle_days else None
    k = len(counted) / size if size else None
    n0 = sizes.get(0, 0)
    k_mature: float | None = None
    maturity = 2 * ct if ct is not None else None
    if population and maturity is not None:
        end = until or max(signed[m] for m in population)
        mature = {m for m in population if signed[m] <= end - timedelta(days=maturity)}
        if mature:
            k_mature = sum(1 for e in counted if e.referrer_id in mature) / len(mature)
    k_projection = k_mature if k_mature is not None else k

    actual: list[ProjectionPoint] = []
    if population:
        start = min(signed[m] for m in population)
        per_day: dict[int, int] = defaultdict(int)
        for m in population:
            per_day[int((signed[m] - start).total_seconds() // 86400)] += 1
        running = 0
        for d in range(max(per_day) + 1):
            running += per_day.get(d, 0)
            actual.append(ProjectionPoint(day=float(d), users=float(running)))

    return ViralityReport(
        since=since,
        until=until,
        cohort=cohort,
        members=size,
        seeds=n0,
        referrals=len(counted),
        invitations=total_invitations,
        k=k,
        k_converted=len(converted) / size if size else None,
        cycle_time_days=ct,
        by_cohort=by_cohort,
        by_channel=by_channel,
        by_generation=by_generation,
        generation_sizes=sizes,
        k_mature=k_mature,
        maturity_days=maturity,
        projection_k=k_projection,
        ceiling=ceiling(n0, k_projection),
        projection=(
            projection(n0, k_projection, ct, horizon_days)
            if k_projection is not None and ct is not None and n0
            else []
        ),
        actual=actual,
    )


def _member_signups(session: Session, program: Program) -> dict[int, datetime]:
    out: dict[int, datetime] = {}
    cursor: str | None = None
    while True:
        page, cursor = members.search_members(session, program.id, cursor=cursor, limit=500)
        for m in page:
            out[m.id] = m.created_at
        if cursor is None:
            return out


def _invitations(
    session: Session, program: Program, until: datetime | None
) -> dict[tuple[int, str], int]:
    stmt = (
        select(ShareStep.member_id, ShareStep.channel, func.count())
        .where(ShareStep.program_id == program.id, ShareStep.type == "share_sent")
        .group_by(ShareStep.member_id, ShareStep.channel)
    )
    if until is not None:
        stmt = stmt.where(ShareStep.occurred_at < until)
    return {(m, c or "unknown"): int(n) for m, c, n in session.execute(stmt)}


def virality_report(
    session: Session,
    program: Program,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    cohort: str = "week",
    horizon_days: float = 180.0,
) -> ViralityReport:
    check_range(since, until)
    edges = sources.referral_edges(session, program)
    signups = _member_signups(session, program)
    missing = {e.referrer_id for e in edges} - signups.keys() - {e.referee_id for e in edges}
    if missing:  # erased members: still part of the tree
        for m in members.get_members_by_ids(session, missing).values():
            signups[m.id] = m.created_at
    return compute(
        signups,
        edges,
        _invitations(session, program, until),
        since=since,
        until=until,
        cohort=cohort,
        horizon_days=horizon_days,
    )
