"""``budding webhooks add|list|update|rotate-secret|remove|test|deliveries|redeliver``."""

from __future__ import annotations

from datetime import timedelta

import typer
from rich.table import Column, Table

from budding.core.cli import cli_unit_of_work, console, err_console
from budding.core.db import MAX_INT_ROW_ID
from budding.programs.service import get_program

app = typer.Typer(help="Webhooks: signed event deliveries to your endpoints.", no_args_is_help=True)
COMMANDS = {"webhooks": app}

PROGRAM = typer.Option(..., "--program", "-p", help="Program slug.")
WEBHOOK_ID = typer.Argument(..., min=1, max=MAX_INT_ROW_ID, help="The endpoint's id, as listed.")


@app.command("add")
def add(
    url: str = typer.Argument(..., help="http(s) URL that receives the events."),
    program: str = PROGRAM,
    event: list[str] = typer.Option(
        ..., "--event", "-e", help="An event type to send (repeat it), or '*' for all."
    ),
    description: str = typer.Option("", help="What the endpoint is for."),
) -> None:
    """Add an endpoint. Its signing secret is printed once and never shown again."""
    from budding.webhooks import service

    with cli_unit_of_work() as session:
        endpoint, secret = service.create_endpoint(
            session,
            get_program(session, program),
            url=url,
            event_types=event,
            description=description,
        )
        endpoint_id = endpoint.id
    err_console.print(
        f"webhook {endpoint_id} added; its signing secret (store it now, it is not shown again):"
    )
    print(secret)


@app.command("list")
def list_(program: str = PROGRAM) -> None:
    """A program's endpoints (never their secrets)."""
    from budding.webhooks import service

    with cli_unit_of_work() as session:
        table = Table("id", "url", "events", "description", "added")
        for e in service.list_endpoints(session, get_program(session, program).id):
            table.add_row(
                str(e.id),
                e.url,
                ", ".join(e.event_types),
                e.description,
                e.created_at.isoformat(timespec="seconds"),
            )
        console.print(table)


@app.command("update")
def update(
    webhook_id: int = WEBHOOK_ID,
    program: str = PROGRAM,
    url: str | None = typer.Option(None, help="A new http(s) URL."),
    event: list[str] | None = typer.Option(
        None, "--event", "-e", help="The event types to send from now on (repeat it)."
    ),
    description: str | None = typer.Option(None, help="A new description."),
) -> None:
    """Change an endpoint's URL, event types or description; pending retries go to the
    new URL."""
    from budding.webhooks import service

    if url is None and not event and description is None:
        raise typer.BadParameter("give --url, --event or --description")
    with cli_unit_of_work() as session:
        endpoint = service.update_endpoint(
            session,
            get_program(session, program).id,
            webhook_id,
            url=url,
            event_types=event or None,
            description=description,
        )
        summary = f"{endpoint.url} ({', '.join(endpoint.event_types)})"
    console.print(f"updated webhook {webhook_id}: {summary}")


@app.command("rotate-secret")
def rotate_secret(
    webhook_id: int = WEBHOOK_ID,
    program: str = PROGRAM,
    keep_previous: int = typer.Option(
        0,
        "--keep-previous",
        metavar="HOURS",
        help="Hours the old secret keeps signing too, while the receiver switches "
        "(0, the default: it stops at once, as after a leak).",
    ),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Give an endpoint a new signing secret, printed once."""
    from budding.webhooks import service

    if not yes:
        typer.confirm(
            f"Replace webhook {webhook_id}'s secret? "
            + (
                f"The old one keeps signing for {keep_previous} hours."
                if keep_previous
                else "Its receiver must switch at once."
            ),
            abort=True,
        )
    with cli_unit_of_work() as session:
        _, secret = service.rotate_secret(
            session,
            get_program(session, program).id,
            webhook_id,
            keep_previous=timedelta(hours=keep_previous),
        )
    err_console.print(
        f"webhook {webhook_id}: new signing secret (store it now, it is not shown again):"
    )
    print(secret)


@app.command("remove")
def remove(
    webhook_id: int = WEBHOOK_ID,
    program: str = PROGRAM,
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Stop sending to an endpoint (its delivery log stays)."""
    from budding.webhooks import service

    if not yes:
        typer.confirm(f"Remove webhook {webhook_id}?", abort=True)
    with cli_unit_of_work() as session:
        service.remove_endpoint(session, get_program(session, program).id, webhook_id)
    console.print(f"removed webhook {webhook_id}")


@app.command("test")
def test(
    webhook_id: int = WEBHOOK_ID,
    program: str = PROGRAM,
) -> None:
    """Send a webhook.test event to an endpoint (a worker delivers it)."""
    from budding.webhooks import service

    with cli_unit_of_work() as session:
        delivery = service.send_test(session, get_program(session, program), webhook_id)
        uid = delivery.uid
    console.print(f"queued delivery {uid}")


@app.command("deliveries")
def deliveries(
    program: str = PROGRAM,
    status: str = typer.Option("", help="pending, delivered or failed."),
    webhook: int | None = typer.Option(
        None, min=1, max=MAX_INT_ROW_ID, help="Only this endpoint's deliveries."
    ),
    event: str = typer.Option("", help="Only this event type."),
    limit: int = typer.Option(50, min=1, max=500),
) -> None:
    """The delivery log, newest first."""
    from budding.webhooks import service

    with cli_unit_of_work() as session:
        rows, _cursor = service.list_deliveries(
            session,
            get_program(session, program).id,
            status=status or None,
            endpoint_id=webhook,
            event_type=event or None,
            limit=limit,
        )
        # The whole id, whatever the terminal's width: `redeliver` needs it.
        table = Table(
            Column("delivery", no_wrap=True, min_width=36),
            "event",
            "webhook",
            Column("status", no_wrap=True, min_width=9),
            "attempts",
            "last answer",
            "created",
        )
        for d in rows:
            answer = f"HTTP {d.last_status_code}" if d.last_status_code else ""
            if d.last_error and d.status != "delivered":
                answer = f"{answer} {d.last_error}".strip()
            table.add_row(
                d.uid,
                d.event_type,
                str(d.endpoint_id),
                d.status,
                str(d.attempts),
                answer[:60],
                d.created_at.isoformat(timespec="seconds"),
            )
        console.print(table)


@app.command("redeliver")
def redeliver(
    delivery_id: str = typer.Argument(..., help="The delivery's id (dlv_…)."),
    program: str = PROGRAM,
) -> None:
    """Send a delivery again, with the same Budding-Delivery id (a worker sends it)."""
    from budding.webhooks import service

    with cli_unit_of_work() as session:
        service.redeliver(session, get_program(session, program).id, delivery_id)
    console.print(f"queued {delivery_id} again")
