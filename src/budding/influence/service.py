"""Influence service functions on a program's own data (the unit of work owns the transaction)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from budding.core import jobs
from budding.core.db import utcnow
from budding.core.errors import BuddingError, NotFound, field
from budding.core.i18n import N_
from budding.influence import cache
from budding.influence.graph import Graph, _id_array
from budding.influence.maximization import imm
from budding.influence.program import ProgramGraph, _text, listing, program_graph
from budding.influence.ranking import MEASURES, Ranking, leaders_by_group, rank, ranking_of
from budding.influence.schemas import SeedsIn, SimulationIn

__all__ = [
    "PROBABILITY",
    "ProgramRanking",
    "RankingFailed",
    "RankingPending",
    "choose_seeds",
    "leaders",
    "load_graph",
    "neighbourhood",
    "plan_seeds",
    "program_ranking",
    "retry_ranking",
    "start_simulation",
    "target_members",
]

PROBABILITY = "weighted"
RR_SETS = 50_000
RANKING_JOB = "influence.refresh_ranking"
# A program with nothing kept yet is ranked inside the request up to this many members,
# above it by the job RANKING_JOB while the page shows a panel that polls every 2 s. The
# member count is part of the cache key's query, so it costs nothing. Ranking time grows
# with members and their events: on benchmarks/influence_pages.py's data (0.6 referrals
# and 10 targeted events a member; SQLite, 2 shared cores, load 3) the first view took
# 0.18-0.20 s at 2,000 members (the demo), 0.43-0.74 s at 5,000, 0.94-1.18 s at 10,000,
# 1.9-2.0 s at 20,000 and 8-30 s at 100,000. About a second at 10,000: a panel would show
# the table no sooner (one poll, plus the queue), and above it the wait only grows.
INLINE_RANKING_MAX_MEMBERS = 10_000
# ... and at most this many targeted events (interactions): few members with millions of
# events take seconds too. On benchmarks/influence_pages.py's data at 2,000 members
# (`--generate 2000 --events-per-member K`; SQLite, 2 shared cores, load 2) the graph
# load took 0.04 s at 20,000 targeted events, 0.20 s at 100,000, 0.40 s at 200,000,
# 1.0 s at 500,000 and 2.2 s at 1,000,000; the first view 0.12-0.33 s, 0.42-0.62 s and
# 0.58-0.84 s, and the job 1.6-1.7 s and 3.0-3.4 s at the last two. 100,000 is what the
# 10,000-member measurement above had (10 a member): with both limits a request ranks no
# more than that, about a second. Checked only on a miss with nothing kept, counting at
# most 100,001 entries of the targeted-events index: 7 ms on SQLite (all 1,000,000: 63 ms).
INLINE_RANKING_MAX_INTERACTIONS = 100_000
# After the ranking job failed, views answer "failed" for this long before one enqueues
# it again (staff may retry sooner): a ranking that cannot be computed is not attempted
# on every view.
FAILED_RANKING_PAUSE = timedelta(hours=1)
# The steps the influence jobs report: stored in English, shown on the staff's pages in
# their language (the ``translated`` filter), so they name no numbers or plans.
STEP_LOADING = N_("loading the member graph")
STEP_RANKING = N_("ranking the members")
STEP_KEEPING = N_("keeping the ranking")
STEP_SEEDS = N_("choosing the seeds")
STEP_SIMULATING = N_("simulating the campaign")
STEP_DONE = N_("done")


def load_graph(session: Session, program: Any) -> ProgramGraph:
    """The program's member graph (see :mod:`budding.influence.program`)."""
    return program_graph(session, program)


def target_members(pg: ProgramGraph, spec: str, name: str = "target") -> list[str]:
    """Members matching ``ATTR=VALUE``; a clear error naming ``name`` otherwise."""
    if "=" not in spec:
        raise field(name, N_("must look like ATTR=VALUE, e.g. lang=ko"))
    attr, value = (s.strip() for s in spec.split("=", 1))
    found = pg.members_where(attr, value)
    if not found:
        # show what there is: "city=Seoul" where the members say "서울"
        values = pg.attribute_values(attr)
        if not values:
            known = listing(pg.attribute_names())
            raise field(
                name,
                N_("no member has the attribute %(attr)s (known: %(known)s)"),
                attr=repr(attr),
                known=known,
            )
        raise field(
            name,
            N_("no member has %(attr)s=%(value)s (known values: %(values)s)"),
            attr=attr,
            value=value,
            values=listing(values),
        )
    return found


@dataclass
class ProgramRanking:
    """Every member's measures on the program's graph (kept: :mod:`.cache`).

    ``graph`` has the members as nodes and no edges: it maps ids for :func:`ranking_of`
    and :func:`leaders_by_group`; ``values[name][i]`` is measure ``name`` of node ``i``."""

    graph: Graph
    values: dict[str, np.ndarray]
    members: int
    connections: int
    referrals: int
    interactions: int
    computed_at: datetime
    current: bool  # False: an older ranking, while a job computes the current one
    # Not current (and asked to refresh): the job computing the current one, queued,
    # running, or failed less than FAILED_RANKING_PAUSE ago (no view enqueues it again).
    refresh_job: jobs.JobRecord | None = None

    @property
    def refresh_failed(self) -> bool:
        """The job ranking the newest data failed: the older ranking stays until a retry."""
        return self.refresh_job is not None and self.refresh_job.status == jobs.FAILED

    @property
    def retry_at(self) -> datetime | None:
        """After a failed refresh: when a view enqueues the job again."""
        return _retry_at(self.refresh_job) if self.refresh_job and self.refresh_failed else None


def _retry_at(job: jobs.JobRecord) -> datetime:
    """When a view enqueues the failed ranking job ``job`` again (see :func:`_ranking_job`)."""
    return (job.finished_at or utcnow()) + FAILED_RANKING_PAUSE


class RankingPending(Exception):
    """Nothing is kept yet for a program too large to rank in a request (more than
    ``INLINE_RANKING_MAX_MEMBERS`` members or ``INLINE_RANKING_MAX_INTERACTIONS``
    targeted events): ``job`` (``influence.refresh_ranking``) is computing it, or failed
    (``failed``) and a view enqueues it again at ``retry_at``."""

    def __init__(self, job: jobs.JobRecord) -> None:
        super().__init__(f"job {job.id} is computing the program's first ranking")
        self.job = job

    @property
    def failed(self) -> bool:
        return self.job.status == jobs.FAILED

    @property
    def retry_at(self) -> datetime:
        return _retry_at(self.job)

    def error(self) -> RankingFailed:
        """The API's answer to a failed job."""
        return RankingFailed(self.job, self.retry_at)


class RankingFailed(BuddingError):
    """503: the job computing the program's first ranking failed; ``Retry-After`` says
    when a request enqueues it again."""

    status, code = 503, "ranking_failed"

    def __init__(self, job: jobs.JobRecord, retry_at: datetime) -> None:
        super().__init__(
            f"computing the program's ranking failed ({job.error or 'no reason given'}); "
            f"a request after {retry_at.isoformat(timespec='seconds')} tries again",
            extra={"job_id": job.id, "status_url": f"/api/v1/jobs/{job.id}"},
        )
        self.retry_after = max(1, int((retry_at - utcnow()).total_seconds()))


def ranking_payload(
    session: Session,
    program: Any,
    now: datetime,
    progress: Callable[[float, str], None] | None = None,
) -> dict[str, Any]:
    """Every member's measures on the program's graph at ``now``, as kept (:mod:`.cache`);
    ``progress(fraction, message)`` hears of the steps (the job reports them)."""
    if progress:
        progress(0.0, STEP_LOADING)
    pg = program_graph(session, program, now=now)
    g = pg.graph
    values: dict[str, list[Any]] = {}
    if g.n:
        if progress:  # the graph load takes about half the time at 100,000 members
            progress(0.5, STEP_RANKING)
        full = rank(g, None, by="reach", rr_sets=RR_SETS, probability=PROBABILITY)
        for name, sorted_values in full.measures.items():
            in_node_order = np.empty_like(sorted_values)
            in_node_order[full.nodes] = sorted_values
            values[name] = in_node_order.tolist()
    return {
        "ids": [str(x) for x in g.id_list(range(g.n))],
        "measures": values,
        "members": g.n,
        "connections": g.m,
        "referrals": pg.referrals,
        "interactions": pg.interactions,
    }


def _ranking_job(session: Session, program: Any, key: str) -> jobs.JobRecord:
    """The job ranking the program: one already queued or running, or one that failed
    less than ``FAILED_RANKING_PAUSE`` ago, else a new one (one per key, however many
    views enqueue it at once)."""

    def waiting(job: jobs.JobRecord) -> bool:
        if job.status in (jobs.QUEUED, jobs.RUNNING):
            return True
        return job.status == jobs.FAILED and _retry_at(job) > utcnow()

    latest = jobs.list_jobs(session, program.id, kind=RANKING_JOB, limit=1)
    if latest and waiting(latest[0]):
        return latest[0]
    dedupe = f"influence.ranking:{program.id}:{key}"
    for _ in range(5):
        job = jobs.enqueue(session, RANKING_JOB, {}, program.id, dedupe_key=dedupe)
        if waiting(job):
            return job
        # a finished job holds the key (its ranking was cleared since): the next one's
        # key names it, so concurrent views still agree on one new job
        dedupe = f"{dedupe}:{job.id}"
    return job


def _rank_inline(session: Session, program: Any, members: int) -> bool:
    """Whether a program with nothing kept is ranked in the request: at most
    ``INLINE_RANKING_MAX_MEMBERS`` members and ``INLINE_RANKING_MAX_INTERACTIONS``
    targeted events (counted only up to one more than that)."""
    from budding.members import service as members_service

    if members > INLINE_RANKING_MAX_MEMBERS:
        return False
    bound = INLINE_RANKING_MAX_INTERACTIONS
    return members_service.count_targeted_events(session, program.id, up_to=bound + 1) <= bound


def program_ranking(session: Session, program: Any, *, refresh: bool = True) -> ProgramRanking:
    """Every measure of every member, from the database's copy for the program's current
    data and hour. On a miss the older copy answers while the job ``refresh_ranking``
    computes the current one (``refresh``; the job is ``refresh_job``, which may have
    failed: see :func:`_ranking_job`). With nothing kept, a program of at most
    ``INLINE_RANKING_MAX_MEMBERS`` members and ``INLINE_RANKING_MAX_INTERACTIONS``
    targeted events is ranked now; a larger one raises :class:`RankingPending` naming
    the job that ranks it."""
    job: jobs.JobRecord | None = None

    def enqueue_refresh(key: str) -> None:
        nonlocal job
        job = _ranking_job(session, program, key)

    kept = cache.cached(
        session,
        program,
        lambda now: ranking_payload(session, program, now),
        refresh=enqueue_refresh if refresh else None,
        inline=lambda members: _rank_inline(session, program, members),
    )
    if kept is None:
        assert job is not None
        raise RankingPending(job)
    payload = kept.payload
    ids = payload["ids"]
    empty = np.zeros(0, dtype=np.int64)
    return ProgramRanking(
        graph=Graph.from_dense(empty, empty, len(ids), None, _id_array(ids)),
        values={name: np.asarray(v) for name, v in payload["measures"].items()},
        members=payload["members"],
        connections=payload["connections"],
        referrals=payload["referrals"],
        interactions=payload["interactions"],
        computed_at=kept.computed_at,
        current=kept.current,
        refresh_job=None if kept.current else job,
    )


def retry_ranking(session: Session, program: Any, job_id: int) -> jobs.JobRecord:
    """Queue the program's failed ranking job again (it ranks the data of when it runs)."""
    record = jobs.get_job(session, job_id, program_id=program.id)
    if record.kind != RANKING_JOB:
        raise NotFound(f"no ranking job {job_id}")
    return jobs.retry_job(session, job_id, program_id=program.id)


def _groups(session: Session, program: Any, name: str) -> dict[Hashable, Hashable]:
    """Member → value (as text) of attribute ``name``, for members that have it."""
    from budding.members import service as members

    out: dict[Hashable, Hashable] = {}
    for _, member, _, attributes, _ in members.graph_members(session, program.id):
        value = (attributes or {}).get(name)
        if value is not None and value != "":
            out[member] = _text(value)
    return out


def _rows(ranking: Ranking, names: dict[str, str]) -> list[dict[str, Any]]:
    rows = ranking.rows()
    for row in rows:
        row["id"] = str(row["id"])
        row["name"] = names.get(row["id"], "")
    return rows


def _names(session: Session, program: Any, ids: list[str]) -> dict[str, str]:
    from budding.members import service as members

    found = members.members_by_external_ids(session, program.id, ids)
    return {m.external_id: m.name or "" for m in found}


def leaders(
    session: Session,
    program: Any,
    *,
    top: int = 20,
    group: str | None = None,
    by: str = "reach",
    ranked: ProgramRanking | None = None,
) -> dict[str, Any]:
    """Opinion leaders of the program: every measure, overall or within each group.

    ``group`` names a member attribute (``city``, ``segment`` …); members
    without it are left out of the grouped view. Raises :class:`RankingPending` while
    a large program's first ranking is computed (see :func:`program_ranking`).
    """
    from budding.members import service as members

    if by not in MEASURES:
        raise field("by", f"must be one of {', '.join(MEASURES)}")
    if not 1 <= top <= 1000:
        raise field("top", "must be between 1 and 1000")
    ranked = ranked or program_ranking(session, program)
    job = ranked.refresh_job
    kept = {
        "computed_at": ranked.computed_at.isoformat(),
        "current": ranked.current,
        "refresh_job": None
        if job is None
        else {"id": job.id, "status": job.status, "status_url": f"/api/v1/jobs/{job.id}"},
    }
    if ranked.graph.n == 0:
        return {"by": by, "group": group, "leaders": [], "groups": {}, **kept}
    # without groups only the top rows are needed (ids of 100,000 members cost 80 ms)
    full = ranking_of(ranked.graph, ranked.values, by=by, top=None if group else top)
    if group:
        groups = _groups(session, program, group)
        if not groups:
            known = ", ".join(members.attribute_names(session, program.id)) or "none"
            raise field("group", f"no member has the attribute {group!r} (known: {known})")
        per = leaders_by_group(ranked.graph, groups, top, ranking=full)
        names = _names(session, program, [str(i) for v in per.values() for i in v.ids])
        return {
            "by": by,
            "group": group,
            "leaders": [],
            "groups": {
                str(k): _rows(v, names) for k, v in sorted(per.items(), key=lambda x: str(x[0]))
            },
            **kept,
        }
    names = _names(session, program, [str(i) for i in full.ids])
    return {"by": by, "group": None, "leaders": _rows(full, names), "groups": {}, **kept}


def _candidates(pg: ProgramGraph, consented_only: bool, active_only: bool) -> list[str] | None:
    if not consented_only and not active_only:
        return None
    pool = set(pg.graph.id_list(range(pg.graph.n)))
    if consented_only:
        pool &= pg.consented
    if active_only:
        pool &= pg.active
    if not pool:
        raise field(
            "consented_only" if consented_only else "active_only",
            N_("no member is eligible as a seed"),
        )
    return sorted(pool)


def choose_seeds(
    session: Session, program: Any, request: SeedsIn, *, pg: ProgramGraph | None = None
) -> dict[str, Any]:
    """IMM seeds on the program's graph, optionally targeted and restricted."""
    pg = pg or load_graph(session, program)
    if pg.graph.n == 0:
        raise field("k", N_("the program has no members yet"))
    targets = target_members(pg, request.target) if request.target else None
    candidates = _candidates(pg, request.consented_only, request.active_only)
    result = imm(
        pg.graph, request.k, model=request.model, epsilon=request.epsilon, ell=request.ell,
        probability=PROBABILITY, seed=request.seed, targets=targets, candidates=candidates,
    )  # fmt: skip
    out = result.to_json()
    out["seeds"] = [str(s) for s in result.seeds]
    out["marginal"] = [float(x) for x in result.marginal]
    out["cumulative"] = [float(x) for x in result.cumulative]
    out["audience"] = result.audience
    return out


def plan_seeds(
    pg: ProgramGraph,
    strategy: str,
    k: int,
    *,
    target: str | None = None,
    consented_only: bool = False,
    active_only: bool = False,
    seed: int = 0,
) -> list[str]:
    """k seeds chosen by a strategy: ``imm``, ``followers`` (out-degree), ``pagerank``, ``reach``."""
    g = pg.graph
    candidates = _candidates(pg, consented_only, active_only)
    if strategy == "imm":
        targets = target_members(pg, target) if target else None
        result = imm(
            g, k, probability=PROBABILITY, seed=seed, targets=targets, candidates=candidates
        )
        return [str(s) for s in result.seeds]
    by = {"followers": "out_degree", "pagerank": "pagerank", "reach": "reach"}.get(strategy)
    if by is None:
        raise field("strategy", "must be imm, followers, pagerank or reach")
    ranking = rank(g, None, by=by, measures=(by,), rr_sets=RR_SETS, probability=PROBABILITY)
    allowed = None if candidates is None else set(candidates)
    ids = [str(i) for i in ranking.ids if allowed is None or str(i) in allowed]
    return ids[:k]


def start_simulation(session: Session, program: Any, request: SimulationIn) -> jobs.JobRecord:
    """Enqueue a campaign simulation (job ``influence.simulate``) in the caller's unit of work.

    Explicit seeds, the target audience and the seed pools are checked now, so a
    typo fails the request, not the job.
    """
    from budding.members import service as members

    names: set[str] = set()
    for i, plan in enumerate(request.plans):
        if plan.name and plan.name in names:  # plans are told apart by name in results
            raise field(
                f"plans.{i}.name",
                N_("another plan is already called %(name)s"),
                name=repr(plan.name),
            )
        names.add(plan.name)
        if plan.seeds:
            found = {m.external_id for m in members.members_by_external_ids(
                session, program.id, plan.seeds
            )}  # fmt: skip
            missing = [s for s in plan.seeds if s not in found]
            if missing:
                raise field(
                    f"plans.{i}.seeds",
                    N_("unknown members: %(ids)s"),
                    ids=", ".join(missing[:10]),
                )
    if request.funnel is not None and any(not 0 < r <= 1 for r in request.funnel):
        raise field("funnel", N_("every step conversion rate must be in (0, 1]"))
    if request.target or request.consented_only or request.active_only:
        # the job would only fail on them, and retry: check the audience now
        pg = load_graph(session, program)
        if request.target:
            target_members(pg, request.target)
        _candidates(pg, request.consented_only, request.active_only)
    payload = request.model_dump(mode="json")
    return jobs.enqueue(session, "influence.simulate", payload, program_id=program.id)


def neighbourhood(
    session: Session,
    program: Any,
    member: str,
    limit: int = 60,
    *,
    now: datetime | None = None,
    half_life_days: float = 90.0,
) -> dict[str, Any]:
    """A leader's 1-hop neighbourhood for the graph view: nodes and weighted links.

    Keeps the ``limit`` strongest neighbours (by edge weight, either direction). The
    same as on the program graph (:func:`.program.program_graph`), read from the edges
    that touch the member only; a node's ``out_degree`` is its out-degree in the whole
    graph, read for the shown nodes only.
    """
    from budding.members import service as members

    found = members.get_member_or_none(session, program.id, member)
    if found is None or found.erased_at is not None:  # erased members are not nodes
        raise field("member", f"no member {member!r} in the graph")
    v = found.id
    now = now or datetime.now(UTC)
    rows = _edge_rows(session, program, now, half_life_days, member=v)
    live = members.live_member_ids(session, program.id, {x for a, b, _, _ in rows for x in (a, b)})
    # As program_graph: a pair's referral and interaction weights summed (in that order,
    # float64), kept as float32; nodes in member id order.
    out: dict[int, float] = {}
    into: dict[int, float] = {}
    for a, b, w, _ in rows:
        if a != b and a in live and b in live:
            if a == v:
                out[b] = out.get(b, 0.0) + w
            else:
                into[a] = into.get(a, 0.0) + w
    weights: dict[int, float] = {}
    links: list[tuple[int, int, float]] = []
    for pairs, outgoing in ((out, True), (into, False)):
        for u in sorted(pairs):
            w = float(np.float32(pairs[u]))
            weights[u] = weights.get(u, 0.0) + w
            links.append((v, u, w) if outgoing else (u, v, w))
    keep = sorted({v} | {u for u, _ in sorted(weights.items(), key=lambda x: -x[1])[:limit]})
    shown = members.get_members_by_ids(session, keep)
    index = {i: shown[i].external_id for i in keep}
    # out-degrees in the whole graph: the shown nodes' distinct live targets
    pairs_out = {(a, b) for a, b, _, _ in _edge_rows(
        session, program, now, half_life_days, sources=keep
    ) if a != b}  # fmt: skip
    live |= members.live_member_ids(session, program.id, {b for _, b in pairs_out} - live)
    degree = Counter(a for a, b in pairs_out if b in live)
    return {
        "center": found.external_id,
        "nodes": [
            {"id": index[i], "name": shown[i].name or "", "out_degree": degree[i]} for i in keep
        ],
        "links": [
            {"source": index[a], "target": index[b], "weight": round(w, 4)}
            for a, b, w in links
            if a in keep and b in keep
        ],
        "more": max(0, len(weights) - limit),
    }


def _edge_rows(
    session: Session,
    program: Any,
    now: datetime,
    half_life_days: float,
    *,
    member: int | None = None,
    sources: list[int] | None = None,
) -> list[tuple[int, int, float, int]]:
    """The program graph's summed edge rows, referrals then interactions (as
    :func:`.program.program_graph` reads them), restricted to those ``member`` is in or
    to those from ``sources``; erased members' ids included."""
    from budding.members import service as members
    from budding.referrals import service as referrals

    return referrals.referral_weights(
        session, program, now=now, half_life_days=half_life_days, member=member, sources=sources
    ).tolist() + members.interaction_weights(
        session, program.id, now=now, half_life_days=half_life_days, member=member,
        sources=sources,
    ).tolist()  # fmt: skip
