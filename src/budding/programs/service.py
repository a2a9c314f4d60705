"""Program service functions. They take a ``Session`` and never commit."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from budding.core.errors import Conflict, NotFound, Reason, from_pydantic
from budding.core.i18n import N_
from budding.programs.models import Program
from budding.programs.schemas import ProgramCreate


def create_program(session: Session, **data: Any) -> Program:
    try:
        spec = ProgramCreate(**data)
    except ValidationError as exc:
        raise from_pydantic(exc) from None
    if session.scalar(select(Program.id).where(Program.slug == spec.slug)) is not None:
        raise Conflict(
            f"a program with slug {spec.slug!r} exists",
            fields={"slug": Reason(N_("already taken"))},
        )
    program = Program(**spec.model_dump())
    session.add(program)
    session.flush()
    return program


def list_programs(session: Session) -> list[Program]:
    return list(session.scalars(select(Program).order_by(Program.slug)))


def get_program(session: Session, slug: str) -> Program:
    program = session.scalar(select(Program).where(Program.slug == slug))
    if program is None:
        raise NotFound(f"no program {slug!r}", fields={"program": "unknown slug"})
    return program


def get_program_by_id(session: Session, program_id: int) -> Program:
    program = session.get(Program, program_id)
    if program is None:
        raise NotFound("no such program")
    return program


def program_setting(program: Program, capability: str, key: str, default: Any) -> Any:
    """One capability setting of a program, falling back to the default."""
    return (program.settings or {}).get(capability, {}).get(key, default)


def update_program_settings(
    session: Session, program: Program, capability: str, values: dict[str, Any]
) -> Program:
    """Merge ``values`` into one capability's settings (a new dict, so the JSON column is dirty)."""
    settings = dict(program.settings or {})
    section = dict(settings.get(capability, {}))
    section.update(values)
    settings[capability] = section
    program.settings = settings
    session.flush()
    return program
