"""Fixtures of the member portal tests: a real SMTP server, and Ann, a member of acme."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.mailsink import MailSink, mail_sink
from tests.members.test_pages import add_member


@pytest.fixture
def smtp() -> Iterator[MailSink]:
    with mail_sink() as sink:
        yield sink


@pytest.fixture
def ann(program) -> str:
    add_member(external_id="ann", name="Ann", email="ann@example.com")
    return "ann@example.com"
