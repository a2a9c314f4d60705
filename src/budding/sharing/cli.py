"""``budding virality report`` and ``budding sharing funnel|compare|kit|widget-token|rebuild``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import typer
from rich.table import Table

from budding.core.cli import cli_unit_of_work, console, err_console, print_json

sharing_app = typer.Typer(help="Share kit and share funnel (launch cost).", no_args_is_help=True)
virality_app = typer.Typer(help="Virality: K-factor, cycle time, projection.", no_args_is_help=True)
COMMANDS = {"sharing": sharing_app, "virality": virality_app}

PROGRAM = typer.Option(..., "--program", "-p", help="Program slug.")
SINCE = typer.Option(None, help="From this day (YYYY-MM-DD, UTC), inclusive.")
UNTIL = typer.Option(None, help="To this day (YYYY-MM-DD, UTC), inclusive.")
JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")


def _day(value: str | None, name: str, end: bool = False) -> datetime | None:
    if not value:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        err_console.print(f"[red]error:[/red] {name}: must be a date, YYYY-MM-DD")
        raise typer.Exit(2) from None
    return day + timedelta(days=1) if end else day


def _range(text: str, name: str) -> tuple[datetime | None, datetime | None]:
    start, sep, end = text.partition("..")
    if not sep:
        err_console.print(f"[red]error:[/red] {name}: write FROM..TO, e.g. 2025-01-01..2025-01-31")
        raise typer.Exit(2)
    return _day(start, name), _day(end, name, end=True)


def _f(value: float | None, digits: int = 2, percent: bool = False) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.1f} %" if percent else f"{value:.{digits}f}"


@virality_app.command("report")
def virality_report(
    program: str = PROGRAM,
    since: str | None = SINCE,
    until: str | None = UNTIL,
    cohort: str = typer.Option("week", help="Cohorts of day, week or month."),
    horizon: float = typer.Option(180, help="Days of projection."),
    as_json: bool = JSON,
) -> None:
    """K-factor by cohort, channel and generation; cycle time; projection and ceiling."""
    from budding.programs.service import get_program
    from budding.sharing.virality import virality_report as report_of

    with cli_unit_of_work() as session:
        p = get_program(session, program)
        report = report_of(
            session,
            p,
            _day(since, "since"),
            _day(until, "until", end=True),
            cohort=cohort,
            horizon_days=horizon,
        )
    if as_json:
        print_json(report.model_dump(mode="json"))
        return
    summary = Table(title=f"Virality of {program}", show_header=False)
    summary.add_row("members", str(report.members))
    summary.add_row("seeds (N0, generation 0)", str(report.seeds))
    summary.add_row("referrals", str(report.referrals))
    summary.add_row("invitations (shares sent)", str(report.invitations))
    summary.add_row("K-factor", _f(report.k, 3))
    summary.add_row("K, converted referees only", _f(report.k_converted, 3))
    summary.add_row("viral cycle time (days, median)", _f(report.cycle_time_days, 1))
    summary.add_row(
        "ceiling N0/(1-K)", _f(report.ceiling, 1) if report.ceiling is not None else "none (K >= 1)"
    )
    console.print(summary)
    for title, rows in (
        (f"K by signup cohort ({report.cohort})", report.by_cohort),
        ("K by channel", report.by_channel),
        ("K by generation", report.by_generation),
    ):
        table = Table(title=title)
        for col in (
            "group",
            "members",
            "invitations",
            "inv./member",
            "referrals",
            "per inv.",
            "K",
            "converted",
        ):
            table.add_column(col, justify="left" if col == "group" else "right")
        for r in rows:
            table.add_row(
                r.key,
                str(r.members),
                str(r.invitations),
                _f(r.invitations_per_member),
                str(r.referrals),
                _f(r.conversion),
                _f(r.k, 3),
                str(r.conversions),
            )
        console.print(table)


def _funnel_table(report: Any, title: str) -> Table:
    table = Table(title=title)
    for col in (
        "channel",
        "steps",
        "median steps",
        "median s",
        "share rate",
        "shares",
        "clicks",
        "CTR",
        "signups",
        "signup rate",
        "conversions",
        "conv. rate",
    ):
        table.add_column(col, justify="left" if col == "channel" else "right")
    for r in report.channels:
        name = r.channel + (" (cheapest)" if r.channel == report.cheapest else "")
        table.add_row(
            name,
            str(r.designed_steps or "–"),
            _f(r.median_steps, 1),
            _f(r.median_seconds, 1),
            _f(r.share_rate, percent=True),
            str(r.sent),
            str(r.clicks),
            _f(r.click_through, percent=True),
            str(r.signups),
            _f(r.signup_rate, percent=True),
            str(r.conversions),
            _f(r.conversion_rate, percent=True),
        )
    return table


@sharing_app.command("funnel")
def funnel_report(
    program: str = PROGRAM,
    since: str | None = SINCE,
    until: str | None = UNTIL,
    as_json: bool = JSON,
) -> None:
    """Launch cost and share funnel per channel."""
    from budding.programs.service import get_program
    from budding.sharing.funnel import launch_cost

    with cli_unit_of_work() as session:
        report = launch_cost(
            session, get_program(session, program), _day(since, "since"), _day(until, "until", True)
        )
    if as_json:
        print_json(report.model_dump(mode="json"))
        return
    console.print(_funnel_table(report, f"Share funnel of {program}"))
    console.print(
        f"kits opened: {report.opened}, shared: {report.sessions_sent} "
        f"({_f(report.share_rate, percent=True)}), median seconds to share: "
        f"{_f(report.median_seconds, 1)}; cheapest channel: {report.cheapest or '–'}"
    )


@sharing_app.command("compare")
def compare_report(
    program: str = PROGRAM,
    before: str = typer.Option(
        ..., help="FROM..TO (UTC days, TO inclusive), e.g. 2025-01-01..2025-01-31"
    ),
    after: str = typer.Option(
        ..., help="FROM..TO, starting the day after before's TO, e.g. 2025-02-01..2025-02-28"
    ),
    as_json: bool = JSON,
) -> None:
    """Before/after: what a change did to the funnel."""
    from budding.programs.service import get_program
    from budding.sharing.funnel import compare

    with cli_unit_of_work() as session:
        result = compare(
            session, get_program(session, program), _range(before, "before"), _range(after, "after")
        )
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    table = Table(title="After minus before")
    for col in ("channel", "share rate", "median s", "CTR", "signup rate", "conv. rate"):
        table.add_column(col, justify="left" if col == "channel" else "right")

    def pp(v: float | None) -> str:
        return "–" if v is None else f"{100 * v:+.1f} pp"

    for d in result.deltas:
        seconds = "–" if d.median_seconds is None else f"{d.median_seconds:+.1f}"
        table.add_row(
            d.channel,
            pp(d.share_rate),
            seconds,
            pp(d.click_through),
            pp(d.signup_rate),
            pp(d.conversion_rate),
        )
    console.print(table)


@sharing_app.command("kit")
def kit(
    member: str = typer.Argument(..., help="The member's external id."),
    program: str = PROGRAM,
    locale: str | None = typer.Option(None, help="en, ko, es, id or zh-Hans."),
    as_json: bool = JSON,
) -> None:
    """A member's share kit: link, QR URLs, share URL and message per channel."""
    from budding.programs.service import get_program
    from budding.sharing import service

    with cli_unit_of_work() as session:
        p = get_program(session, program)
        result = service.share_kit(
            session, p, service.member_by_external_id(session, p, member), locale
        )
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    console.print(f"link: [bold]{result.link}[/bold]  (code {result.code}, {result.locale})")
    console.print(f"QR: {result.qr.png}")
    table = Table("channel", "share URL", "message")
    for c in result.channels:
        table.add_row(c.channel, c.share_url or f"({c.method})", c.message)
    console.print(table)


@sharing_app.command("widget-token")
def widget_token(
    member: str = typer.Argument(..., help="The member's external id."),
    program: str = PROGRAM,
    ttl: int = typer.Option(3600, help="Seconds the token stays valid (60-86400)."),
) -> None:
    """A widget token and the tags to embed (for trying the widget out)."""
    from budding.core.config import get_settings
    from budding.programs.service import get_program
    from budding.sharing import service

    with cli_unit_of_work() as session:
        p = get_program(session, program)
        token, expires = service.issue_widget_token(
            p, service.member_by_external_id(session, p, member), ttl
        )
    base = get_settings().base_url
    console.print(f"expires: {expires.isoformat()}")
    console.print(
        f'<script src="{base}/w/widget.js" data-program="{p.slug}" data-token="{token}" async></script>',
        soft_wrap=True,
        markup=False,
    )


@sharing_app.command("rebuild")
def rebuild(program: str = PROGRAM) -> None:
    """Rebuild the share-funnel projection from the event log (idempotent).

    Needed only after events were stored while sharing was not installed."""
    from rich.progress import Progress

    from budding.programs.service import get_program
    from budding.sharing.projection import rebuild as rebuild_projection

    with cli_unit_of_work() as session, Progress(console=console, transient=True) as progress:
        task = progress.add_task("projecting share events", total=None)
        added = rebuild_projection(
            session, get_program(session, program), lambda n: progress.update(task, completed=n)
        )
    console.print(f"projected {added} new share steps")
