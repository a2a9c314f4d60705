"""The share kit's part of a member's erasure: a tell-a-friend e-mail the mail server
refused leaves the friend's address in its job's error; erasure forgets it there too, and
the erased member's queued e-mails are never sent."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from budding.core import jobs
from budding.core.db import unit_of_work, utcnow
from budding.jobs.models import JobRecord
from budding.sharing.models import TellAFriendMail
from tests.mailsink import MailSink, mail_sink

FRIEND = "pal@example.net"


@pytest.fixture
def smtp() -> Iterator[MailSink]:
    with mail_sink(refuse=(FRIEND,)) as sink, jobs.immediate():
        yield sink


def _job_texts() -> list[str]:
    with unit_of_work() as s:
        rows = s.execute(select(JobRecord.error, JobRecord.message, JobRecord.result)).all()
        return [str(v) for row in rows for v in row if v]


def test_erasure_forgets_the_friends_address_in_job_errors(client, smtp, ann) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/api/v1/members/ann/tell-a-friend", json={"to": FRIEND, "note": "hi"})
    assert r.status_code == 202, r.text
    assert any("550" in t for t in _job_texts())  # the refusal, waiting for a retry

    assert client.delete("/api/v1/members/ann").status_code == 204
    assert not any(FRIEND in t for t in _job_texts())
    with unit_of_work() as s:
        (mail,) = s.scalars(select(TellAFriendMail))
        assert (mail.recipient, mail.note, mail.status) == (None, "", "failed")
        job_ids = list(s.scalars(select(JobRecord.id)))
    # The retry finds nothing to send and records no new error.
    for job_id in job_ids:
        jobs.execute_job(job_id)
    assert smtp.envelopes == [] and not any(FRIEND in t for t in _job_texts())


def _run_retries_until_done() -> None:
    """Run the tell-a-friend job's retries now instead of after their backoff."""
    for _ in range(10):
        with unit_of_work() as s:
            job = s.scalar(
                select(JobRecord).where(JobRecord.kind == "sharing.deliver_tell_a_friend")
            )
            assert job is not None
            if job.status != jobs.QUEUED:
                return
            job.run_after = utcnow()
            job_id = job.id
        jobs.execute_job(job_id)
    raise AssertionError("the job never finished")


def test_a_refusal_is_kept_without_the_friends_address(client, smtp, ann, caplog) -> None:  # type: ignore[no-untyped-def]
    """The mail server's refusal quotes the friend's address; the row, the job and the log
    keep the SMTP code and reason without it, also once the job gives up."""
    caplog.set_level(logging.INFO)
    r = client.post("/api/v1/members/ann/tell-a-friend", json={"to": FRIEND})
    assert r.status_code == 202, r.text
    _run_retries_until_done()

    with unit_of_work() as s:
        (mail,) = s.scalars(select(TellAFriendMail))
        job = s.scalar(select(JobRecord).where(JobRecord.kind == "sharing.deliver_tell_a_friend"))
        assert job is not None and job.status == jobs.FAILED and job.attempts == job.max_attempts
        assert (mail.status, mail.recipient) == ("failed", None)
        for error in (mail.error, job.error or ""):
            assert "550 5.1.1 no such mailbox here" in error and "refused the recipient" in error
            assert FRIEND not in error.lower()
    # Budding's log (the test's SMTP server logs its own side, under mail.log).
    ours = [caplog.handler.format(r) for r in caplog.records if r.name.startswith("budding")]
    assert any("550" in line for line in ours)
    assert not any(FRIEND in line.lower() for line in ours)
    assert not any(FRIEND in t.lower() for t in _job_texts())


def test_erasing_the_friend_stops_the_mail_and_blanks_it(client, ann) -> None:  # type: ignore[no-untyped-def]
    """The friend is a member and is erased before the e-mail goes out: it never goes, and
    Ann's note loses the friend's name and address; Ann keeps her row (and its slot)."""
    pal = "pat@example.org"
    client.post("/api/v1/members", json={"external_id": "pal", "email": pal, "name": "Pat Al"})
    with mail_sink() as sink:  # no worker: the e-mail stays queued
        r = client.post(
            "/api/v1/members/ann/tell-a-friend", json={"to": pal, "note": f"Pat Al, see ({pal})"}
        )
        assert r.status_code == 202, r.text
        assert client.delete("/api/v1/members/pal").status_code == 204
        with unit_of_work() as s:
            (mail,) = s.scalars(select(TellAFriendMail))
            assert (mail.recipient, mail.status) == (None, "failed")
            assert mail.note == "(erased), see ((erased))"
            job_ids = list(s.scalars(select(JobRecord.id)))
        for job_id in job_ids:
            jobs.execute_job(job_id)
        assert sink.envelopes == []
