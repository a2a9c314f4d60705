"""Time the "Opinion leaders" and "Campaign planner" pages (in-process, through the app).

    export BUDDING_DATA_DIR=/tmp/influence-pages
    .venv/bin/budding demo --no-serve                       # the 2,000-member demo
    .venv/bin/python benchmarks/influence_pages.py demo
    .venv/bin/budding program create big --name Big
    .venv/bin/python benchmarks/influence_pages.py big --generate 100000   # ~1-2 minutes

Requests go through the app in-process, signed in as the demo's owner (credentials
from ``$BUDDING_DATA_DIR/demo/demo.json``). Each page is asked four times after the
program's kept ranking is cleared: the first is a miss (graph built, ranked, kept), the
others read the kept ranking. Above ``service.INLINE_RANKING_MAX_MEMBERS`` members the
miss answers the "being computed" panel and a job ranks the program: the job is run here
(as a worker would) and its time printed. Then the top leader's neighbourhood is asked four times
(nothing is kept for it: best and worst). Before the pages, the program's member graph is
loaded three times (``influence.program.program_graph``) and the best printed.
``--generate N`` first fills the program with N
members, 0.6·N referrals and 10·N events that target a member (bulk inserts, synthetic data);
``--events-per-member K`` makes that K·N events (a small program with a long log: see
``service.INLINE_RANKING_MAX_INTERACTIONS``).
"""

from __future__ import annotations

import argparse
import html
import json
import os
import random
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any


def generate(slug: str, n: int, events_per_member: int = 10) -> None:
    from sqlalchemy import insert, select

    from budding.core.db import unit_of_work
    from budding.members.models import Event, Member
    from budding.programs import service as programs
    from budding.referrals.models import Referral

    rng = random.Random(1)
    now = datetime.now(UTC)
    with unit_of_work() as s:
        p = programs.get_program(s, slug)
        cities = ["Seoul", "Busan", "Jakarta", "Madrid", "Lima", "Taipei"]
        rows = [
            {"program_id": p.id, "external_id": f"m{i}", "name": f"Member {i}",
             "attributes": {"city": rng.choice(cities)}, "marketing_consent": rng.random() < 0.6,
             "created_at": now, "updated_at": now, "session_version": 0}
            for i in range(n)
        ]  # fmt: skip
        for i in range(0, n, 5000):
            s.execute(insert(Member), rows[i : i + 5000])
        ids = list(s.scalars(select(Member.id).where(Member.program_id == p.id)))
        refs = [
            {"program_id": p.id, "referrer_member_id": ids[int(j * rng.random() ** 2)],
             "referee_member_id": ids[j], "source": "import", "generation": 1,
             "status": "active", "status_reason": "", "fraud_reasons": [],
             "signed_up_at": now - timedelta(days=rng.uniform(0, 365)),
             "created_at": now, "updated_at": now}
            for j in range(1, len(ids)) if rng.random() < 0.6
        ]  # fmt: skip
        for i in range(0, len(refs), 5000):
            s.execute(insert(Referral), refs[i : i + 5000])
        batch: list[dict[str, Any]] = []
        for e in range(events_per_member * n):  # a few members talk a lot
            batch.append(
                {"program_id": p.id, "event_id": f"bench{e}", "type": "reply",
                 "member_id": ids[int(n * rng.random() ** 3)], "target_member_id": ids[rng.randrange(n)],
                 "occurred_at": now - timedelta(seconds=rng.uniform(0, 365 * 86400)),
                 "received_at": now, "properties": {}}
            )  # fmt: skip
            if len(batch) == 10_000:
                s.execute(insert(Event), batch)
                batch = []
        if batch:
            s.execute(insert(Event), batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("slug")
    parser.add_argument("--generate", type=int, default=0, metavar="N")
    parser.add_argument("--events-per-member", type=int, default=10, metavar="K")
    args = parser.parse_args()
    if args.generate:
        generate(args.slug, args.generate, args.events_per_member)

    from fastapi.testclient import TestClient

    from budding.accounts import service as accounts
    from budding.core import jobs
    from budding.core.auth import SESSION_COOKIE, session_cookie_value
    from budding.core.db import reading, unit_of_work
    from budding.core.web import create_app
    from budding.influence import Graph, cache, rank
    from budding.influence.program import program_graph
    from budding.programs import service as programs

    creds = json.loads((Path(os.environ["BUDDING_DATA_DIR"]) / "demo" / "demo.json").read_text())
    with unit_of_work() as s:
        login = accounts.login(
            s, email=creds["admin_email"], password=creds["admin_password"], ip="127.0.0.1"
        )
        program_id = programs.get_program(s, args.slug).id
    assert login is not None
    # numba kernels are compiled or loaded once per process: not a page's cost
    rank(Graph.from_edges([0, 1], [1, 0], weight=[1.0, 1.0]), None, probability="weighted")
    # the member graph's load, best of 3: the ranking job's, the seeds' and simulations' first step
    loads = []
    for _ in range(3):
        with reading() as s:
            start = time.perf_counter()
            pg = program_graph(s, programs.get_program(s, args.slug))
            loads.append(time.perf_counter() - start)
    print(
        f"Program graph  {pg.graph.n:,} members  {pg.graph.m:,} edges  {min(loads) * 1000:.0f} ms"
    )
    client = TestClient(create_app())
    client.cookies.set(SESSION_COOKIE, session_cookie_value(login.token))
    pages = [
        ("Opinion leaders", f"/admin/{args.slug}/influence", {}),
        ("  by PageRank", f"/admin/{args.slug}/influence", {"by": "pagerank"}),
        ("  grouped by city", f"/admin/{args.slug}/influence", {"group": "city"}),
        ("Campaign planner", f"/admin/{args.slug}/influence/planner", {}),
    ]
    for label, url, params in pages:
        if "planner" not in url:  # the planner reads no ranking
            with unit_of_work() as s:
                cache.clear(s, program_id)
        times = []
        job = ""
        for _ in range(4):
            start = time.perf_counter()
            response = client.get(url, params=params)
            times.append(time.perf_counter() - start)
            assert response.status_code == 200, response.text[:300]
            if 'data-testid="ranking-pending"' in response.text:  # a worker's part
                start = time.perf_counter()
                assert jobs.run_due() == 1
                job = f"   (the panel; the job ranked in {time.perf_counter() - start:.1f} s)"
        print(
            f"{label:20s} miss {times[0] * 1000:8.1f} ms   kept {min(times[1:]) * 1000:8.1f} ms{job}"
        )
    # the top leader's neighbourhood (the table's first link); nothing is kept for it
    leaders = client.get(f"/admin/{args.slug}/influence").text
    hood = re.search(rf'href="(/admin/{re.escape(args.slug)}/influence/members/[^"]+)"', leaders)
    assert hood is not None, "no leader on the page"
    times = []
    for _ in range(4):
        start = time.perf_counter()
        response = client.get(html.unescape(hood[1]))
        times.append(time.perf_counter() - start)
        assert response.status_code == 200, response.text[:300]
    label = f"Neighbourhood {hood[1].rsplit('/', 1)[1]}"
    print(f"{label:20s} best {min(times) * 1000:8.1f} ms   worst {max(times) * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
