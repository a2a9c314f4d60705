"""``budding worker`` and ``budding jobs list|show|retry|sweep``."""

from __future__ import annotations

import json
import logging

import typer
from rich.table import Table

from budding.core.cli import cli_unit_of_work, console
from budding.core.db import MAX_ROW_ID
from budding.programs.service import get_program

worker_app = typer.Typer(
    help="Run background jobs (webhook deliveries, simulations, …) from the durable queue.",
    invoke_without_command=True,
)
jobs_app = typer.Typer(help="Background jobs: list, show, retry, sweep.", no_args_is_help=True)
COMMANDS = {"worker": worker_app, "jobs": jobs_app}


@worker_app.callback()
def worker(
    workers: int = typer.Option(2, "--workers", "-w", min=1, help="Jobs run at once."),
    worker_type: str = typer.Option(
        "thread", help="thread (I/O-bound work) or process (CPU-bound work)."
    ),
    burst: bool = typer.Option(
        False, "--burst", help="Run the jobs that are due now in this process, then exit."
    ),
    poll_interval: float = typer.Option(
        1.0, min=0.1, help="Longest wait in seconds between looks at an idle queue."
    ),
    sweep_interval: float = typer.Option(
        15.0, min=1.0, help="Seconds between sweeps for jobs that a dead process left behind."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log every job."),
) -> None:
    """Consume the job queue until stopped (SIGTERM finishes running attempts first).

    Run as many workers on as many hosts as you like: they share the queue in the
    database, and a job runs once however many see it."""
    from budding.core import jobs

    if worker_type not in ("thread", "process"):
        raise typer.BadParameter("thread or process", param_hint="--worker-type")
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    kinds = jobs.discover_tasks()
    if burst:
        ran = jobs.run_due()
        console.print(f"ran {ran} job(s)")
        return
    console.print(
        f"worker: {workers} {worker_type} worker(s); job kinds: {', '.join(kinds) or 'none'}"
    )
    jobs.run_worker(
        workers,
        worker_type=worker_type,
        poll_interval=poll_interval,
        sweep_interval=sweep_interval,
    )


PROGRAM = typer.Option(..., "--program", "-p", help="Program slug.")


@jobs_app.command("list")
def list_jobs(
    program: str = PROGRAM,
    status: str = typer.Option("", help="queued, running, succeeded or failed."),
    kind: str = typer.Option("", help="Only this kind, e.g. webhooks.deliver."),
    limit: int = typer.Option(50, min=1, max=1000),
) -> None:
    """A program's recent jobs, newest first."""
    from budding.core import jobs

    with cli_unit_of_work() as session:
        prog = get_program(session, program)
        try:
            records = jobs.list_jobs(
                session, prog.id, status=status or None, kind=kind or None, limit=limit
            )
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--status") from None
        table = Table("id", "kind", "status", "progress", "attempts", "created", "error")
        for r in records:
            table.add_row(
                str(r.id),
                r.kind,
                r.status,
                f"{r.progress:.0%} {r.message}".strip(),
                f"{r.attempts}/{r.max_attempts}",
                r.created_at.isoformat(timespec="seconds"),
                (r.error or "")[:60],
            )
        console.print(table)


@jobs_app.command("show")
def show_job(
    job_id: int = typer.Argument(..., min=1, max=MAX_ROW_ID, help="The job's id."),
) -> None:
    """Print one job as JSON."""
    from budding.core import jobs
    from budding.jobs.schemas import JobOut

    with cli_unit_of_work() as session:
        record = jobs.get_job(session, job_id)
        data = JobOut.model_validate(record).model_dump(mode="json")
        data["program_id"] = record.program_id
        data["payload"] = record.payload
    print(json.dumps(data, indent=2, ensure_ascii=False))


@jobs_app.command("retry")
def retry_job(
    job_id: int = typer.Argument(..., min=1, max=MAX_ROW_ID, help="A failed job's id."),
) -> None:
    """Queue a failed job again for one more attempt."""
    from budding.core import jobs

    with cli_unit_of_work() as session:
        jobs.retry_job(session, job_id)
    console.print(f"job {job_id} queued again")


@jobs_app.command("sweep")
def sweep() -> None:
    """Repair what dead processes left behind, once (workers do it every 15 seconds)."""
    from budding.core import jobs

    result = jobs.sweep()
    console.print(
        f"requeued {result.requeued}, failed {result.failed}, dispatched {result.dispatched}"
    )
