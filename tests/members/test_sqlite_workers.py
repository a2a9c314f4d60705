"""Two server processes on one SQLite database, as recommended (``budding serve --workers
2``): each process admits one transaction at a time (core/auth.py) and the processes queue
on the writer lock (core/db.py). Every accepted write is stored once, none fails."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.conftest import REPO, free_port, server_process
from tests.members.test_concurrency import _all_at_once, _event


@pytest.fixture
def two_workers(database_url: str) -> Iterator[str]:
    if database_url.startswith("postgres"):
        pytest.skip("SQLite's writer lock: the suite runs on PostgreSQL")
    port = free_port()
    env = {**os.environ, "BUDDING_DATABASE_URL": database_url}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    cmd = [sys.executable, "-m", "uvicorn", "budding.core.web:server_app", "--factory"]
    cmd += ["--port", str(port), "--workers", "2", "--log-level", "warning"]
    with server_process(cmd, env, port) as base:
        yield base


def test_two_processes_store_overlapping_batches_once(
    two_workers: str, api_key: str, program: Any
) -> None:
    now = datetime.now(UTC)
    batches = [[_event(n, now) for n in range(k * 40, k * 40 + 200)] for k in range(30)]

    def post(client: httpx.Client, i: int) -> dict[str, Any]:
        r = client.post("/api/v1/events", json={"events": batches[i]})
        assert r.status_code == 200, r.text
        return dict(r.json())

    answers = _all_at_once(len(batches), post, two_workers, api_key)
    distinct = {e["id"] for batch in batches for e in batch}
    assert sum(a["accepted"] for a in answers) == len(distinct)
    assert all(a["accepted"] + a["duplicates"] == 200 for a in answers)

    # Single events, many at once: each answered, each stored.
    singles = [_event(10_000 + n, now) for n in range(40)]

    def post_one(client: httpx.Client, i: int) -> int:
        r = client.post("/api/v1/events", json={"events": [singles[i]]})
        assert r.status_code == 200, r.text
        return int(r.json()["accepted"])

    assert sum(_all_at_once(len(singles), post_one, two_workers, api_key)) == len(singles)

    from budding.core.db import unit_of_work
    from budding.members.models import Event

    with unit_of_work() as session:
        stored, unique_ids = session.execute(
            select(func.count(), func.count(func.distinct(Event.event_id))).where(
                Event.program_id == program.id
            )
        ).one()
    assert stored == unique_ids == len(distinct) + len(singles)
