"""Labelled fraud scenarios, for tests, the demo and the referrals benchmark.

``generate(seed)`` builds signups in small stories, each signup labelled with
the checks that should fire on it (an empty label: an honest signup; ``None``:
a seed account that only sets a story up and is not scored):

- honest referrals, with the confounders real programs see: a household
  sharing one IP, look-alike addresses that are different mailboxes
  (``j.doe@`` and ``jdoe@`` outside Gmail), an influencer bringing 8 friends
  in an hour, an office whose staff join from one IP, three flatmates joining
  and inviting each other in one evening, five students of one dorm doing the
  same in a day (which does look like a ring);
- self-referral by the same mailbox (case, Gmail dots and ``googlemail.com``,
  ``+tags``), by the same device, by the same IP, by the same payment method;
- disposable e-mail domains;
- velocity bursts: one referrer bringing 12-25 accounts in 40 minutes from
  rotating proxies, and 7-15 accounts from one IP in half an hour;
- referral rings: 4-8 accounts created from one network in a few hours,
  each referring the next.

``play`` runs the signups through ``assess_signup`` in time order as a real
program would (assess, create the member, ``attach``); ``evaluate_checks``
plays a generated set on a program whose every check is set to ``flag`` and
returns precision and recall per check. Precision counts a check firing on
any fraudulent signup as right (a ring member caught by the IP check is
still fraud); recall is measured on the signups labelled with that check.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from budding.core.db import utcnow
from budding.fraud import service
from budding.fraud.checks import CHECKS
from budding.fraud.models import FraudAssessment
from budding.programs.models import Program

HONEST = frozenset[str]()
FIRST_NAMES = (
    "min",
    "jiwoo",
    "seo",
    "ana",
    "lucia",
    "mateo",
    "putri",
    "budi",
    "ayu",
    "wei",
    "li",
    "fang",
    "john",
    "maria",
    "sofia",
    "dewi",
    "hyun",
    "carlos",
    "mei",
    "yuki",
)
LAST_NAMES = (
    "kim",
    "park",
    "lee",
    "garcia",
    "lopez",
    "santoso",
    "wijaya",
    "wang",
    "zhang",
    "chen",
    "smith",
    "silva",
    "rahman",
    "choi",
    "perez",
    "liu",
    "tan",
    "nguyen",
)
DOMAINS = (
    "gmail.com",
    "naver.com",
    "yahoo.com",
    "outlook.com",
    "qq.com",
    "163.com",
    "hotmail.com",
    "daum.net",
    "icloud.com",
    "yahoo.co.id",
    "example.org",
)
DISPOSABLE = (
    "mailinator.com",
    "yopmail.com",
    "guerrillamail.com",
    "10minutemail.com",
    "trashmail.com",
    "sharklasers.com",
    "temp-mail.org",
    "dispostable.com",
)


@dataclass(frozen=True)
class Signup:
    """One account creation. ``referrer`` is the ``key`` of an earlier signup."""

    key: str
    email: str
    ip: str
    device: str
    minutes: float  # from the start of the whole set
    referrer: str | None = None
    payment: str | None = None
    label: frozenset[str] | None = HONEST

    @property
    def network(self) -> str:
        """The /24 an IPv4 address belongs to: what a ring shares."""
        return self.ip.rsplit(".", 1)[0]


@dataclass
class Scenario:
    name: str
    kind: str  # "honest" or the check the story is built to trip
    signups: list[Signup] = field(default_factory=list)


class _Gen:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.n = 0

    def key(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}-{self.n}"

    def ip(self) -> str:
        r = self.rng
        return f"{r.randint(11, 223)}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"

    def ip_in(self, network: str) -> str:
        return f"{network}.{self.rng.randint(1, 254)}"

    def device(self) -> str:
        return f"dev-{self.rng.getrandbits(48):012x}"

    def card(self) -> str:
        return f"card-{self.rng.getrandbits(40):010x}"

    def email(self, domain: str | None = None) -> str:
        r = self.rng
        sep = r.choice((".", "", "_"))
        name = f"{r.choice(FIRST_NAMES)}{sep}{r.choice(LAST_NAMES)}{r.randint(1, 9999)}"
        return f"{name}@{domain or r.choice(DOMAINS)}"

    def person(
        self,
        prefix: str,
        minutes: float,
        *,
        referrer: str | None = None,
        label: frozenset[str] | None = HONEST,
        **kw: Any,
    ) -> Signup:
        values: dict[str, Any] = {
            "key": self.key(prefix),
            "email": self.email(),
            "ip": self.ip(),
            "device": self.device(),
            "minutes": minutes,
            "referrer": referrer,
            "payment": self.card() if self.rng.random() < 0.5 else None,
            "label": label,
        }
        values.update(kw)
        return Signup(**values)


# --- the stories ---------------------------------------------------------------------


def _honest(g: _Gen, t: float) -> Scenario:
    s = Scenario("honest referral", "honest")
    referrer = g.person("member", t)
    s.signups.append(referrer)
    for _ in range(g.rng.randint(1, 3)):
        s.signups.append(
            g.person("friend", t + g.rng.uniform(60, 14 * 1440), referrer=referrer.key)
        )
    return s


def _household(g: _Gen, t: float) -> Scenario:
    s = Scenario("household sharing one IP", "honest")
    referrer = g.person("parent", t)
    s.signups += [
        referrer,
        g.person(
            "partner", t + g.rng.uniform(2 * 1440, 20 * 1440), referrer=referrer.key, ip=referrer.ip
        ),
    ]
    return s


def _lookalike(g: _Gen, t: float) -> Scenario:
    s = Scenario("look-alike addresses, different mailboxes", "honest")
    domain = g.rng.choice(("example.org", "naver.com", "outlook.com", "daum.net"))
    first, last = g.rng.choice(FIRST_NAMES), g.rng.choice(LAST_NAMES)
    referrer = g.person("member", t, email=f"{first}.{last}@{domain}")
    s.signups += [
        referrer,
        g.person(
            "friend",
            t + g.rng.uniform(60, 5000),
            referrer=referrer.key,
            email=f"{first}{last}@{domain}",
        ),
    ]
    return s


def _influencer(g: _Gen, t: float) -> Scenario:
    s = Scenario("influencer brings 8 friends in an hour", "honest")
    referrer = g.person("creator", t)
    s.signups.append(referrer)
    start = t + g.rng.uniform(1440, 3 * 1440)
    s.signups += [
        g.person("fan", start + g.rng.uniform(0, 55), referrer=referrer.key) for _ in range(8)
    ]
    return s


def _office(g: _Gen, t: float) -> Scenario:
    s = Scenario("office colleagues join from one IP", "honest")
    ip = g.ip()
    start = t + 2 * 1440
    for _ in range(4):
        friend = g.person("colleague-friend", t + g.rng.uniform(0, 1440))
        s.signups += [
            friend,
            g.person("colleague", start + g.rng.uniform(0, 50), referrer=friend.key, ip=ip),
        ]
    return s


def _flatmates(g: _Gen, t: float) -> Scenario:
    s = Scenario("flatmates invite each other in one evening", "honest")
    net = g.ip().rsplit(".", 1)[0]
    first = g.person("flatmate", t, ip=g.ip_in(net))
    s.signups.append(first)
    prev = first
    for i in range(2):
        nxt = g.person("flatmate", t + 30 * (i + 1), referrer=prev.key, ip=g.ip_in(net))
        s.signups.append(nxt)
        prev = nxt
    return s


def _dorm(g: _Gen, t: float) -> Scenario:
    s = Scenario("students in one dorm invite each other in a day", "honest")
    net = g.ip().rsplit(".", 1)[0]
    first = g.person("student", t, ip=g.ip_in(net))
    s.signups.append(first)
    for i in range(4):
        s.signups.append(
            g.person(
                "student",
                t + g.rng.uniform(60, 1200) + i,
                referrer=g.rng.choice(s.signups).key,
                ip=g.ip_in(net),
            )
        )
    return s


def _organic(g: _Gen, t: float) -> Scenario:
    return Scenario("organic signup", "honest", [g.person("organic", t)])


def _self_email(g: _Gen, t: float) -> Scenario:
    s = Scenario("self-referral by the same mailbox", "self_email")
    r = g.rng
    first, last = r.choice(FIRST_NAMES), r.choice(LAST_NAMES)
    n = r.randint(1, 999)
    if r.random() < 0.6:
        referrer = g.person("member", t, email=f"{first}.{last}{n}@gmail.com")
        variants = [
            f"{first.upper()}{last}{n}+ref{r.randint(1, 99)}@gmail.com",
            f"{'.'.join(first)}{last}{n}@googlemail.com",
            f"{first}.{last}{n}+{r.choice(('promo', 'x', 'bonus'))}@GMail.com",
        ]
    else:
        domain = r.choice(("naver.com", "outlook.com", "example.org"))
        referrer = g.person("member", t, email=f"{first}{n}@{domain}")
        variants = [f"{first.title()}{n}+{k}@{domain.upper()}" for k in ("a", "b", "ref")]
    s.signups.append(referrer)
    for i, email in enumerate(variants[: r.randint(1, 3)]):
        s.signups.append(
            g.person(
                "alias",
                t + 10 + 90 * i,
                referrer=referrer.key,
                email=email,
                label=frozenset({"self_email"}),
            )
        )
    return s


def _self_device(g: _Gen, t: float) -> Scenario:
    s = Scenario("self-referral from the same device", "self_device")
    referrer = g.person("member", t)
    s.signups += [
        referrer,
        g.person(
            "second-account",
            t + g.rng.uniform(30, 3000),
            referrer=referrer.key,
            device=referrer.device,
            label=frozenset({"self_device"}),
        ),
    ]
    return s


def _self_ip(g: _Gen, t: float) -> Scenario:
    s = Scenario("self-referral from the same IP", "self_ip")
    referrer = g.person("member", t)
    s.signups += [
        referrer,
        g.person(
            "second-account",
            t + g.rng.uniform(30, 3000),
            referrer=referrer.key,
            ip=referrer.ip,
            label=frozenset({"self_ip"}),
        ),
    ]
    return s


def _self_payment(g: _Gen, t: float) -> Scenario:
    s = Scenario("self-referral paying with the same card", "self_payment")
    referrer = g.person("member", t, payment=g.card())
    s.signups += [
        referrer,
        g.person(
            "second-account",
            t + g.rng.uniform(60, 5000),
            referrer=referrer.key,
            payment=referrer.payment,
            label=frozenset({"self_payment"}),
        ),
    ]
    return s


def _disposable(g: _Gen, t: float) -> Scenario:
    s = Scenario("disposable e-mail domain", "disposable_email")
    referrer = g.person("member", t)
    email = g.email(g.rng.choice(DISPOSABLE))
    s.signups += [
        referrer,
        g.person(
            "throwaway",
            t + g.rng.uniform(60, 3000),
            referrer=referrer.key,
            email=email,
            label=frozenset({"disposable_email"}),
        ),
    ]
    return s


def _velocity_referrer(g: _Gen, t: float) -> Scenario:
    s = Scenario("one referrer, a burst of accounts from rotating proxies", "velocity_referrer")
    referrer = g.person("farmer", t)
    s.signups.append(referrer)
    start = t + g.rng.uniform(60, 1440)
    for _ in range(g.rng.randint(12, 25)):
        s.signups.append(
            g.person(
                "farmed",
                start + g.rng.uniform(0, 40),
                referrer=referrer.key,
                label=frozenset({"velocity_referrer"}),
            )
        )
    return s


def _velocity_ip(g: _Gen, t: float) -> Scenario:
    s = Scenario("a burst of accounts from one IP", "velocity_ip")
    ip = g.ip()
    start = t + 1440
    for _ in range(g.rng.randint(7, 15)):
        code_owner = g.person("code-owner", t + g.rng.uniform(0, 600), label=None)
        s.signups += [
            code_owner,
            g.person(
                "bot",
                start + g.rng.uniform(0, 30),
                referrer=code_owner.key,
                ip=ip,
                label=frozenset({"velocity_ip"}),
            ),
        ]
    return s


def _ring(g: _Gen, t: float) -> Scenario:
    s = Scenario("referral ring from one network", "ring")
    net = g.ip().rsplit(".", 1)[0]
    seed = g.person("ring-seed", t, ip=g.ip_in(net), label=None)
    s.signups.append(seed)
    prev = seed
    minutes = t
    for _ in range(g.rng.randint(4, 8)):
        minutes += g.rng.uniform(5, 40)
        nxt = g.person(
            "ring", minutes, referrer=prev.key, ip=g.ip_in(net), label=frozenset({"ring"})
        )
        s.signups.append(nxt)
        prev = nxt if g.rng.random() < 0.7 else g.rng.choice(s.signups)
    return s


FRAUD_STORIES: dict[str, Callable[[_Gen, float], Scenario]] = {
    "self_email": _self_email,
    "self_device": _self_device,
    "self_ip": _self_ip,
    "self_payment": _self_payment,
    "disposable_email": _disposable,
    "velocity_referrer": _velocity_referrer,
    "velocity_ip": _velocity_ip,
    "ring": _ring,
}
HONEST_STORIES: list[tuple[float, Callable[[_Gen, float], Scenario]]] = [
    (0.55, _honest),
    (0.12, _organic),
    (0.1, _household),
    (0.08, _lookalike),
    (0.06, _influencer),
    (0.05, _office),
    (0.04, _flatmates),
    (0.02, _dorm),
]


def generate(seed: int = 7, *, honest: int = 150, per_check: int = 20) -> list[Scenario]:
    """Labelled scenarios: ``honest`` honest stories and ``per_check`` stories per check,
    spread over time (each story starts 4 hours after the previous), shuffled."""
    g = _Gen(seed)
    makers: list[Callable[[_Gen, float], Scenario]] = []
    weights = [w for w, _ in HONEST_STORIES]
    makers += g.rng.choices([m for _, m in HONEST_STORIES], weights=weights, k=honest)
    for maker in FRAUD_STORIES.values():
        makers += [maker] * per_check
    g.rng.shuffle(makers)
    return [maker(g, i * 240.0) for i, maker in enumerate(makers)]


def signups_in_order(scenarios: Iterable[Scenario]) -> list[Signup]:
    return sorted((s for sc in scenarios for s in sc.signups), key=lambda s: (s.minutes, s.key))


# --- playing them --------------------------------------------------------------------


@dataclass
class Played:
    signup: Signup
    assessment_id: int
    member_id: int | None


def play(
    session: Session,
    program: Program,
    scenarios: Iterable[Scenario],
    *,
    start: datetime | None = None,
) -> list[Played]:
    """Run every signup through ``assess_signup`` in time order, creating the members let in.

    Identifiers are hashed as a real caller would (``hash_ip``, ``hash_device``, and
    ``hash_network`` of the IP as ``properties["network_hash"]``). ``start`` is the time of
    minute 0 (by default long enough ago that the whole set lies in the past).
    """
    from budding.members import service as members

    ordered = signups_in_order(scenarios)
    span = ordered[-1].minutes if ordered else 0.0
    start = start or utcnow() - timedelta(minutes=span + 60)
    ids: dict[str, int] = {}
    played: list[Played] = []
    for s in ordered:
        at = start + timedelta(minutes=s.minutes)
        props: dict[str, Any] = {"network_hash": service.hash_network(s.ip)}
        if s.payment:
            props["payment_fingerprint"] = s.payment
        assessment = service.assess_signup(
            session,
            program,
            referrer_id=ids.get(s.referrer) if s.referrer else None,
            email=s.email,
            ip_hash=service.hash_ip(s.ip),
            device_hash=service.hash_device(s.device),
            properties=props,
            at=at,
        )
        member_id = None
        if assessment.allowed:
            data = {"external_id": s.key, "email": s.email}
            if members.find_member_by_email(session, program.id, s.email) is not None:
                del data["email"]  # the same address in another case: keep the account only
            member, _ = members.upsert_member(session, program, data)
            member_id = member.id
            ids[s.key] = member.id
            assert assessment.id is not None
            service.attach(session, program, assessment.id, member_id=member.id)
        assert assessment.id is not None
        played.append(Played(s, assessment.id, member_id))
    return played


def score(session: Session, played: list[Played]) -> dict[str, dict[str, float]]:
    """Precision and recall per check, from the assessments' final reasons."""
    reasons: dict[int, set[str]] = {}
    for p in played:
        row = session.get_one(FraudAssessment, p.assessment_id, populate_existing=True)
        reasons[p.assessment_id] = set(row.reasons or [])
    out: dict[str, dict[str, float]] = {}
    scored = [p for p in played if p.signup.label is not None]
    for check in CHECKS:
        fired = [p for p in scored if check in reasons[p.assessment_id]]
        tp = sum(1 for p in fired if p.signup.label)
        fp = len(fired) - tp
        labelled = [p for p in scored if p.signup.label and check in p.signup.label]
        caught = sum(1 for p in labelled if check in reasons[p.assessment_id])
        out[check] = {
            "precision": round(tp / len(fired), 4) if fired else 1.0,
            "recall": round(caught / len(labelled), 4) if labelled else 1.0,
            "fired": float(len(fired)),
            "true_positives": float(tp),
            "false_positives": float(fp),
            "labelled": float(len(labelled)),
        }
    fraud = [p for p in scored if p.signup.label]
    any_fired = [p for p in scored if reasons[p.assessment_id]]
    tp_any = sum(1 for p in any_fired if p.signup.label)
    out["any"] = {
        "precision": round(tp_any / len(any_fired), 4) if any_fired else 1.0,
        "recall": round(sum(1 for p in fraud if reasons[p.assessment_id]) / len(fraud), 4)
        if fraud
        else 1.0,
        "fired": float(len(any_fired)),
        "true_positives": float(tp_any),
        "false_positives": float(len(any_fired) - tp_any),
        "labelled": float(len(fraud)),
    }
    return out


def evaluate_checks(
    session: Session,
    program: Program,
    *,
    seed: int = 7,
    honest: int = 150,
    per_check: int = 20,
    scenarios: list[Scenario] | None = None,
) -> dict[str, dict[str, float]]:
    """Play labelled scenarios on ``program`` and return precision and recall per check.

    Writes members and assessments into ``program`` and sets its every check to
    ``flag`` (so that no block stops a story half-way): give it a program of
    its own. Keys per check: ``precision``, ``recall``, ``fired``,
    ``true_positives``, ``false_positives``, ``labelled``; ``any`` sums up.
    """
    service.update_settings(session, program, {"checks": dict.fromkeys(CHECKS, "flag")})
    chosen = (
        scenarios if scenarios is not None else generate(seed, honest=honest, per_check=per_check)
    )
    played = play(session, program, chosen)
    session.flush()
    return score(session, played)


def evaluate_in_scratch(
    *, seed: int = 7, honest: int = 150, per_check: int = 20
) -> dict[str, dict[str, float]]:
    """``evaluate_checks`` on a throw-away SQLite database (nothing touches the real one)."""
    import tempfile
    from pathlib import Path

    from budding.core.db import get_engine, unit_of_work, upgrade, wal_checkpointer
    from budding.programs.service import create_program

    with tempfile.TemporaryDirectory(prefix="budding-fraud-eval-") as tmp:
        url = f"sqlite:///{tmp}/scratch.db"
        upgrade(url)
        try:
            with unit_of_work(url) as session:
                program = create_program(session, slug="fraud-eval", name="Fraud evaluation")
                return evaluate_checks(
                    session, program, seed=seed, honest=honest, per_check=per_check
                )
        finally:
            get_engine(url).dispose()
            # before the folder goes: a checkpoint still running would fail (disk I/O error)
            wal_checkpointer((Path(tmp) / "scratch.db").resolve()).wait()
