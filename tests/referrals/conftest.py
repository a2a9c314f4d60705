"""Helpers for the referrals tests: members, settings and program look-ups, each in its
own unit of work like the factories."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from budding.core.db import unit_of_work
from budding.members import service as members
from budding.programs import service as programs


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def settings_form(csrf: str, **changes: str) -> dict[str, str]:
    """The dashboard's referral settings form, valid, with ``changes``."""
    return {
        "csrf_token": csrf,
        "mode": "open",
        "invite_quota": "3",
        "code_uses": "1",
        "attribution_window_days": "30",
        "attribution_model": "last_touch",
        "conversion_event": "purchase",
        "waitlist_skip_places": "5",
        "waitlist_skip_cap": "50",
        "waitlist_protected_top": "10",
        **changes,
    }


def set_settings(slug: str, **values: Any) -> None:
    from budding.referrals.config import update_referral_settings

    with unit_of_work() as session:
        update_referral_settings(session, programs.get_program(session, slug), values)


@pytest.fixture
def make_member(program: Any) -> Callable[..., int]:
    """Create a member of ``program``; returns its id."""

    def make(external_id: str, email: str | None = None, name: str = "") -> int:
        with unit_of_work() as session:
            prog = programs.get_program(session, program.slug)
            data: dict[str, Any] = {"external_id": external_id, "name": name}
            if email:
                data["email"] = email
            member, _ = members.upsert_member(session, prog, data)
            return member.id

    return make


@pytest.fixture
def reward_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every call the referrals capability makes to ``rewards.reward_referral`` (still
    passed through to the rewards capability when it is installed)."""
    from budding.referrals import integrations

    calls: list[dict[str, Any]] = []
    original = integrations.reward_referral

    def spy(session: Any, program: Any, **kw: Any) -> None:
        calls.append(kw)
        original(session, program, **kw)

    monkeypatch.setattr(integrations, "reward_referral", spy)
    return calls


@pytest.fixture
def webhook_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """Every webhook the referrals capability emits (still passed through)."""
    from budding.referrals import integrations

    calls: list[tuple[str, dict[str, Any]]] = []
    original = integrations.emit

    def spy(session: Any, program: Any, event_type: str, payload: dict[str, Any]) -> None:
        calls.append((event_type, payload))
        original(session, program, event_type, payload)

    monkeypatch.setattr(integrations, "emit", spy)
    return calls
