"""``budding fraud review|settings|evaluate``."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from budding.core.cli import cli_unit_of_work, console, err_console
from budding.core.db import MAX_ROW_ID

app = typer.Typer(
    help="Fraud checks: the review queue, settings, evaluation.", no_args_is_help=True
)

PROGRAM = typer.Option(..., "--program", "-p", help="Program slug.")
ACTOR = "cli"


def _table(rows: list[dict[str, object]]) -> Table:
    table = Table("id", "action", "reasons", "referrer", "member", "referral", "status", "created")
    for r in rows:
        created = r["created_at"]
        table.add_row(
            str(r["id"]),
            str(r["action"]),
            ", ".join(r["reasons"]),  # type: ignore[arg-type]
            str(r["referrer"] or ""),
            str(r["member"] or ""),
            str(r["referral_id"] or ""),
            str(r["review_status"]),
            created.strftime("%Y-%m-%d %H:%M") if hasattr(created, "strftime") else str(created),
        )
    return table


@app.command("review")
def review(
    program: str = PROGRAM,
    approve: list[int] = typer.Option(
        [], "--approve", min=1, max=MAX_ROW_ID, help="Approve this assessment id (repeatable)."
    ),
    reject: list[int] = typer.Option(
        [], "--reject", min=1, max=MAX_ROW_ID, help="Reject this assessment id (repeatable)."
    ),
    note: str = typer.Option("", help="Note recorded with --approve/--reject."),
) -> None:
    """Work through the review queue, or decide directly with --approve/--reject ID.

    Approving lets the referral count and issues its held rewards; rejecting
    rejects the referral and reverses every reward it earned.
    """
    from budding.fraud import service
    from budding.programs.service import get_program

    if approve or reject:
        with cli_unit_of_work() as session:
            prog = get_program(session, program)
            for aid in approve:
                row = service.approve(session, prog, aid, actor=ACTOR, note=note)
                console.print(f"assessment {row.id}: {row.review_status}")
            for aid in reject:
                row = service.reject(session, prog, aid, actor=ACTOR, note=note)
                console.print(f"assessment {row.id}: {row.review_status}")
        return
    with cli_unit_of_work() as session:
        prog = get_program(session, program)
        rows = [
            service.assessment_out(session, r)
            for r in service.list_assessments(session, prog, limit=500)
        ]
    if not rows:
        console.print("the review queue is empty")
        return
    console.print(_table(rows))
    for r in rows:
        details = "; ".join(f"{k}: {v}" for k, v in dict(r["details"]).items())
        answer = (
            typer.prompt(
                f"assessment {r['id']} ({details}): [a]pprove, [r]eject, [s]kip, [q]uit",
                default="s",
            )
            .strip()
            .lower()
        )
        if answer.startswith("q"):
            break
        if not (answer.startswith("a") or answer.startswith("r")):
            continue
        text = typer.prompt("note (optional)", default="", show_default=False)
        with cli_unit_of_work() as session:
            prog = get_program(session, program)
            decide = service.approve if answer.startswith("a") else service.reject
            row = decide(session, prog, int(r["id"]), actor=ACTOR, note=text)
            console.print(f"assessment {row.id}: {row.review_status}")


@app.command("settings")
def settings(
    program: str = PROGRAM,
    set_: list[str] = typer.Option(
        [], "--set", help="check=action (off, flag, hold, block) or setting=number; repeatable."
    ),
) -> None:
    """Show the fraud settings, or change them with --set."""
    from budding.fraud import service
    from budding.fraud.checks import CHECKS
    from budding.fraud.schemas import FraudSettings
    from budding.programs.service import get_program

    patch: dict[str, object] = {}
    checks: dict[str, str] = {}
    for item in set_:
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep:
            err_console.print(f"[red]error:[/red] --set {item!r}: write name=value")
            raise typer.Exit(1)
        check = name.removeprefix("checks.")  # the API's spelling works here too
        if check in CHECKS:
            checks[check] = value
        elif name not in FraudSettings.model_fields or name == "checks":
            known = ", ".join([*CHECKS, *(f for f in FraudSettings.model_fields if f != "checks")])
            err_console.print(f"[red]error:[/red] --set {name}: unknown (known: {known})")
            raise typer.Exit(1)
        elif value.isdigit():
            patch[name] = int(value)
        else:
            err_console.print(f"[red]error:[/red] --set {name}: give a whole number")
            raise typer.Exit(1)
    if checks:
        patch["checks"] = checks
    with cli_unit_of_work() as session:
        prog = get_program(session, program)
        current = (
            service.update_settings(session, prog, patch) if patch else service.fraud_settings(prog)
        )
    table = Table("setting", "value")
    for check, action in current.checks.items():
        table.add_row(check, action)
    for name, value in current.model_dump().items():
        if name != "checks":
            table.add_row(name, str(value))
    console.print(table)


@app.command("evaluate")
def evaluate(
    seed: int = typer.Option(7, help="Random seed of the labelled scenarios."),
    honest: int = typer.Option(150, min=0, help="Honest stories."),
    per_check: int = typer.Option(20, min=0, help="Fraud stories per check."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Precision and recall of every check on generated labelled scenarios (scratch database)."""
    from budding.fraud.scenarios import evaluate_in_scratch

    with console.status("playing labelled scenarios…"):
        result = evaluate_in_scratch(seed=seed, honest=honest, per_check=per_check)
    if as_json:
        print(json.dumps(result, indent=2))
        return
    table = Table("check", "precision", "recall", "fired", "false positives", "labelled")
    for check, m in result.items():
        table.add_row(
            check,
            f"{m['precision']:.3f}",
            f"{m['recall']:.3f}",
            f"{m['fired']:.0f}",
            f"{m['false_positives']:.0f}",
            f"{m['labelled']:.0f}",
        )
    console.print(table)
