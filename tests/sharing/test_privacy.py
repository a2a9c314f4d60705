"""The share kit's part of a member's erasure: a tell-a-friend e-mail the mail server
refused leaves the friend's address in its job's error; erasure forgets it there too, and
the erased member's queued e-mails are never sent."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from budding.core import jobs
from budding.core.db import unit_of_work
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
    assert any(FRIEND in t for t in _job_texts())  # the refusal, waiting for a retry

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
