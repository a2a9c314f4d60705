"""Event ingestion benchmark: a real server against a fresh database, beside the database's limit.

For each backend (SQLite, and PostgreSQL when reachable) it:

1. creates a fresh database, applies the migrations and makes a program and an
   API key through the service functions;
2. starts ``uvicorn budding.core.web:server_app`` in a subprocess on a free
   loopback port (what ``budding serve`` runs): one worker per core, at most two
   on SQLite (one stores a batch under the single write lock while the other
   parses and validates the next; more only queue for the lock), ``--workers``
   to choose;
3. measures the database's own raw insert rate for the benchmark's rows:
   SQLAlchemy Core ``executemany`` of already-resolved rows into the same
   ``events`` table with the same indexes, one transaction per 1,000 rows, from
   one writer on SQLite and from as many writers as client threads on
   PostgreSQL. No HTTP, no validation, no idempotency check: the limit. (On
   PostgreSQL the API inserts each batch with one ``unnest`` statement, about as
   cheap as this plain executemany though it also skips duplicates and returns
   ids; on SQLite it runs this very executemany with ``ON CONFLICT DO NOTHING``
   added and reads no ids back, so the API can come close to the limit.);
4. measures events per second accepted through ``POST /api/v1/events`` in
   batches of 1,000 from several client threads (payloads serialised before
   the clock starts, so the client's JSON work is not counted), and checks
   that every event was accepted;
5. measures the latency of single-event POSTs sent open loop at a steady rate
   (200 requests/s for 10 s by default). Each request has a scheduled send time
   and its latency is counted from that time, not from when a free client got
   to it, so a stalled server shows up as latency instead of silently lowering
   the offered load (the "coordinated omission" a closed loop suffers from).

The events follow the demo community's mix of types (half visits, 2 %
purchases). The raw phase runs before the API phase on the same table, so the
API inserts into the larger table: the ratio errs against the API. Client,
server and database share the machine's cores; the table shows the 1-minute
load average before and after each backend, since a shared machine's other
work moves every figure.

Run it from the repository root::

    .venv/bin/python benchmarks/ingest.py                 # SQLite + PostgreSQL
    .venv/bin/python benchmarks/ingest.py --no-postgres --events 50000
    .venv/bin/python benchmarks/ingest.py --postgres postgresql://postgres@127.0.0.1:5432/test_demo

The PostgreSQL database given is emptied (its ``public`` schema is dropped).
Targets on a 2-core machine: >= 20,000 events/s through the API, >= 50 % of
the raw rate, p99 < 25 ms at 200 requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import numpy as np
import orjson
from loadgen import FsyncProbe, client_gc_paused, free_port
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test_demo"
# The mix of event types of the demo community (budding demo: 2,000 members over
# 180 days), rounded: what a community's event stream looks like. Purchases are
# 2 %; a purchase-heavy stream costs more per event wherever listeners look up
# the buyer's referral.
TYPE_MIX = {
    "visit": 0.50,
    "like": 0.17,
    "login": 0.07,
    "comment": 0.05,
    "click": 0.05,
    "invite_sent": 0.04,
    "reply": 0.03,
    "post": 0.03,
    "share": 0.02,
    "purchase": 0.02,
    "mention": 0.01,
    "survey_response": 0.01,
}
TYPES = tuple(TYPE_MIX)
PAGES = ("/", "/feed", "/shop", "/rewards", "/invite", "/settings")
CHANNELS = ("kakaotalk", "line", "wechat", "whatsapp", "email", "x")

console = Console(record=True, width=150)


@dataclass
class Result:
    """The figures of one backend."""

    backend: str
    api_eps: float = 0.0
    raw_eps: float = 0.0
    events: int = 0
    latency_ms: dict[str, float] = field(default_factory=dict)
    fsync_ms: str = "-"  # the disk's own fsync p50/max during the latency phase
    sent_rate: float = 0.0
    errors: int = 0
    raw_writers: int = 1
    workers: int = 1
    load_before: float = 0.0  # 1-minute load average: the machine may be shared
    load_after: float = 0.0
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.api_eps / self.raw_eps if self.raw_eps else 0.0


# --- the workload -----------------------------------------------------------------


def make_events(prefix: str, count: int, members: int, seed: int) -> list[dict[str, Any]]:
    """``count`` believable events by ``members`` members (Zipf-like activity), oldest first.

    Deterministic for a seed, so the raw and API phases insert rows of the
    same shape and size (~200 bytes of JSON each).
    """
    rng = np.random.default_rng(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    weights = 1.0 / np.arange(1, members + 1) ** 0.8
    weights /= weights.sum()
    actors = rng.choice(members, size=count, p=weights)
    targets = rng.choice(members, size=count, p=weights)
    mix = np.array(list(TYPE_MIX.values()))
    kinds = rng.choice(len(TYPES), size=count, p=mix / mix.sum())
    ages = np.sort(rng.uniform(0, 86400, size=count))[::-1]
    out: list[dict[str, Any]] = []
    for i in range(count):
        kind = TYPES[kinds[i]]
        props: dict[str, Any] = {
            "page": PAGES[i % len(PAGES)],
            "session": f"s{actors[i]}-{i // 50}",
        }
        if kind == "purchase":
            props.update(amount=round(float(rng.lognormal(3, 0.6)), 2), currency="USD")
        elif kind in ("share", "click"):
            props["channel"] = CHANNELS[i % len(CHANNELS)]
        event: dict[str, Any] = {
            "id": f"{prefix}-{i}",
            "type": kind,
            "member": f"user-{actors[i]}",
            "occurred_at": (now - timedelta(seconds=float(ages[i]))).isoformat(),
            "properties": props,
        }
        if kind in ("like", "comment", "reply", "mention", "share", "click", "invite_sent") and (
            targets[i] != actors[i]
        ):
            event["target"] = f"user-{targets[i]}"
        out.append(event)
    return out


def batches(events: list[dict[str, Any]], size: int) -> list[bytes]:
    return [orjson.dumps({"events": events[i : i + size]}) for i in range(0, len(events), size)]


# --- database and server ------------------------------------------------------------


def postgres_reachable(url: str) -> str | None:
    """None when PostgreSQL answers at ``url``, else the reason."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # any failure means "skip with the reason"
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return None


def fresh_database(url: str) -> tuple[int, str]:
    """Empty ``url``, migrate it, and make a program with an API key. Returns (program id, key)."""
    from sqlalchemy import text

    from budding.accounts import service as accounts
    from budding.core.db import get_engine, unit_of_work, upgrade
    from budding.programs import service as programs

    if url.startswith("postgres"):
        with get_engine(url).begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    upgrade(url)
    with unit_of_work(url) as session:
        program = programs.create_program(session, slug="bench", name="Benchmark")
        key = accounts.create_api_key(session, program_id=program.id, name="bench").secret
        return program.id, key


@contextmanager
def server(url: str, data_dir: Path, workers: int) -> Iterator[str]:
    """``budding.core.web:server_app`` under uvicorn in a subprocess (what ``budding serve``
    runs); yields its base URL."""
    port = free_port()
    env = {
        **os.environ,
        "BUDDING_DATABASE_URL": url,
        "BUDDING_DATA_DIR": str(data_dir),
        "BUDDING_SECRET_KEY": "benchmark-secret-key",
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "budding.core.web:server_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    proc = subprocess.Popen(cmd, env=env, cwd=data_dir)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited with code {proc.returncode}")
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not answer /healthz within 60 s")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- the three measurements -----------------------------------------------------------


def post_batches(base: str, key: str, payloads: list[bytes], threads: int) -> tuple[float, int]:
    """POST every payload from ``threads`` threads; returns (seconds, events accepted)."""
    work: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    for p in payloads:
        work.put(p)
    accepted = 0
    failures: list[str] = []
    lock = threading.Lock()
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}

    def worker() -> None:
        nonlocal accepted
        with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
            while True:
                try:
                    payload = work.get_nowait()
                except queue.Empty:
                    return
                r = client.post("/api/v1/events", content=payload)
                with lock:
                    if r.status_code != 200:
                        failures.append(f"{r.status_code} {r.text[:200]}")
                    else:
                        accepted += int(orjson.loads(r.content)["accepted"])

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    started = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} batches failed, first: {failures[0]}")
    return elapsed, accepted


def raw_insert(
    url: str, program_id: int, events: list[dict[str, Any]], size: int, threads: int
) -> float:
    """Seconds to insert ``events`` as rows with SQLAlchemy Core executemany (the limit).

    Member ids are resolved and timestamps parsed before the clock starts: only
    what the database (and the driver's parameter handling) must do is timed.
    ``threads`` writers, each committing 1,000 rows at a time, like the API.
    """
    from sqlalchemy import Table, insert, select

    from budding.core.db import get_engine, utcnow
    from budding.members.models import Event, Member

    engine = get_engine(url)
    with engine.connect() as conn:
        ids = dict(
            conn.execute(
                select(Member.external_id, Member.id).where(Member.program_id == program_id)
            ).all()
        )
    now = utcnow()
    rows = [
        {
            "program_id": program_id,
            "event_id": e["id"],
            "type": e["type"],
            "member_id": ids[e["member"]],
            "target_member_id": ids[e["target"]] if "target" in e else None,
            "occurred_at": datetime.fromisoformat(e["occurred_at"]),
            "received_at": now,
            "properties": e["properties"],
        }
        for e in events
    ]
    stmt = insert(cast(Table, Event.__table__))
    chunks: queue.SimpleQueue[list[dict[str, Any]]] = queue.SimpleQueue()
    for i in range(0, len(rows), size):
        chunks.put(rows[i : i + size])

    def writer() -> None:
        while True:
            try:
                chunk = chunks.get_nowait()
            except queue.Empty:
                return
            with engine.begin() as conn:
                conn.execute(stmt, chunk)

    pool = [threading.Thread(target=writer) for _ in range(threads)]
    started = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return time.perf_counter() - started


def open_loop_latency(
    base: str, key: str, events: list[dict[str, Any]], rate: float
) -> tuple[list[float], int, float]:
    """Single-event POSTs at a steady ``rate``; returns (latencies in s, errors, sent rate).

    Request ``i`` leaves at ``start + i / rate`` whatever the server is doing, on
    an idle keep-alive connection or, when none is idle, a new one, and its
    latency counts from that scheduled time. The client is asyncio on raw
    sockets (HTTP/1.1), so it costs the shared CPU far less than the server it
    measures.
    """
    host, port = base.removeprefix("http://").split(":")
    head = (
        f"POST /api/v1/events HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: "
    ).encode()
    payloads = [orjson.dumps({"events": [e]}) for e in events]

    async def run() -> tuple[list[float], int, float]:
        loop = asyncio.get_running_loop()
        # (reader, writer, last used): uvicorn closes connections idle for 5 s.
        idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        latencies: list[float] = []
        errors = 0
        failures: list[str] = []

        async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            return await asyncio.open_connection(host, int(port))

        async def one(scheduled: float, body: bytes) -> None:
            nonlocal errors
            while idle and loop.time() - idle[-1][2] > 4.0:
                idle.pop()[1].close()
            reader, writer = (idle.pop()[:2]) if idle else await connect()
            try:
                writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
                status = (await reader.readline()).split()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                data = await reader.readexactly(length)
                ok = status[1:2] == [b"200"] and orjson.loads(data).get("accepted") == 1
                if not ok and len(failures) < 5:
                    failures.append(f"{b' '.join(status[1:]).decode()}: {data[:200]!r}")
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
                writer.close()  # a broken connection is not reused
                ok = False
                if len(failures) < 5:
                    failures.append(repr(exc))
            else:
                idle.append((reader, writer, loop.time()))
            latencies.append(loop.time() - scheduled)
            errors += not ok

        for _ in range(8):  # warm connections, opened before the clock starts
            idle.append((*await connect(), loop.time()))
        start = loop.time() + 0.05
        tasks = []
        for i, body in enumerate(payloads):
            scheduled = start + i / rate
            delay = scheduled - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(scheduled, body)))
        sent_rate = len(payloads) / max(loop.time() - start, 1e-9)
        await asyncio.gather(*tasks)
        for _, writer, _ in idle:
            writer.close()
        for failure in failures:
            console.print(f"  [red]failed request[/red]: {failure}")
        return latencies, errors, sent_rate

    return asyncio.run(run())


# --- one backend ----------------------------------------------------------------------


def run_backend(name: str, url: str, data_dir: Path, args: argparse.Namespace) -> Result:
    result = Result(backend=name)
    console.print(f"[bold]{name}[/bold]: fresh database, migrations, program and key")
    program_id, key = fresh_database(url)
    members = args.members
    warmup = make_events("warm", members, members, seed=1)
    for i, e in enumerate(warmup):  # every member once, so both phases find them all
        e["member"] = f"user-{i}"
        e.pop("target", None)
    raw_events = make_events("raw", args.events, members, seed=2)
    api_events = make_events("api", args.events, members, seed=2)
    latency_events = make_events("lat", int(args.rate * args.duration), members, seed=3)
    api_payloads = batches(api_events, args.batch)
    # One worker per core (`budding serve --workers N`); on SQLite at most two: one
    # stores a batch under the single write lock while the other reads and validates
    # the next (more only queue for the lock).
    cores = os.cpu_count() or 1
    workers = args.workers or (min(2, cores) if name == "SQLite" else cores)
    result.workers = workers
    result.load_before = os.getloadavg()[0]
    with server(url, data_dir, workers) as base:
        console.print(f"  server up at {base} ({workers} worker(s)); warming up")
        post_batches(base, key, batches(warmup, args.batch), args.threads)

        # SQLite has one writer: more threads only queue. PostgreSQL writes in parallel.
        writers = 1 if name == "SQLite" else args.threads
        result.raw_writers = writers
        console.print(
            f"  raw insert of {args.events:,} rows (SQLAlchemy Core executemany, "
            f"{writers} writer(s))"
        )
        raw_s = raw_insert(url, program_id, raw_events, args.batch, writers)
        result.raw_eps = args.events / raw_s

        console.print(
            f"  POST /api/v1/events: {len(api_payloads)} batches of {args.batch} "
            f"from {args.threads} threads"
        )
        with client_gc_paused():
            api_s, accepted = post_batches(base, key, api_payloads, args.threads)
        if accepted != args.events:
            raise RuntimeError(f"accepted {accepted} of {args.events} events")
        result.api_eps = accepted / api_s
        result.events = accepted

        console.print(f"  single-event POSTs open loop at {args.rate:g}/s for {args.duration:g} s")
        with client_gc_paused(), FsyncProbe(data_dir) as probe:
            lat, errors, sent = open_loop_latency(base, key, latency_events, args.rate)
        result.fsync_ms = probe.summary()
    ms = np.array(lat) * 1000
    result.latency_ms = {
        "p50": float(np.percentile(ms, 50)),
        "p95": float(np.percentile(ms, 95)),
        "p99": float(np.percentile(ms, 99)),
        "max": float(ms.max()),
    }
    result.errors = errors
    result.sent_rate = sent
    result.load_after = os.getloadavg()[0]
    return result


def report(results: list[Result], args: argparse.Namespace) -> None:
    table = Table(title="Budding event ingestion", title_justify="left")
    table.add_column("backend")
    table.add_column("API events/s", justify="right")
    table.add_column("raw insert rows/s (writers)", justify="right")
    table.add_column("API / raw", justify="right")
    table.add_column("p50 ms", justify="right")
    table.add_column("p95 ms", justify="right")
    table.add_column("p99 ms", justify="right")
    table.add_column("max ms", justify="right")
    table.add_column("disk fsync p50/max ms", justify="right")
    table.add_column("sent req/s", justify="right")
    table.add_column("errors", justify="right")
    table.add_column("workers", justify="right")
    table.add_column("load avg", justify="right")
    for r in results:
        if r.note:
            table.add_row(r.backend, r.note, *[""] * 11)
            continue
        lat = r.latency_ms
        table.add_row(
            r.backend,
            f"{r.api_eps:,.0f}",
            f"{r.raw_eps:,.0f} ({r.raw_writers})",
            f"{r.ratio:.0%}",
            f"{lat['p50']:.1f}",
            f"{lat['p95']:.1f}",
            f"{lat['p99']:.1f}",
            f"{lat['max']:.1f}",
            r.fsync_ms,
            f"{r.sent_rate:.0f}",
            str(r.errors),
            str(r.workers),
            f"{r.load_before:.1f}→{r.load_after:.1f}",
        )
    console.print(table)
    console.print(
        f"{args.events:,} events per throughput phase in batches of {args.batch} from "
        f"{args.threads} client threads; {args.members:,} members; "
        f"latency: {args.rate:g} single-event requests/s for "
        f"{args.duration:g} s, open loop; {os.cpu_count()} CPU cores "
        "(client, server and database share them). Disk fsync: a 4 KB write + fsync "
        "timed every 100 ms beside the latency phase (a stall there stalls every commit)."
    )
    console.print(
        "Targets: >= 20,000 events/s through the API, >= 50 % of the raw rate, "
        "p99 < 25 ms at 200 requests/s."
    )
    for r in results:
        if r.note:
            continue
        misses = []
        if r.api_eps < 20_000:
            misses.append("API rate")
        if r.ratio < 0.5:
            misses.append("share of raw")
        if r.latency_ms["p99"] >= 25:
            misses.append("p99")
        if r.errors:
            misses.append("errors")
        verdict = "all targets met" if not misses else "missed: " + ", ".join(misses)
        console.print(f"{r.backend}: {verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="PostgreSQL URL (emptied)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--events", type=int, default=200_000, help="events per phase")
    parser.add_argument("--batch", type=int, default=1000, help="events per request")
    parser.add_argument("--members", type=int, default=10_000, help="distinct members")
    parser.add_argument("--threads", type=int, default=4, help="client threads for batches")
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="uvicorn worker processes (default: one per core, at most 2 on SQLite)",
    )
    parser.add_argument("--rate", type=float, default=200.0, help="single-event requests/s")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of steady load")
    parser.add_argument("--output", type=Path, help="also save the report as text here")
    args = parser.parse_args(argv)

    results: list[Result] = []
    work = Path(tempfile.mkdtemp(prefix="budding-bench-"))
    try:
        if not args.no_sqlite:
            url = f"sqlite:///{(work / 'sqlite' / 'bench.db').as_posix()}"
            (work / "sqlite").mkdir()
            results.append(run_backend("SQLite", url, work / "sqlite", args))
        if not args.no_postgres:
            reason = postgres_reachable(args.postgres)
            if reason:
                console.print(f"[yellow]PostgreSQL skipped[/yellow]: {args.postgres}: {reason}")
                results.append(Result("PostgreSQL", note=f"skipped: unreachable ({reason})"))
            else:
                (work / "postgres").mkdir()
                results.append(run_backend("PostgreSQL", args.postgres, work / "postgres", args))
    finally:
        from budding.core.db import dispose_engines

        dispose_engines()
        shutil.rmtree(work, ignore_errors=True)
    report(results, args)
    if args.output:
        args.output.write_text(console.export_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
