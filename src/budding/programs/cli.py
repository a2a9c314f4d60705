"""``budding program create|list``."""

from __future__ import annotations

import typer
from rich.table import Table

from budding.core.cli import cli_unit_of_work, console
from budding.programs import service

app = typer.Typer(help="Programs: one brand's word-of-mouth program each.", no_args_is_help=True)
COMMANDS = {"program": app}


@app.command("create")
def create(
    slug: str = typer.Argument(..., help="URL name: lowercase letters, digits, dashes."),
    name: str = typer.Option(..., help="Display name."),
    locale: str = typer.Option("en", help="Default locale: en, ko, es, id, zh-Hans."),
    landing_url: str = typer.Option("", help="Where referral links land."),
) -> None:
    """Create a program."""
    with cli_unit_of_work() as session:
        program = service.create_program(
            session, slug=slug, name=name, default_locale=locale, landing_url=landing_url
        )
        console.print(f"created program [bold]{program.slug}[/bold] ({program.name})")


@app.command("list")
def list_() -> None:
    """List programs."""
    with cli_unit_of_work() as session:
        table = Table("slug", "name", "locale", "landing URL", "created")
        for p in service.list_programs(session):
            table.add_row(
                p.slug, p.name, p.default_locale, p.landing_url, p.created_at.date().isoformat()
            )
        console.print(table)
