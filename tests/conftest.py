"""Shared fixtures: a migrated database (SQLite by default, PostgreSQL when
``BUDDING_TEST_DATABASE_URL`` is set), emptied after every test; programs, API
keys, an HTTP client and a live uvicorn server."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import text

# One Playwright browser for the whole run: two sync Playwright instances cannot share the
# main thread, so every browser test takes the fixtures from this one plugin.
pytest_plugins = ["tests.browser.fixtures"]

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
PG_URL = os.environ.get("BUDDING_TEST_DATABASE_URL", "")


def pytest_configure(config: pytest.Config) -> None:
    # Settings are read from the environment once per process: point them at a
    # scratch data folder before anything imports budding's settings.
    # A fresh folder per run, so parallel runs never share a SQLite file.
    data_dir = Path(tempfile.mkdtemp(prefix="budding-test-"))
    os.environ["BUDDING_DATA_DIR"] = str(data_dir)
    os.environ["BUDDING_DATABASE_URL"] = PG_URL or f"sqlite:///{(data_dir / 'test.db').as_posix()}"
    os.environ["BUDDING_SECRET_KEY"] = "test-secret-key-not-for-production"
    os.environ["BUDDING_BASE_URL"] = "http://testserver"
    os.environ.pop("BUDDING_JOBS_URL", None)
    from budding.core.config import get_settings

    get_settings.cache_clear()


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    from budding.core.config import get_settings
    from budding.core.db import dispose_engines, get_engine, upgrade

    url = get_settings().database_url
    if url.startswith("postgres"):
        with get_engine().begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    upgrade()
    yield url
    dispose_engines()


@pytest.fixture(autouse=True)
def clean_database(database_url: str) -> Iterator[None]:
    yield
    from budding.core.db import Base, get_engine, import_models

    import_models()
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    engine = get_engine()
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(text(f"DELETE FROM {table}"))


@pytest.fixture
def is_postgres(database_url: str) -> bool:
    return database_url.startswith("postgres")


@pytest.fixture
def postgres(database_url: str) -> str:
    """Skips the test unless the suite runs on PostgreSQL."""
    if not database_url.startswith("postgres"):
        pytest.skip(
            "needs PostgreSQL: set BUDDING_TEST_DATABASE_URL=postgresql://USER@HOST:5432/DB "
            "(the suite runs on SQLite otherwise)"
        )
    return database_url


@pytest.fixture
def shared_graphs() -> Path:
    path = SHARED / "data" / "graphs"
    if not path.is_dir():
        pytest.skip(f"real graphs not found at {path} (../shared is absent on this machine)")
    return path


@pytest.fixture
def session() -> Iterator[object]:
    """A unit of work for service-level tests (committed at the end of the test)."""
    from budding.core.db import unit_of_work

    with unit_of_work() as s:
        yield s


@pytest.fixture
def program(database_url: str):  # type: ignore[no-untyped-def]
    from tests.factories import make_program

    return make_program("acme")


@pytest.fixture
def other_program(database_url: str):  # type: ignore[no-untyped-def]
    from tests.factories import make_program

    return make_program("other")


@pytest.fixture
def api_key(program) -> str:  # type: ignore[no-untyped-def]
    from tests.factories import make_api_key

    return make_api_key(program.id)


@pytest.fixture
def app(database_url: str):  # type: ignore[no-untyped-def]
    from budding.core.web import create_app

    return create_app()


@pytest.fixture
def client(app, api_key: str) -> Iterator[object]:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    with TestClient(app, raise_server_exceptions=False) as c:
        c.headers["Authorization"] = f"Bearer {api_key}"
        yield c


@pytest.fixture
def anon_client(app) -> Iterator[object]:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server_process(cmd: list[str], env: dict[str, str], port: int) -> Iterator[str]:
    """Run a server command listening on ``port``; yield its URL once /healthz answers 200,
    stop it afterwards."""
    proc = subprocess.Popen(cmd, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "the server exited"
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class LiveServer:
    def __init__(self, url: str) -> None:
        self.url = url


@pytest.fixture
def live_server(database_url: str) -> Iterator[LiveServer]:
    """A real uvicorn server in a thread, on a free local port."""
    from budding.core.web import create_app

    port = free_port()
    config = uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    else:
        raise RuntimeError("live server did not start")
    yield LiveServer(url)
    server.should_exit = True
    thread.join(timeout=10)
