"""``budding user create`` and ``budding apikey create|list|revoke``."""

from __future__ import annotations

import sys

import typer
from rich.table import Table

from budding.accounts import service
from budding.accounts.models import ROLES
from budding.core.cli import cli_unit_of_work, console, err_console
from budding.programs.service import get_program

user_app = typer.Typer(help="Staff users.", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys of a program.", no_args_is_help=True)
COMMANDS = {"user": user_app, "apikey": apikey_app}


@user_app.command("create")
def create_user(
    email: str = typer.Argument(..., help="Login e-mail."),
    role: str = typer.Option("admin", help=f"One of {', '.join(ROLES)}."),
    name: str = typer.Option("", help="Display name."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from stdin."
    ),
) -> None:
    """Create a staff user. The password is prompted for (or read from stdin)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    with cli_unit_of_work() as session:
        user = service.create_user(session, email=email, password=password, role=role, name=name)
        console.print(f"created {user.role} [bold]{user.email}[/bold]")


@user_app.command("list")
def list_users() -> None:
    """List staff users."""
    with cli_unit_of_work() as session:
        table = Table("e-mail", "name", "role", "active", "last login")
        for u in service.list_users(session):
            table.add_row(
                u.email, u.name, u.role, "yes" if u.is_active else "no", str(u.last_login_at or "")
            )
        console.print(table)


@apikey_app.command("create")
def create_key(
    program: str = typer.Option(..., "--program", "-p", help="Program slug."),
    name: str = typer.Option(..., help="What the key is for."),
    role: str = typer.Option("admin", help="admin (read and write) or analyst (read-only)."),
) -> None:
    """Create an API key. The secret is printed once and never stored."""
    with cli_unit_of_work() as session:
        issued = service.create_api_key(
            session, program_id=get_program(session, program).id, name=name, role=role
        )
    err_console.print(
        f"API key {issued.key.prefix} ({issued.key.role}); store it now, it is not shown again:"
    )
    print(issued.secret)


@apikey_app.command("list")
def list_keys(program: str = typer.Option(..., "--program", "-p", help="Program slug.")) -> None:
    """List a program's API keys (never their secrets)."""
    with cli_unit_of_work() as session:
        table = Table("prefix", "name", "role", "created", "last used", "revoked")
        for k in service.list_api_keys(session, get_program(session, program).id):
            table.add_row(
                k.prefix,
                k.name,
                k.role,
                str(k.created_at)[:19],
                str(k.last_used_at or "")[:19],
                str(k.revoked_at or "")[:19],
            )
        console.print(table)


@apikey_app.command("revoke")
def revoke_key(
    prefix: str = typer.Argument(..., help="The key's prefix, as listed."),
    program: str = typer.Option(..., "--program", "-p", help="Program slug."),
) -> None:
    """Revoke an API key at once."""
    with cli_unit_of_work() as session:
        service.revoke_api_key(session, program_id=get_program(session, program).id, prefix=prefix)
    console.print(f"revoked {prefix}")
