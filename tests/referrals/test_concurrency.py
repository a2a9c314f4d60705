"""Concurrency: neither the uses of a code nor a member's quota are ever overspent.

The live tests run against a real uvicorn server on whichever database the suite
uses (SQLite by default, PostgreSQL with ``BUDDING_TEST_DATABASE_URL``); the
service-level tests take PostgreSQL's row locks head-on with a barrier.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from budding.core.db import unit_of_work
from budding.members import service as members
from budding.programs import service as programs
from budding.referrals import service
from tests.factories import make_api_key

N = 100


def _client(url: str, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=url,
        headers={"Authorization": f"Bearer {key}"},
        timeout=120,
        limits=httpx.Limits(max_connections=N),
    )


def _run(n: int, fn: Any) -> list[Any]:
    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(fn, range(n)))


def test_100_concurrent_redemptions_of_a_single_use_code_make_one_member(
    live_server, program
) -> None:  # type: ignore[no-untyped-def]
    key = make_api_key(program.id)
    with _client(live_server.url, key) as http:
        assert http.post("/api/v1/members", json={"external_id": "ann"}).status_code == 201
        code = http.post("/api/v1/members/ann/invites", json={"count": 1}).json()["codes"][0][
            "code"
        ]
        barrier = threading.Barrier(N)

        def redeem(i: int) -> int:
            barrier.wait()
            r = http.post(
                f"/api/v1/invites/{code}/redeem",
                json={"external_id": f"friend-{i}", "email": f"friend-{i}@example.com"},
            )
            return r.status_code

        statuses = Counter(_run(N, redeem))
        assert statuses == {201: 1, 410: N - 1}, statuses
        listed = http.get("/api/v1/members", params={"limit": 500}).json()["members"]
        assert len(listed) == 2  # ann and the one friend
        invite = http.get(f"/api/v1/invites/{code}").json()
        assert invite["used"] == 1 and len(invite["redeemed_by"]) == 1
        tree = http.get("/api/v1/fission-tree").json()
        assert tree["generation_sizes"] == {"1": 1}


def test_100_concurrent_invite_requests_never_exceed_the_quota(live_server, program) -> None:  # type: ignore[no-untyped-def]
    key = make_api_key(program.id)
    with _client(live_server.url, key) as http:
        assert http.post("/api/v1/members", json={"external_id": "ann"}).status_code == 201
        barrier = threading.Barrier(N)

        def ask(_: int) -> int:
            barrier.wait()
            return http.post("/api/v1/members/ann/invites", json={"count": 1}).status_code

        statuses = Counter(_run(N, ask))
        assert statuses == {201: 3, 409: N - 3}, statuses
        summary = http.get("/api/v1/members/ann/invites").json()
        assert summary["issued"] == 3 and len(summary["codes"]) == 3 and summary["left"] == 0


def _threads(n: int, fn: Any) -> list[Any]:
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = fn(i)
        except Exception as exc:  # the outcome under test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


@pytest.mark.postgres
def test_row_locks_on_postgres(postgres, program, make_member) -> None:  # type: ignore[no-untyped-def]
    """Service calls in separate transactions racing on PostgreSQL's row locks."""
    ann = make_member("ann", "ann@example.com")
    with unit_of_work() as session:
        prog = programs.get_program(session, program.slug)
        code = service.issue_invites(session, prog, members.get_member_by_id(session, ann), 1)[
            0
        ].code

    def redeem(i: int) -> str:
        with unit_of_work() as session:
            prog = programs.get_program(session, program.slug)
            service.redeem_invite(
                session, prog, code, {"external_id": f"f{i}", "email": f"f{i}@example.com"}
            )
        return "ok"

    outcomes = Counter(r if isinstance(r, str) else type(r).__name__ for r in _threads(30, redeem))
    assert outcomes == {"ok": 1, "InviteUsedUp": 29}, outcomes

    def issue(_: int) -> str:
        with unit_of_work() as session:
            prog = programs.get_program(session, program.slug)
            service.issue_invites(session, prog, members.get_member_by_id(session, ann), 1)
        return "ok"

    outcomes = Counter(r if isinstance(r, str) else type(r).__name__ for r in _threads(30, issue))
    assert outcomes == {"ok": 2, "QuotaExceeded": 28}, outcomes

    def grant(_: int) -> str:
        with unit_of_work() as session:
            prog = programs.get_program(session, program.slug)
            service.grant_invites(session, prog, ann, 1, reason="reward", key="reward:7")
        return "ok"

    assert all(r == "ok" for r in _threads(20, grant))
    with unit_of_work() as session:
        prog = programs.get_program(session, program.slug)
        summary = service.invite_summary(session, prog, members.get_member_by_id(session, ann))
        assert summary.quota == 4 and summary.issued == 3


@pytest.mark.postgres
def test_waitlist_joins_get_distinct_places_on_postgres(postgres, program) -> None:  # type: ignore[no-untyped-def]
    from tests.referrals.conftest import set_settings

    set_settings(program.slug, mode="waitlist")

    def join(i: int) -> int:
        with unit_of_work() as session:
            prog = programs.get_program(session, program.slug)
            result = service.join_waitlist(
                session, prog, f"p{i}@example.com", send_confirmation=False
            )
            return result.entry.seq

    seqs = _threads(40, join)
    assert sorted(seqs) == list(range(1, 41))
