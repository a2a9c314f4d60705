"""Fixtures of the share-kit tests: members, a signed-in portal client, referrals."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from budding.core.auth import MEMBER_COOKIE, member_cookie_value
from budding.core.db import unit_of_work
from budding.members import service as members
from budding.members.models import Member
from budding.programs.service import get_program

referrals = pytest.importorskip(
    "budding.referrals.service", reason="the referrals capability is not installed"
)


def add_member(
    external_id: str,
    *,
    slug: str = "acme",
    name: str = "",
    email: str | None = None,
    locale: str | None = None,
) -> Member:
    with unit_of_work() as s:
        data: dict[str, Any] = {"external_id": external_id, "name": name}
        if email:
            data["email"] = email
        if locale:
            data["locale"] = locale
        member, _ = members.upsert_member(s, get_program(s, slug), data)
        return member


def refer(
    referrer: Member, referee: Member, at: datetime, channel: str | None = None, slug: str = "acme"
) -> None:
    with unit_of_work() as s:
        program = get_program(s, slug)
        fact = referrals.record_referral(
            s,
            program,
            referrer_id=referrer.id,
            referee_id=referee.id,
            source="link",
            signed_up_at=at,
            channel=channel,
        )
        assert fact is not None


@pytest.fixture
def ann(program: Any) -> Member:
    return add_member("ann", name="Ann Lee", email="ann@example.com")


def portal_login(client: Any, program_id: int, member: Member, slug: str = "acme") -> None:
    client.cookies.set(MEMBER_COOKIE, member_cookie_value(program_id, member.id), path=f"/p/{slug}")


@pytest.fixture
def portal(anon_client: Any, program: Any, ann: Member) -> Iterator[Any]:
    """A browser-like client signed in to the portal as Ann."""
    portal_login(anon_client, program.id, ann)
    yield anon_client
