"""Discovery of what each capability contributes.

A capability is a sub-package of ``budding``. By convention it may hold:
``models`` (tables), ``api`` (``router`` under /api/v1), ``pages`` (``router``
for HTML pages), ``cli`` (a Typer ``app``, mounted as ``budding <name>``),
``privacy`` (``export(session, member)`` and ``erase(session, member)``) and
``listeners`` (``on_events(session, program, events)``, called in the same
transaction as newly accepted events). Discovery keeps capabilities from
editing shared files to plug themselves in.

Modules are returned in capability-name order, except where a module declares
``ORDER`` (an int, default 0): lower first, then by name. The order matters for
privacy erasers: erasers that look a member up by identity (external id, e-mail)
must run before the members capability's eraser removes it, so
``budding.members.privacy`` declares ``ORDER = ERASE_IDENTITY_LAST`` (runs last)
and ``members.service.erase_member`` runs every eraser in this order.
"""

from __future__ import annotations

import importlib
from functools import cache
from types import ModuleType

from budding.core.db import capability_names

DEFAULT_ORDER = 0
# The ``ORDER`` of the privacy module that removes a member's identity: after all others.
ERASE_IDENTITY_LAST = 1000


def module_order(module: ModuleType) -> int:
    """A module's declared ``ORDER`` (``DEFAULT_ORDER`` when it declares none)."""
    value = getattr(module, "ORDER", DEFAULT_ORDER)
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{module.__name__}.ORDER must be an int, not {value!r}")
    return value


@cache
def capability_modules(kind: str) -> tuple[tuple[str, ModuleType], ...]:
    """``(capability, module)`` for each capability with a ``<kind>`` module, ordered by
    the module's ``ORDER`` and then by capability name."""
    found: list[tuple[str, ModuleType]] = []
    for name in capability_names():
        module_name = f"budding.{name}.{kind}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        found.append((name, module))
    # sorted() is stable: equal ORDERs keep capability-name order.
    return tuple(sorted(found, key=lambda item: module_order(item[1])))
