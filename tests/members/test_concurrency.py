"""Concurrency through a real server: idempotency keys and member upserts under races.

Each test runs once per backend: the ``postgres`` variant skips (with the reason)
unless the suite runs on PostgreSQL, the ``sqlite`` variant skips when it does.
On PostgreSQL the requests really run in parallel transactions; on SQLite they
queue on the database's single writer, which must be just as correct.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

BATCHES = 50
BATCH_SIZE = 200
STEP = 40  # batch k holds ids [k*STEP, k*STEP + BATCH_SIZE): each id is in about 5 batches


@pytest.fixture(params=["postgres", "sqlite"])
def backend(request: pytest.FixtureRequest, database_url: str) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres"))  # skips with its reason on SQLite
    if database_url.startswith("postgres"):
        pytest.skip("the suite runs on PostgreSQL: the [postgres] variant covers this")
    return database_url


def _all_at_once(
    count: int, work: Callable[[httpx.Client, int], Any], base: str, key: str
) -> list[Any]:
    """Run ``work(client, i)`` for i < count, one thread each, released together."""
    results: list[Any] = [None] * count
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def run(i: int) -> None:
        headers = {"authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
            client.get("/healthz")  # connect before the barrier, so the requests race
            barrier.wait()
            try:
                results[i] = work(client, i)
            except BaseException as exc:  # reported below with the thread's index
                errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def _event(n: int, now: datetime) -> dict[str, Any]:
    return {
        "id": f"evt-{n}",
        "type": "like" if n % 3 else "visit",
        "member": f"m{n % 37}",  # new members, created by many batches at once
        "target": f"m{(n * 7) % 37}" if n % 3 else None,
        "occurred_at": (now - timedelta(seconds=n)).isoformat(),
        "properties": {"n": n},
    }


def test_overlapping_batches_store_each_id_once(
    backend: str, live_server: Any, api_key: str, program: Any
) -> None:
    """50 batches sent at once, ids overlapping and each batch in its own random order
    (the order in which rows lock the unique index differs, the classic deadlock): every
    id is stored once, and accepted + duplicates account for every event sent."""
    now = datetime.now(UTC)
    batches = []
    for k in range(BATCHES):
        events = [_event(n, now) for n in range(k * STEP, k * STEP + BATCH_SIZE)]
        events.append(dict(events[0]))  # an id repeated inside the batch
        random.Random(k).shuffle(events)
        batches.append(events)

    def post(client: httpx.Client, i: int) -> dict[str, Any]:
        r = client.post("/api/v1/events", json={"events": batches[i]})
        assert r.status_code == 200, r.text
        return dict(r.json())

    answers = _all_at_once(BATCHES, post, live_server.url, api_key)

    distinct = {e["id"] for batch in batches for e in batch}
    sent = sum(len(b) for b in batches)
    assert all(a["rejected"] == [] for a in answers)
    assert sum(a["accepted"] for a in answers) == len(distinct)
    assert sum(a["accepted"] + a["duplicates"] for a in answers) == sent

    from budding.core.db import unit_of_work
    from budding.members.models import Event, Member

    with unit_of_work() as session:
        stored, unique_ids = session.execute(
            select(func.count(), func.count(func.distinct(Event.event_id))).where(
                Event.program_id == program.id
            )
        ).one()
        members = session.scalar(
            select(func.count()).select_from(Member).where(Member.program_id == program.id)
        )
    assert stored == unique_ids == len(distinct)
    assert members == 37


def test_concurrent_upserts_create_one_member(
    backend: str, live_server: Any, api_key: str, program: Any
) -> None:
    """30 requests create the same new member at once: one 201, the rest 200, one row."""
    count = 30

    def upsert(client: httpx.Client, i: int) -> int:
        r = client.post(
            "/api/v1/members",
            json={
                "external_id": "newcomer",
                "email": "newcomer@example.com",
                "name": f"Newcomer {i}",
                "locale": "ko",
            },
        )
        assert r.status_code in (200, 201), r.text
        return r.status_code

    statuses = _all_at_once(count, upsert, live_server.url, api_key)
    assert statuses.count(201) == 1
    assert statuses.count(200) == count - 1

    from budding.core.db import unit_of_work
    from budding.members.models import Member

    with unit_of_work() as session:
        rows = session.scalars(
            select(Member).where(Member.program_id == program.id, Member.external_id == "newcomer")
        ).all()
    assert len(rows) == 1
    assert rows[0].email == "newcomer@example.com" and rows[0].locale == "ko"
    assert rows[0].name.startswith("Newcomer ")


def test_retried_batches_race_with_the_original(
    backend: str, live_server: Any, api_key: str, program: Any
) -> None:
    """A client that times out and retries sends the same batch again while the first is
    still being stored: 20 copies at once store it once."""
    now = datetime.now(UTC)
    batch = [_event(n, now) for n in range(500)]

    def post(client: httpx.Client, i: int) -> dict[str, Any]:
        r = client.post("/api/v1/events", json={"events": batch})
        assert r.status_code == 200, r.text
        return dict(r.json())

    answers = _all_at_once(20, post, live_server.url, api_key)
    assert sum(a["accepted"] for a in answers) == 500
    assert all(a["accepted"] + a["duplicates"] == 500 for a in answers)
