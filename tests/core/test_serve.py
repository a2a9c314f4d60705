"""``budding serve`` with several worker processes: /metrics counts every process's requests."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import httpx

from tests.conftest import REPO, free_port, server_process

HEALTHZ = re.compile(
    r'^budding_http_requests_total\{method="GET",route="/healthz",status="200"\} (\S+)$', re.M
)


def healthz_count(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    found = HEALTHZ.search(text)
    return float(found.group(1)) if found else 0.0


def test_metrics_add_up_over_worker_processes_and_start_from_zero(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BUDDING_", "PROMETHEUS_"))}
    env["BUDDING_DATA_DIR"] = str(tmp_path)  # SQLite there
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    for run in range(2):  # the second run must not count the first run's requests
        port = free_port()
        cmd = [sys.executable, "-c", "from budding.core.cli import main; main()", "serve"]
        with server_process([*cmd, "--port", str(port), "--workers", "2"], env, port) as url:
            for _ in range(40):  # a new connection each: the kernel spreads them over workers
                r = httpx.get(f"{url}/healthz", headers={"Connection": "close"})
                assert r.status_code == 200
            # 40, and the one 200 that told server_process the server was up; whichever
            # worker answers /metrics, it reports both processes' requests
            assert [healthz_count(url) for _ in range(6)] == [41] * 6, f"run {run}"
