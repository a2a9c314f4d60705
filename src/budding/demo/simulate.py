"""The demo community's story, simulated in memory: who joins when, through whom, and what
they do. No database here; ``build.py`` stores the result through the service functions.

The model, chosen so the dashboards have something true to show:

* **Activity is heavy-tailed.** Each member draws a relative activity ``w``
  from a lognormal with mean 1 (σ = 1): most members visit now and then, a few
  are there every day. Sessions arrive as a Poisson process at ``0.22·w`` per
  day, front-loaded after signup (the honeymoon), and everything a member
  does (likes, comments, shares, purchases) scales with it.
* **Word of mouth is a branching process.** Marketing brings the roots, more
  of them as the program grows (signup times ~ Beta(1.6, 1) over the window).
  Each member then brings ``Poisson(R·d^g·w)`` friends, ``R = 0.8``, decay
  ``d = 0.85`` per generation ``g``, so the mean offspring stays below 1
  (every tree dies out) while high-activity members become the few
  super-spreaders that real referral programs see (a Galton–Watson process
  with a lognormal–Poisson offspring law). A friend joins a Gamma(2, 5)-day
  delay (mean 10 days) after the referrer; friends who would join after
  today have not joined yet. Friends mostly share the referrer's language.
* **Members go quiet.** Each has a Weibull(0.8) lifetime (scale 75 days, longer
  for active members); 21 days after their last session a ``churn`` event
  marks them as gone.
* **Interactions have targets.** Likes, comments, replies, mentions, shares
  to a person and clicks on shared links point at another member, chosen
  among friends (referrer and referred) a third of the time and otherwise in
  proportion to activity (popular members get more attention).

Deterministic: the same seed, size and window give the same members, forest
and events (event ids included); only the absolute times move with ``end``.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from budding.demo.community import Purchase, Share
from budding.demo.names import (
    EMAIL_DOMAINS,
    LOCALE_SHARES,
    LOCALES,
    MARKETING_CHANNELS,
    person_name,
    pick,
)
from budding.members.schemas import BUILTIN_EVENT_TYPES

R0 = 0.8  # mean offspring of an average member in the first generation
GENERATION_DECAY = 0.85
ACTIVITY_SIGMA = 1.0
SESSIONS_PER_DAY = 0.22
REFERRAL_DELAY = (2.0, 5.0)  # Gamma shape, scale in days
QUIET_DAYS = 21
PAGES = ("/", "/feed", "/shop", "/shop/beans", "/rewards", "/invite", "/community", "/account")
LOGIN_METHODS = (("password", 3.0), ("magic_link", 2.0), ("google", 2.0), ("apple", 1.0))
SHARED_CONTENT = (("product", 3.0), ("post", 2.0), ("invite", 2.0), ("review", 1.0))
TAGS = ("brewing", "beans", "gear", "latte-art", "cold-brew", "subscription")


@dataclass
class MemberSpec:
    """One member as the members service will store it."""

    external_id: str
    name: str
    email: str | None
    locale: str
    signup_at: datetime
    marketing_consent: bool
    attributes: dict[str, Any]


@dataclass
class Simulation:
    """Everything the builder stores, plus what ``Community`` tells the capabilities."""

    start: datetime
    end: datetime
    members: list[MemberSpec]
    parent: np.ndarray
    generation: np.ndarray
    activity: np.ndarray
    channel: list[str]
    invited_at: list[datetime | None]
    churned_at: list[datetime | None]
    events: list[dict[str, Any]]  # oldest first, ready for ``ingest_events``
    purchases: list[Purchase] = field(default_factory=list)
    shares: list[Share] = field(default_factory=list)


def grow_forest(
    rng: np.random.Generator, n: int, days: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Signup day, parent, generation and activity of ``n`` members, in signup order.

    Roots arrive until ``n`` members exist; each root's tree is grown
    breadth-first, so stopping at ``n`` never leaves an orphan.
    """
    t: list[float] = []
    parent: list[int] = []
    gen: list[int] = []
    act: list[float] = []
    mu = -(ACTIVITY_SIGMA**2) / 2  # lognormal with mean 1

    def add(at: float, p: int, g: int) -> int:
        t.append(at)
        parent.append(p)
        gen.append(g)
        act.append(float(rng.lognormal(mu, ACTIVITY_SIGMA)))
        return len(t) - 1

    while len(t) < n:
        todo = deque([add(days * float(rng.beta(1.6, 1.0)), -1, 0)])
        while todo and len(t) < n:
            k = todo.popleft()
            mean = R0 * GENERATION_DECAY ** gen[k] * act[k]
            for _ in range(int(rng.poisson(mean))):
                at = t[k] + float(rng.gamma(*REFERRAL_DELAY))
                if at < days and len(t) < n:
                    todo.append(add(at, k, gen[k] + 1))
    order = np.argsort(np.array(t), kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    parents = np.array(parent, dtype=np.int64)[order]
    parents = np.where(parents >= 0, rank[np.maximum(parents, 0)], -1)
    return (
        np.array(t)[order],
        parents,
        np.array(gen, dtype=np.int64)[order],
        np.array(act)[order],
    )


class _Story:
    """Writes the events of one simulation; holds the state the helpers share."""

    def __init__(
        self,
        rng: np.random.Generator,
        seed: int,
        start: datetime,
        days: float,
        t: np.ndarray,
        parent: np.ndarray,
        activity: np.ndarray,
        external_ids: list[str],
        locales: list[str],
    ) -> None:
        self.rng = rng
        self.seed = seed
        self.start = start
        self.days = days
        self.t = t
        self.parent = parent
        self.activity = activity
        self.ids = external_ids
        self.locales = locales
        self.cum_activity = np.cumsum(activity)
        self.friends: list[list[int]] = [[] for _ in range(len(t))]
        for child, p in enumerate(parent.tolist()):
            if p >= 0:
                self.friends[child].append(p)
                self.friends[p].append(child)
        self.counter = 0
        self.events: list[tuple[float, int, dict[str, Any]]] = []
        self.purchases: list[Purchase] = []
        self.shares: list[Share] = []

    def at(self, day: float) -> datetime:
        return self.start + timedelta(seconds=round(day * 86400))

    def emit(
        self,
        day: float,
        type_: str,
        member: int,
        target: int | None = None,
        **properties: Any,
    ) -> str:
        """Queue one event; returns its id (deterministic: seed and creation order)."""
        self.counter += 1
        event_id = f"demo-{self.seed}-{self.counter:07d}"
        event: dict[str, Any] = {
            "id": event_id,
            "type": type_,
            "member": self.ids[member],
            "occurred_at": self.at(day),
            "properties": properties,
        }
        if target is not None:
            event["target"] = self.ids[target]
        self.events.append((day, self.counter, event))
        return event_id

    def target(self, member: int, day: float) -> int | None:
        """Another member who had joined by ``day``: a friend a third of the time, else
        someone drawn in proportion to activity."""
        rng = self.rng
        if rng.random() < 0.35:
            near = [f for f in self.friends[member] if self.t[f] <= day]
            if near:
                return near[int(rng.integers(len(near)))]
        joined = int(np.searchsorted(self.t, day, side="right"))
        if joined < 2:
            return None
        for _ in range(3):
            u = rng.random() * self.cum_activity[joined - 1]
            other = min(int(np.searchsorted(self.cum_activity, u, side="right")), joined - 1)
            if other != member:
                return other
        return None

    def purchase(self, member: int, day: float, refund_rate: float = 0.07) -> None:
        data = LOCALES[self.locales[member]]
        raw = float(np.round(self.rng.lognormal(math.log(data.price), 0.45), data.decimals))
        amount: float = round(raw, data.decimals) if data.decimals > 0 else int(raw)
        amount = max(amount, 10 ** max(-data.decimals, 0))  # never a free order
        order_id = f"ord-{self.seed}-{self.counter + 1:07d}"
        items = int(1 + self.rng.poisson(0.6))
        event_id = self.emit(
            day,
            "purchase",
            member,
            amount=amount,
            currency=data.currency,
            order_id=order_id,
            items=items,
        )
        refunded_at: datetime | None = None
        refund_id: str | None = None
        if self.rng.random() < refund_rate:
            when = day + float(self.rng.gamma(2.0, 2.0))
            if when < self.days:
                reason = ("damaged", "wrong_item", "changed_mind", "late_delivery")
                refund_id = self.emit(
                    when,
                    "refund",
                    member,
                    amount=amount,
                    currency=data.currency,
                    order_id=order_id,
                    reason=reason[int(self.rng.integers(len(reason)))],
                )
                refunded_at = self.at(when)
        self.purchases.append(
            Purchase(
                member=member,
                at=self.at(day),
                amount=amount,
                currency=data.currency,
                order_id=order_id,
                event_id=event_id,
                refunded_at=refunded_at,
                refund_event_id=refund_id,
            )
        )

    def share(self, member: int, day: float) -> None:
        rng = self.rng
        channel = pick(rng, LOCALES[self.locales[member]].share_channels)
        to_person = self.target(member, day) if rng.random() < 0.3 else None
        event_id = self.emit(
            day,
            "share",
            member,
            to_person,
            channel=channel,
            content=pick(rng, SHARED_CONTENT),
        )
        clickers: list[int] = []
        candidates: list[tuple[int | None, float]] = []
        if to_person is not None:
            if rng.random() < 0.6:
                candidates.append((to_person, day + float(rng.exponential(0.3))))
        else:
            for _ in range(int(rng.poisson(1.3))):
                when = day + float(rng.exponential(0.3))
                candidates.append((self.target(member, when), when))
        for other, when in candidates:
            if other is not None and other not in clickers and when < self.days:
                clickers.append(other)
                self.emit(when, "click", other, member, channel=channel, share=event_id)
        self.shares.append(
            Share(
                member=member,
                at=self.at(day),
                channel=channel,
                event_id=event_id,
                target=to_person,
                clicks=tuple(clickers),
            )
        )

    def session(self, member: int, day: float) -> None:
        """One visit to the community: pages, reactions, maybe a post, a share or an order."""
        rng = self.rng
        w = float(self.activity[member])
        locale = self.locales[member]
        minute = 1 / 1440
        if rng.random() < 0.3:
            self.emit(day, "login", member, method=pick(rng, LOGIN_METHODS))
        for k in range(int(rng.geometric(0.45))):
            self.emit(
                day + k * 2 * minute,
                "visit",
                member,
                page=PAGES[int(rng.integers(len(PAGES)))],
                seconds=int(rng.exponential(70)) + 3,
            )
        later = day + 5 * minute
        for _ in range(int(rng.poisson(0.7))):
            other = self.target(member, later)
            if other is not None:
                self.emit(later, "like", member, other, on="post")
        for type_, p in (("comment", 0.18), ("reply", 0.10), ("mention", 0.05)):
            if rng.random() < p:
                other = self.target(member, later)
                if other is not None:
                    text = int(rng.lognormal(4.0, 0.8))
                    self.emit(later + minute, type_, member, other, length=text)
        if rng.random() < 0.06 * min(w, 3.0):
            titles = LOCALES[locale].post_titles
            self.emit(
                later + 3 * minute,
                "post",
                member,
                title=titles[int(rng.integers(len(titles)))],
                tags=[TAGS[int(rng.integers(len(TAGS)))]],
            )
        if rng.random() < 0.05 * min(w, 4.0) ** 0.7:
            self.share(member, later + 4 * minute)
        if rng.random() < 0.05 * min(w, 4.0) ** 0.5:
            self.purchase(member, later + 6 * minute)

    def ordered_events(self) -> list[dict[str, Any]]:
        self.events.sort(key=lambda e: (e[0], e[1]))
        return [e for _, _, e in self.events]


def simulate(n: int, days: int, seed: int, end: datetime) -> Simulation:
    """The demo community of ``n`` members over the ``days`` days before ``end``."""
    if n < 1:
        raise ValueError("a community needs at least one member")
    if days < 1:
        raise ValueError("the history needs at least one day")
    rng = np.random.default_rng(seed)
    start = end - timedelta(days=days)
    t, parent, generation, activity = grow_forest(rng, n, float(days))
    width = max(5, len(str(n)))
    external_ids = [f"u{i + 1:0{width}d}" for i in range(n)]

    locales: list[str] = []
    channel: list[str] = []
    locale_names = list(LOCALE_SHARES)
    shares = np.array(list(LOCALE_SHARES.values()))
    for i in range(n):
        p = int(parent[i])
        if p >= 0 and rng.random() < 0.85:  # word of mouth stays within a language, mostly
            locales.append(locales[p])
        else:
            locales.append(locale_names[int(rng.choice(len(locale_names), p=shares))])
        data = LOCALES[locales[i]]
        channel.append(pick(rng, data.share_channels) if p >= 0 else pick(rng, MARKETING_CHANNELS))

    members: list[MemberSpec] = []
    used: dict[str, int] = {}
    consent = np.zeros(n, dtype=bool)
    for i in range(n):
        name, stem = person_name(rng, locales[i])
        email = None
        if rng.random() < 0.92:
            count = used.get(stem, 0)
            used[stem] = count + 1
            local = stem if count == 0 else f"{stem}{count + 1}"
            email = f"{local}@{EMAIL_DOMAINS[int(rng.integers(len(EMAIL_DOMAINS)))]}"
        consent[i] = rng.random() < (0.55 if parent[i] >= 0 else 0.35)
        w = float(activity[i])
        plan = "pro" if w > 2.5 else "plus" if w > 0.9 else "free"
        data = LOCALES[locales[i]]
        members.append(
            MemberSpec(
                external_id=external_ids[i],
                name=name,
                email=email,
                locale=locales[i],
                signup_at=start + timedelta(seconds=round(float(t[i]) * 86400)),
                marketing_consent=bool(consent[i]),
                attributes={
                    "city": data.cities[int(rng.integers(len(data.cities)))],
                    "plan": plan,
                    "acquisition": "referral" if parent[i] >= 0 else "marketing",
                    "channel": channel[i],
                },
            )
        )

    story = _Story(rng, seed, start, float(days), t, parent, activity, external_ids, locales)
    invited_at: list[datetime | None] = [None] * n
    churned_at: list[datetime | None] = [None] * n
    last_active = np.zeros(n)
    for i in range(n):
        day = float(t[i])
        p = int(parent[i])
        w = float(activity[i])
        if p >= 0:
            sent = day - float(rng.gamma(1.2, 1.0))
            if sent <= t[p]:
                sent = float(t[p]) + (day - float(t[p])) / 2
            invited_at[i] = story.at(sent)
            story.emit(sent, "invite_sent", p, i, channel=channel[i])
            clicked = max(sent, day - float(rng.uniform(2, 30)) / 1440)
            story.emit(clicked, "click", i, p, channel=channel[i], link="invite")
            story.emit(
                day, "signup", i, source="referral", channel=channel[i], referrer=story.ids[p]
            )
        else:
            story.emit(day, "signup", i, source="marketing", channel=channel[i])
        lifetime = float(rng.weibull(0.8)) * 75.0 * w**0.4
        stop = min(day + lifetime, float(days))
        span = max(stop - day, 0.0)
        sessions = int(rng.poisson(min(SESSIONS_PER_DAY * w, 6.0) * span))
        times = np.sort(day + span * rng.random(sessions) ** 1.4)  # front-loaded
        for s in times.tolist():
            story.session(i, s)
        last_active[i] = times[-1] if sessions else day
        for _ in range(int(rng.poisson(0.4 * min(w, 5.0)))):  # invites nobody accepted
            sent = day + span * float(rng.random())
            story.emit(
                sent, "invite_sent", i, channel=pick(rng, LOCALES[locales[i]].share_channels)
            )
        if span > 1 and rng.random() < 0.3:
            when = day + span * float(rng.uniform(0.2, 1.0))
            score = int(np.clip(round(rng.normal(6.5 + 1.3 * math.log(w), 1.8)), 0, 10))
            story.emit(when, "survey_response", i, survey="nps", score=score)
        quiet = float(last_active[i]) + QUIET_DAYS
        if day + lifetime < days and quiet < days:
            churned_at[i] = story.at(quiet)
            story.emit(
                quiet,
                "churn",
                i,
                reason=f"inactive_{QUIET_DAYS}_days",
                last_active_at=story.at(float(last_active[i])).isoformat(),
            )
    _cover_every_type(story, last_active, churned_at)
    return Simulation(
        start=start,
        end=end,
        members=members,
        parent=parent,
        generation=generation,
        activity=activity,
        channel=channel,
        invited_at=invited_at,
        churned_at=churned_at,
        events=story.ordered_events(),
        purchases=story.purchases,
        shares=story.shares,
    )


def _cover_every_type(
    story: _Story, last_active: np.ndarray, churned_at: list[datetime | None]
) -> None:
    """A small community (a test's 150 members over 30 days) may by chance have no refund
    or no churn; add one plausible event of each missing built-in type so every page of the
    demo has something to show."""
    present = {e["type"] for _, _, e in story.events}
    busiest = int(np.argmax(story.activity))
    late = story.days - 1.0 if story.days > 1 else story.days / 2
    day = max(float(story.t[busiest]), late)
    for type_ in BUILTIN_EVENT_TYPES:
        if type_ in present:
            continue
        if type_ == "refund" and story.purchases:
            first = story.purchases[0]
            when = min((first.at - story.start).total_seconds() / 86400 + 2, story.days - 1e-3)
            refund_id = story.emit(
                when,
                "refund",
                first.member,
                amount=first.amount,
                currency=first.currency,
                order_id=first.order_id,
                reason="changed_mind",
            )
            story.purchases[0] = replace(
                first, refunded_at=story.at(when), refund_event_id=refund_id
            )
            continue
        if type_ == "churn":
            quiet = [i for i in range(len(story.t)) if churned_at[i] is None and i != busiest]
            if quiet:
                i = min(quiet, key=lambda k: float(last_active[k]))
                when = min(float(last_active[i]) + QUIET_DAYS, story.days - 1e-3)
                churned_at[i] = story.at(when)
                story.emit(when, "churn", i, reason=f"inactive_{QUIET_DAYS}_days")
                continue
        if type_ == "purchase":
            story.purchase(busiest, day, refund_rate=0.0)
        elif type_ == "share":
            story.share(busiest, day)
        else:
            other = story.target(busiest, day)
            props: dict[str, Any] = (
                {"survey": "nps", "score": 9} if type_ == "survey_response" else {}
            )
            story.emit(day, type_, busiest, other if type_ in _TARGETED else None, **props)


_TARGETED = frozenset({"like", "comment", "reply", "mention", "click", "invite_sent"})
