"""The ``budding`` command line. Capabilities plug in their own command groups.

A capability's ``cli`` module exposes either ``COMMANDS`` (a mapping from a
group name to a Typer app, e.g. ``{"program": app}``) or ``app`` (mounted
under the capability's name).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from budding.core.config import Settings, get_settings
from budding.core.db import migrations_pending, unit_of_work, upgrade
from budding.core.errors import BuddingError
from budding.core.plugins import capability_modules

console = Console()
err_console = Console(stderr=True)

app = typer.Typer(
    name="budding",
    help="Budding, the word-of-mouth engine.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
config_app = typer.Typer(help="Settings.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")


def print_json(data: Any) -> None:
    """``--json`` output on stdout as the API writes it: ISO 8601 times, UTF-8 text,
    never wrapped to the terminal's width."""
    sys.stdout.write(
        orjson.dumps(
            data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS, default=str
        ).decode()
        + "\n"
    )


@contextmanager
def cli_unit_of_work() -> Iterator[Session]:
    """The CLI command's unit of work; domain errors become a clear message and exit code 1."""
    try:
        with unit_of_work() as session:
            yield session
    except BuddingError as exc:
        err_console.print(f"[red]error:[/red] {exc.message}")
        for name, reason in exc.fields.items():
            if exc.message != f"{name}: {reason}":  # not the message said again
                err_console.print(f"  {name}: {reason}")
        raise typer.Exit(1) from None


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations to the configured database."""
    upgrade()
    console.print(f"database is up to date: {get_settings().masked()['database_url']}")


@db_app.command("revision")
def db_revision(
    capability: str = typer.Argument(..., help="Capability whose models changed, e.g. members."),
    message: str = typer.Option(..., "-m", "--message", help="What the migration does."),
    depends_on: list[str] = typer.Option(
        [], help="Branches a new capability depends on, e.g. members@head."
    ),
) -> None:
    """(Developers) autogenerate a migration for one capability's tables."""
    from budding.core.db import new_revision

    path = new_revision(capability, message, depends_on or None)
    console.print(f"wrote {path}")


@config_app.command("show")
def config_show() -> None:
    """Print the effective settings, secrets masked."""
    table = Table("setting", "value", title="Budding settings")
    for name, value in get_settings().masked().items():
        table.add_row(f"BUDDING_{name.upper()}", value)
    console.print(table)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, min=1, max=65535, help="Port to listen on."),
    workers: int = typer.Option(
        1,
        min=1,
        help="Worker processes: 2 on SQLite (one writes while the other validates), one per core on PostgreSQL.",
    ),
    migrate: bool = typer.Option(True, help="Apply migrations first."),
) -> None:
    """Serve the API, the admin dashboard and the member portal."""
    import uvicorn

    if migrate:
        upgrade()
    if get_settings().base_url == Settings.model_fields["base_url"].default:
        # Not configured: links in pages and e-mails point where this server listens (the
        # worker processes inherit the environment).
        local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        os.environ["BUDDING_BASE_URL"] = f"http://{f'[{local}]' if ':' in local else local}:{port}"
        get_settings.cache_clear()
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir(get_settings(), port))
    console.print(f"Budding is serving at [bold]http://{host}:{port}/[/bold] (admin: /admin)")
    uvicorn.run(
        "budding.core.web:server_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
        **proxy_options(get_settings()),
    )


def metrics_dir(settings: Settings, port: int) -> Path:
    """An empty directory for the worker processes' Prometheus metrics, so that /metrics
    adds up every process's (prometheus_client's multiprocess mode); emptied at each
    start, as files left by an earlier run would be counted again. One per port: two
    servers on one data directory keep apart."""
    path = settings.data_dir / "metrics" / str(port)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's ``proxy_headers`` / ``forwarded_allow_ips`` from
    ``BUDDING_FORWARDED_ALLOW_IPS``.

    Only proxies listed there may set the client address (X-Forwarded-For, which the
    per-IP login rate limit keys on) and scheme (X-Forwarded-Proto). Unset, proxy
    headers are ignored altogether, whatever uvicorn's own default (which trusts
    127.0.0.1, or ``$FORWARDED_ALLOW_IPS``) would be: a header anyone can send must not
    choose the address that is rate limited."""
    trusted = [part.strip() for part in settings.forwarded_allow_ips.split(",") if part.strip()]
    if not trusted:
        return {"proxy_headers": False, "forwarded_allow_ips": ""}
    return {"proxy_headers": True, "forwarded_allow_ips": trusted}


@app.command()
def demo(
    members: int = typer.Option(2000, min=1, help="Members in the demo community."),
    days: int = typer.Option(180, min=1, help="Days of history."),
    seed: int = typer.Option(7, help="Random seed: the same seed builds the same community."),
    slug: str = typer.Option("demo", help="Slug of the demo program."),
    serve_after: bool = typer.Option(True, "--serve/--no-serve", help="Serve it when built."),
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8000, min=1, max=65535),
    worker: bool = typer.Option(
        True,
        "--worker/--no-worker",
        help="Run background jobs (simulations, e-mails, webhooks) in this process too.",
    ),
) -> None:
    """Build a believable demo community, print the admin login, and serve it."""
    from budding.demo.build import build_demo

    upgrade()
    with cli_unit_of_work() as session:
        info = build_demo(session, slug=slug, members=members, days=days, seed=seed, progress=True)
    console.print(
        f"demo program [bold]{info.slug}[/bold]: {info.members} members, {info.events} events"
    )
    console.print(
        f"admin login: [bold]{info.admin_email}[/bold] / password [bold]{info.admin_password}[/bold]"
    )
    if not serve_after:
        return
    # One command for the whole demo: without a worker its campaign simulations, e-mails
    # and webhook deliveries would wait in the queue for a `budding worker` never started.
    consumer = None
    if worker:
        from budding.core import jobs

        consumer = jobs.start_worker(2, periodic_interval=jobs.PERIODIC_INTERVAL)
    try:
        serve(host=host, port=port, workers=1, migrate=False)
    finally:
        if consumer is not None:
            consumer.stop(graceful=True)


def _mount_capabilities() -> None:
    for name, module in capability_modules("cli"):
        commands = getattr(module, "COMMANDS", None)
        if commands is None and hasattr(module, "app"):
            commands = {name: module.app}
        for group, sub in (commands or {}).items():
            app.add_typer(sub, name=group)


_mount_capabilities()


def main() -> None:
    try:
        app()
    except BuddingError as exc:  # errors raised outside cli_unit_of_work
        err_console.print(f"[red]error:[/red] {exc.message}")
        sys.exit(1)
    except DBAPIError:
        # most often the first command on a new machine, before its tables exist
        if not migrations_pending():
            raise
        err_console.print(
            "[red]error:[/red] the database is not set up for this version of Budding: "
            "run `budding db upgrade` first",
            soft_wrap=True,
        )
        sys.exit(1)
