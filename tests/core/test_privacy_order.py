"""Privacy erasers run in an explicit order: the one that removes the member's identity
(members) runs after every eraser that still needs it to find the member's data."""

from __future__ import annotations

import types
from typing import Any

import pytest

from budding.core import plugins


def test_members_eraser_runs_last() -> None:
    names = [name for name, _ in plugins.capability_modules("privacy")]
    assert names[-1] == "members"
    assert "webhooks" in names and names.index("webhooks") < names.index("members")
    others = names[:-1]
    assert others == sorted(others)  # the rest keep capability-name order


def test_order_sorts_modules_and_must_be_an_int() -> None:
    def module(name: str, **attrs: Any) -> types.ModuleType:
        m = types.ModuleType(name)
        m.__dict__.update(attrs)
        return m

    assert plugins.module_order(module("a")) == plugins.DEFAULT_ORDER
    assert plugins.module_order(module("b", ORDER=plugins.ERASE_IDENTITY_LAST)) == 1000
    with pytest.raises(TypeError):
        plugins.module_order(module("c", ORDER="last"))


def test_every_eraser_sees_the_identity(program: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each eraser before members' is called while the member still has its external id
    and e-mail; the erasure as a whole still removes them."""
    from budding.core.db import unit_of_work
    from budding.members import service
    from budding.programs.service import get_program
    from tests.members.test_pages import add_member

    add_member(external_id="ann", name="Ann", email="ann@example.com")
    seen: list[tuple[str, str, str | None]] = []
    for name, module in plugins.capability_modules("privacy"):
        eraser = getattr(module, "erase", None)
        if eraser is None or name == "members":
            continue

        def spy(session: Any, member: Any, _eraser: Any = eraser, _name: str = name) -> None:
            seen.append((_name, member.external_id, member.email))
            _eraser(session, member)

        monkeypatch.setattr(module, "erase", spy)
    with unit_of_work() as s:
        prog = get_program(s, "acme")
        member = service.get_member(s, prog.id, "ann")
        service.erase_member(s, prog, member)
        assert member.email is None and member.external_id.startswith("erased-")
    assert seen and all(ext == "ann" and mail == "ann@example.com" for _, ext, mail in seen)
