"""Each fraud check on its own small case; actions per program; rings and bursts flagged
after the fact; the labelled scenarios with precision and recall thresholds."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from budding.core.db import unit_of_work, utcnow
from budding.core.errors import ValidationFailed
from budding.fraud import scenarios, service
from budding.fraud.checks import CHECKS, canonical_email, is_disposable
from budding.fraud.models import FraudAssessment
from budding.members import service as members
from budding.programs.service import get_program


def _member(program, external_id: str, email: str | None = None, **signals: str) -> int:  # type: ignore[no-untyped-def]
    with unit_of_work() as session:
        data: dict[str, Any] = {"external_id": external_id}
        if email:
            data["email"] = email
        m, _ = members.upsert_member(session, program, data)
        if signals:
            service.record_signals(session, program, m.id, **signals)
        return m.id


def _assess(program, **kw: Any) -> service.Assessment:  # type: ignore[no-untyped-def]
    kw.setdefault("ip_hash", None)
    kw.setdefault("device_hash", None)
    kw.setdefault("properties", {})
    with unit_of_work() as session:
        return service.assess_signup(session, get_program(session, program.slug), **kw)


def _set(program, **values: Any) -> None:  # type: ignore[no-untyped-def]
    with unit_of_work() as session:
        service.update_settings(session, get_program(session, program.slug), values)


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("John.Smith@Gmail.com", "johnsmith@gmail.com"),
        ("j.o.h.n.smith+promo@googlemail.com", "johnsmith@gmail.com"),
        ("JOHNSMITH+a+b@GMAIL.COM", "johnsmith@gmail.com"),
        ("j.doe@example.org", "j.doe@example.org"),
        ("J.Doe+news@Example.org", "j.doe@example.org"),
        ("민수@example.kr", "민수@example.kr"),
    ],
)
def test_canonical_email(given: str, canonical: str) -> None:
    assert canonical_email(given) == canonical


def test_disposable_domains_from_the_maintained_list() -> None:
    assert is_disposable("mailinator.com")
    assert is_disposable("sub.mailinator.com")
    assert not is_disposable("gmail.com")
    assert not is_disposable("example.org")


def test_self_referral_by_mailbox(program) -> None:  # type: ignore[no-untyped-def]
    ann = _member(program, "ann", "ann.lee@gmail.com")
    found = _assess(program, referrer_id=ann, email="AnnLee+free@googlemail.com")
    assert found.reasons == ["self_email"] and found.action == "block"
    # A different mailbox at a domain where dots matter is someone else.
    bob = _member(program, "bob", "b.kim@example.org")
    assert _assess(program, referrer_id=bob, email="bkim@example.org").action == "allow"


def test_self_referral_by_device_ip_and_payment(program) -> None:  # type: ignore[no-untyped-def]
    ann = _member(
        program,
        "ann",
        "ann@example.com",
        ip_hash=service.hash_ip("203.0.113.7"),
        device_hash=service.hash_device("phone-1"),
        payment_fingerprint="card-42",
    )
    found = _assess(
        program,
        referrer_id=ann,
        email="friend@example.net",
        ip_hash=service.hash_ip("203.0.113.7"),
        device_hash=service.hash_device("phone-1"),
        properties={"payment_fingerprint": "card-42"},
    )
    assert set(found.reasons) == {"self_device", "self_ip", "self_payment"}
    assert found.action == "hold"  # the strongest of hold, flag, hold
    other = _assess(
        program,
        referrer_id=ann,
        email="friend2@example.net",
        ip_hash=service.hash_ip("198.51.100.1"),
        device_hash=service.hash_device("phone-2"),
        properties={"payment_fingerprint": "card-43"},
    )
    assert other.action == "allow" and other.reasons == []


def test_signals_come_from_the_referrers_events(client, program) -> None:  # type: ignore[no-untyped-def]
    ann = _member(program, "ann", "ann@example.com")
    login = {
        "id": "login-1",
        "type": "login",
        "member": "ann",
        "occurred_at": utcnow().isoformat(),
        "properties": {"ip": "192.0.2.10", "device_id": "laptop-9"},
    }
    assert client.post("/api/v1/events", json={"events": [login]}).json()["accepted"] == 1
    found = _assess(
        program,
        referrer_id=ann,
        email="new@example.net",
        device_hash=service.hash_device("laptop-9"),
        ip_hash=service.hash_ip("192.0.2.10"),
    )
    assert set(found.reasons) == {"self_device", "self_ip"}


def test_hashes_match_the_referrals_capability() -> None:
    links = pytest.importorskip("budding.referrals.links")
    assert service.hash_ip("192.0.2.1") == links.hash_ip("192.0.2.1")
    assert service.hash_device("abc") == links.hash_device("abc")


def test_disposable_domain(program) -> None:  # type: ignore[no-untyped-def]
    found = _assess(program, referrer_id=None, email="x@yopmail.com")
    assert found.reasons == ["disposable_email"] and found.action == "block"


def test_velocity_per_referrer_flags_the_whole_burst(program) -> None:  # type: ignore[no-untyped-def]
    ann = _member(program, "ann")
    _set(program, velocity_referrer_per_hour=3)
    start = utcnow() - timedelta(hours=2)
    found = [
        _assess(
            program, referrer_id=ann, email=f"f{i}@example.net", at=start + timedelta(minutes=5 * i)
        )
        for i in range(5)
    ]
    assert [f.action for f in found] == ["allow", "allow", "allow", "hold", "hold"]
    with unit_of_work() as session:
        rows = service.list_assessments(session, program, review_status=None)
        assert all("velocity_referrer" in r.reasons for r in rows)
        assert {r.review_status for r in rows} == {"open"}
    # An hour later the window has moved on.
    later = _assess(
        program, referrer_id=ann, email="late@example.net", at=start + timedelta(hours=2)
    )
    assert later.action == "allow"


def test_velocity_per_ip(program) -> None:  # type: ignore[no-untyped-def]
    _set(program, velocity_ip_per_hour=2)
    ip = service.hash_ip("198.51.100.50")
    found = [
        _assess(program, referrer_id=None, email=f"u{i}@example.net", ip_hash=ip) for i in range(3)
    ]
    assert [f.reasons for f in found] == [[], [], ["velocity_ip"]]


def test_ring_on_one_network_is_found_and_marked_back(program) -> None:  # type: ignore[no-untyped-def]
    start = utcnow() - timedelta(hours=5)
    net = "203.0.113"
    ids: list[int] = []
    found: list[service.Assessment] = []
    for i in range(5):
        ip = f"{net}.{10 + i}"
        with unit_of_work() as session:
            assessment = service.assess_signup(
                session,
                program,
                referrer_id=ids[-1] if ids else None,
                email=f"ring{i}@example.net",
                ip_hash=service.hash_ip(ip),
                device_hash=service.hash_device(f"d{i}"),
                properties={"network_hash": service.hash_network(ip)},
                at=start + timedelta(minutes=20 * i),
            )
            m, _ = members.upsert_member(session, program, {"external_id": f"ring{i}"})
            assert assessment.id is not None
            service.attach(session, program, assessment.id, member_id=m.id)
            ids.append(m.id)
            found.append(assessment)
    assert [f.reasons for f in found] == [[], [], [], ["ring"], ["ring"]]
    with unit_of_work() as session:
        rows = session.query(FraudAssessment).order_by(FraudAssessment.id).all()
        # The second account (referred by the seed) is marked too once the ring shows.
        assert [r.reasons for r in rows] == [[], ["ring"], ["ring"], ["ring"], ["ring"]]
        assert [r.action for r in rows] == ["allow", "hold", "hold", "hold", "hold"]


def test_actions_are_configurable_per_check(program, other_program) -> None:  # type: ignore[no-untyped-def]
    _set(program, checks={"disposable_email": "flag"})
    assert _assess(program, referrer_id=None, email="a@yopmail.com").action == "flag"
    _set(program, checks={"disposable_email": "off"})
    assert _assess(program, referrer_id=None, email="b@yopmail.com").action == "allow"
    _set(program, checks={"disposable_email": "hold"})
    assert _assess(program, referrer_id=None, email="c@yopmail.com").action == "hold"
    # Another program keeps the defaults.
    assert _assess(other_program, referrer_id=None, email="d@yopmail.com").action == "block"


def test_settings_errors_name_the_field(program) -> None:  # type: ignore[no-untyped-def]
    for values, name in (
        ({"checks": {"self_email": "shout"}}, "checks.self_email"),
        ({"checks": {"no_such_check": "flag"}}, "checks"),
        ({"velocity_ip_per_hour": 0}, "velocity_ip_per_hour"),
        ({"ring_min_size": 1}, "ring_min_size"),
        ({"ring_window_hours": "soon"}, "ring_window_hours"),
    ):
        with pytest.raises(ValidationFailed) as exc:
            _set(program, **values)
        assert name in exc.value.fields, exc.value.fields
    with unit_of_work() as session, pytest.raises(ValidationFailed) as exc:
        service.assess_signup(
            session,
            program,
            referrer_id=None,
            email="nope",
            ip_hash=None,
            device_hash=None,
            properties={},
        )
    assert "email" in exc.value.fields


# --- the labelled scenarios ------------------------------------------------------------

# What the checks must reach on the generated scenarios. Same-IP self-referral cannot tell
# a household from one person with two accounts: its precision is lower by nature, and it
# only flags by default. Students of one dorm inviting each other in a day look like a ring.
THRESHOLDS = {check: (0.95, 0.95) for check in CHECKS} | {
    "self_ip": (0.5, 0.95),
    "ring": (0.8, 0.95),
}


def test_every_check_on_its_labelled_scenarios(program) -> None:  # type: ignore[no-untyped-def]
    with unit_of_work() as session:
        own = get_program(session, program.slug)
        result = scenarios.evaluate_checks(session, own, seed=11, honest=80, per_check=8)
    report = {c: (m["precision"], m["recall"]) for c, m in result.items()}
    print("precision/recall per check:", report)
    for check, (min_precision, min_recall) in THRESHOLDS.items():
        m = result[check]
        assert m["labelled"] > 0, check
        assert m["recall"] >= min_recall, (check, m)
        assert m["precision"] >= min_precision, (check, m)
    assert result["any"]["precision"] >= 0.9


def test_scenarios_are_reproducible_and_labelled() -> None:
    a = scenarios.generate(3, honest=20, per_check=2)
    b = scenarios.generate(3, honest=20, per_check=2)
    assert [s.signups for s in a] == [s.signups for s in b]
    kinds = {s.kind for s in a}
    assert kinds == {"honest", *CHECKS}
    for sc in a:
        for s in sc.signups:
            if sc.kind == "honest":
                assert s.label == frozenset()
            elif s.label:
                assert s.label == frozenset({sc.kind})
