"""The demo community: complete, deterministic, idempotent, and built through the services."""

from __future__ import annotations

import json
import os
import re
import sys
import time
import types
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import func, select

from budding.core.db import unit_of_work
from budding.core.i18n import LOCALES
from budding.demo.build import build_demo, capability_rng
from budding.demo.community import Community
from budding.demo.simulate import simulate
from budding.members.models import Event, Member
from budding.members.schemas import BUILTIN_EVENT_TYPES

SMALL: dict[str, Any] = {"members": 150, "days": 30, "seed": 11}
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


DEMO_MEMBER = re.compile(r"u\d{5,}")


def _stored(program_id: int) -> dict[str, Any]:
    """What the database holds of the community itself (capabilities' demo modules may add
    members and events of their own), read straight from the tables."""
    own = (Event.program_id == program_id) & Event.event_id.like("demo-%")
    with unit_of_work() as session:
        members = [
            m
            for m in session.scalars(select(Member).where(Member.program_id == program_id))
            if DEMO_MEMBER.fullmatch(m.external_id)
        ]
        by_type = dict(
            session.execute(select(Event.type, func.count()).where(own).group_by(Event.type)).all()
        )
        targeted = dict(
            session.execute(
                select(Event.type, func.count())
                .where(own, Event.target_member_id.is_not(None))
                .group_by(Event.type)
            ).all()
        )
        props = {
            t: [p for (p,) in session.execute(select(Event.properties).where(own, Event.type == t))]
            for t in ("purchase", "refund")
        }
        return {
            "members": len(members),
            "locales": {m.locale for m in members},
            "names": {(m.locale, m.name) for m in members},
            "created": sorted(m.created_at for m in members),
            "consent": {m.marketing_consent for m in members},
            "by_type": by_type,
            "own_events": sum(by_type.values()),
            "targeted": targeted,
            "props": props,
        }


def test_small_demo_is_complete_and_believable(database_url: str) -> None:
    with unit_of_work() as session:
        info = build_demo(session, slug="demo", now=NOW, **SMALL)
    assert info.built and info.members == 150 and info.events > 1000
    stored = _stored(info.program_id)
    assert stored["members"] == 150
    assert stored["own_events"] == info.events  # capabilities may add events of their own
    assert stored["locales"] == set(LOCALES)
    assert set(BUILTIN_EVENT_TYPES) <= set(stored["by_type"])
    # interactions point at another member
    for kind in ("like", "comment", "reply", "mention", "click", "invite_sent"):
        assert stored["targeted"].get(kind, 0) > 0, kind
    assert 0 < stored["targeted"].get("share", 0) < stored["by_type"]["share"]
    # names fit their locale
    scripts = {"ko": r"[\uac00-\ud7a3]", "zh_Hans": r"[\u4e00-\u9fff]"}
    for locale, name in stored["names"]:
        if locale in scripts:
            assert re.search(scripts[locale], name), (locale, name)
        else:
            assert re.fullmatch(r"[A-Za-zÀ-ÿ' ]+", name), (locale, name)
    # money: amounts and currencies; every refund refers to an order
    orders = {p["order_id"]: p for p in stored["props"]["purchase"]}
    assert all(p["amount"] > 0 and p["currency"] for p in orders.values())
    assert all(r["order_id"] in orders for r in stored["props"]["refund"])
    # members joined over the window, not all today; some consented to marketing
    assert stored["created"][0] < NOW - timedelta(days=20)
    assert stored["created"][-1] <= NOW
    assert stored["consent"] == {True, False}


def test_same_seed_same_community_and_forest(database_url: str) -> None:
    with unit_of_work() as session:
        a = build_demo(session, slug="demo-a", now=NOW, **SMALL)
    with unit_of_work() as session:
        b = build_demo(session, slug="demo-b", now=NOW + timedelta(days=3), **SMALL)
        c = build_demo(session, slug="demo-c", now=NOW, **{**SMALL, "seed": 12})
    assert a.community and b.community and c.community
    assert a.events == b.events and a.members == b.members
    assert a.community.parent.tolist() == b.community.parent.tolist()
    assert a.community.generation.tolist() == b.community.generation.tolist()
    assert a.community.locales == b.community.locales
    assert _stored(a.program_id)["by_type"] == _stored(b.program_id)["by_type"]
    assert a.community.parent.tolist() != c.community.parent.tolist()


def test_referral_forest_is_a_subcritical_branching_process() -> None:
    sim = simulate(2000, 180, 7, NOW)
    parent, gen = sim.parent, sim.generation
    referred = np.flatnonzero(parent >= 0)
    assert (parent[referred] < referred).all()  # a referrer joined first
    assert (gen[referred] == gen[parent[referred]] + 1).all()
    assert (gen[parent < 0] == 0).all()
    signup = [m.signup_at for m in sim.members]
    assert signup == sorted(signup)
    assert all(sim.invited_at[i] is not None for i in referred)
    roots = int((parent < 0).sum())
    assert 0.25 * 2000 < roots < 0.6 * 2000  # several roots from marketing, most joined by WOM
    # offspring mean per generation stays below 1: every tree dies out
    for g in range(3):
        at_g = int((gen == g).sum())
        assert int((gen == g + 1).sum()) < at_g
    # heavy-tailed activity: the busiest 1 % do far more than the median member
    per_member = np.bincount(
        [int(e["member"][1:]) - 1 for e in sim.events], minlength=len(sim.members)
    )
    assert np.percentile(per_member, 99) > 8 * np.median(per_member)


def test_rerun_reuses_the_program(database_url: str) -> None:
    with unit_of_work() as session:
        first = build_demo(session, slug="demo", now=NOW, **SMALL)
    with unit_of_work() as session:
        again = build_demo(session, slug="demo", now=NOW + timedelta(hours=5), **SMALL)
    with unit_of_work() as session:
        other = build_demo(session, slug="demo", members=60, days=10, seed=1)
    assert not again.built and not other.built and again.community is None
    assert (again.members, again.events) == (first.members, first.events)
    assert (other.members, other.events) == (first.members, first.events)
    assert again.admin_password == first.admin_password
    assert again.api_key == first.api_key
    stored = _stored(first.program_id)
    assert stored["members"] == 150
    assert stored["own_events"] == first.events
    assert first.credentials_path.stat().st_mode & 0o077 == 0


def test_a_real_program_is_never_taken_over(database_url: str) -> None:
    from budding.core.errors import Conflict
    from tests.factories import make_program

    make_program("demo")
    with pytest.raises(Conflict), unit_of_work() as session:
        build_demo(session, slug="demo", members=20, days=5)


def test_the_printed_login_and_key_work(database_url: str, app: Any) -> None:
    from fastapi.testclient import TestClient

    from budding.accounts import service as accounts

    with unit_of_work() as session:
        info = build_demo(session, slug="demo", members=40, days=20, seed=2)
    with unit_of_work() as session:
        login = accounts.login(
            session, email=info.admin_email, password=info.admin_password, ip="127.0.0.1"
        )
        assert login is not None and login.user.role == "owner"
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {info.api_key}"
        r = client.get("/api/v1/members", params={"limit": 500})
        assert r.status_code == 200
        assert len(r.json()["members"]) == 40


def test_capabilities_contribute_with_their_own_stream(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Community, float]] = []

    def contribute(session: Any, program: Any, community: Community, rng: Any) -> None:
        assert program.id == community.program.id
        calls.append((community, float(rng.random())))

    module = types.SimpleNamespace(contribute=contribute)
    monkeypatch.setattr("budding.demo.build.capability_modules", lambda kind: [("fake", module)])
    with unit_of_work() as session:
        build_demo(session, slug="demo", now=NOW, **SMALL)
    ((community, draw),) = calls
    assert draw == float(capability_rng(SMALL["seed"], "fake").random())
    assert community.size == 150 and len(community.member_ids) == 150
    assert community.external_ids[0] == "u00001"
    assert community.index_of("u00002") == 1
    for parent, child in community.referrals():
        assert community.signup_at[parent] < community.signup_at[child]
        assert child in community.children(parent)
        invited = community.invited_at[child]
        assert invited is not None and invited <= community.signup_at[child]
    assert community.purchases and community.shares
    assert community.first_purchase_at(community.purchases[0].member) is not None


def test_cli_demo_without_serving(database_url: str) -> None:
    from typer.testing import CliRunner

    from budding.core.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["demo", "--no-serve", "--members", "100"])
    assert result.exit_code == 0, result.output
    assert "100 members" in result.output
    assert "admin login: owner@demo.example.com" in result.output
    with unit_of_work() as session:
        before = session.scalar(select(func.count()).select_from(Member))
    again = runner.invoke(app, ["demo", "--no-serve", "--members", "100"])
    assert again.exit_code == 0, again.output
    with unit_of_work() as session:
        after = session.scalar(select(func.count()).select_from(Member))
    assert before is not None and after == before >= 100


def test_served_demo_runs_its_background_jobs(tmp_path: Path) -> None:
    """``budding demo`` is the README's one command: a campaign simulation asked for in it
    stayed "queued" for good, as no worker consumed the job queue (nor sent its e-mails or
    webhooks). It now runs one beside the server."""
    from tests.conftest import free_port, server_process

    env = {k: v for k, v in os.environ.items() if not k.startswith("BUDDING_")}
    env["BUDDING_DATA_DIR"] = str(tmp_path)
    port = free_port()
    budding = str(Path(sys.executable).parent / "budding")
    args = [budding, "demo", "--members", "60", "--days", "20", "--port", str(port)]
    with server_process(args, env, port) as base:
        key = json.loads((tmp_path / "demo" / "demo.json").read_text())["api_key"]
        auth = {"Authorization": f"Bearer {key}"}
        plan = {"plans": [{"name": "top", "strategy": "followers", "k": 3}], "runs": 64}
        started = httpx.post(f"{base}/api/v1/influence/simulations", json=plan, headers=auth)
        assert started.status_code == 202, started.text
        status_url = base + started.json()["status_url"]
        deadline = time.monotonic() + 90
        while (job := httpx.get(status_url, headers=auth).json())["status"] != "succeeded":
            assert job["status"] in ("queued", "running"), job
            assert time.monotonic() < deadline, f"the simulation was never run: {job}"
            time.sleep(0.5)
        assert job["result"]["plans"][0]["reach"]["mean"] > 0


def test_the_demo_ranks_its_opinion_leaders_while_it_is_built(database_url: str) -> None:
    # The dashboard's first "Opinion leaders" page then reads a kept ranking: it waits
    # neither for the ranking nor for numba to compile its kernels (~18 s when new).
    from budding.influence import cache, service
    from budding.programs.service import get_program

    with unit_of_work() as session:
        info = build_demo(session, slug="demo", now=NOW, **SMALL)
    with unit_of_work() as session:
        (kept,) = cache.kept(session, info.program_id)
        assert kept["members"] == 150 and kept["connections"] > 0
        ranked = service.program_ranking(session, get_program(session, "demo"), refresh=False)
        assert ranked.current and ranked.members == 150
