"""``budding invites issue|list|revoke``, ``budding waitlist list|release`` and
``budding referrals settings|tree``."""

from __future__ import annotations

from typing import Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from budding.core.cli import cli_unit_of_work, console, print_json
from budding.programs.service import get_program

invites_app = typer.Typer(help="Invite codes: issue, list, revoke.", no_args_is_help=True)
waitlist_app = typer.Typer(help="The waitlist: list, release.", no_args_is_help=True)
referrals_app = typer.Typer(help="Referral settings and the fission tree.", no_args_is_help=True)
COMMANDS = {"invites": invites_app, "waitlist": waitlist_app, "referrals": referrals_app}

PROGRAM = typer.Option(..., "--program", "-p", help="Program slug.")
JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")


@invites_app.command("issue")
def invites_issue(
    program: str = PROGRAM,
    member: str = typer.Option("", "--member", "-m", help="External id; empty: team codes."),
    count: int = typer.Option(1, "--count", "-n", help="How many codes."),
    uses: int | None = typer.Option(None, help="Uses per code (team codes; default: setting)."),
    expires_days: int | None = typer.Option(None, help="Days valid (team codes)."),
    note: str = typer.Option("", help="A note kept with the codes."),
    as_json: bool = JSON,
) -> None:
    """Issue codes from a member's quota, or team codes outside any quota."""
    from budding.members import service as members
    from budding.referrals import invites

    if member and (uses is not None or expires_days is not None):
        raise typer.BadParameter(
            "--uses and --expires-days are for team codes; a member's codes follow the "
            "program's invite settings",
            param_hint="--uses/--expires-days",
        )
    with cli_unit_of_work() as session:
        prog = get_program(session, program)
        if member:
            who = members.get_member(session, prog.id, member)
            codes = invites.issue_invites(session, prog, who, count, note=note)
        else:
            codes = invites.issue_staff_invites(
                session, prog, count, uses=uses, expires_days=expires_days, note=note
            )
        if as_json:
            print_json([{"code": c.code, "url": c.url, "uses": c.uses} for c in codes])
            return
        table = Table("code", "uses", "expires", "join link")
        for c in codes:
            expires = c.expires_at.date().isoformat() if c.expires_at else "-"
            table.add_row(c.display, str(c.uses), expires, c.url)
        console.print(table)


@invites_app.command("list")
def invites_list(
    program: str = PROGRAM,
    member: str = typer.Option("", "--member", "-m", help="Only this member's codes."),
    status: str | None = typer.Option(None, help="available, used, expired or revoked."),
    limit: int = typer.Option(100, help="At most this many, newest first."),
    as_json: bool = JSON,
) -> None:
    """List invite codes with their status and who redeemed them."""
    from budding.members import service as members
    from budding.referrals import invites

    with cli_unit_of_work() as session:
        prog = get_program(session, program)
        who = members.get_member(session, prog.id, member) if member else None
        rows = invites.list_invites(session, prog, member=who, status=status, limit=limit)
        if as_json:
            print_json(
                [
                    {
                        "code": i.code,
                        "issuer": i.issuer,
                        "status": i.status,
                        "used": i.used,
                        "uses": i.uses,
                        "redeemed_by": i.redeemed_by,
                        "created_at": i.created_at.isoformat(),
                    }
                    for i in rows
                ]
            )
            return
        table = Table("code", "issued by", "status", "used", "redeemed by", "created")
        for i in rows:
            table.add_row(
                i.display,
                i.issuer or "(team)",
                i.status,
                f"{i.used}/{i.uses}",
                ", ".join(i.redeemed_by),
                i.created_at.date().isoformat(),
            )
        console.print(table)


@invites_app.command("revoke")
def invites_revoke(
    code: str = typer.Argument(..., help="The code (dashes and case do not matter)."),
    program: str = PROGRAM,
    reason: str = typer.Option("", help="Why (kept with the code)."),
) -> None:
    """Revoke a code so it can no longer be redeemed."""
    from budding.referrals import invites

    with cli_unit_of_work() as session:
        info = invites.revoke_invite(session, get_program(session, program), code, reason)
        console.print(f"revoked {info.display} ({info.used}/{info.uses} used)")


@waitlist_app.command("list")
def waitlist_list(
    program: str = PROGRAM,
    status: str = typer.Option("waiting", help="waiting, released, joined or removed."),
    limit: int = typer.Option(50, help="At most this many."),
    as_json: bool = JSON,
) -> None:
    """The queue in order (or released/joined entries, newest first)."""
    from budding.referrals import waitlist

    with cli_unit_of_work() as session:
        prog = get_program(session, program)
        rows = waitlist.list_entries(session, prog, status=status, limit=limit)
        counts = waitlist.waitlist_counts(session, prog)
        if as_json:
            print_json(
                {
                    "counts": counts,
                    "entries": [
                        {
                            "position": pos,
                            "email": e.email,
                            "confirmed": e.confirmed_at is not None,
                            "places_gained": e.boost,
                            "status": e.status,
                        }
                        for e, pos in rows
                    ],
                }
            )
            return
        table = Table("#", "e-mail", "confirmed", "places gained", "joined the list")
        for e, pos in rows:
            table.add_row(
                str(pos or "-"),
                e.email or "(erased)",
                "yes" if e.confirmed_at else "no",
                str(e.boost),
                e.created_at.isoformat(timespec="minutes"),
            )
        console.print(table)
        console.print(
            f"waiting {counts['waiting']} (confirmed {counts['confirmed_waiting']}), "
            f"released {counts['released']}, joined {counts['joined']}"
        )


@waitlist_app.command("release")
def waitlist_release(
    program: str = PROGRAM,
    count: int = typer.Option(..., "--count", "-n", help="How many to release from the top."),
    as_json: bool = JSON,
) -> None:
    """Release the first N waiting people: each gets a single-use invite by e-mail."""
    from budding.referrals import waitlist

    with cli_unit_of_work() as session:
        done = waitlist.release(session, get_program(session, program), count)
        if as_json:
            print_json([r.__dict__ for r in done])
            return
        table = Table("#", "e-mail", "invite code", "join link")
        for r in done:
            table.add_row(str(r.position), r.email, r.invite_code, r.invite_url)
        console.print(table)
        console.print(f"released {len(done)}")


@referrals_app.command("settings")
def referrals_settings(
    program: str = PROGRAM,
    set_: list[str] = typer.Option(
        [], "--set", help="name=value, e.g. --set mode=invite_only --set invite_quota=5."
    ),
) -> None:
    """Show the referral settings, or change some with --set."""
    from budding.referrals.config import referral_settings, update_referral_settings

    with cli_unit_of_work() as session:
        prog = get_program(session, program)
        if set_:
            values: dict[str, Any] = {}
            for item in set_:
                name, sep, value = item.partition("=")
                if not sep:
                    raise typer.BadParameter(f"{item!r}: write name=value", param_hint="--set")
                values[name.strip()] = None if value.strip().lower() in ("", "none") else value
            settings = update_referral_settings(session, prog, values)
        else:
            settings = referral_settings(prog)
        table = Table("setting", "value")
        for name, value in settings.model_dump().items():
            table.add_row(name, str(value))
        console.print(table)


@referrals_app.command("tree")
def referrals_tree(
    program: str = PROGRAM,
    root: str = typer.Option("", help="External id of the root; empty: the whole forest."),
    depth: int = typer.Option(2, help="Levels below the root."),
    as_json: bool = JSON,
) -> None:
    """Print the fission tree below a member, with generation sizes."""
    from budding.members import service as members
    from budding.referrals import tree

    with cli_unit_of_work() as session:
        prog = get_program(session, program)
        member = members.get_member(session, prog.id, root) if root else None
        sub = tree.subtree(session, prog, member, depth=depth, max_nodes=2000)
        if as_json:
            print_json(
                {
                    "nodes": [n.as_dict() for n in sub.nodes],
                    "generation_sizes": sub.generation_sizes,
                    "truncated": sub.truncated,
                }
            )
            return
        forest = Tree(f"fission tree of {escape(root or prog.slug)}", guide_style="dim")
        branches: dict[str, Tree] = {}
        for n in sub.nodes:  # breadth-first: a referrer comes before the people it brought
            parent = branches.get(n.parent) if n.parent else None
            branches[n.external_id] = (parent or forest).add(
                f"{escape(n.external_id)}  [dim]gen {n.generation}, "
                f"{n.children} children, {n.descendants} below[/dim]"
            )
        console.print(forest)
        sizes = ", ".join(f"{g}: {k}" for g, k in sub.generation_sizes.items())
        console.print(f"generation sizes: {sizes or '-'}")
        if sub.truncated:
            console.print("[yellow]truncated at 2000 nodes[/yellow]")
