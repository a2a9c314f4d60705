"""Tell a friend: the e-mail Budding sends for a member, received by a real SMTP server
(aiosmtpd), and the daily per-member limit held by the database under concurrency."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from budding.core import jobs
from budding.core.db import unit_of_work
from budding.sharing.models import TellAFriendMail
from tests.mailsink import MailSink, mail_sink
from tests.sharing.conftest import add_member

TELL = "/api/v1/members/{}/tell-a-friend"


@pytest.fixture
def smtp() -> Iterator[MailSink]:
    with mail_sink(refuse=("bounce@example.net",)) as sink, jobs.immediate():
        yield sink


def _rows() -> list[TellAFriendMail]:
    with unit_of_work() as s:
        return list(s.scalars(select(TellAFriendMail).order_by(TellAFriendMail.id)))


def test_the_friend_receives_the_invitation(client, smtp, ann) -> None:
    r = client.post(
        TELL.format("ann"),
        json={"to": "Friend@Example.org", "note": "You'll love the tea.", "locale": "es"},
    )
    assert r.status_code == 202, r.text
    assert r.json() == {"status": "queued", "sent_today": 1, "remaining_today": 4}
    message = smtp.wait_for("friend@example.org")
    kit = client.get("/api/v1/members/ann/share-kit").json()
    text = MailSink.text(message)
    assert message["Subject"] == "Ann Lee cree que te va a gustar Acme"
    assert message["Reply-To"] == "Ann Lee <ann@example.com>"
    assert f"{kit['link']}?ch=tell_a_friend" in text
    assert "You'll love the tea." in text
    assert "Recibes este correo una sola vez porque Ann Lee escribió tu dirección en Acme" in text
    (row,) = _rows()
    assert row.status == "sent" and row.recipient is None and row.sent_at is not None
    # The send is a share_sent step of the funnel.
    log = client.get("/api/v1/events", params={"type": "share_sent"}).json()["events"]
    assert log[0]["properties"]["channel"] == "tell_a_friend"


def test_daily_limit_holds_under_concurrency(live_server, smtp, program, api_key) -> None:
    add_member("ann", name="Ann", email="ann@example.com")
    with unit_of_work() as s:
        from budding.programs.service import get_program
        from budding.sharing.service import update_settings

        update_settings(s, get_program(s, "acme"), {"tell_a_friend_daily_limit": 3})
    headers = {"Authorization": f"Bearer {api_key}"}

    def send(i: int) -> httpx.Response:
        return httpx.post(
            live_server.url + TELL.format("ann"),
            json={"to": f"friend{i}@example.org"},
            headers=headers,
            timeout=60,
        )

    with ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(pool.map(send, range(24)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [202] * 3 + [429] * 21, codes
    refused = next(r for r in responses if r.status_code == 429)
    assert int(refused.headers["retry-after"]) > 0
    assert refused.json()["error"]["code"] == "daily_limit"
    assert refused.json()["error"]["fields"] == {"to": "daily limit reached"}
    rows = _rows()
    assert sorted(r.slot for r in rows) == [1, 2, 3]
    accepted = [i for i, r in enumerate(responses) if r.status_code == 202]
    for i in accepted:
        smtp.wait_for(f"friend{i}@example.org")
    assert len(smtp.messages) == 3


def test_one_friend_once_a_day_even_concurrently(live_server, smtp, program, api_key) -> None:
    add_member("ann", name="Ann", email="ann@example.com")
    headers = {"Authorization": f"Bearer {api_key}"}

    def send(_: int) -> int:
        return httpx.post(
            live_server.url + TELL.format("ann"),
            json={"to": "same@example.org"},
            headers=headers,
            timeout=60,
        ).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = sorted(pool.map(send, range(8)))
    assert codes == [202] + [409] * 7
    smtp.wait_for("same@example.org")
    with unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(TellAFriendMail)) == 1


def test_refusals_name_the_reason(client, smtp, ann) -> None:
    r = client.post(TELL.format("ann"), json={"to": "not an address"})
    assert r.status_code == 422 and "to" in r.json()["error"]["fields"]
    r = client.post(TELL.format("ann"), json={"to": "ann@example.com"})
    assert r.status_code == 422 and r.json()["error"]["fields"] == {"to": "is your own address"}
    r = client.post(TELL.format("ann"), json={"to": "x@example.org", "note": "n" * 301})
    assert r.status_code == 422 and "note" in r.json()["error"]["fields"]
    client.patch("/api/v1/sharing/settings", json={"tell_a_friend_daily_limit": 0})
    r = client.post(TELL.format("ann"), json={"to": "x@example.org"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "tell_a_friend_disabled"
    assert _rows() == []


def test_a_refused_mail_fails_and_keeps_its_slot(client, smtp, ann) -> None:
    r = client.post(TELL.format("ann"), json={"to": "bounce@example.net"})
    assert r.status_code == 202
    (row,) = _rows()
    assert row.status == "failed" and "refused the recipient" in row.error
    with unit_of_work() as s:
        job = s.scalar(
            select(jobs.JobRecord).where(jobs.JobRecord.kind == "sharing.deliver_tell_a_friend")
        )
        assert job is not None and job.status == jobs.QUEUED and job.attempts == 1  # a retry waits
    r = client.post(TELL.format("ann"), json={"to": "bounce@example.net"})
    assert r.status_code == 409  # still told today: no resend by asking again


def test_the_portal_form(portal, smtp, ann) -> None:
    page = portal.get("/p/acme/invite")
    csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    share_id = page.text.split('data-share-id="', 1)[1].split('"', 1)[0]
    r = portal.post(
        "/p/acme/invite/tell",
        data={"csrf_token": csrf, "to": "pal@example.org", "note": "", "share_id": share_id},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"].endswith("/invite?done=sent#tell")
    assert "Acme" in smtp.wait_for("pal@example.org")["Subject"]
    again = portal.post("/p/acme/invite/tell", data={"csrf_token": csrf, "to": "pal@example.org"})
    assert again.status_code == 422 and "You already invited this friend today." in again.text
    assert 'value="pal@example.org"' in again.text  # the form keeps what was typed
    assert portal.post("/p/acme/invite/tell", data={"to": "x@example.org"}).status_code == 403


def test_export_and_erase(client, smtp, ann) -> None:
    client.post(TELL.format("ann"), json={"to": "pal@example.org", "note": "hi pal"})
    exported: dict[str, Any] = client.get("/api/v1/members/ann/export").json()["sharing"]
    assert exported["tell_a_friend"][0]["note"] == "hi pal"
    assert exported["tell_a_friend"][0]["to"] is None  # sent: the address is gone
    assert any(s["type"] == "share_sent" for s in exported["share_steps"])
    assert client.delete("/api/v1/members/ann").status_code == 204
    (row,) = _rows()
    assert row.note == ""
