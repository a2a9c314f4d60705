"""Referral links and invite redemptions on a real server, SQLite and PostgreSQL.

    .venv/bin/python benchmarks/referrals.py                 # both backends, ~3 minutes
    .venv/bin/python benchmarks/referrals.py --backends sqlite --duration 5

For each backend it makes a fresh database (migrations, a program, members, their
referral codes and a pool of invite codes, all through the service functions),
starts ``uvicorn budding.core.web:server_app`` in a subprocess (what ``budding
serve`` runs) and measures:

1. **redirects/s** of ``GET /r/{code}?ch=…`` at full speed: ``--connections``
   keep-alive connections, each sending its next request when the last answer
   came (closed loop), for ``--duration`` seconds; then counts the click rows
   the run stored: **clicks stored must equal redirects answered** (no click
   lost, none stored twice);
2. **latency at a steady 300 requests/s** (open loop: request ``i`` leaves at
   ``start + i/rate`` whatever the server is doing, on a free connection or a
   new one, and its latency counts from that scheduled time, so a stall is
   not hidden by the client waiting for it); p50/p95/p99/max;
3. **redemptions/s**: ``POST /api/v1/invites/{code}/redeem`` of distinct
   single-use codes, each creating a member, from ``--connections`` connections.

The load generator is asyncio on raw sockets (HTTP/1.1 keep-alive), one
process, so it can outpace the server on the same machine. Then it prints
precision and recall of the fraud checks on the fraud capability's labelled
scenarios (``budding.fraud.scenarios``), when that capability is installed.
The report is also written to ``/tmp/referrals-bench.txt``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
from loadgen import FsyncProbe, client_gc_paused, free_port
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test_referrals"
CHANNELS = ("kakaotalk", "line", "wechat", "whatsapp", "email", "x", "telegram", "qq")
OUTPUT = Path("/tmp/referrals-bench.txt")

console = Console(record=True, width=200)


@dataclass
class Result:
    backend: str
    workers: int = 1
    redirects_per_s: float = 0.0
    server_cpu_ms: float = 0.0  # server CPU time per redirect (all worker processes)
    redirects_sent: int = 0
    clicks_stored: int = 0
    redirect_errors: int = 0
    latency_ms: dict[str, float] = field(default_factory=dict)
    fsync_ms: str = "-"  # the disk's own fsync p50/max during the latency phase
    latency_sent_rate: float = 0.0
    latency_errors: int = 0
    redemptions_per_s: float = 0.0
    redemptions: int = 0
    redemption_errors: int = 0
    note: str = ""


# --- database and server --------------------------------------------------------------------


def postgres_reachable(url: str) -> str | None:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # any failure means "skip with the reason"
        text = str(exc).strip()
        return text.splitlines()[0] if text else type(exc).__name__
    return None


@dataclass
class Fixture:
    program_id: int
    key: str
    codes: list[str]
    invites: list[str]


def fresh_database(url: str, members: int, invites: int) -> Fixture:
    """Empty ``url``, migrate, and make a program, members with referral codes, an API key
    and ``invites`` single-use team invite codes, through the service functions."""
    from sqlalchemy import text

    from budding.accounts import service as accounts
    from budding.core.db import get_engine, unit_of_work, upgrade
    from budding.members import service as member_service
    from budding.programs import service as programs
    from budding.referrals import service as referrals

    if url.startswith("postgres"):
        with get_engine(url).begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    upgrade(url)
    with unit_of_work(url) as session:
        program = programs.create_program(
            session, slug="bench", name="Benchmark", landing_url="https://shop.example/"
        )
        key = accounts.create_api_key(session, program_id=program.id, name="bench").secret
        codes = []
        for i in range(members):
            m, _ = member_service.upsert_member(
                session, program, {"external_id": f"m{i}", "email": f"m{i}@example.com"}
            )
            codes.append(referrals.referral_code_for(session, program, m))
        issued = referrals.issue_staff_invites(session, program, invites, uses=1)
        return Fixture(program.id, key, codes, [c.code for c in issued])


def count_clicks(url: str, program_id: int) -> int:
    from sqlalchemy import func, select

    from budding.core.db import get_engine
    from budding.referrals.models import ReferralClick

    with get_engine(url).connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(ReferralClick)
                .where(ReferralClick.program_id == program_id)
            ).scalar_one()
        )


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU seconds of a process and all its descendants (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    wanted = {root}
    grew = True
    while grew:
        grew = False
        for pid, ppid in parents.items():
            if ppid in wanted and pid not in wanted:
                wanted.add(pid)
                grew = True
    return sum(times.get(pid, 0.0) for pid in wanted)


@contextmanager
def server(
    url: str, data_dir: Path, workers: int, factory: str = "budding.core.web:server_app"
) -> Iterator[tuple[str, int, int]]:
    port = free_port()
    env = {
        **os.environ,
        "BUDDING_DATABASE_URL": url,
        "BUDDING_DATA_DIR": str(data_dir),
        "BUDDING_SECRET_KEY": "benchmark-secret-key",
        "BUDDING_BASE_URL": f"http://127.0.0.1:{port}",
    }
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO / "src"), str(REPO / "benchmarks"), env.get("PYTHONPATH")])
    )
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        factory,
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
        yield base, port, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- a small HTTP/1.1 client on asyncio streams ------------------------------------------------


class Conn:
    """One keep-alive connection; ``request`` returns the status code."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def request(self, raw: bytes) -> int:
        reused = self.writer is not None
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        self.writer.write(raw)
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionResetError) as exc:
            partial = getattr(exc, "partial", b"")
            if not reused or partial:
                raise
            # The server closed an idle keep-alive connection (uvicorn: after 5 s) just
            # before this request reached it: nothing was processed; resend on a new one.
            self.close()
            await self.open()
            assert self.reader is not None and self.writer is not None
            self.writer.write(raw)
            head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        close = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            lname = name.strip().lower()
            if lname == b"content-length":
                length = int(value)
            elif lname == b"connection" and value.strip().lower() == b"close":
                close = True
        if length:
            await self.reader.readexactly(length)
        if close:
            self.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def get_request(path: str, host: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Mozilla/5.0 (bench)\r\n"
        "Accept: text/html\r\n\r\n"
    ).encode()


def post_request(path: str, host: str, key: str, body: dict[str, Any]) -> bytes:
    payload = orjson.dumps(body)
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload


def redirect_requests(codes: list[str], port: int, n: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    host = f"127.0.0.1:{port}"
    return [
        get_request(f"/r/{rng.choice(codes)}?ch={rng.choice(CHANNELS)}", host) for _ in range(n)
    ]


async def closed_loop(
    port: int, requests: list[bytes], connections: int, duration: float, expect: int
) -> tuple[int, int, float]:
    """Send as fast as answers come on ``connections`` connections; (answered ok, errors, s)."""
    ok = errors = 0
    stop = time.perf_counter() + duration
    position = 0

    async def worker() -> None:
        nonlocal ok, errors, position
        conn = Conn(port)
        await conn.open()
        while time.perf_counter() < stop:
            raw = requests[position % len(requests)]
            position += 1
            try:
                status = await conn.request(raw)
            except (OSError, asyncio.IncompleteReadError):
                errors += 1
                conn.close()
                continue
            if status == expect:
                ok += 1
            else:
                errors += 1
        conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return ok, errors, time.perf_counter() - started


async def open_loop(
    port: int, requests: list[bytes], rate: float, expect: int
) -> tuple[list[float], int, float]:
    """Request ``i`` leaves at ``start + i / rate`` on an idle connection (a new one if none
    is idle); latency counts from the scheduled time. Returns (latencies s, errors, rate)."""
    idle: list[Conn] = []
    for _ in range(16):
        c = Conn(port)
        await c.open()
        idle.append(c)
    latencies: list[float] = []
    errors = 0
    tasks: list[asyncio.Task[None]] = []
    reasons: dict[str, int] = {}

    async def one(raw: bytes, scheduled: float) -> None:
        nonlocal errors
        conn = idle.pop() if idle else Conn(port)
        try:
            status = await conn.request(raw)
            if status != expect:
                errors += 1
                reasons[f"HTTP {status}"] = reasons.get(f"HTTP {status}", 0) + 1
            idle.append(conn)
        except (OSError, asyncio.IncompleteReadError) as exc:
            errors += 1
            reasons[type(exc).__name__] = reasons.get(type(exc).__name__, 0) + 1
            conn.close()
        latencies.append(time.perf_counter() - scheduled)

    start = time.perf_counter() + 0.05
    for i, raw in enumerate(requests):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(raw, scheduled)))
    sent_rate = len(requests) / max(time.perf_counter() - start, 1e-9)
    await asyncio.gather(*tasks)
    for c in idle:
        c.close()
    if reasons:
        console.print(f"    open-loop errors: {reasons}")
    return latencies, errors, sent_rate


def run_async(coro: Any) -> Any:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


# --- one backend -------------------------------------------------------------------------------


def run_backend(
    name: str, url: str, data_dir: Path, args: argparse.Namespace, workers: int
) -> Result:
    result = Result(backend=name, workers=workers)
    console.print(f"[bold]{name}[/bold]: fresh database, {args.members} members, invite codes")
    fx = fresh_database(url, args.members, args.redemptions + 10)
    with server(url, data_dir, workers) as (base, port, pid):
        host = f"127.0.0.1:{port}"
        console.print(f"  server up at {base} ({workers} worker(s)); warming up")
        warm = redirect_requests(fx.codes, port, 2000, seed=1)
        run_async(closed_loop(port, warm, args.connections, 2.0, 302))
        before = count_clicks(url, fx.program_id)

        console.print(
            f"  GET /r/{{code}} closed loop: {args.connections} connections, {args.duration:g} s"
        )
        reqs = redirect_requests(fx.codes, port, 50_000, seed=2)
        cpu_before = tree_cpu_seconds(pid)
        with client_gc_paused():
            ok, errors, secs = run_async(
                closed_loop(port, reqs, args.connections, args.duration, 302)
            )
        result.server_cpu_ms = (tree_cpu_seconds(pid) - cpu_before) * 1000 / max(ok, 1)
        stored = count_clicks(url, fx.program_id) - before
        result.redirects_per_s = ok / secs
        result.redirects_sent = ok
        result.redirect_errors = errors
        result.clicks_stored = stored

        console.print(f"  GET /r/{{code}} open loop at {args.rate:g}/s for {args.latency_s:g} s")
        before = count_clicks(url, fx.program_id)
        reqs = redirect_requests(fx.codes, port, int(args.rate * args.latency_s), seed=3)
        with client_gc_paused(), FsyncProbe(data_dir) as probe:
            lat, lat_errors, sent = run_async(open_loop(port, reqs, args.rate, 302))
        result.fsync_ms = probe.summary()
        stored_lat = count_clicks(url, fx.program_id) - before
        ms = np.array(lat) * 1000
        result.latency_ms = {
            "p50": float(np.percentile(ms, 50)),
            "p95": float(np.percentile(ms, 95)),
            "p99": float(np.percentile(ms, 99)),
            "max": float(ms.max()),
        }
        result.latency_errors = lat_errors + abs(stored_lat - (len(reqs) - lat_errors))
        result.latency_sent_rate = sent

        console.print(f"  POST /api/v1/invites/{{code}}/redeem: {args.redemptions} codes")
        bodies = [
            post_request(
                f"/api/v1/invites/{code}/redeem",
                host,
                fx.key,
                {"external_id": f"new{i}", "email": f"new{i}@example.org", "name": f"New {i}"},
            )
            for i, code in enumerate(fx.invites[: args.redemptions])
        ]

        async def redeem_all() -> tuple[int, int, float]:
            queue = list(reversed(bodies))
            ok = bad = 0

            async def worker() -> None:
                nonlocal ok, bad
                conn = Conn(port)
                await conn.open()
                while queue:
                    status = await conn.request(queue.pop())
                    if status == 201:
                        ok += 1
                    else:
                        bad += 1
                conn.close()

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(min(args.connections, 32))))
            return ok, bad, time.perf_counter() - started

        with client_gc_paused():
            ok, bad, secs = run_async(redeem_all())
        result.redemptions = ok
        result.redemption_errors = bad
        result.redemptions_per_s = ok / secs
    return result


# --- fraud checks --------------------------------------------------------------------------------


def fraud_quality() -> dict[str, dict[str, float]] | str:
    try:
        from budding.fraud import scenarios
    except ModuleNotFoundError as exc:
        return f"budding.fraud.scenarios is not installed ({exc.name})"
    evaluate = getattr(scenarios, "evaluate_in_scratch", None)
    if evaluate is None:
        return "budding.fraud.scenarios has no evaluate_in_scratch()"
    quality: dict[str, dict[str, float]] = evaluate(seed=7)
    return quality


# --- report ----------------------------------------------------------------------------------------


def report(results: list[Result], fraud: dict[str, dict[str, float]] | str, args: Any) -> None:
    title = "Budding referral links and invites"
    table = Table(title=title, title_justify="left")
    for col in (
        "backend",
        "workers",
        "redirects/s",
        "server CPU ms/redirect",
        "answered",
        "clicks stored",
        "lost",
        "errors",
        f"p50 ms @{args.rate:g}/s",
        "p95 ms",
        "p99 ms",
        "max ms",
        "disk fsync p50/max ms",
        "sent/s",
        "redemptions/s",
    ):
        table.add_column(col, justify="left" if col == "backend" else "right")
    for r in results:
        if r.note:
            table.add_row(r.backend, r.note, *[""] * 13)
            continue
        table.add_row(
            r.backend,
            str(r.workers),
            f"{r.redirects_per_s:,.0f}",
            f"{r.server_cpu_ms:.2f}",
            f"{r.redirects_sent:,}",
            f"{r.clicks_stored:,}",
            str(r.redirects_sent - r.clicks_stored),
            str(r.redirect_errors + r.latency_errors),
            f"{r.latency_ms['p50']:.1f}",
            f"{r.latency_ms['p95']:.1f}",
            f"{r.latency_ms['p99']:.1f}",
            f"{r.latency_ms['max']:.1f}",
            r.fsync_ms,
            f"{r.latency_sent_rate:.0f}",
            f"{r.redemptions_per_s:,.0f}"
            + (f" ({r.redemption_errors} failed)" if r.redemption_errors else ""),
        )
    console.print(table)
    console.print(
        "Targets: >= 1,500 redirects/s; p99 < 20 ms at 300 req/s; clicks stored = "
        "redirects answered (lost 0). Disk fsync: a 4 KB write + fsync timed every "
        "100 ms beside the open loop (a stall there stalls every commit)."
    )
    for r in results:
        if r.note:
            continue
        verdict = []
        verdict.append("redirects/s " + ("OK" if r.redirects_per_s >= 1500 else "BELOW TARGET"))
        verdict.append("p99 " + ("OK" if r.latency_ms["p99"] < 20 else "ABOVE TARGET"))
        verdict.append(
            "no click lost"
            if r.redirects_sent == r.clicks_stored and r.latency_errors == 0
            else "CLICKS LOST OR DOUBLED"
        )
        console.print(f"  {r.backend} ({r.workers} worker(s)): " + ", ".join(verdict))
    if isinstance(fraud, str):
        console.print(f"\nFraud checks: skipped: {fraud}")
    else:
        ft = Table(
            title="Fraud checks on labelled scenarios (budding.fraud.scenarios, seed 7)",
            title_justify="left",
        )
        for col in ("check", "precision", "recall", "fired", "false positives", "labelled"):
            ft.add_column(col, justify="left" if col == "check" else "right")
        for check, m in fraud.items():
            ft.add_row(
                check,
                f"{m['precision']:.3f}",
                f"{m['recall']:.3f}",
                f"{m['fired']:.0f}",
                f"{m['false_positives']:.0f}",
                f"{m['labelled']:.0f}",
            )
        console.print(ft)
    load = os.getloadavg()
    console.print(
        f"\nmachine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; load average at the end {load[0]:.1f} / {load[1]:.1f} / "
        f"{load[2]:.1f} (1/5/15 min); load generator: asyncio in one process on the same machine"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument(
        "--postgres-url", default=os.environ.get("BUDDING_BENCH_POSTGRES", DEFAULT_POSTGRES)
    )
    parser.add_argument(
        "--workers", default="1,2", help="uvicorn worker processes; a list runs each"
    )
    parser.add_argument("--members", type=int, default=2000, help="referrers (codes to click)")
    parser.add_argument("--connections", type=int, default=64, help="closed-loop connections")
    parser.add_argument("--duration", type=float, default=15.0, help="closed-loop seconds")
    parser.add_argument("--rate", type=float, default=300.0, help="open-loop requests/s")
    parser.add_argument("--latency-s", type=float, default=20.0, help="open-loop seconds")
    parser.add_argument("--redemptions", type=int, default=2000, help="invite codes to redeem")
    parser.add_argument("--no-fraud", action="store_true", help="skip the fraud-check scoring")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="where to write the report")
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",")]
    for backend in backends:
        if backend not in ("sqlite", "postgres"):  # before any run, not after the first
            parser.error(f"unknown backend {backend!r}: use sqlite, postgres or both")

    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="budding-bench-") as tmp:
        data_dir = Path(tmp)
        os.environ["BUDDING_DATA_DIR"] = str(data_dir)
        os.environ["BUDDING_SECRET_KEY"] = "benchmark-secret-key"
        for backend in backends:
            url = ""  # SQLite: a fresh file per run, below
            if backend == "postgres":
                url = args.postgres_url
                why = postgres_reachable(url)
                if why:
                    results.append(Result(backend="postgresql", note=f"skipped: {why}"))
                    continue
            name = "postgresql" if backend == "postgres" else "sqlite"
            for workers in (int(w) for w in str(args.workers).split(",")):
                run_url = url or f"sqlite:///{(data_dir / f'bench-{workers}.db').as_posix()}"
                results.append(run_backend(name, run_url, data_dir, args, workers))
        fraud = "skipped (--no-fraud)" if args.no_fraud else fraud_quality()
    report(results, fraud, args)
    args.output.write_text(console.export_text())
    console.print(f"written to {args.output}")


if __name__ == "__main__":
    main()
