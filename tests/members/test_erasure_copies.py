"""Erasure reaches the copies of a member's name and e-mail in other people's rows: the
waitlist mail queued for them, a friend's tell-a-friend e-mail to them (and the mail
server's refusal quoting their address), staff notes copied into the referrer's referral
and reward history, an invite code's note, a points reason, the referrer's own events
naming them. After the erasure no table holds the name or the e-mail; the other members
keep their rows and counts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, inspect, select, text

from budding.core import jobs
from budding.core.db import get_engine, unit_of_work
from budding.members import events as member_events
from budding.members import service as members
from budding.programs.service import get_program
from tests.mailsink import MailSink, mail_sink

referrals = pytest.importorskip("budding.referrals.service")
rewards = pytest.importorskip("budding.rewards.service")
fraud = pytest.importorskip("budding.fraud.service")
sharing = pytest.importorskip("budding.sharing.service")
webhooks = pytest.importorskip("budding.webhooks.service")

NAME = "Zelda Quux"
EMAIL = "zelda.quux@mailinator.com"  # a disposable domain: the fraud checks flag her
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def smtp() -> Iterator[MailSink]:
    # Refuses Zelda's address: a friend's e-mail to her fails, quoting the refusal.
    with mail_sink(refuse=(EMAIL,)) as sink:
        yield sink


def _where_found(*needles: str) -> list[str]:
    """``table.column`` of every value in the database that holds one of ``needles``
    (case-insensitively), read as the database stores it."""
    wanted = [n.lower() for n in needles]
    found: list[str] = []
    engine = get_engine()
    with engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            result = conn.execute(text(f'SELECT * FROM "{table}"'))
            columns = list(result.keys())
            for row in result:
                for column, value in zip(columns, row, strict=True):
                    if value is None:
                        continue
                    shown = (
                        value.decode("latin-1") if isinstance(value, bytes) else str(value)
                    ).lower()
                    if any(n in shown for n in wanted):
                        found.append(f"{table}.{column}")
    return sorted(set(found))


def _member(external_id: str, name: str, email: str) -> Any:
    with unit_of_work() as s:
        member, _ = members.upsert_member(
            s, get_program(s, "acme"), {"external_id": external_id, "name": name, "email": email}
        )
        return member


def _events(batch: list[dict[str, Any]]) -> None:
    with unit_of_work() as s:
        result = member_events.ingest_events(s, get_program(s, "acme"), batch)
        assert not result.rejected, result.rejected


def _counts() -> dict[str, int]:
    from budding.honors.models import PointsEntry
    from budding.members.models import Event
    from budding.referrals.models import InviteCode, Referral
    from budding.rewards.models import Reward, RewardEvent
    from budding.sharing.models import TellAFriendMail

    with unit_of_work() as s:
        return {
            m.__tablename__: int(s.scalar(select(func.count()).select_from(m)) or 0)
            for m in (
                Event,
                Referral,
                Reward,
                RewardEvent,
                PointsEntry,
                InviteCode,
                TellAFriendMail,
            )
        }


def test_erasure_leaves_no_copy_of_the_name_or_email(program, smtp) -> None:  # type: ignore[no-untyped-def]
    from budding.honors import ledger
    from budding.referrals.config import update_referral_settings
    from budding.rewards import rules

    bob = _member("bob", "Bob Stone", "bob@example.com")
    carol = _member("carol", "Carol Poe", "carol@example.com")
    with unit_of_work() as s:
        prog = get_program(s, "acme")
        update_referral_settings(s, prog, {"mode": "waitlist"})
        fraud.update_settings(s, prog, {"checks": {"disposable_email": "flag"}})
        rules.create_rule(
            s,
            prog,
            {
                "name": "Thanks",
                "side": "referrer",
                "trigger": "conversion",
                "kind": "points",
                "amount": 10,
            },
        )
        webhooks.create_endpoint(s, prog, url="https://hooks.example.com/in", event_types=["*"])
        code = referrals.referral_code_for(s, prog, members.get_member_by_id(s, bob.id))
        # Zelda joins the waitlist through Bob's code: her confirmation e-mail is queued.
        referrals.join_waitlist(s, prog, EMAIL, referral_code=code)

    # She becomes a member through Bob's code, then buys: Bob's referral converts.
    _member("zelda", NAME, EMAIL)
    _events(
        [
            {
                "id": "z-signup",
                "type": "signup",
                "member": "zelda",
                "occurred_at": T0.isoformat(),
                "properties": {"referral_code": code},
            },
            {
                "id": "z-buy",
                "type": "purchase",
                "member": "zelda",
                "occurred_at": (T0 + timedelta(hours=1)).isoformat(),
                "properties": {"amount": 30},
            },
            # Bob's own event about her, as the customer's backend sends it.
            {
                "id": "b-share",
                "type": "share",
                "member": "bob",
                "target": "zelda",
                "occurred_at": (T0 + timedelta(hours=2)).isoformat(),
                "properties": {"friend": NAME, "friend_email": EMAIL, "channel": "email"},
            },
        ]
    )
    with unit_of_work() as s:
        prog = get_program(s, "acme")
        zelda = members.get_member(s, prog.id, "zelda")
        (assessment,) = fraud.assessments_of_member(s, zelda.id)
        # The reviewer's note travels to Bob's referral and reward history.
        fraud.approve(
            s, prog, assessment.id, actor="staff@acme.example", note=f"phoned {NAME} ({EMAIL})"
        )
        referrals.issue_staff_invites(s, prog, 1, note=f"for {NAME}, {EMAIL}")
        ledger.credit(s, prog, bob.id, 5, reason=f"brought {NAME}", key="bonus-zelda")
        # Bob tells her about the program (queued, not sent yet).
        sharing.tell_a_friend(
            s, prog, members.get_member_by_id(s, bob.id), {"to": EMAIL, "note": f"Hi {NAME}!"}
        )
    # Carol tells her too; the mail server refuses her address.
    with jobs.immediate(), unit_of_work() as s:
        sharing.tell_a_friend(
            s, get_program(s, "acme"), members.get_member_by_id(s, carol.id), {"to": EMAIL}
        )
    assert smtp.envelopes == []

    before = _where_found(NAME, EMAIL)
    assert "members.email" in before and len(before) > 1
    counts = _counts()

    with unit_of_work() as s:
        prog = get_program(s, "acme")
        members.erase_member(s, prog, members.get_member(s, prog.id, "zelda"))

    left = _where_found(NAME, EMAIL)
    assert left == [], "\n".join(left)
    # Everyone else's rows stay, and so do the counts.
    assert _counts() == counts
    with unit_of_work() as s:
        prog = get_program(s, "acme")
        assert ledger.balance(s, prog, bob.id) == 15
        assert members.get_member(s, prog.id, "bob").email == "bob@example.com"
        assert members.get_member(s, prog.id, "carol").name == "Carol Poe"
