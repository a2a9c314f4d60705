"""The waitlist: positions, double opt-in, capped skip-ahead with its history, release."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from budding.core import jobs
from budding.core.db import unit_of_work
from budding.programs import service as programs
from budding.referrals import waitlist
from tests.mailsink import MailSink, mail_sink
from tests.referrals.conftest import set_settings


@pytest.fixture
def waitlist_program(program):  # type: ignore[no-untyped-def]
    set_settings(program.slug, mode="waitlist", waitlist_protected_top=0)
    return program


@pytest.fixture
def sink() -> Iterator[MailSink]:
    with mail_sink() as s, jobs.immediate():
        yield s


def _wait_for_text(sink: MailSink, address: str, text: str, timeout: float = 10) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(text in sink.text(m) for m in sink.to(address)):
            return
        time.sleep(0.05)
    raise AssertionError(f"no e-mail to {address} containing {text!r}")


def _join(client, email: str, **kw: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = client.post("/api/v1/waitlist", json={"email": email, **kw})
    assert r.status_code in (200, 201), r.text
    return r.json()


def _confirm(email: str, slug: str = "acme") -> None:
    with unit_of_work() as session:
        prog = programs.get_program(session, slug)
        waitlist.confirm(session, prog, waitlist.get_entry(session, prog, email))


def _position(client, email: str) -> int | None:  # type: ignore[no-untyped-def]
    return client.get(f"/api/v1/waitlist/{email}").json()["position"]


def test_join_and_positions(client, waitlist_program) -> None:  # type: ignore[no-untyped-def]
    first = _join(client, "a@example.com")
    assert first["position"] == 1 and first["total"] == 1 and not first["confirmed"]
    assert first["referral_url"].endswith(first["referral_code"])
    assert "/p/acme/waitlist/me?t=" in first["status_url"]
    second = _join(client, "B@Example.com")
    assert second["email"] == "b@example.com" and second["position"] == 2
    r = client.post("/api/v1/waitlist", json={"email": "b@example.com"})
    assert r.status_code == 200 and r.json()["position"] == 2  # the same entry
    assert client.get("/api/v1/waitlist/nobody@example.com").status_code == 404
    r = client.post("/api/v1/waitlist", json={"email": "not-an-address"})
    assert r.status_code == 422 and "email" in r.json()["error"]["fields"]
    r = client.post(
        "/api/v1/waitlist", json={"email": "c@example.com", "referral_code": "ZZZZZZZZZZZZ"}
    )
    assert r.status_code == 422 and "referral_code" in r.json()["error"]["fields"]
    assert client.get("/api/v1/waitlist/c@example.com").status_code == 404


def test_joining_again_resends_the_confirmation_at_most_once_an_hour(
    client, waitlist_program
) -> None:  # type: ignore[no-untyped-def]
    for _ in range(5):
        _join(client, "ann@example.com")
    with unit_of_work() as session:
        mails = jobs.list_jobs(session, waitlist_program.id, kind="referrals.send_email")
    assert [m.payload["to"] for m in mails] == ["ann@example.com"]


def test_open_programs_have_no_waitlist(client) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/api/v1/waitlist", json={"email": "a@example.com"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "waitlist_closed"
    assert "mode" in r.json()["error"]["fields"]


def test_confirmation_mail_and_double_opt_in(client, anon_client, waitlist_program, sink) -> None:  # type: ignore[no-untyped-def]
    ann = _join(client, "ann@example.com")
    _join(client, "bob@example.com", referral_code=ann["referral_code"], locale="es")
    message = sink.wait_for("bob@example.com")
    assert "waitlist" in message["Subject"].lower() or "espera" in message["Subject"].lower()
    link = sink.first_link(message).replace("http://testserver", "")
    assert "/p/acme/waitlist/confirm?t=" in link
    # The private status link comes with it (in Bob's language), and opens his entry.
    text = sink.text(message)
    assert "fila" in text
    status = next(w for w in text.split() if "/p/acme/waitlist/me?t=" in w)
    page = anon_client.get(status.replace("http://testserver", ""))
    assert page.status_code == 200 and 'data-testid="waitlist-position">#2' in page.text
    # Opening the link (a mail scanner does) confirms nothing, and nobody moved.
    page = anon_client.get(link)
    assert page.status_code == 200 and 'data-testid="confirm"' in page.text
    assert client.get("/api/v1/waitlist/bob@example.com").json()["confirmed"] is False
    assert client.get("/api/v1/waitlist/ann@example.com").json()["confirmed_referrals"] == 0
    token = link.split("t=", 1)[1]
    r = anon_client.post("/p/acme/waitlist/confirm", data={"t": token}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/api/v1/waitlist/bob@example.com").json()["confirmed"] is True
    assert client.get("/api/v1/waitlist/ann@example.com").json()["confirmed_referrals"] == 1
    # A tampered link is refused.
    bad = anon_client.post("/p/acme/waitlist/confirm", data={"t": token[:-2] + "00"})
    assert bad.status_code == 404


def test_skip_ahead_is_capped_and_recorded(client, program) -> None:  # type: ignore[no-untyped-def]
    set_settings(
        program.slug,
        mode="waitlist",
        waitlist_skip_places=3,
        waitlist_skip_cap=5,
        waitlist_protected_top=2,
    )
    for i in range(10):
        _join(client, f"p{i}@example.com")
    climber = _join(client, "climber@example.com")  # position 11
    code = climber["referral_code"]
    for i in range(4):
        _join(client, f"friend{i}@example.com", referral_code=code)
    assert _position(client, "climber@example.com") == 11
    # Unconfirmed referrals do not count.
    _confirm("friend0@example.com")
    assert _position(client, "climber@example.com") == 8  # up 3
    _confirm("friend1@example.com")
    assert _position(client, "climber@example.com") == 6  # up 2 more: the cap is 5 places
    _confirm("friend2@example.com")
    assert _position(client, "climber@example.com") == 6  # capped
    detail = client.get("/api/v1/waitlist/climber@example.com").json()
    assert detail["places_gained"] == 5 and detail["confirmed_referrals"] == 3
    reasons = [(h["reason"], h["old_position"], h["new_position"]) for h in detail["history"]]
    assert reasons == [
        ("joined", None, 11),
        ("skip_ahead", 11, 8),
        ("skip_ahead", 8, 6),
        ("skip_capped", 6, 6),
    ]
    # Everyone passed has it on record, and moved back one place.
    passed = client.get("/api/v1/waitlist/p7@example.com").json()
    assert passed["position"] == 9
    assert [(h["reason"], h["old_position"], h["new_position"]) for h in passed["history"]] == [
        ("joined", None, 8),
        ("passed", 8, 9),
    ]
    # Early joiners keep their place: positions 1..5 are where they were.
    assert [_position(client, f"p{i}@example.com") for i in range(5)] == [1, 2, 3, 4, 5]
    # Confirming twice credits once.
    _confirm("friend0@example.com")
    assert client.get("/api/v1/waitlist/climber@example.com").json()["confirmed_referrals"] == 3


def test_protected_top_cannot_be_skipped_into(client, program) -> None:  # type: ignore[no-untyped-def]
    set_settings(
        program.slug,
        mode="waitlist",
        waitlist_skip_places=100,
        waitlist_skip_cap=100,
        waitlist_protected_top=3,
    )
    for i in range(5):
        _join(client, f"p{i}@example.com")
    climber = _join(client, "climber@example.com")
    _join(client, "friend@example.com", referral_code=climber["referral_code"])
    _confirm("friend@example.com")
    assert _position(client, "climber@example.com") == 4
    assert [_position(client, f"p{i}@example.com") for i in range(3)] == [1, 2, 3]


def test_skip_blocked_by_the_protected_top_moves_nothing_and_spends_no_cap(client, program) -> None:  # type: ignore[no-untyped-def]
    """Right behind the protected top there is no one to pass: the climb is recorded as
    protected, and neither the rank nor the cap changes."""
    set_settings(
        program.slug,
        mode="waitlist",
        waitlist_skip_places=3,
        waitlist_skip_cap=3,
        waitlist_protected_top=2,
    )
    for i in range(2):
        _join(client, f"p{i}@example.com")
    climber = _join(client, "climber@example.com")  # position 3, right behind the top 2
    _join(client, "late@example.com")
    _join(client, "friend@example.com", referral_code=climber["referral_code"])
    _confirm("friend@example.com")
    detail = client.get("/api/v1/waitlist/climber@example.com").json()
    assert detail["position"] == 3 and detail["places_gained"] == 0
    assert [(h["reason"], h["old_position"], h["new_position"]) for h in detail["history"]] == [
        ("joined", None, 3),
        ("skip_protected", 3, 3),
    ]


def test_release_top_n(client, waitlist_program, sink, webhook_calls) -> None:  # type: ignore[no-untyped-def]
    for i in range(6):
        _join(client, f"p{i}@example.com")
    for i in (0, 2, 3, 5):
        _confirm(f"p{i}@example.com")
    r = client.post("/api/v1/waitlist/release", json={"count": 3})
    assert r.status_code == 200, r.text
    released = r.json()["released"]
    assert [x["email"] for x in released] == ["p0@example.com", "p2@example.com", "p3@example.com"]
    assert [x["position"] for x in released] == [1, 3, 4]
    # The unconfirmed ones wait, now at the head of the queue.
    assert _position(client, "p1@example.com") == 1 and _position(client, "p5@example.com") == 3
    entry = client.get("/api/v1/waitlist/p2@example.com").json()
    assert entry["status"] == "released" and entry["position"] is None
    assert entry["invite_code"] == released[1]["invite_code"]
    assert entry["history"][-1]["reason"] == "released"
    # Each got an invitation by e-mail; one webhook lists them.
    _wait_for_text(sink, "p2@example.com", released[1]["invite_url"])
    events = [p for t, p in webhook_calls if t == "waitlist.released"]
    assert len(events) == 1 and events[0]["count"] == 3
    assert [e["email"] for e in events[0]["entries"]] == [x["email"] for x in released]
    # The invite is single-use and lets them in.
    code = released[0]["invite_code"]
    invite = client.get(f"/api/v1/invites/{code}").json()
    assert invite["uses"] == 1 and invite["issuer"] is None
    r = client.post(
        f"/api/v1/invites/{code}/redeem", json={"external_id": "p0", "email": "p0@example.com"}
    )
    assert r.status_code == 201
    joined = client.get("/api/v1/waitlist/p0@example.com").json()
    assert joined["status"] == "joined"
    # The member keeps the referral link they shared while waiting.
    assert (
        client.get("/api/v1/members/p0/referrals").json()["referral_code"]
        == joined["referral_code"]
    )
    r = client.post("/api/v1/waitlist/release", json={"count": 0})
    assert r.status_code == 422 and "count" in r.json()["error"]["fields"]
    listed = client.get("/api/v1/waitlist", params={"status": "released"}).json()
    assert {e["email"] for e in listed} == {"p2@example.com", "p3@example.com"}


def test_public_waitlist_pages(client, anon_client, waitlist_program) -> None:  # type: ignore[no-untyped-def]
    ann = _join(client, "ann@example.com")
    page = anon_client.get(f"/p/acme/waitlist?ref={ann['referral_code']}")
    assert page.status_code == 200 and ann["referral_code"] in page.text
    r = anon_client.post(
        "/p/acme/waitlist",
        data={"email": "bob@example.com", "ref": ann["referral_code"]},
        follow_redirects=False,
    )
    assert r.status_code == 303
    me = anon_client.get(r.headers["location"])
    assert me.status_code == 200 and "#2" in me.text and 'data-testid="referral-link"' in me.text
    # Joining again with someone's address tells nothing about their place.
    again = anon_client.post("/p/acme/waitlist", data={"email": "ann@example.com"})
    assert again.status_code == 200 and "#1" not in again.text
    bad = anon_client.post("/p/acme/waitlist", data={"email": "nope"})
    assert bad.status_code == 422 and 'data-testid="waitlist-error"' in bad.text
    assert anon_client.get("/p/acme/waitlist/me?t=1.deadbeef").status_code == 404


def test_waitlist_in_korean(client, anon_client, waitlist_program) -> None:  # type: ignore[no-untyped-def]
    page = anon_client.get("/p/acme/waitlist", headers={"accept-language": "ko-KR"})
    assert page.status_code == 200 and "대기" in page.text


def test_erasure_forgets_who_the_entry_became(client, waitlist_program, sink) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from budding.referrals.models import WaitlistChange

    _join(client, "wes@example.com")
    _confirm("wes@example.com")
    code = client.post("/api/v1/waitlist/release", json={"count": 1}).json()["released"][0][
        "invite_code"
    ]
    r = client.post(
        f"/api/v1/invites/{code}/redeem",
        json={"external_id": "crm-88412", "email": "wes@example.com"},
    )
    assert r.status_code == 201, r.text
    with unit_of_work() as s:
        details = list(s.scalars(select(WaitlistChange.detail)))
    assert "crm-88412" in details  # the history says which member the entry became
    assert client.delete("/api/v1/members/crm-88412").status_code in (200, 204)
    with unit_of_work() as s:
        changes = list(s.execute(select(WaitlistChange.reason, WaitlistChange.detail)))
    assert all("crm-88412" not in detail for _, detail in changes), changes
    assert "joined_program" in {reason for reason, _ in changes}  # the history itself stays
