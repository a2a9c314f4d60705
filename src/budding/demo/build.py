"""``budding demo``: a believable community stored through the service functions.

The builder never writes a table itself: the program, the owner and the API
key go through ``programs`` and ``accounts``, members through
``members.service.upsert_member`` and events through
``members.events.ingest_events`` in batches of 1,000 — so every listener of
every capability sees the demo's events exactly as it would see a customer's.
Then each ``budding.<capability>.demo`` module gets the :class:`Community`
and adds its own data.

It never commits: the caller's unit of work does, so a failed build leaves
nothing behind. Running it again for the same slug reuses the program it
built (the settings remember how), so nothing is duplicated.
"""

from __future__ import annotations

import json
import os
import secrets
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from sqlalchemy.orm import Session

from budding.accounts import service as accounts
from budding.core.config import get_settings
from budding.core.db import utcnow
from budding.core.errors import BuddingError, Conflict, NotFound
from budding.core.plugins import capability_modules
from budding.core.security import verify_password
from budding.demo.community import Community
from budding.demo.simulate import Simulation, simulate
from budding.members.events import ingest_events
from budding.members.schemas import MAX_BATCH, MemberIn
from budding.members.service import upsert_member
from budding.programs import service as programs
from budding.programs.models import Program

PROGRAM_NAME = "Sprout Coffee Club"
LANDING_URL = "https://sprout.example.com/"
SETTINGS_KEY = "demo"  # program.settings["demo"] marks a program this builder made


@dataclass(frozen=True)
class DemoInfo:
    """What ``budding demo`` prints. ``built`` is False when an existing demo was reused."""

    slug: str
    program_id: int
    members: int
    events: int
    admin_email: str
    admin_password: str
    api_key: str
    credentials_path: Path
    built: bool
    community: Community | None = None


def build_demo(
    session: Session,
    *,
    slug: str = "demo",
    members: int = 2000,
    days: int = 180,
    seed: int = 7,
    progress: bool = False,
    now: datetime | None = None,
) -> DemoInfo:
    """Build (or reuse) the demo program ``slug`` with ``members`` members over ``days`` days.

    Deterministic for a seed: the same seed, size and window give the same
    members, referral forest and events. The owner's password and the API key
    are random, saved in ``<data dir>/demo/<slug>.json`` (mode 0600) and
    printed again by later runs, so the demo never ships a guessable login.
    Raises ``Conflict`` when ``slug`` belongs to a program this builder did
    not make.
    """
    console = Console(stderr=True, quiet=not progress)
    end = (now or utcnow()).replace(second=0, microsecond=0)
    program = _existing_program(session, slug)
    community: Community | None = None
    if program is None:
        program = programs.create_program(
            session,
            slug=slug,
            name=PROGRAM_NAME if slug == "demo" else f"{PROGRAM_NAME} ({slug})",
            default_locale="en",
            landing_url=LANDING_URL,
        )
        with _progress(console) as bar:
            community, event_count = _populate(session, program, members, days, seed, end, bar)
        programs.update_program_settings(
            session,
            program,
            SETTINGS_KEY,
            {
                "seed": seed,
                "members": members,
                "days": days,
                "events": event_count,
                "built_at": end.isoformat(),
            },
        )
        built = True
    else:
        marker = programs.program_setting(program, SETTINGS_KEY, "seed", None)
        recorded = dict((program.settings or {}).get(SETTINGS_KEY, {}))
        if marker is None:
            raise Conflict(
                f"program {slug!r} exists and was not built by `budding demo`; "
                "choose another --slug",
                fields={"slug": "already taken by another program"},
            )
        wanted = {"seed": seed, "members": members, "days": days}
        if any(recorded.get(k) != v for k, v in wanted.items()):
            console.print(
                f"[yellow]demo program {slug!r} was built with seed {recorded.get('seed')}, "
                f"{recorded.get('members')} members over {recorded.get('days')} days; "
                "reusing it as it is (pass another --slug to build a new one)[/yellow]"
            )
        else:
            console.print(f"demo program {slug!r} exists; reusing it")
        members = int(recorded.get("members", 0))
        event_count = int(recorded.get("events", 0))
        built = False

    path = credentials_path(slug)
    saved = _read_credentials(path)
    email, password = _ensure_owner(session, slug, saved)
    api_key = _ensure_api_key(session, program, saved.get("api_key"))
    _write_credentials(path, {"admin_email": email, "admin_password": password, "api_key": api_key})
    console.print(f"API key for program {slug!r}: [bold]{api_key}[/bold]")
    console.print(f"credentials saved in {path}")
    return DemoInfo(
        slug=slug,
        program_id=program.id,
        members=members,
        events=event_count,
        admin_email=email,
        admin_password=password,
        api_key=api_key,
        credentials_path=path,
        built=built,
        community=community,
    )


def _existing_program(session: Session, slug: str) -> Program | None:
    try:
        return programs.get_program(session, slug)
    except NotFound:
        return None


def _populate(
    session: Session,
    program: Program,
    members: int,
    days: int,
    seed: int,
    end: datetime,
    bar: Progress,
) -> tuple[Community, int]:
    """Members, events and every capability's contribution. Returns (community, events)."""
    task = bar.add_task("simulating the community", total=None)
    sim = simulate(members, days, seed, end)
    bar.update(task, total=1, completed=1)

    task = bar.add_task("members", total=len(sim.members))
    member_ids: list[int] = []
    for spec in sim.members:
        member, _ = upsert_member(
            session,
            program,
            MemberIn(
                external_id=spec.external_id,
                email=spec.email,
                name=spec.name,
                locale=spec.locale,
                attributes=spec.attributes,
                marketing_consent=spec.marketing_consent,
            ),
            created_at=spec.signup_at,
        )
        member_ids.append(member.id)
        bar.advance(task)

    stored = _ingest(session, program, sim, bar)
    community = _community(program, sim, member_ids, seed)
    for name, module in capability_modules("demo"):
        contribute = getattr(module, "contribute", None)
        if contribute is None:
            continue
        task = bar.add_task(f"{name}", total=1)
        try:
            contribute(session, program, community, capability_rng(seed, name))
        except Exception as exc:
            raise RuntimeError(f"the {name} capability's demo data failed: {exc}") from exc
        bar.update(task, completed=1)
    return community, stored


def _ingest(session: Session, program: Program, sim: Simulation, bar: Progress) -> int:
    """Events oldest first, 1,000 at a time, through the same path as the API."""
    task = bar.add_task("events", total=len(sim.events))
    stored = 0
    for i in range(0, len(sim.events), MAX_BATCH):
        batch = sim.events[i : i + MAX_BATCH]
        result = ingest_events(session, program, batch)
        if result.rejected:
            first = result.rejected[0]
            raise RuntimeError(
                f"the demo generated an invalid event {batch[first.index]!r}: {first.errors}"
            )
        stored += result.accepted
        bar.advance(task, len(batch))
    return stored


def _community(program: Program, sim: Simulation, member_ids: list[int], seed: int) -> Community:
    return Community(
        program=program,
        seed=seed,
        start=sim.start,
        end=sim.end,
        external_ids=[m.external_id for m in sim.members],
        member_ids=member_ids,
        names=[m.name for m in sim.members],
        emails=[m.email for m in sim.members],
        locales=[m.locale for m in sim.members],
        signup_at=[m.signup_at for m in sim.members],
        parent=sim.parent,
        generation=sim.generation,
        channel=sim.channel,
        invited_at=sim.invited_at,
        activity=sim.activity,
        marketing_consent=np.array([m.marketing_consent for m in sim.members], dtype=bool),
        churned_at=sim.churned_at,
        purchases=sim.purchases,
        shares=sim.shares,
        rng=np.random.default_rng([seed, 0]),
    )


def capability_rng(seed: int, capability: str) -> np.random.Generator:
    """A capability's own random stream: its demo data stays the same for a seed whatever
    other capabilities are installed or in which order they run."""
    return np.random.default_rng([seed, zlib.crc32(capability.encode())])


# --- the owner and the API key ------------------------------------------------------------


def owner_email(slug: str) -> str:
    return f"owner@{slug}.example.com"


def credentials_path(slug: str) -> Path:
    return get_settings().data_dir / "demo" / f"{slug}.json"


def _read_credentials(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}


def _write_credentials(path: Path, data: dict[str, str]) -> None:
    """Readable by this user only; replaced atomically so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    os.replace(tmp, path)


def _ensure_owner(session: Session, slug: str, saved: dict[str, str]) -> tuple[str, str]:
    """The demo's owner account: created with a random password, or found again.

    A found owner keeps its password; the saved one is printed only when it
    still matches, since someone may have changed it since.
    """
    email = owner_email(slug)
    existing = next((u for u in accounts.list_users(session) if u.email == email), None)
    password = saved.get("admin_password") or secrets.token_urlsafe(12)
    if existing is None:
        accounts.create_user(
            session, email=email, password=password, role="owner", name="Demo owner"
        )
        return email, password
    if verify_password(existing.password_hash, password):
        return email, password
    return email, "(unchanged: the owner's password was changed after the demo was built)"


def _ensure_api_key(session: Session, program: Program, saved: str | None) -> str:
    """The saved key when it still works for this program, else a new one."""
    if saved:
        try:
            key = accounts.authenticate_api_key(session, saved)
        except BuddingError:
            key = None
        if key is not None and key.program_id == program.id:
            return saved
    return accounts.create_api_key(session, program_id=program.id, name="demo").secret


@contextmanager
def _progress(console: Console) -> Iterator[Progress]:
    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=console.quiet,
    )
    with bar:
        yield bar


__all__ = ["DemoInfo", "build_demo", "capability_rng", "credentials_path", "owner_email"]
