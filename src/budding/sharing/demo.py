"""The share funnel of the demo community: every share and invitation in the community's
story gets its share session (opened, channel chosen, sent), with a believable launch
cost per channel; some members open the kit and leave, some hesitate between channels,
some give up, some copy the link to paste it themselves (the cheapest channel); clicks on
shared links become ``link_click`` events.

Halfway through the demo period the kit "gets better" (one-tap buttons): the seconds to
share drop and fewer members give up, so the dashboard's before/after comparison has a
change to show.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from budding.members import events as member_events
from budding.programs.models import Program
from budding.sharing import channels as ch
from budding.sharing import sources

# Median seconds from opening the kit to the share leaving it, and the share of members
# who pick the channel but give up (before the improvement).
CHANNEL_COST: dict[str, tuple[float, float]] = {
    "copy_link": (7.0, 0.06),
    "whatsapp": (11.0, 0.10),
    "kakaotalk": (10.0, 0.09),
    "line": (12.0, 0.11),
    "wechat": (24.0, 0.22),
    "telegram": (13.0, 0.12),
    "x": (19.0, 0.20),
    "facebook": (21.0, 0.24),
    "linkedin": (28.0, 0.30),
    "weibo": (25.0, 0.22),
    "qq": (17.0, 0.15),
    "email": (42.0, 0.33),
    "tell_a_friend": (55.0, 0.28),
    "native": (15.0, 0.14),
}
OPEN_ONLY = 0.35  # sessions opened without choosing anything (a look, no share)
COPY_LINK = 0.2  # more sessions in which the member copies the link to paste it themselves
COPY_CLICKS = 1.2  # mean clicks on such a pasted link
HESITATE = 0.18  # sessions where a first channel is picked, then another
IMPROVEMENT = 0.7  # after the midpoint: seconds x0.7, giving up x0.6
BATCH = 1000


def _channel(name: str) -> str:
    return name if name in ch.BY_KEY else "copy_link"


def _seconds(rng: np.random.Generator, median: float) -> float:
    return float(median * math.exp(rng.normal(0.0, 0.55)))


def contribute(
    session: Session, program: Program, community: Any, rng: np.random.Generator
) -> None:
    """Add share-funnel events for the community's shares and invitations."""
    midpoint = community.start + (community.end - community.start) / 2
    events: list[dict[str, Any]] = []
    counter = 0

    def add(kind: str, member: int, at: datetime, **props: Any) -> None:
        nonlocal counter
        counter += 1
        events.append(
            {
                "id": f"demo.sharing.{counter}",
                "type": kind,
                "member": community.external_ids[member],
                "occurred_at": min(at, community.end),
                "properties": {k: v for k, v in props.items() if v is not None},
            }
        )

    def session_for(member: int, sent_at: datetime, channel: str, sent: bool = True) -> bool:
        median, give_up = CHANNEL_COST.get(channel, (20.0, 0.2))
        if sent_at >= midpoint:
            median, give_up = median * IMPROVEMENT, give_up * 0.6
        seconds = _seconds(rng, median)
        opened = sent_at - timedelta(seconds=seconds)
        share_id = f"demo{community.seed}s{counter}x{member}"
        add("share_opened", member, opened, share_id=share_id, surface="demo")
        if rng.random() < HESITATE:
            other = str(rng.choice(list(CHANNEL_COST)))
            add(
                "channel_chosen",
                member,
                opened + timedelta(seconds=seconds * 0.3),
                share_id=share_id,
                channel=other,
                surface="demo",
            )
        add(
            "channel_chosen",
            member,
            opened + timedelta(seconds=seconds * 0.6),
            share_id=share_id,
            channel=channel,
            surface="demo",
        )
        if sent and rng.random() >= give_up:
            add("share_sent", member, sent_at, share_id=share_id, channel=channel, surface="demo")
            return True
        return False

    # Clicks: as link_click events, unless the referrals capability's demo already logged
    # clicks on /r/ links (the funnel adds both sources up).
    logged = sources.click_counts(session, program, None, None)
    with_clicks = not (logged and any(logged.values()))
    shares = list(getattr(community, "shares", []) or [])
    covered: set[tuple[int, int]] = set()
    for share in shares:
        channel = _channel(share.channel)
        session_for(share.member, share.at, channel)
        if share.target is not None:
            covered.add((share.member, share.target))
        for n, clicker in enumerate(share.clicks if with_clicks else ()):
            at = share.at + timedelta(minutes=float(rng.exponential(90.0)) + n)
            add(
                "link_click",
                share.member,
                at,
                channel=channel,
                clicker=community.external_ids[clicker],
            )
    # Invitations of referred members that the story has no share for.
    for parent, child in community.referrals():
        if (parent, child) in covered:
            continue
        at = community.invited_at[child] or community.signup_at[child] - timedelta(hours=6)
        channel = _channel(community.channel[child])
        session_for(parent, at, channel)
        if with_clicks:
            clicked = at + timedelta(minutes=float(rng.exponential(60.0)))
            add("link_click", parent, min(clicked, community.signup_at[child]), channel=channel)

    def some_time(member: int) -> datetime | None:
        """A moment between the member's joining (or the start) and the end."""
        joined = max(community.signup_at[member], community.start)
        span = (community.end - joined).total_seconds()
        if span <= 0:
            return None
        return joined + timedelta(seconds=float(rng.uniform(0, span)))

    # Kits opened and left: about a third of the openings.
    sessions = len(shares) + sum(1 for pair in community.referrals() if pair not in covered)
    opened_only = int(sessions * OPEN_ONLY / (1 - OPEN_ONLY))
    for _ in range(opened_only):
        member = int(rng.integers(0, community.size))
        at = some_time(member)
        if at is None:
            continue
        share_id = f"demo{community.seed}o{counter}x{member}"
        add("share_opened", member, at, share_id=share_id, surface="demo")
    # Links copied from the kit and pasted by the member into a chat, a post or a bio: the
    # story has no share event for them (its shares name the app), so their clicks are
    # link_click events here whatever the referrals demo logged (no click is counted twice).
    for _ in range(int(sessions * COPY_LINK)):
        member = int(rng.integers(0, community.size))
        at = some_time(member)
        if at is None or not session_for(member, at, "copy_link"):
            continue
        for n in range(int(rng.poisson(COPY_CLICKS))):
            clicked = at + timedelta(minutes=float(rng.exponential(120.0)) + n)
            add("link_click", member, clicked, channel="copy_link")
    events.sort(key=lambda e: e["occurred_at"])
    for i in range(0, len(events), BATCH):
        member_events.ingest_events(session, program, events[i : i + BATCH])
