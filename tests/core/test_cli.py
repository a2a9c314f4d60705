"""The ``budding`` command line's own commands: bad options are refused with one clear
line, never a traceback, before anything runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from budding.core.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["serve", "--port", "99999", "--no-migrate"], "--port"),
        (["serve", "--port", "0", "--no-migrate"], "--port"),
        (["serve", "--workers", "0", "--no-migrate"], "--workers"),
        (["demo", "--no-serve", "--members", "-5"], "--members"),
        (["demo", "--no-serve", "--days", "0"], "--days"),
        (["demo", "--members", "5", "--days", "2", "--port", "70000"], "--port"),
    ],
)
def test_out_of_range_options_are_refused(
    args: list[str], option: str, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the server must not start")

    monkeypatch.setattr(uvicorn, "run", never)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}'" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_field_error_is_printed_once(database_url: str) -> None:
    result = runner.invoke(app, ["program", "create", "Bad_Slug", "--name", "X"])
    assert result.exit_code == 1
    assert "error: slug: use 1-64 lowercase letters" in result.output
    assert result.output.count("use 1-64 lowercase letters") == 1, result.output


@pytest.mark.parametrize(
    "args",
    [
        ["webhooks", "update", str(2**31), "-p", "acme", "--description", "x"],
        ["webhooks", "deliveries", "-p", "acme", "--webhook", str(2**31)],
        ["rewards", "rule-archive", str(2**31), "-p", "acme"],
    ],
)
def test_ids_past_postgresqls_integer_are_refused(args: list[str], program: object) -> None:
    # 32-bit keys on PostgreSQL: 2**31 failed there with a traceback (integer out of range)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)


HUGE = str(2**70)  # past a 64-bit row id: overflowed the database driver (a traceback)


@pytest.mark.parametrize(
    "args",
    [
        ["jobs", "show", HUGE],
        ["jobs", "retry", HUGE],
        ["webhooks", "update", HUGE, "-p", "acme", "--description", "x"],
        ["webhooks", "rotate-secret", HUGE, "-p", "acme", "--yes"],
        ["webhooks", "remove", HUGE, "-p", "acme", "--yes"],
        ["webhooks", "test", HUGE, "-p", "acme"],
        ["webhooks", "deliveries", "-p", "acme", "--webhook", HUGE],
        ["rewards", "review", "-p", "acme", "--approve", HUGE],
        ["rewards", "review", "-p", "acme", "--reject", HUGE],
        ["rewards", "rule-archive", HUGE, "-p", "acme"],
        ["fraud", "review", "-p", "acme", "--approve", HUGE],
        ["fraud", "review", "-p", "acme", "--reject", HUGE],
    ],
)
def test_ids_past_64_bits_are_refused(args: list[str], program: object) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # no traceback
    flat = " ".join(result.output.replace("│", " ").split())
    assert "Invalid value for" in flat and "less than or equal to" in flat, result.output


def test_a_database_not_set_up_says_to_run_db_upgrade(tmp_path: Path) -> None:
    """The first command on a fresh machine before ``budding db upgrade``: one clear line,
    not SQLAlchemy's "no such table" traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUDDING_")}
    env["BUDDING_DATA_DIR"] = str(tmp_path)
    budding = [str(Path(sys.executable).parent / "budding")]
    fresh = subprocess.run([*budding, "program", "list"], env=env, capture_output=True, text=True)
    assert fresh.returncode == 1
    assert "run `budding db upgrade`" in fresh.stderr and "Traceback" not in fresh.stderr
    subprocess.run([*budding, "db", "upgrade"], env=env, check=True, capture_output=True)
    ready = subprocess.run([*budding, "program", "list"], env=env, capture_output=True, text=True)
    assert ready.returncode == 0, ready.stderr


def test_serve_on_another_port_links_to_that_port(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Links in pages and e-mails (referral links, the share kit, sign-in links) point where
    the server listens unless BUDDING_BASE_URL says otherwise."""
    import uvicorn

    from budding.core.config import get_settings

    seen: list[str] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: seen.append(get_settings().base_url))
    monkeypatch.setenv("BUDDING_BASE_URL", "")  # the suite's value comes back afterwards
    try:
        for host in ("127.0.0.1", "0.0.0.0"):
            monkeypatch.delenv("BUDDING_BASE_URL", raising=False)
            get_settings.cache_clear()
            args = ["serve", "--host", host, "--port", "8123", "--no-migrate"]
            assert runner.invoke(app, args).exit_code == 0
        monkeypatch.setenv("BUDDING_BASE_URL", "https://wom.example.com")
        get_settings.cache_clear()
        assert runner.invoke(app, ["serve", "--port", "8123", "--no-migrate"]).exit_code == 0
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert seen == ["http://127.0.0.1:8123", "http://127.0.0.1:8123", "https://wom.example.com"]
