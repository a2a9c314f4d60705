"""``budding rewards review|list|rules|rule-add|rule-archive|vest`` and ``budding coupons upload|list``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from budding.core.cli import cli_unit_of_work, console, err_console, print_json
from budding.core.db import MAX_INT_ROW_ID, MAX_ROW_ID

rewards_app = typer.Typer(help="Rewards: review, rules, vesting.", no_args_is_help=True)
coupons_app = typer.Typer(
    help="Coupon pools: upload codes, see what is left.", no_args_is_help=True
)
COMMANDS = {"rewards": rewards_app, "coupons": coupons_app}

PROGRAM = typer.Option(..., "--program", "-p", help="Program slug.")
ACTOR = "cli"


def _table(rows: list[dict[str, object]]) -> Table:
    table = Table(
        "id", "member", "rule", "kind", "amount", "status", "trigger", "reason", "created"
    )
    for r in rows:
        amount = r["coupon_code"] or (r["amount"] if r["kind"] in ("points", "invites") else "")
        created = r["created_at"]
        table.add_row(
            str(r["id"]),
            str(r["member"]),
            str(r["rule"]),
            str(r["kind"]),
            str(amount),
            str(r["status"]),
            f"{r['trigger']} {r['trigger_key']}",
            str(r["reason"]),
            created.strftime("%Y-%m-%d %H:%M") if hasattr(created, "strftime") else str(created),
        )
    return table


@rewards_app.command("list")
def list_(
    program: str = PROGRAM,
    status: str | None = typer.Option(None, help="pending, held, issued, rejected, reversed"),
    member: str | None = typer.Option(None, help="External id of the rewarded member."),
    limit: int = typer.Option(50, min=1, max=1000),
) -> None:
    """List rewards, newest first."""
    from budding.members import service as members
    from budding.programs.service import get_program
    from budding.rewards import service

    with cli_unit_of_work() as session:
        prog = get_program(session, program)
        member_id = members.get_member(session, prog.id, member).id if member else None
        rows = service.list_rewards(session, prog, member_id=member_id, status=status, limit=limit)
        console.print(_table(service.rewards_out(session, prog, rows)))


@rewards_app.command("review")
def review(
    program: str = PROGRAM,
    approve: list[int] = typer.Option(
        [], "--approve", min=1, max=MAX_ROW_ID, help="Approve this reward id (repeatable)."
    ),
    reject: list[int] = typer.Option(
        [], "--reject", min=1, max=MAX_ROW_ID, help="Reject this reward id (repeatable)."
    ),
    reason: str = typer.Option("", help="Reason recorded with --approve/--reject."),
) -> None:
    """Review held and pending rewards: one by one, or directly with --approve/--reject ID."""
    from budding.programs.service import get_program
    from budding.rewards import service

    if approve or reject:
        with cli_unit_of_work() as session:
            prog = get_program(session, program)
            for rid in approve:
                done = service.approve_reward(session, prog, rid, actor=ACTOR, note=reason)
                console.print(f"reward {done.id}: {done.status}")
            for rid in reject:
                done = service.reject_reward(session, prog, rid, actor=ACTOR, reason=reason)
                console.print(f"reward {done.id}: {done.status}")
        return
    with cli_unit_of_work() as session:
        prog = get_program(session, program)
        waiting = [
            *service.list_rewards(session, prog, status="held", limit=500),
            *service.list_rewards(session, prog, status="pending", limit=500),
        ]
        shown = service.rewards_out(session, prog, waiting)
    if not shown:
        console.print("nothing waits for a review")
        return
    console.print(_table(shown))
    for r in shown:
        answer = (
            typer.prompt(
                f"reward {r['id']} ({r['member']}, {r['rule']}, {r['status']}): [a]pprove, [r]eject, [s]kip, [q]uit",
                default="s",
            )
            .strip()
            .lower()
        )
        if answer.startswith("q"):
            break
        if not (answer.startswith("a") or answer.startswith("r")):
            continue
        note = typer.prompt("reason (optional)", default="", show_default=False)
        # One unit of work per decision: each one is kept even if a later one fails.
        with cli_unit_of_work() as session:
            prog = get_program(session, program)
            if answer.startswith("a"):
                done = service.approve_reward(session, prog, int(r["id"]), actor=ACTOR, note=note)
            else:
                done = service.reject_reward(session, prog, int(r["id"]), actor=ACTOR, reason=note)
            console.print(f"reward {done.id}: {done.status}")


@rewards_app.command("rules")
def list_rules(program: str = PROGRAM, as_json: bool = typer.Option(False, "--json")) -> None:
    """List the program's reward rules."""
    from budding.programs.service import get_program
    from budding.rewards import rules

    with cli_unit_of_work() as session:
        prog = get_program(session, program)
        rows = [rules.rule_out(session, prog, r) for r in rules.list_rules(session, prog)]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "name", "side", "trigger", "kind", "amount/pool", "vesting", "active")
    for r in rows:
        trigger = (
            f"milestone {r['milestone']} ({r['milestone_on']})"
            if r["trigger"] == "milestone"
            else r["trigger"]
        )
        what = (
            r["pool"] if r["kind"] == "coupon" else (r["amount"] if r["kind"] != "custom" else "")
        )
        table.add_row(
            str(r["id"]),
            str(r["name"]),
            str(r["side"]),
            str(trigger),
            str(r["kind"]),
            str(what),
            f"{r['vesting_days']} d" if r["vesting_days"] else "",
            "yes" if r["active"] else "no",
        )
    console.print(table)


@rewards_app.command("rule-add")
def add_rule(
    program: str = PROGRAM,
    name: str = typer.Option(..., help="What the rule is called."),
    side: str = typer.Option(..., help="referrer or referee."),
    trigger: str = typer.Option(..., help="signup, conversion or milestone."),
    kind: str = typer.Option(..., help="points, coupon, invites or custom."),
    amount: int = typer.Option(0, help="Points or invites."),
    pool: str | None = typer.Option(None, help="Coupon pool name (kind coupon)."),
    milestone: int | None = typer.Option(None, help="Successful referrals (trigger milestone)."),
    milestone_on: str = typer.Option("conversion", help="signup or conversion."),
    vesting_days: int = typer.Option(0, help="Days the referee must stay active first."),
    payload: str = typer.Option("{}", help="JSON sent with a custom reward's webhook."),
) -> None:
    """Add a reward rule."""
    from budding.programs.service import get_program
    from budding.rewards import rules

    try:
        data = json.loads(payload)
    except json.JSONDecodeError as exc:
        err_console.print(f"[red]error:[/red] payload: is not JSON ({exc})")
        raise typer.Exit(1) from None
    with cli_unit_of_work() as session:
        prog = get_program(session, program)
        rule = rules.create_rule(
            session,
            prog,
            {
                "name": name,
                "side": side,
                "trigger": trigger,
                "kind": kind,
                "amount": amount,
                "pool": pool,
                "milestone": milestone,
                "milestone_on": milestone_on,
                "vesting_days": vesting_days,
                "payload": data,
            },
        )
        console.print(f"rule {rule.id} created: {rule.name}")


@rewards_app.command("rule-archive")
def archive_rule(
    rule_id: int = typer.Argument(..., min=1, max=MAX_INT_ROW_ID), program: str = PROGRAM
) -> None:
    """Archive a rule: it pays nothing more; rewards it paid stay."""
    from budding.programs.service import get_program
    from budding.rewards import rules

    with cli_unit_of_work() as session:
        rules.archive_rule(session, get_program(session, program), rule_id)
    console.print(f"rule {rule_id} archived")


@rewards_app.command("vest")
def vest(
    program: str | None = typer.Option(None, "--program", "-p", help="One program (default: all)."),
) -> None:
    """Issue pending rewards whose vesting time has come (the scheduled job does this too)."""
    from budding.programs.service import get_program
    from budding.rewards import service

    total = service.VestResult()
    while True:
        with cli_unit_of_work() as session:
            prog = get_program(session, program) if program else None
            result = service.vest_due(session, prog)
        total.vested += result.vested
        total.rejected += result.rejected
        total.held += result.held
        if result.vested + result.rejected + result.held < service.VEST_BATCH:
            break
    console.print(f"vested {total.vested}, rejected {total.rejected}, held {total.held}")


# --- coupons ----------------------------------------------------------------------------


@coupons_app.command("upload")
def upload(
    path: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="CSV: a 'code' column, or one code per line."
    ),
    pool: str = typer.Option(..., help="Pool name (created when missing)."),
    program: str = PROGRAM,
    description: str = typer.Option("", help="Description of a new pool."),
) -> None:
    """Upload coupon codes into a pool. Safe to re-run: codes already there are skipped."""
    from budding.programs.service import get_program
    from budding.rewards import coupons

    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        err_console.print("[red]error:[/red] file: is not UTF-8 text")
        raise typer.Exit(1) from None
    with cli_unit_of_work() as session:
        prog = get_program(session, program)
        result = coupons.upload_codes(session, prog, pool, text, description=description)
        available = coupons.available_count(session, result.pool.id)
    for line, why in sorted(result.rejected.items()):
        err_console.print(f"line {line}: {why}")
    console.print(
        f"pool {pool}: added {result.added}, duplicates {result.duplicates}, "
        f"rejected {len(result.rejected)}; {available} available"
    )
    if result.rejected:
        raise typer.Exit(1)


@coupons_app.command("list")
def list_pools(program: str = PROGRAM) -> None:
    """Coupon pools with their available, claimed and voided codes."""
    from budding.programs.service import get_program
    from budding.rewards import coupons

    with cli_unit_of_work() as session:
        stats = coupons.pool_stats(session, get_program(session, program))
    table = Table("pool", "available", "claimed", "voided", "description")
    for s in stats:
        table.add_row(
            s.pool.name, str(s.available), str(s.claimed), str(s.voided), s.pool.description
        )
    console.print(table)
