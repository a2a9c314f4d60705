"""Erasure reaches the event ids (the clients' idempotency keys) that name the member.

Clients often build ids from identity ("signup:alice@example.com", "order-<external id>").
Every event id of the program that holds the erased member's e-mail (anywhere, in any
case) or external id (as a whole token) becomes an opaque ``erased-<hex>`` id, unique in
the program, whoever's event it is; other ids stay, so clients' retries still deduplicate.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from budding.core.db import unit_of_work
from budding.members import events as member_events
from budding.members import service as members
from budding.members.models import Event
from budding.programs.service import get_program

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ERASED_ID = re.compile(r"erased-[0-9a-f]{32}")


def _member(external_id: str, email: str | None = None, name: str = "", slug: str = "acme") -> Any:
    with unit_of_work() as s:
        member, _ = members.upsert_member(
            s, get_program(s, slug), {"external_id": external_id, "name": name, "email": email}
        )
        return member


def _send(events: list[tuple[str, str]], slug: str = "acme", **extra: Any) -> Any:
    """``(event id, member)`` pairs as purchases, an hour apart; returns the ingest result."""
    batch = [
        {
            "id": event_id,
            "type": "purchase",
            "member": member,
            "occurred_at": (T0 + timedelta(hours=i)).isoformat(),
            "properties": {"amount": 10 + i, "note": "thanks", **extra},
        }
        for i, (event_id, member) in enumerate(events)
    ]
    with unit_of_work() as s:
        return member_events.ingest_events(s, get_program(s, slug), batch)


def _erase(external_id: str, slug: str = "acme") -> None:
    with unit_of_work() as s:
        prog = get_program(s, slug)
        members.erase_member(s, prog, members.get_member(s, prog.id, external_id))


def _events(slug: str = "acme") -> dict[int, tuple[str, int, str, datetime, dict[str, Any]]]:
    """Every event of the program by row id: (event id, member id, type, time, properties)."""
    with unit_of_work() as s:
        prog = get_program(s, slug)
        return {
            e.id: (e.event_id, e.member_id, e.type, e.occurred_at, e.properties)
            for e in s.scalars(select(Event).where(Event.program_id == prog.id))
        }


def test_event_ids_naming_the_member_are_replaced_wherever_they_are(program, other_program) -> None:  # type: ignore[no-untyped-def]
    _member("alice", "Alice.Smith@Example.com", "Alice Smith")
    _member("bob", "bob@example.com", "Bob Stone")
    ordinary = str(uuid.uuid4())
    named = {
        "signup:alice.smith@example.com": "alice",  # her e-mail, in another case
        "order-alice-1": "alice",  # her external id as a token
        "alice": "alice",  # the id is her external id
        "invite:ALICE.SMITH@EXAMPLE.COM": "bob",  # another member's event naming her
        "bob-refers-alice": "bob",
        "ref_alice": "bob",  # "_" separates tokens too
    }
    kept = {
        ordinary: "alice",  # her own event, no identity: retries must still deduplicate
        "malice-1": "bob",  # "alice" inside a word
        "alice2": "bob",
        "order-1": "alice",
        "signup:bob@example.com": "bob",
    }
    result = _send(list({**named, **kept}.items()))
    assert result.accepted == len(named) + len(kept), result
    # The same ids in another program are that program's business.
    _member("alice", "alice.smith@example.com", slug="other")
    _send([("signup:alice.smith@example.com", "alice"), ("order-alice-1", "alice")], "other")
    before = _events()
    others_before = _events("other")

    _erase("alice")

    after = _events()
    assert after.keys() == before.keys()  # no event lost or added
    for row_id, (old_id, member_id, type_, occurred_at, props) in before.items():
        new_id, *rest = after[row_id]
        if old_id in named:
            assert ERASED_ID.fullmatch(new_id), (old_id, new_id)
        else:
            assert new_id == old_id
        # The rest of the event is what the erasure made of it before ids were replaced:
        # same member, type and time; her own events keep only numbers.
        assert rest[:3] == [member_id, type_, occurred_at]
        owner = named.get(old_id) or kept[old_id]
        assert rest[3] == ({"amount": props["amount"]} if owner == "alice" else props)
    new_ids = [after[i][0] for i in after]
    assert len(set(new_ids)) == len(new_ids)
    assert not any("alice" in i.lower() for i in new_ids if i not in kept)
    assert _events("other") == others_before

    # A retried ordinary event is still a duplicate; a retried id that named her is not
    # known any more (it was replaced), so it is stored anew.
    again = _send([(ordinary, "bob"), ("signup:bob@example.com", "bob")])
    assert (again.accepted, again.duplicates) == (0, 2)
    again = _send([("order-alice-1", "bob")])
    assert (again.accepted, again.duplicates) == (1, 0)


def test_short_external_id_is_matched_only_as_a_whole_token(program) -> None:  # type: ignore[no-untyped-def]
    _member("7")
    _member("u1")
    named = ["7", "order-7", "7:signup", "signup_7", "a.7.b", "x/7", "7 7"]
    kept = ["order-17", "7a", "demo-7b", "a7", "77", "0007", "order-7x", "v7-1"]
    _send([(i, "7") for i in named[:4]] + [(i, "u1") for i in named[4:]])
    _send([(i, "7") for i in kept[:4]] + [(i, "u1") for i in kept[4:]])

    _erase("7")

    ids = sorted(event_id for event_id, *_ in _events().values())
    assert [i for i in ids if not ERASED_ID.fullmatch(i)] == sorted(kept)
    assert len(set(ids)) == len(named) + len(kept)


def test_external_id_is_matched_as_written_and_email_in_any_case(program) -> None:  # type: ignore[no-untyped-def]
    # External ids are case-sensitive keys ("Ann" and "ann" may be two members); the
    # e-mail is not. Characters special to LIKE or to regular expressions are literal.
    _member("a_b%1", "Ünal.X+tag@Example.com")
    _member("other")
    ids = {
        "order-a_b%1": True,
        "order-A_B%1": False,
        "order-aXb%1": False,  # "_" is not a wildcard
        "order-a_bz1": False,  # nor "%"
        "mail:ünal.x+tag@example.com": True,
        "mail:ÜNAL.X+TAG@EXAMPLE.COM": True,
        "mail:unal.x+tag@example.com": False,
        "mail:ünal.xxtag@example.com": False,  # "+" is not a quantifier
    }
    _send([(i, "other") for i in ids])

    _erase("a_b%1")

    left = {event_id for event_id, *_ in _events().values()}
    assert left - {i for i, named in ids.items() if not named} == {
        i for i in left if ERASED_ID.fullmatch(i)
    }
    assert len(left) == len(ids)
    assert {i for i, named in ids.items() if not named} <= left


def test_many_ids_stay_unique_and_the_export_still_works(program) -> None:  # type: ignore[no-untyped-def]
    alice = _member("alice", "alice@example.com", "Alice")
    _member("bob", "bob@example.com", "Bob")
    _send([(f"order-alice-{n}", "alice") for n in range(60)] + [("b-1", "bob")], friend="alice")
    _send([("b-2", "bob")], friend="alice@example.com")

    _erase("alice")

    with unit_of_work() as s:
        prog = get_program(s, "acme")
        erased = members.get_member_by_id(s, alice.id)
        assert erased.external_id.startswith("erased-") and erased.email is None
        data = members.member_export(s, prog, erased)
    exported = data["members"]["events"]
    assert len(exported) == 60
    assert all(ERASED_ID.fullmatch(e["id"]) for e in exported)
    assert len({e["id"] for e in exported}) == 60
    assert all(e["properties"] == {"amount": e["properties"]["amount"]} for e in exported)
    # Bob's events: their ids hold no identity and stay; the e-mail in his properties is
    # blanked as before (the name is blanked only in events that target her).
    bob = {v[0]: v[4] for v in _events().values() if v[0].startswith("b-")}
    assert bob["b-1"]["friend"] == "alice"
    assert bob["b-2"]["friend"] == "(erased)"


def test_percent_encoded_email_in_an_id_names_the_member(program) -> None:  # type: ignore[no-untyped-def]
    # Ids built from URLs carry the e-mail percent-encoded, by any encoder (every reserved
    # character or only some, hex digits in either case), in any letter case.
    _member("p1", "Ünal.X+tag@Example.com")
    _member("other")
    ids = {
        "ref?u=%C3%BCnal.x%2Btag%40example.com": True,
        "ref?u=%c3%9cNAL.X%2btag%40EXAMPLE.COM": True,
        "ref?u=ünal.x+tag%40example.com": True,  # only the "@" encoded
        "ref?u=%C3%BCnal.x%2Btag@example.com": True,
        "ref?u=unal.x%2Btag%40example.com": False,  # another address
        "ref?u=%C3%BCnal.x%2Btag%41example.com": False,  # %41 is "A", not "@"
        "ref?u=%C3%BCnal.x%2Btag%40example.org": False,
    }
    _send([(i, "other") for i in ids])

    _erase("p1")

    left = {event_id for event_id, *_ in _events().values()}
    assert {i for i in left if not ERASED_ID.fullmatch(i)} == {i for i, n in ids.items() if not n}
    assert len(left) == len(ids)
