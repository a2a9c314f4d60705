"""Test data built through the service functions, each in its own unit of work."""

from __future__ import annotations

from typing import Any

from budding.accounts import service as accounts
from budding.core.db import unit_of_work
from budding.programs import service as programs
from budding.programs.models import Program

PASSWORD = "correct horse battery"


def make_program(slug: str = "acme", **kw: Any) -> Program:
    with unit_of_work() as session:
        return programs.create_program(
            session,
            slug=slug,
            name=kw.pop("name", slug.title()),
            landing_url=kw.pop("landing_url", "https://example.com/"),
            **kw,
        )


def make_api_key(program_id: int, role: str = "admin") -> str:
    with unit_of_work() as session:
        return accounts.create_api_key(
            session, program_id=program_id, name="test", role=role
        ).secret


def make_staff(email: str = "admin@example.com", role: str = "admin") -> str:
    with unit_of_work() as session:
        accounts.create_user(session, email=email, password=PASSWORD, role=role)
    return email
