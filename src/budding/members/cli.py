"""``budding members import|export|erase`` and ``budding events import``."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from budding.core.cli import cli_unit_of_work, console, err_console, print_json
from budding.core.errors import BuddingError
from budding.members import events as event_service
from budding.members import service
from budding.members.schemas import MAX_BATCH
from budding.programs.service import get_program

members_app = typer.Typer(help="Members: import, export, erase, settings.", no_args_is_help=True)
events_app = typer.Typer(help="Events: import.", no_args_is_help=True)
COMMANDS = {"members": members_app, "events": events_app}

PROGRAM = typer.Option(..., "--program", "-p", help="Program slug.")


def read_records(path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, record) from a JSONL or CSV file (by extension; ``-`` columns as JSON).

    A line that is not a JSON object comes as (line number, why) instead, so the
    importer can name it rather than blame a missing field.
    """
    if path.suffix.lower() == ".csv":
        # utf-8-sig: a byte order mark (Excel's "CSV UTF-8") is not part of the first column
        with path.open(newline="", encoding="utf-8-sig") as fh:
            for n, row in enumerate(csv.DictReader(fh), start=2):
                record: dict[str, Any] = {}
                for key, value in row.items():
                    if key is None or value is None or value == "":
                        continue
                    if key in ("properties", "attributes"):
                        try:
                            record[key] = json.loads(value)
                        except json.JSONDecodeError:
                            record[key] = value  # the validator names the field
                    elif key == "marketing_consent":
                        record[key] = value.strip().lower() in ("1", "true", "yes", "y")
                    else:
                        record[key] = value
                yield n, record
        return
    with path.open("rb") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield n, f"not a JSON object ({exc})"
                continue
            yield n, value if isinstance(value, dict) else "not a JSON object"


def _unreadable(line: int, why: str, progress: Progress, task: TaskID) -> int:
    """Report a line that holds no record; returns 1, the count of lines it rejects."""
    err_console.print(f"line {line}: {why}")
    progress.advance(task)
    return 1


def _no_rows(path: Path) -> typer.Exit:
    """Refuse a file without a single row (empty, a CSV header only, blank lines): most
    likely the wrong file, and "created 0, rejected 0" would pass for success."""
    err_console.print(f"[red]error:[/red] file: {escape(str(path))} holds no rows", soft_wrap=True)
    return typer.Exit(1)


def _count_lines(path: Path) -> int:
    """Lines in ``path``. A CSV file must be UTF-8 text throughout, checked before anything
    is imported (a line of JSONL is rejected on its own instead)."""
    is_csv = path.suffix.lower() == ".csv"
    count = 0
    with path.open("rb") as fh:
        for count, line in enumerate(fh, start=1):
            if is_csv:
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError:
                    err_console.print(
                        f"[red]error:[/red] file: line {count} is not UTF-8 text "
                        "(save the CSV as UTF-8)"
                    )
                    raise typer.Exit(1) from None
    return count


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
    )


@members_app.command("import")
def import_members(
    path: Path = typer.Argument(..., exists=True, dir_okay=False), program: str = PROGRAM
) -> None:
    """Upsert members from JSONL or CSV (by external_id: safe to re-run)."""
    created = updated = failed = 0
    total = max(_count_lines(path) - (1 if path.suffix.lower() == ".csv" else 0), 0)
    with _progress() as progress:
        task = progress.add_task("members", total=total)
        batch: list[tuple[int, dict[str, Any]]] = []

        def flush() -> None:
            nonlocal created, updated, failed
            with cli_unit_of_work() as session:
                prog = get_program(session, program)
                for line, record in batch:
                    try:
                        with session.begin_nested():
                            _, was_created = service.upsert_member(session, prog, record)
                    except BuddingError as exc:
                        failed += 1
                        err_console.print(f"line {line}: {exc.message}")
                        continue
                    created += was_created
                    updated += not was_created
            progress.advance(task, len(batch))
            batch.clear()

        rows = 0
        for line, record in read_records(path):
            rows += 1
            if isinstance(record, str):
                failed += _unreadable(line, record, progress, task)
                continue
            batch.append((line, record))
            if len(batch) >= 500:
                flush()
        if batch:
            flush()
    if not rows:
        raise _no_rows(path)
    console.print(f"created {created}, updated {updated}, rejected {failed}")
    if failed:
        raise typer.Exit(1)


@members_app.command("settings")
def member_settings(
    program: str = PROGRAM,
    auto_create: bool | None = typer.Option(
        None,
        "--auto-create/--no-auto-create",
        help="Create unknown members from their events (default), or reject such events.",
    ),
) -> None:
    """Show (or change) how the program treats events of members it does not know."""
    with cli_unit_of_work() as session:
        prog = get_program(session, program)
        if auto_create is not None:
            service.set_auto_create_members(session, prog, auto_create)
        enabled = service.auto_create_members(prog)
    console.print(f"auto_create: {'on' if enabled else 'off'}")


@members_app.command("export")
def export_member(external_id: str, program: str = PROGRAM) -> None:
    """Print everything stored about a member as JSON."""
    with cli_unit_of_work() as session:
        prog = get_program(session, program)
        member = service.get_member(session, prog.id, external_id)
        data = service.member_export(session, prog, member)
    print_json(data)


@members_app.command("erase")
def erase_member(
    external_id: str,
    program: str = PROGRAM,
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Erase a member's personal data (events stay, anonymised)."""
    if not yes:
        typer.confirm(f"Erase member {external_id!r}? This cannot be undone", abort=True)
    with cli_unit_of_work() as session:
        prog = get_program(session, program)
        service.erase_member(session, prog, service.get_member(session, prog.id, external_id))
    console.print(f"erased {external_id}")


@events_app.command("import")
def import_events(
    path: Path = typer.Argument(..., exists=True, dir_okay=False), program: str = PROGRAM
) -> None:
    """Import events from JSONL or CSV in batches of 1,000.

    Each batch commits on its own and event ids are idempotency keys, so an
    interrupted import can simply be run again: nothing is stored twice.
    """
    accepted = duplicates = rejected = 0
    total = max(_count_lines(path) - (1 if path.suffix.lower() == ".csv" else 0), 0)
    with _progress() as progress:
        task = progress.add_task("events", total=total)
        lines: list[int] = []
        batch: list[Any] = []

        def flush() -> None:
            nonlocal accepted, duplicates, rejected
            with cli_unit_of_work() as session:
                result = event_service.ingest_events(session, get_program(session, program), batch)
            accepted += result.accepted
            duplicates += result.duplicates
            for r in result.rejected:
                rejected += 1
                reasons = "; ".join(f"{k}: {v}" for k, v in r.errors.items())
                err_console.print(f"line {lines[r.index]}: {reasons}")
            progress.advance(task, len(batch))
            batch.clear()
            lines.clear()

        rows = 0
        for line, record in read_records(path):
            rows += 1
            if isinstance(record, str):
                rejected += _unreadable(line, record, progress, task)
                continue
            lines.append(line)
            batch.append(record)
            if len(batch) >= MAX_BATCH:
                flush()
        if batch:
            flush()
    if not rows:
        raise _no_rows(path)
    console.print(f"accepted {accepted}, duplicates {duplicates}, rejected {rejected}")
    if rejected:
        raise typer.Exit(1)
