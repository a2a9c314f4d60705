"""The share funnel and the measured launch cost of each channel.

A *share session* is one opening of the share kit (``share_opened`` with a ``share_id``).
Within it a member picks channels (``channel_chosen``) and shares (``share_sent``: the
message left the kit — handed to the app with the text prefilled, copied, or mailed by
Budding). Referral links carry the channel (``?ch=``), so clicks, signups and conversions
are counted per channel too: clicks from the referrals capability's click log of ``/r/{code}``
plus any ``link_click`` events sent through the API (links served elsewhere); signups and
conversions from the referrals capability's attribution.

Per channel, for the sessions opened in the date range:

- ``share_rate`` = sessions with a share sent on the channel / sessions opened;
- ``median_seconds`` = median of (first send on the channel - opening) over those sessions;
- ``median_steps`` = median count of recorded steps from the opening up to that send
  (1 opening + every pick + every send before it, on any channel);
- steps can arrive out of order (client clocks, offline queues), so a send is timed from
  the latest opening of its session at or before it; a send stamped before every opening
  of its session counts as a send (``sent``, ``sessions_sent``, share rate) but has no
  duration, and the channel's first send after an opening is timed instead — durations
  are never negative. A send whose share was never opened counts in ``sent`` only;
- ``click_through`` = clicks / shares sent, ``signup_rate`` = signups / clicks,
  ``conversion_rate`` = conversions / signups — each counted by its own date in the range
  (conversions: of the range's signups, converted by the end of the range).

The cheapest channel is the one with the lowest median seconds among channels with at
least ``MIN_TIMED`` timed sends.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from budding.core.errors import field
from budding.core.i18n import gettext
from budding.programs.models import Program
from budding.sharing import channels as ch
from budding.sharing import sources
from budding.sharing.models import ShareStep
from budding.sharing.schemas import (
    ChannelFunnel,
    FunnelComparison,
    FunnelDelta,
    FunnelReport,
)

MIN_TIMED = 3
CHUNK = 500


@dataclass(frozen=True)
class Step:
    id: int
    type: str
    channel: str | None
    share_id: str | None
    occurred_at: datetime


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _median(values: list[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def _in(at: datetime, since: datetime | None, until: datetime | None) -> bool:
    return (since is None or at >= since) and (until is None or at < until)


def check_range(since: datetime | None, until: datetime | None, prefix: str = "") -> None:
    for name, value in ((f"{prefix}since", since), (f"{prefix}until", until)):
        if value is not None and value.tzinfo is None:
            raise field(name, "must carry a time zone (e.g. 2025-01-31T00:00:00Z)")
    if since and until and since >= until:
        raise field(f"{prefix}until", "must be after since")


def load_steps(
    session: Session, program: Program, since: datetime | None, until: datetime | None
) -> tuple[list[Step], dict[str, list[Step]]]:
    """Steps in the range, and every step of the share sessions they belong to."""
    stmt = select(
        ShareStep.id, ShareStep.type, ShareStep.channel, ShareStep.share_id, ShareStep.occurred_at
    ).where(ShareStep.program_id == program.id)
    if since is not None:
        stmt = stmt.where(ShareStep.occurred_at >= since)
    if until is not None:
        stmt = stmt.where(ShareStep.occurred_at < until)
    in_range = [Step(*row) for row in session.execute(stmt.order_by(ShareStep.occurred_at))]
    share_ids = sorted({s.share_id for s in in_range if s.share_id})
    sessions: dict[str, list[Step]] = defaultdict(list)
    for i in range(0, len(share_ids), CHUNK):
        chunk = share_ids[i : i + CHUNK]
        rows = session.execute(
            select(
                ShareStep.id,
                ShareStep.type,
                ShareStep.channel,
                ShareStep.share_id,
                ShareStep.occurred_at,
            ).where(ShareStep.program_id == program.id, ShareStep.share_id.in_(chunk))
        )
        for row in rows:
            step = Step(*row)
            sessions[step.share_id or ""].append(step)
    for steps in sessions.values():
        # An opening goes first among steps of the same instant: a send stamped with its
        # opening's time is timed (0 s), whichever was stored first.
        steps.sort(key=lambda s: (s.occurred_at, s.type != "share_opened", s.id))
    return in_range, sessions


def _seconds_between(steps: list[Step], start: int, end: int) -> float:
    return (steps[end].occurred_at - steps[start].occurred_at).total_seconds()


def _label(key: str) -> str:
    channel = ch.BY_KEY.get(key)
    return gettext(channel.label) if channel else key


def launch_cost(
    session: Session,
    program: Program,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    edges: list[sources.Edge] | None = None,
) -> FunnelReport:
    """Per channel: launch cost (steps, median seconds to send), share rate,
    click-through, signups and conversions in ``[since, until)``."""
    check_range(since, until)
    in_range, sessions = load_steps(session, program, since, until)
    if edges is None:
        try:
            edges = sources.referral_edges(session, program)
        except sources.ReferralsUnavailable:
            edges = []

    opened_ids = {s.share_id for s in in_range if s.type == "share_opened" and s.share_id}
    chosen: dict[str, set[str]] = defaultdict(set)
    sent: dict[str, int] = defaultdict(int)
    clicks: dict[str, int] = defaultdict(int)
    for s in in_range:
        key = s.channel or "unknown"
        if s.type == "channel_chosen" and s.share_id:
            chosen[key].add(s.share_id)
        elif s.type == "share_sent":
            sent[key] += 1
        elif s.type == "link_click":
            clicks[key] += 1

    sessions_sent: dict[str, int] = defaultdict(int)
    seconds: dict[str, list[float]] = defaultdict(list)
    steps_taken: dict[str, list[float]] = defaultdict(list)
    overall_seconds: list[float] = []
    any_sent = 0
    for share_id in opened_ids:
        steps = sessions.get(share_id, [])
        sent_on: set[str] = set()
        # channel -> (index of the opening, index of the send): the first send on the
        # channel that has an opening at or before it, timed from the latest such opening.
        timed_send: dict[str, tuple[int, int]] = {}
        opening: int | None = None
        for index, s in enumerate(steps):
            if s.type == "share_opened":
                opening = index
            elif s.type == "share_sent" and s.channel:
                sent_on.add(s.channel)
                if opening is not None and s.channel not in timed_send:
                    timed_send[s.channel] = (opening, index)
        if sent_on:
            any_sent += 1
        for channel in sent_on:
            sessions_sent[channel] += 1
        if timed_send:
            first = min(timed_send.values(), key=lambda pair: pair[1])
            overall_seconds.append(_seconds_between(steps, *first))
        for channel, (start, index) in timed_send.items():
            seconds[channel].append(_seconds_between(steps, start, index))
            steps_taken[channel].append(
                float(sum(1 for s in steps[start : index + 1] if s.type != "link_click"))
            )

    logged = sources.click_counts(session, program, since, until)
    for logged_channel, n in (logged or {}).items():
        clicks[logged_channel or "unknown"] += n
    has_events = any(s.type == "link_click" for s in in_range)
    has_log = bool(logged and any(logged.values()))
    clicks_source = {
        (True, True): "referrals and events",
        (True, False): "referrals",
        (False, True): "events",
    }.get((has_log, has_events), "none")

    signups: dict[str, int] = defaultdict(int)
    conversions: dict[str, int] = defaultdict(int)
    for e in edges:
        if not _in(e.signed_up_at, since, until):
            continue
        key = e.channel or "unknown"
        signups[key] += 1
        if e.converted_at is not None and (until is None or e.converted_at < until):
            conversions[key] += 1

    from budding.sharing.service import settings_of

    seen = set(chosen) | set(sent) | set(clicks) | set(signups)
    keys = [c.key for c in ch.CHANNELS if c.key in settings_of(program).channels or c.key in seen]
    keys += sorted(seen - set(keys))
    rows: list[ChannelFunnel] = []
    for key in keys:
        designed = ch.BY_KEY[key].steps if key in ch.BY_KEY else 0
        rows.append(
            ChannelFunnel(
                channel=key,
                label=_label(key),
                designed_steps=designed,
                chosen=len(chosen.get(key, ())),
                sessions_sent=sessions_sent.get(key, 0),
                sent=sent.get(key, 0),
                share_rate=_ratio(sessions_sent.get(key, 0), len(opened_ids)),
                median_seconds=_median(seconds.get(key, [])),
                median_steps=_median(steps_taken.get(key, [])),
                timed=len(seconds.get(key, [])),
                clicks=clicks.get(key, 0),
                click_through=_ratio(clicks.get(key, 0), sent.get(key, 0)),
                signups=signups.get(key, 0),
                signup_rate=_ratio(signups.get(key, 0), clicks.get(key, 0)),
                conversions=conversions.get(key, 0),
                conversion_rate=_ratio(conversions.get(key, 0), signups.get(key, 0)),
            )
        )
    timed = [r for r in rows if r.timed >= MIN_TIMED and r.median_seconds is not None]
    cheapest = (
        min(timed, key=lambda r: (r.median_seconds, r.designed_steps, r.channel)) if timed else None
    )
    return FunnelReport(
        since=since,
        until=until,
        opened=len(opened_ids),
        sessions_sent=any_sent,
        share_rate=_ratio(any_sent, len(opened_ids)),
        median_seconds=_median(overall_seconds),
        channels=rows,
        cheapest=cheapest.channel if cheapest else None,
        clicks_source=clicks_source,
    )


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else b - a


def compare(
    session: Session,
    program: Program,
    before: tuple[datetime | None, datetime | None],
    after: tuple[datetime | None, datetime | None],
) -> FunnelComparison:
    """What a change did: the funnel of two date ranges, and after minus before."""
    check_range(*before, prefix="before_")
    check_range(*after, prefix="after_")
    try:
        edges = sources.referral_edges(session, program)
    except sources.ReferralsUnavailable:
        edges = []
    a = launch_cost(session, program, *before, edges=edges)
    b = launch_cost(session, program, *after, edges=edges)
    by_key = {r.channel: r for r in a.channels}
    deltas = [
        FunnelDelta(
            channel="all",
            share_rate=_diff(a.share_rate, b.share_rate),
            median_seconds=_diff(a.median_seconds, b.median_seconds),
            click_through=None,
            signup_rate=None,
            conversion_rate=None,
        )
    ]
    for r in b.channels:
        old = by_key.get(r.channel)
        if old is None:
            continue
        deltas.append(
            FunnelDelta(
                channel=r.channel,
                share_rate=_diff(old.share_rate, r.share_rate),
                median_seconds=_diff(old.median_seconds, r.median_seconds),
                click_through=_diff(old.click_through, r.click_through),
                signup_rate=_diff(old.signup_rate, r.signup_rate),
                conversion_rate=_diff(old.conversion_rate, r.conversion_rate),
            )
        )
    return FunnelComparison(before=a, after=b, deltas=deltas)
