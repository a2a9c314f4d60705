"""Erasure reaches the copies of the event ids it replaces.

An event id that names the erased member (``order-zelda-1``, ``gift:zelda@…``) becomes an
opaque ``erased-<hex>`` id (``test_erasure_event_ids``). Other capabilities keep that id
too: the conversion a referral counted, the trigger and dedupe keys of its rewards, the
milestone progress, the reward history's notes and reasons ("refund <id>"), the points
ledger's reasons, the share funnel's steps and the webhook deliveries' bodies. After the
erasure no old id is left anywhere, and every copy holds the same new id as the event,
so that the links hold: a refund naming the new id takes the rewards back, a retry with
the new id is a duplicate, and a retry with the old id pays nothing twice.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select

from budding.core.db import unit_of_work
from budding.members import events as member_events
from budding.members import service as members
from budding.members.models import Event
from budding.programs.service import get_program
from tests.members.test_erasure_copies import _where_found

referrals = pytest.importorskip("budding.referrals.service")
rewards = pytest.importorskip("budding.rewards.service")
sharing = pytest.importorskip("budding.sharing.service")
webhooks = pytest.importorskip("budding.webhooks.service")

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ERASED_ID = re.compile(r"erased-[0-9a-f]{32}")
EMAIL = "zelda.quux@example.com"

# Ids that name Zelda (her e-mail in any case or percent-encoded, her external id as a
# token), hers and other members', and ids that do not.
Z_SIGNUP = "signup:Zelda.Quux@Example.com"
Z_BUY = "order-zelda-1"
Z_SHARE = "share?u=ZELDA.QUUX%40example.com"
C_BUY = "gift:zelda.quux@example.com"  # Carol's purchase, a gift for Zelda
D_REFUND = "refund-for-zelda"  # Dave's refund
NAMED = (Z_SIGNUP, Z_BUY, Z_SHARE, C_BUY, D_REFUND)
D_BUY = "order-dave-1"
KEPT = (D_BUY, "signup-carol", "signup-dave", "bob-thanks")


def _member(external_id: str, email: str) -> Any:
    with unit_of_work() as s:
        member, _ = members.upsert_member(
            s, get_program(s, "acme"), {"external_id": external_id, "name": "", "email": email}
        )
        return member


def _send(*events: tuple[str, str, str, dict[str, Any]]) -> Any:
    """``(id, type, member, properties)``, a minute apart from T0 + 1 hour."""
    batch = [
        {
            "id": event_id,
            "type": type_,
            "member": member,
            "occurred_at": (T0 + timedelta(hours=1, minutes=i)).isoformat(),
            "properties": props,
        }
        for i, (event_id, type_, member, props) in enumerate(events)
    ]
    with unit_of_work() as s:
        result = member_events.ingest_events(s, get_program(s, "acme"), batch)
        assert not result.rejected, result.rejected
        return result


def _ids() -> dict[int, str]:
    with unit_of_work() as s:
        return {
            row_id: event_id for row_id, event_id in s.execute(select(Event.id, Event.event_id))
        }


def _state() -> dict[str, Any]:
    """What the links are made of: each referral's conversion, each reward's keys, status
    and history, the milestone progress, the share steps and the deliveries' bodies."""
    from budding.honors.models import PointsEntry
    from budding.referrals.models import Referral
    from budding.rewards.models import Reward, RewardEvent, RewardProgress
    from budding.sharing.models import ShareStep
    from budding.webhooks.models import WebhookDelivery

    with unit_of_work() as s:
        return {
            "referrals": dict(
                s.execute(select(Referral.referee_member_id, Referral.conversion_event_id)).all()
            ),
            "rewards": _rows(
                s,
                select(
                    Reward.id,
                    Reward.trigger,
                    Reward.trigger_key,
                    Reward.dedupe_key,
                    Reward.status,
                    Reward.reason,
                ).order_by(Reward.id),
            ),
            "notes": _rows(
                s,
                select(RewardEvent.reward_id, RewardEvent.type, RewardEvent.note).order_by(
                    RewardEvent.id
                ),
            ),
            "progress": _rows(
                s,
                select(
                    RewardProgress.referral_id,
                    RewardProgress.stage,
                    RewardProgress.trigger_key,
                    RewardProgress.revoked_reason,
                ).order_by(RewardProgress.id),
            ),
            "points": _rows(
                s,
                select(PointsEntry.member_id, PointsEntry.points, PointsEntry.reason).order_by(
                    PointsEntry.id
                ),
            ),
            "steps": sorted(s.scalars(select(ShareStep.event_id))),
            "bodies": [
                orjson.loads(b)
                for b in s.scalars(select(WebhookDelivery.body).order_by(WebhookDelivery.id))
            ],
        }


def _rows(session: Any, stmt: Any) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in session.execute(stmt)]


def _renamed(value: Any, new: dict[str, str]) -> Any:
    """``value`` with every old id in it replaced as the erasure documents: a whole string,
    or the tail of a note or reason after a space."""
    if isinstance(value, str):
        if value in new:
            return new[value]
        for old, replacement in new.items():
            if value.endswith(" " + old):
                return value[: -len(old)] + replacement
        return value
    if isinstance(value, list):
        return [_renamed(v, new) for v in value]
    if isinstance(value, tuple):
        return tuple(_renamed(v, new) for v in value)
    if isinstance(value, dict):
        return {k: _renamed(v, new) for k, v in value.items()}
    return value


def _balance(member_id: int) -> int:
    from budding.honors import ledger

    with unit_of_work() as s:
        return int(ledger.balance(s, get_program(s, "acme"), member_id))


def _reward_count() -> int:
    from budding.rewards.models import Reward

    with unit_of_work() as s:
        return int(s.scalar(select(func.count()).select_from(Reward)) or 0)


def test_copies_of_replaced_event_ids_get_the_same_new_id(program) -> None:  # type: ignore[no-untyped-def]
    from budding.rewards import rules

    bob = _member("bob", "bob@example.com")
    zelda = _member("zelda", EMAIL)
    carol = _member("carol", "carol@example.com")
    dave = _member("dave", "dave@example.com")
    with unit_of_work() as s:
        prog = get_program(s, "acme")
        for name, side, extra in (
            ("Thanks", "referrer", {"trigger": "conversion", "amount": 10}),
            ("Welcome", "referee", {"trigger": "conversion", "amount": 5}),
            ("Two friends", "referrer", {"trigger": "milestone", "milestone": 2, "amount": 50}),
        ):
            rules.create_rule(s, prog, {"name": name, "side": side, "kind": "points", **extra})
        webhooks.create_endpoint(s, prog, url="https://hooks.example.com/in", event_types=["*"])
        code = referrals.referral_code_for(s, prog, members.get_member_by_id(s, bob.id))
    signup = {"referral_code": code}
    with unit_of_work() as s:
        assert not member_events.ingest_events(
            s,
            get_program(s, "acme"),
            [
                {"id": i, "type": "signup", "member": m, "occurred_at": T0.isoformat(), **p}
                for i, m, p in (
                    (Z_SIGNUP, "zelda", {"properties": signup}),
                    ("signup-carol", "carol", {"properties": signup}),
                    ("signup-dave", "dave", {"properties": signup}),
                )
            ],
        ).rejected
    _send(
        (Z_BUY, "purchase", "zelda", {"amount": 30}),
        (C_BUY, "purchase", "carol", {"amount": 20}),  # Bob's second conversion: milestone
        (D_BUY, "purchase", "dave", {"amount": 25}),
        (Z_SHARE, "share_sent", "zelda", {"channel": "email"}),
        (D_REFUND, "refund", "dave", {"refund_of": D_BUY}),
        # Bob's own event naming her purchase as a value (as a refund_of would).
        ("bob-thanks", "share", "bob", {"for_event": Z_BUY, "amount": 1}),
    )
    before = _state()
    assert _where_found(*NAMED), "the old ids are copied around"
    ids_before = _ids()
    balances = {m.id: _balance(m.id) for m in (bob, zelda, carol, dave)}
    assert balances == {bob.id: 70, zelda.id: 5, carol.id: 5, dave.id: 0}
    rewards_before = _reward_count()

    with unit_of_work() as s:
        prog = get_program(s, "acme")
        members.erase_member(s, prog, members.get_member(s, prog.id, "zelda"))

    left = _where_found(*NAMED)
    assert left == [], "\n".join(left)
    ids_after = _ids()
    new = {old: ids_after[row] for row, old in ids_before.items() if old in NAMED}
    assert set(new) == set(NAMED)
    assert all(ERASED_ID.fullmatch(i) for i in new.values())
    assert {ids_after[r] for r, old in ids_before.items() if old in KEPT} == set(KEPT)
    # Every copy holds the event's new id, in the place it held the old one; the rest of
    # each row is as it was (the members eraser's redaction of the deliveries about
    # Zelda aside, which drops their data).
    after = _state()
    expected = _renamed(before, new)
    redacted = [b for b in after["bodies"] if b["data"] == {"redacted": webhooks.REDACTED}]
    assert redacted
    kept_bodies = [b for b in after["bodies"] if b not in redacted]
    assert kept_bodies == [
        b for b in expected["bodies"] if b["id"] not in {r["id"] for r in redacted}
    ]
    for part in ("referrals", "rewards", "notes", "progress", "points", "steps"):
        assert after[part] == expected[part], part
    assert after["referrals"][carol.id] == new[C_BUY]
    assert any(
        (t, k, d) == ("conversion", new[C_BUY], new[C_BUY]) for _, t, k, d, *_ in after["rewards"]
    )
    assert any(b["data"].get("conversion_event_id") == new[C_BUY] for b in kept_bodies)
    with unit_of_work() as s:
        props = s.scalar(select(Event.properties).where(Event.event_id == "bob-thanks"))
    assert props == {"for_event": new[Z_BUY], "amount": 1}

    # Retries. The new id is known: a duplicate. The old id is not (it was replaced): the
    # event is stored anew, but the referral had converted already, so no reward is paid
    # twice; Zelda's old external id is a new person, with no referral.
    again = _send((new[C_BUY], "purchase", "carol", {"amount": 20}))
    assert (again.accepted, again.duplicates) == (0, 1)
    again = _send((C_BUY, "purchase", "carol", {"amount": 20}))
    assert (again.accepted, again.duplicates) == (1, 0)
    _send((Z_BUY, "purchase", "zelda", {"amount": 30}))
    assert _reward_count() == rewards_before
    assert {m: _balance(m) for m in balances} == {**balances, zelda.id: 5}
    # A refund that names the purchase by its new id takes its rewards back.
    _send(("refund-carol", "refund", "carol", {"refund_of": new[C_BUY]}))
    assert _balance(carol.id) == 0
    assert _balance(bob.id) < 70


def test_the_replacements_are_computed_once_per_erasure(program) -> None:  # type: ignore[no-untyped-def]
    zelda = _member("zelda", EMAIL)
    _send((Z_BUY, "purchase", "zelda", {}), ("plain-1", "purchase", "zelda", {}))
    with unit_of_work() as s:
        member = members.get_member_by_id(s, zelda.id)
        first = members.event_id_replacements(s, member)
        assert set(first) == {Z_BUY} and ERASED_ID.fullmatch(first[Z_BUY])
        assert members.event_id_replacements(s, member) == first
        members.erase_member(s, get_program(s, "acme"), member)
    assert set(_ids().values()) == {first[Z_BUY], "plain-1"}
